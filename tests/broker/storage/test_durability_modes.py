"""Storage side of the durability modes (`hayase.durability`, see hayase.broker.durability).

A power loss is simulated by cutting every segment file back to the size it had at its last
fsync (recorded by wrapping os.fsync), after a crash that skipped the clean close. Then:
* `always`: every append answered after GroupCommit.sync() is present exactly once, at its offset;
* `none`: a process crash (no cut: the page cache survives) loses nothing appended;
* group commit: concurrent producers share fsync passes.
"""

import asyncio
import os
from pathlib import Path

import pytest
from storage_helpers import NOW, batch, read_all

from hayase.broker.durability import GroupCommit
from hayase.broker.storage import LogManager


@pytest.fixture
def fsynced_sizes(monkeypatch) -> dict[str, int]:
    """path -> file size at its latest fsync."""
    sizes: dict[str, int] = {}
    real_fsync = os.fsync

    def tracking_fsync(fd: int) -> None:
        real_fsync(fd)
        path = os.readlink(f"/proc/self/fd/{fd}")
        sizes[path] = os.fstat(fd).st_size

    monkeypatch.setattr(os, "fsync", tracking_fsync)
    return sizes


def crash(manager: LogManager) -> None:
    """Stop without a clean close: files closed, nothing flushed, no marker, no checkpoint."""
    for plog in manager.logs():
        plog.close(flush=False)
    os.close(manager._lock_fd)


def cut_to_last_fsync(data_dir: Path, sizes: dict[str, int]) -> int:
    """Truncate every .log file to its size at its last fsync; returns the bytes removed."""
    removed = 0
    for path in data_dir.glob("*/*.log"):
        keep = sizes.get(str(path), 0)
        size = path.stat().st_size
        if size > keep:
            os.truncate(path, keep)
            removed += size - keep
    return removed


def values(plog) -> list[tuple[int, bytes | None]]:
    return read_all(plog)


async def producer(manager: LogManager, gc: GroupCommit, name: str, partition: int, count: int,
                   acked: list[tuple[int, int, bytes]]) -> None:
    plog = manager.log("t", partition)
    for i in range(count):
        value = f"{name}-{i}".encode()
        result = plog.append(batch([value], ts=NOW), NOW)
        gc.mark(plog)
        await gc.sync()  # acks=all under `always`: answered only after the fsync
        acked.append((partition, result.base_offset, value))


def test_always_keeps_every_acknowledged_record_after_power_loss(tmp_path: Path, fsynced_sizes) -> None:
    config = {"log.segment.bytes": "600"}  # rolls happen while producing
    manager = LogManager(tmp_path, config, flush_on_roll=False)
    manager.create_topic("t", 3, {})
    acked: list[tuple[int, int, bytes]] = []
    gc = GroupCommit()

    async def run() -> None:
        await asyncio.gather(*(producer(manager, gc, f"p{k}", k % 3, 25, acked) for k in range(6)))
        await gc.close()

    asyncio.run(run())
    assert len(acked) == 150
    syncs = len(acked)
    assert gc.flushes < syncs  # group commit: fsync passes are shared
    # Writes that were never acknowledged with a sync (acks=1) may be lost; add some.
    for p in range(3):
        manager.log("t", p).append(batch([b"unsynced"]), NOW)
    crash(manager)
    assert cut_to_last_fsync(tmp_path, fsynced_sizes) > 0

    manager = LogManager(tmp_path, config, flush_on_roll=False)
    for p in range(3):
        stored = values(manager.log("t", p))
        offsets = [o for o, _ in stored]
        assert offsets == list(range(len(stored)))  # contiguous from 0
        mine = sorted((o, v) for part, o, v in acked if part == p)
        assert len(mine) == 50
        stored_map = dict(stored)
        for offset, value in mine:
            assert stored_map[offset] == value
        assert [v for _, v in stored].count(b"unsynced") <= 1
    manager.close()


def test_none_survives_a_process_crash(tmp_path: Path) -> None:
    manager = LogManager(tmp_path, {"log.segment.bytes": "600"})
    manager.create_topic("t", 2, {})
    sent = {0: [], 1: []}
    for i in range(60):
        p = i % 2
        manager.log("t", p).append(batch([b"v%d" % i]), NOW)
        sent[p].append(b"v%d" % i)
    crash(manager)  # kill -9: the kernel still has every write
    manager = LogManager(tmp_path, {"log.segment.bytes": "600"})
    for p in (0, 1):
        assert [v for _, v in values(manager.log("t", p))] == sent[p]
    manager.close()


def test_flush_advances_the_recovery_point_only_to_fsynced_data(tmp_path: Path, fsynced_sizes) -> None:
    manager = LogManager(tmp_path, {}, flush_on_roll=False)
    manager.create_topic("t", 1, {})
    plog = manager.log("t", 0)
    plog.append(batch(3), NOW)
    assert plog.recovery_point == 0
    plog.flush()
    assert plog.recovery_point == 3
    plog.append(batch(2), NOW)
    assert plog.recovery_point == 3
    manager.flush_all()
    lines = (tmp_path / "recovery-point-offset-checkpoint").read_text().split()
    assert lines[-3:] == ["t", "0", "5"]
    crash(manager)
    cut_to_last_fsync(tmp_path, fsynced_sizes)
    manager = LogManager(tmp_path, {})
    assert manager.log("t", 0).high_watermark == 5
    manager.close()
