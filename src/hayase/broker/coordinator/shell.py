"""The asyncio glue between the broker's network shell and the sans-IO coordinator.

Implements `hayase.broker.groups.GroupApiHandler`. Each request gets a future as its reply
token; the coordinator answers it at once (the body is returned directly) or later (the future
is returned and the broker's dispatcher awaits it, keeping per-connection order). One timer task
calls `tick` when the coordinator's next deadline comes, or sooner when a request may have moved
it.

Durability: records are appended to `__consumer_offsets` before any reply of the same step is
released. With `hayase.durability=always` the replies also wait for the broker's group commit
(fsync); with `interval` the partition is marked for the periodic flush. An append or fsync that
fails turns the step's answers into COORDINATOR_NOT_AVAILABLE, so no client is told that an
offset is committed when it may not be on disk. (The coordinator's memory has already moved on;
Kafka reverts it, hayase keeps it and logs the failure: a storage failure is a broken broker.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode

from hayase.broker.coordinator.api import API_VERSIONS, GroupApi, Node
from hayase.broker.coordinator.config import CoordinatorConfig
from hayase.broker.coordinator.coordinator import GroupCoordinator
from hayase.broker.coordinator.offset_log import OffsetLog, StorageOffsetLog
from hayase.broker.coordinator.records import OFFSETS_TOPIC
from hayase.broker.coordinator.results import Output

if TYPE_CHECKING:
    from hayase.broker.context import BrokerState, RequestContext

log = logging.getLogger("hayase.broker.coordinator")

MAX_TICK_WAIT_S = 1.0
# Compact __consumer_offsets at start-up when it holds this many records and more than twice
# the live ones (the storage has no log cleaner; see StorageOffsetLog.compact).
COMPACT_MIN_RECORDS = 10_000


class CoordinatorHandler:
    def __init__(
        self,
        broker: BrokerState,
        offset_log: OffsetLog | None = None,
        config: CoordinatorConfig | None = None,
        compact_min_records: int = COMPACT_MIN_RECORDS,
    ) -> None:
        self.broker = broker
        self.config = config or CoordinatorConfig.from_properties(broker.config.props)
        self.coordinator = GroupCoordinator(self.config, partitions_of=self._partitions_of)
        self.api = GroupApi(self.coordinator, self._node)
        self.offset_log: OffsetLog = offset_log or StorageOffsetLog(broker.log_manager)
        applied = self.coordinator.replay(self.offset_log.replay(), broker.clock())
        log.info(
            "loaded %d record(s) of %s: %d group(s), %d with committed offsets",
            applied,
            OFFSETS_TOPIC,
            len(self.coordinator.groups),
            len(self.coordinator.offsets),
        )
        live = self.coordinator.snapshot_records()
        if applied >= compact_min_records and applied > 2 * len(live):
            self.offset_log.compact(live, broker.clock())
            log.info("compacted %s from %d to %d record(s)", OFFSETS_TOPIC, applied, len(live))
        listeners = getattr(broker, "topic_deleted_listeners", None)
        if listeners is not None:
            listeners.append(self.on_topic_deleted)
        self._wake = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        self._flushing: set[asyncio.Task[None]] = set()

    # -- GroupApiHandler ----------------------------------------------------------------------

    def api_versions(self) -> dict[int, tuple[int, int]]:
        return dict(API_VERSIONS)

    def handle(self, ctx: RequestContext, body: Any) -> Any:
        now = self.broker.clock()
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        header = ctx.header
        out = self.api.handle(
            reply,
            header.api_key,
            header.api_version,
            body,
            now,
            client_id=header.client_id or "",
            client_host=_client_host(ctx.peer),
        )
        self._deliver(out, now)
        self._wake.set()
        if reply.done():
            return reply.result()
        return reply

    async def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick_loop(), name="group-coordinator-tick")

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)

    def on_topic_deleted(self, topic: str) -> None:
        """DeleteTopics listener: the topic's committed offsets are deleted too."""
        now = self.broker.clock()
        self._deliver(self.coordinator.delete_topic_offsets(topic, now), now)

    def group_lag(self) -> list[tuple[str, str, int, int]]:
        """(group, topic, partition, log end offset - committed offset) for every committed
        offset of a partition that exists: the `group_lag` source of the broker's metrics."""
        lm = self.broker.log_manager
        topics = lm.topics()
        out = []
        for group_id, committed in self.coordinator.offsets.items():
            for (topic, partition), c in committed.items():
                if partition >= topics.get(topic, 0):
                    continue
                end = lm.log(topic, partition).high_watermark
                out.append((group_id, topic, partition, max(end - c.offset, 0)))
        return out

    # -- internals ----------------------------------------------------------------------------

    def _node(self) -> Node:
        adv = self.broker.advertised
        return Node(self.broker.node_id, adv.host, adv.port)

    def _partitions_of(self, topic: str) -> int | None:
        count: int | None = self.broker.log_manager.topics().get(topic)
        return count

    def _deliver(self, out: Output, now_ms: int) -> None:
        """Append the step's records, then release its replies (after an fsync if asked)."""
        if not out.records:
            _resolve(out.replies)
            return
        try:
            plog = self.offset_log.append(out.records, now_ms)
        except Exception:  # noqa: BLE001 - answer with an error, never acknowledge unwritten data
            log.exception("appending %d record(s) to %s failed", len(out.records), OFFSETS_TOPIC)
            _resolve([(t, _failed(b)) for t, b in out.replies])
            return
        mode = getattr(self.broker.config, "durability", "none")
        if mode == "none" or plog is None:
            _resolve(out.replies)
            return
        self.broker.group_commit.mark(plog)
        if mode != "always":
            _resolve(out.replies)
            return
        task = asyncio.create_task(self._after_fsync(out.replies))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _after_fsync(self, replies: list[tuple[Any, Any]]) -> None:
        try:
            await self.broker.group_commit.sync()
        except Exception:  # noqa: BLE001
            log.exception("fsync of %s failed", OFFSETS_TOPIC)
            _resolve([(t, _failed(b)) for t, b in replies])
            return
        _resolve(replies)

    async def _tick_loop(self) -> None:
        while True:
            deadline = self.coordinator.next_deadline()
            now = self.broker.clock()
            wait = MAX_TICK_WAIT_S if deadline is None else (deadline - now) / 1000
            wait = min(max(wait, 0.0), MAX_TICK_WAIT_S)
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
            else:
                await asyncio.sleep(0)
            self._wake.clear()
            try:
                now = self.broker.clock()
                self._deliver(self.api.tick(now), now)
            except Exception:  # noqa: BLE001 - the timer must survive a bug in one step
                log.exception("group coordinator tick failed")


def _resolve(replies: list[tuple[Any, Any]]) -> None:
    for future, body in replies:
        # A parked request whose connection closed has a cancelled future: nothing to send.
        if not future.done():
            future.set_result(body)


def _failed(body: Any) -> Any:
    """The same answer with every successful error code turned into COORDINATOR_NOT_AVAILABLE."""
    if isinstance(body, dict):
        return {
            k: (
                ErrorCode.coordinator_not_available
                if k == "error_code" and int(v) == 0
                else _failed(v)
            )
            for k, v in body.items()
        }
    if isinstance(body, list):
        return [_failed(x) for x in body]
    return body


def _client_host(peer: str) -> str:
    """Kafka shows a member's host as "/address"."""
    host = peer.rsplit(":", 1)[0] if peer.count(":") >= 1 else peer
    return f"/{host}" if host else ""


def create_group_handler(broker: BrokerState) -> CoordinatorHandler:
    """The factory `hayase broker` looks for (see hayase.broker.groups)."""
    return CoordinatorHandler(broker)
