"""The asyncio glue: parked replies, the tick task, records before replies, fsync in `always`
mode, and errors instead of acknowledgements when the append or the fsync fails."""

from __future__ import annotations

import asyncio
import datetime
from types import SimpleNamespace
from typing import Any

import kio.schema.join_group.v3.request as join_v3
import kio.schema.offset_commit.v8.request as commit_v8

from hayase.broker.coordinator.config import CoordinatorConfig
from hayase.broker.coordinator.offset_log import MemoryOffsetLog
from hayase.broker.coordinator.records import OffsetKey, decode_key
from hayase.broker.coordinator.shell import CoordinatorHandler


class FakeGroupCommit:
    def __init__(self, fail: bool = False) -> None:
        self.marked: list[Any] = []
        self.synced = 0
        self.fail = fail

    def mark(self, plog: Any) -> None:
        self.marked.append(plog)

    async def sync(self) -> None:
        await asyncio.sleep(0)
        self.synced += 1
        if self.fail:
            raise OSError("disk on fire")


class FlakyLog(MemoryOffsetLog):
    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail

    def append(self, records: Any, now_ms: int) -> str:
        if self.fail:
            raise OSError("no space left")
        super().append(records, now_ms)
        return "plog"


def broker(durability: str = "none", fail_sync: bool = False) -> SimpleNamespace:
    return SimpleNamespace(
        config=SimpleNamespace(props={}, durability=durability),
        log_manager=SimpleNamespace(topics=lambda: {"t": 2}),
        clock=lambda: 1_000,
        node_id=0,
        advertised=SimpleNamespace(host="127.0.0.1", port=9092),
        group_commit=FakeGroupCommit(fail_sync),
    )


def ctx(api_key: int, version: int) -> SimpleNamespace:
    header = SimpleNamespace(api_key=api_key, api_version=version, client_id="cli",
                             correlation_id=1)
    return SimpleNamespace(header=header, peer="127.0.0.1:5000", api_version=version)


def handler(b: SimpleNamespace, log: MemoryOffsetLog | None = None) -> CoordinatorHandler:
    config = CoordinatorConfig(min_session_timeout_ms=10)
    return CoordinatorHandler(b, log or FlakyLog(), config)  # type: ignore[arg-type]


JOIN = join_v3.JoinGroupRequest(
    group_id="g", session_timeout=datetime.timedelta(seconds=10),
    rebalance_timeout=datetime.timedelta(seconds=30), member_id="", protocol_type="consumer",
    protocols=(join_v3.JoinGroupRequestProtocol(name="range", metadata=b"m"),),
)


def commit(offset: int) -> Any:
    part = commit_v8.OffsetCommitRequestPartition(
        partition_index=0, committed_offset=offset, committed_metadata="")
    return commit_v8.OffsetCommitRequest(
        group_id="simple", generation_id_or_member_epoch=-1, member_id="",
        topics=(commit_v8.OffsetCommitRequestTopic(name="t", partitions=(part,)),))


def test_parked_join_is_answered_by_the_tick_task() -> None:
    async def run() -> dict[str, Any]:
        h = handler(broker())
        await h.start()
        try:
            pending = h.handle(ctx(11, 3), JOIN)  # type: ignore[arg-type]
            assert isinstance(pending, asyncio.Future)
            return await asyncio.wait_for(pending, 10)
        finally:
            await h.close()

    body = asyncio.run(run())
    assert body["error_code"] == 0 and body["generation_id"] == 1
    assert body["members"][0]["member_id"] == body["member_id"]


def test_commit_appends_before_answering_and_restart_replays() -> None:
    async def run() -> tuple[Any, MemoryOffsetLog]:
        log = FlakyLog()
        h = handler(broker(), log)
        body = h.handle(ctx(8, 8), commit(42))  # type: ignore[arg-type]
        return body, log

    body, log = asyncio.run(run())
    assert body["topics"][0]["partitions"][0]["error_code"] == 0
    assert [decode_key(k) for k, _ in log.records] == [OffsetKey("simple", "t", 0)]
    again = handler(broker(), log)
    assert again.coordinator.committed("simple")[("t", 0)].offset == 42


def test_always_mode_answers_after_fsync() -> None:
    async def run() -> tuple[Any, SimpleNamespace]:
        b = broker("always")
        h = handler(b)
        pending = h.handle(ctx(8, 8), commit(7))  # type: ignore[arg-type]
        assert isinstance(pending, asyncio.Future) and b.group_commit.synced == 0
        return await asyncio.wait_for(pending, 10), b

    body, b = asyncio.run(run())
    assert b.group_commit.synced == 1 and b.group_commit.marked == ["plog"]
    assert body["topics"][0]["partitions"][0]["error_code"] == 0


def test_failed_fsync_or_append_is_never_acknowledged() -> None:
    async def fsync_fails() -> Any:
        h = handler(broker("always", fail_sync=True))
        return await asyncio.wait_for(h.handle(ctx(8, 8), commit(7)), 10)  # type: ignore[arg-type]

    body = asyncio.run(fsync_fails())
    assert body["topics"][0]["partitions"][0]["error_code"] == 15  # COORDINATOR_NOT_AVAILABLE

    async def append_fails() -> Any:
        h = handler(broker(), FlakyLog(fail=True))
        return h.handle(ctx(8, 8), commit(7))  # type: ignore[arg-type]

    body = asyncio.run(append_fails())
    assert body["topics"][0]["partitions"][0]["error_code"] == 15


def test_handler_declares_group_api_versions_only() -> None:
    h = handler(broker())
    assert set(h.api_versions()) == {8, 9, 10, 11, 12, 13, 14, 15, 16, 42, 47}


def test_group_lag_is_log_end_minus_committed() -> None:
    b = broker()
    ends = {("t", 0): 50, ("t", 1): 3}
    b.log_manager = SimpleNamespace(
        topics=lambda: {"t": 2},
        log=lambda t, p: SimpleNamespace(high_watermark=ends[(t, p)]),
    )

    async def run() -> CoordinatorHandler:
        h = handler(b)
        h.handle(ctx(8, 8), commit(42))  # type: ignore[arg-type]
        return h

    h = asyncio.run(run())
    assert h.group_lag() == [("simple", "t", 0, 8)]


def test_config_from_kafka_broker_properties() -> None:
    import pytest

    c = CoordinatorConfig.from_properties({
        "group.initial.rebalance.delay.ms": "3000", "offsets.retention.minutes": "60",
        "group.min.session.timeout.ms": "100", "num.partitions": "4",
    })
    assert (c.initial_rebalance_delay_ms, c.offsets_retention_ms, c.min_session_timeout_ms) == (
        3000, 3_600_000, 100)
    assert CoordinatorConfig().initial_rebalance_delay_ms == 0
    with pytest.raises(ValueError, match="group.max.size"):
        CoordinatorConfig.from_properties({"group.max.size": "many"})
