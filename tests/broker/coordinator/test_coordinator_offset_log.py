"""`__consumer_offsets` on the broker's real storage: round trip, start-up compaction, and a
compaction interrupted at each point."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from hayase.broker.coordinator import records as rec
from hayase.broker.coordinator.config import CoordinatorConfig
from hayase.broker.coordinator.coordinator import CommitPartition
from hayase.broker.coordinator.offset_log import _SENTINEL, COMPACTING_TOPIC, StorageOffsetLog
from hayase.broker.coordinator.shell import CoordinatorHandler
from hayase.broker.storage import LogManager

NOW = 1_700_000_000_000


def offset_record(partition: int, offset: int) -> tuple[bytes, bytes]:
    value = rec.OffsetValue(offset, -1, "", NOW)
    return rec.offset_key("g", "t", partition), rec.offset_value(value)


def assert_restarts_with(directory: Path, expected: list[tuple[bytes, bytes | None]]) -> None:
    """A broker restarting over `directory` replays `expected` and keeps no half-done copy."""
    lm = LogManager(directory, {})
    try:
        assert list(StorageOffsetLog(lm).replay()) == expected
        assert not lm.has_topic(COMPACTING_TOPIC)
    finally:
        lm.close()


def test_append_and_replay_across_a_reopen(tmp_path: Path) -> None:
    lm = LogManager(tmp_path, {})
    log = StorageOffsetLog(lm)
    log.append([offset_record(0, 1), offset_record(1, 2)], NOW)
    log.append([(rec.offset_key("g", "t", 0), None)], NOW)
    lm.close()
    lm = LogManager(tmp_path, {})
    try:
        assert list(StorageOffsetLog(lm).replay()) == [
            offset_record(0, 1), offset_record(1, 2), (rec.offset_key("g", "t", 0), None)]
        assert lm.topic_config(rec.OFFSETS_TOPIC).cleanup_policy == ("compact",)
    finally:
        lm.close()


def test_compact_replaces_the_log_with_the_live_records(tmp_path: Path) -> None:
    lm = LogManager(tmp_path, {})
    try:
        log = StorageOffsetLog(lm)
        for i in range(1_200):
            log.append([offset_record(i % 3, i)], NOW)
        live = [offset_record(0, 1197), offset_record(1, 1198), offset_record(2, 1199)]
        log.compact(live, NOW)
        assert list(log.replay()) == live
        assert not lm.has_topic(COMPACTING_TOPIC)
        log.append([offset_record(0, 2000)], NOW)
        assert list(log.replay())[-1] == offset_record(0, 2000)
    finally:
        lm.close()


def test_interrupted_compaction_with_sentinel_is_finished_without_it_dropped(
        tmp_path: Path) -> None:
    live = [offset_record(0, 9)]
    # A crash after the copy was complete: the copy wins.
    lm = LogManager(tmp_path / "a", {})
    StorageOffsetLog(lm).append([offset_record(0, 1), offset_record(0, 9)], NOW)
    StorageOffsetLog._create(StorageOffsetLog(lm), COMPACTING_TOPIC)
    StorageOffsetLog._append_to(lm.log(COMPACTING_TOPIC, 0), [*live, _SENTINEL], NOW)
    lm.delete_topic(rec.OFFSETS_TOPIC)  # ... and in the middle of the rewrite
    lm.close()
    assert_restarts_with(tmp_path / "a", live)
    # A crash while the copy was being written: the original stays.
    lm = LogManager(tmp_path / "b", {})
    original = [offset_record(0, 1), offset_record(0, 9)]
    StorageOffsetLog(lm).append(original, NOW)
    StorageOffsetLog._create(StorageOffsetLog(lm), COMPACTING_TOPIC)
    StorageOffsetLog._append_to(lm.log(COMPACTING_TOPIC, 0), live, NOW)
    lm.close()
    assert_restarts_with(tmp_path / "b", original)


def test_handler_compacts_at_start_and_keeps_every_offset(tmp_path: Path) -> None:
    def broker(lm: LogManager) -> SimpleNamespace:
        return SimpleNamespace(
            config=SimpleNamespace(props={}, durability="none"), log_manager=lm,
            clock=lambda: NOW, node_id=0,
            advertised=SimpleNamespace(host="127.0.0.1", port=9092), group_commit=None)

    lm = LogManager(tmp_path, {})
    lm.create_topic("t", 3, {})
    h = CoordinatorHandler(broker(lm), config=CoordinatorConfig())  # type: ignore[arg-type]
    for i in range(60):
        out = h.coordinator.commit_offsets(
            "tok", "g", -1, "", [CommitPartition("t", i % 3, i, f"m{i}")], NOW)
        h.offset_log.append(out.records, NOW)
    expected = h.coordinator.committed("g")
    lm.close()
    lm = LogManager(tmp_path, {})
    try:
        h2 = asyncio.run(_make(broker(lm), compact_min_records=10))
        assert h2.coordinator.committed("g") == expected
        assert len(list(h2.offset_log.replay())) == 3  # compacted to the live records
    finally:
        lm.close()


async def _make(b: SimpleNamespace, compact_min_records: int) -> CoordinatorHandler:
    return CoordinatorHandler(b, config=CoordinatorConfig(),  # type: ignore[arg-type]
                              compact_min_records=compact_min_records)
