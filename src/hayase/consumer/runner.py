"""ParallelConsumer: many records of a partition processed at once, committed only up to the
contiguous completed prefix, with back-pressure, retries, a dead-letter topic and safe rebalances.

Two threads, each owning its state (no locks around the core state):

- the *poll thread* owns the confluent_kafka Consumer (and the dead-letter Producer): it fetches,
  runs the rebalance callbacks, executes the commits the loop queues for it, and pauses/resumes
  partitions from per-partition counters the loop publishes (`_Flow`). Its waits happen in
  librdkafka with the GIL released, so the asyncio loop is never blocked by fetching. (Polling
  with timeout 0 on the loop was measured too, see bench/parallel_consumer.py (e): it costs CPU
  while idle, and rebalance callbacks could not wait for in-flight records on a blocked loop.)
- the *asyncio loop* owns the per-partition offset trackers and schedulers, runs the processing
  coroutines (plain functions go to a thread pool) and decides commits.

Records and rebalance events go from the poll thread to the loop through call_soon_threadsafe, so
the loop sees them in the order they happened. Every assignment of a partition gets a new epoch;
commands and completions carry the epoch (or the partition-state object) they were made for, and
anything from an older epoch is dropped: a late completion never touches a new owner's state and a
queued commit never moves a re-assigned partition's offset back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import logging
import queue
import random
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from hayase.consumer.deadletter import dead_letter_headers
from hayase.consumer.loop import run_precise
from hayase.consumer.metrics import ConsumerMetrics
from hayase.consumer.offsets import OffsetRegressionError, PartitionOffsets
from hayase.consumer.ratelimit import KeyedRateLimiter, TokenBucket
from hayase.consumer.record import Record
from hayase.consumer.retry import RetryPolicy
from hayase.consumer.scheduling import ORDERINGS, Ordering, PartitionScheduler

log = logging.getLogger("hayase.consumer")

TP = tuple[str, int]
ProcessFn = Callable[[Record], Any]
BatchFn = Callable[[list[Record]], Any]

# Settings hayase must own: offsets are committed by the tracker, never by librdkafka.
_FORCED = {"enable.auto.commit": False, "enable.auto.offset.store": False}
_DLQ_DEFAULTS = {"acks": "all", "enable.idempotence": True, "message.timeout.ms": 30000,
                 "linger.ms": 5}
_PRODUCER_KEYS = ("bootstrap.servers", "security.protocol", "sasl.mechanisms", "sasl.mechanism",
                  "sasl.username", "sasl.password", "ssl.ca.location",
                  "ssl.certificate.location", "ssl.key.location", "ssl.key.password",
                  "client.id")


@dataclass(eq=False)
class _Flow:
    """Back-pressure counters of one partition assignment, shared by the two threads (plain
    ints: each field has one writer). The poll thread pauses the partition when the loop's
    pending records reach the pending limit and resumes it at half, and it stops fetching while
    the loop is a batch behind (delivered - taken); no batch waits for a thread round trip."""

    delivered: int = 0  # written by the poll thread
    taken: int = 0  # written by the loop
    pending: int = 0  # written by the loop
    paused: bool = False  # written by the poll thread


@dataclass(eq=False)
class _Partition:
    """The loop's state of one assigned partition, for one epoch."""

    tp: TP
    epoch: int
    offsets: PartitionOffsets
    scheduler: PartitionScheduler[Record]
    flow: _Flow
    revoking: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    in_flight_records: int = 0
    last_committed: int | None = None
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    # The partition's processed-records counter, looked up once: a labels() lookup per
    # completed record cost about as much as the offset tracking.
    processed: Any = None


@dataclass(frozen=True)
class _Command:
    kind: str  # "commit"
    offsets: tuple[tuple[TP, int, int], ...]  # (tp, offset or -1, epoch)
    done: concurrent.futures.Future[None] | None = None


class ParallelConsumer:
    """See the module docstring and README. `process` (one record) or `process_batch` (a list of
    records of several keys, in offset order) may be async functions or plain functions (run in a
    thread pool)."""

    def __init__(
        self,
        config: dict[str, Any],
        topics: Sequence[str],
        process: ProcessFn | None = None,
        *,
        process_batch: BatchFn | None = None,
        batch_size: int = 100,
        max_in_flight_per_partition: int = 20,
        max_pending_per_partition: int = 1000,
        ordering: Ordering = "key",
        retry: RetryPolicy | None = None,
        dead_letter_topic: str | None = None,
        dead_letter_config: dict[str, Any] | None = None,
        rate_limit: float | None = None,
        rate_limit_per_key: float | None = None,
        rate_limit_burst: float | None = None,
        commit_interval: float = 1.0,
        revoke_timeout: float = 5.0,
        drain_timeout: float = 10.0,
        poll_batch: int = 500,
        poll_timeout: float = 0.05,
        thread_pool_size: int | None = None,
        metrics: ConsumerMetrics | None = None,
        metrics_port: int | None = None,
        handle_signals: bool = True,
    ) -> None:
        if (process is None) == (process_batch is None):
            raise ValueError("give exactly one of process= or process_batch=")
        if ordering not in ORDERINGS:
            raise ValueError(f"ordering must be one of {ORDERINGS}, not {ordering!r}")
        if not topics:
            raise ValueError("topics must name at least one topic")
        if max_pending_per_partition < 1 or max_in_flight_per_partition < 1:
            raise ValueError("max_pending_per_partition and max_in_flight_per_partition "
                             "must be >= 1")
        if "group.id" not in config:
            raise ValueError("config needs group.id")
        self._user_on_commit = config.get("on_commit")
        self.config = {k: v for k, v in config.items() if k != "on_commit"}
        for k, v in _FORCED.items():
            if str(self.config.get(k, v)).lower() not in (str(v).lower(),):
                log.warning("overriding %s=%s: hayase commits offsets itself", k, self.config[k])
            self.config[k] = v
        self.topics = list(topics)
        self._process = process
        self._process_batch = process_batch
        self._batch_size = batch_size if process_batch is not None else 1
        self.max_in_flight = max_in_flight_per_partition
        self.max_pending = max_pending_per_partition
        # Resume at half the limit, not just under it: librdkafka drops a paused partition's
        # prefetched records, so pausing again one batch later would re-fetch them each time.
        self._resume_below = max(1, max_pending_per_partition // 2)
        self.ordering: Ordering = ordering
        self.retry = retry or RetryPolicy()
        self.dead_letter_topic = dead_letter_topic
        self._dlq_config = dict(_DLQ_DEFAULTS)
        self._dlq_config.update({k: v for k, v in config.items() if k in _PRODUCER_KEYS})
        self._dlq_config.update(dead_letter_config or {})
        self._global_limit = (TokenBucket(rate_limit, rate_limit_burst, time.monotonic())
                              if rate_limit else None)
        self._key_limit = (KeyedRateLimiter(rate_limit_per_key, rate_limit_burst)
                           if rate_limit_per_key else None)
        self.commit_interval = commit_interval
        self.revoke_timeout = revoke_timeout
        self.drain_timeout = drain_timeout
        self.poll_batch = poll_batch
        self.poll_timeout = poll_timeout
        self._fn = process_batch if process_batch is not None else process
        self._is_async = inspect.iscoroutinefunction(self._fn)
        self._pool_size = thread_pool_size or max(8, min(256, 4 * max_in_flight_per_partition))
        self.metrics = metrics or ConsumerMetrics()
        self._metrics_port = metrics_port
        self.metrics_bound_port: int | None = None
        self._handle_signals = handle_signals
        self._rng = random.Random()

        # Loop-owned state.
        self._partitions: dict[TP, _Partition] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._processed_since_tick = 0
        # Poll-thread-owned state.
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._poll_epochs: dict[TP, int] = {}
        self._next_epoch = 0
        self._commands: queue.SimpleQueue[_Command] = queue.SimpleQueue()
        # Shared flags.
        self._stopping = threading.Event()
        self._poll_done = threading.Event()
        self._final_commit_done = threading.Event()
        self._flows: dict[TP, _Flow] = {}
        self._loop_took = threading.Event()
        self._poll_error: BaseException | None = None
        self.running = threading.Event()

    # ==== public control =====================================================================
    def run(self) -> None:
        """Consume until stop(), SIGINT or SIGTERM; then drain, commit and close. Runs on a
        loop of its own whose timers fire on time (hayase.consumer.loop), closed on return."""
        run_precise(self.run_async())

    def stop(self) -> None:
        """Ask the consumer to stop (thread-safe and signal-safe; idempotent)."""
        self._stopping.set()
        loop, ev = self._loop, self._stop_event
        if loop is not None and ev is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop just closed: nothing to wake
                loop.call_soon_threadsafe(ev.set)

    async def run_async(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        if self._stopping.is_set():
            self._stop_event.set()
        installed = self._install_signals()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            self._pool_size, thread_name_prefix="hayase-process")
        if self._metrics_port is not None:
            self.metrics_bound_port = self.metrics.serve(self._metrics_port)
        poll_thread = threading.Thread(target=self._poll_main, name="hayase-poll", daemon=True)
        ticker = asyncio.create_task(self._tick_forever())
        try:
            poll_thread.start()
            self.running.set()
            await self._stop_event.wait()
            await self._shutdown()
        finally:
            self._stopping.set()
            self._final_commit_done.set()
            ticker.cancel()
            await asyncio.to_thread(self._poll_done.wait)
            poll_thread.join()
            for task in [t for p in self._partitions.values() for t in p.tasks]:
                task.cancel()
            self._executor.shutdown(wait=False, cancel_futures=True)
            self.metrics.close()
            for sig in installed:
                self._loop.remove_signal_handler(sig)
            self.running.clear()
        if self._poll_error is not None:
            raise self._poll_error

    def _install_signals(self) -> list[signal.Signals]:
        if not self._handle_signals or threading.current_thread() is not threading.main_thread():
            return []
        assert self._loop is not None
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._loop.add_signal_handler(sig, self.stop)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):
                pass
        return installed

    # ==== poll thread ========================================================================
    def _poll_main(self) -> None:
        try:
            self._consumer = Consumer(self._consumer_config())
            if self.dead_letter_topic:
                self._producer = Producer(self._dlq_config)
            self._consumer.subscribe(self.topics, on_assign=self._on_assign,
                                     on_revoke=self._on_revoke, on_lost=self._on_lost)
            self._poll_forever(self._consumer)
        except BaseException as e:  # surfaced by run_async
            log.exception("poll thread failed")
            self._poll_error = e
            self.stop()
        finally:
            self._close_clients()
            self._poll_done.set()

    def _consumer_config(self) -> dict[str, Any]:
        cfg = dict(self.config)
        # A resumed partition waits for the fetch request in flight; librdkafka's default lets
        # the broker hold that request for 500 ms when the other partitions have nothing new.
        cfg.setdefault("fetch.wait.max.ms", 100)
        # Prefetch about what a partition may hold pending, not librdkafka's 100,000 records:
        # a pause drops the prefetched records and they would be fetched again.
        cfg.setdefault("queued.min.messages", max(1000, 2 * self.max_pending))
        # After its queue was full librdkafka waits this long before fetching a partition again
        # (1 s by default); once a pause dropped that queue, a resumed partition would run dry.
        cfg.setdefault("fetch.queue.backoff.ms", 20)
        cfg["on_commit"] = self._on_commit
        return cfg

    def _poll_forever(self, consumer: Consumer) -> None:
        loop = self._loop
        assert loop is not None
        while True:
            self._run_commands(consumer)
            if self._producer is not None:
                self._producer.poll(0)
            if self._stopping.is_set() and self._final_commit_done.is_set():
                return
            msgs = self._fetch(consumer)
            if msgs:
                flows = self._flows
                for m in msgs:
                    f = flows.get((m.topic(), m.partition()))
                    if f is not None:
                        f.delivered += 1
                loop.call_soon_threadsafe(self._on_messages, msgs)
            self._flow_control(consumer)
            self._wait_for_loop()

    def _wait_for_loop(self) -> None:
        """When the loop has not yet taken a batch's worth of handed-over records, wait for it
        instead of fetching on (pausing for that reason would make librdkafka drop its
        prefetched records). So a partition's pending records stay below max_pending plus two
        poll batches: one waiting here, one fetched before the pause."""
        limit = self.poll_batch
        while not self._stopping.is_set():
            self._loop_took.clear()
            if sum(f.delivered - f.taken for f in self._flows.values()) < limit:
                return
            self._loop_took.wait(0.05)

    def _flow_control(self, consumer: Consumer) -> None:
        pause, resume = [], []
        stopping = self._stopping.is_set()  # stopping: fetch nothing more
        for (t, p), f in self._flows.items():
            if not f.paused and (stopping or f.pending >= self.max_pending):
                f.paused = True
                pause.append(TopicPartition(t, p))
            elif f.paused and f.pending < self._resume_below and not stopping:
                f.paused = False
                resume.append(TopicPartition(t, p))
        try:
            if pause:
                consumer.pause(pause)
            if resume:
                consumer.resume(resume)
                self._wake_fetcher(consumer, resume)
        except KafkaException as e:  # e.g. a partition revoked meanwhile: nothing to hold
            log.warning("pause/resume failed: %s", e)

    _WAKE_AT_MOST = 16

    def _wake_fetcher(self, consumer: Consumer, resumed: list[TopicPartition]) -> None:
        """Make librdkafka fetch resumed partitions now. A broker thread with no fetchable
        partition left (all paused) sleeps up to 1 s and does not notice a resume before it
        wakes: measured 400-700 ms from resume to the first record, while the partitions' slots
        ran dry (bench/parallel_consumer.py). A request to the partition's leader (ListOffsets,
        one round trip) wakes that thread, and the first records arrive within milliseconds."""
        for tp in resumed[:self._WAKE_AT_MOST]:
            try:
                consumer.get_watermark_offsets(tp, timeout=0.5, cached=False)
            except KafkaException as e:  # only a slower resume
                log.debug("waking the fetcher of %s failed: %s", tp, e)

    def _fetch(self, consumer: Consumer) -> list[Any]:
        # consume(n, timeout) waits the whole timeout unless n messages are ready, which would
        # cap throughput at n per timeout: take what is ready without waiting, and only when
        # nothing is, wait (bounded) for a single message.
        msgs = consumer.consume(self.poll_batch, 0)
        if msgs:
            return msgs
        m = consumer.poll(self.poll_timeout)
        if m is None:
            return []
        return [m, *consumer.consume(self.poll_batch - 1, 0)] if self.poll_batch > 1 else [m]

    def _run_commands(self, consumer: Consumer) -> None:
        while True:
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                return
            current = [TopicPartition(t, p, off) for (t, p), off, epoch in cmd.offsets
                       if self._poll_epochs.get((t, p)) == epoch]
            try:
                if current:
                    if cmd.kind == "commit" and cmd.done is None:
                        consumer.commit(offsets=current, asynchronous=True)
                    elif cmd.kind == "commit":
                        consumer.commit(offsets=current, asynchronous=False)
                if cmd.done is not None:
                    cmd.done.set_result(None)
            except KafkaException as e:
                # A failed commit only means more duplicates after a restart, never a loss.
                log.warning("%s failed: %s", cmd.kind, e)
                if cmd.done is not None:
                    cmd.done.set_result(None)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        assigned = []
        for tp in partitions:
            self._next_epoch += 1
            key = (tp.topic, tp.partition)
            self._poll_epochs[key] = self._next_epoch
            # Start as "paused" so the next flow-control pass resumes it: a partition paused
            # under a previous assignment may keep librdkafka's pause flag across a rebalance.
            flow = self._flows[key] = _Flow(paused=True)
            assigned.append((key, self._next_epoch, flow))
        log.info("assigned %s", [a[0] for a in assigned])
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._assigned, assigned)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Stop taking records of these partitions, wait (bounded) for their in-flight records,
        commit their committable offsets synchronously, then forget them."""
        keys = [(tp.topic, tp.partition) for tp in partitions]
        offsets = self._ask_loop(self._revoke(keys, wait=True), self.revoke_timeout + 10.0)
        for k in keys:
            self._poll_epochs.pop(k, None)
            self._flows.pop(k, None)
        if offsets:
            try:
                consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets],
                                asynchronous=False)
            except KafkaException as e:
                log.warning("commit on revocation failed (records will be re-processed): %s", e)
        log.info("revoked %s, committed %s", keys, offsets)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions lost (session timeout): another member may own them already, so nothing
        is committed; their state is dropped."""
        keys = [(tp.topic, tp.partition) for tp in partitions]
        self._ask_loop(self._revoke(keys, wait=False), 10.0)
        for k in keys:
            self._poll_epochs.pop(k, None)
            self._flows.pop(k, None)
        log.warning("lost %s", keys)

    def _ask_loop(self, coro: Awaitable[list[tuple[TP, int]]], timeout: float
                  ) -> list[tuple[TP, int]]:
        assert self._loop is not None
        fut: concurrent.futures.Future[list[tuple[TP, int]]] = asyncio.run_coroutine_threadsafe(
            coro, self._loop)  # type: ignore[arg-type]
        try:
            return fut.result(timeout)
        except Exception as e:
            log.error("rebalance handling failed: %r", e)
            return []

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if err is None:
            retry = []
            for tp in partitions:
                if tp.error is None and tp.offset >= 0:
                    self.metrics.committed.labels(tp.topic, str(tp.partition)).set(tp.offset)
                elif tp.error is not None:
                    retry.append((tp.topic, tp.partition))
            if retry and self._loop is not None:
                self._loop.call_soon_threadsafe(self._commit_failed, retry)
        elif err.code() != KafkaError._NO_OFFSET:
            # Commit it again at the next tick (a rebalance in progress, a coordinator move).
            log.warning("commit failed: %s", err)
            failed = [(tp.topic, tp.partition) for tp in partitions]
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._commit_failed, failed)
        if self._user_on_commit is not None:
            self._user_on_commit(err, partitions)

    def _close_clients(self) -> None:
        if self._producer is not None:
            self._producer.flush(5)
            self._producer = None
        if self._consumer is not None:
            try:
                self._consumer.close()
            except Exception as e:  # closing must not hide the reason we stopped
                log.warning("consumer close failed: %s", e)
            self._consumer = None

    def _commit_failed(self, tps: list[TP]) -> None:
        for tp in tps:
            p = self._partitions.get(tp)
            if p is not None:
                p.last_committed = None

    # ==== loop: rebalance ====================================================================
    def _assigned(self, assigned: list[tuple[TP, int, _Flow]]) -> None:
        for tp, epoch, flow in assigned:
            self._partitions[tp] = self._new_partition(tp, epoch, flow)

    def _new_partition(self, tp: TP, epoch: int, flow: _Flow) -> _Partition:
        p = _Partition(tp, epoch, PartitionOffsets(),
                       PartitionScheduler(self.ordering, self.max_in_flight, self._batch_size),
                       flow, processed=self.metrics.processed.labels(*_labels(tp)))
        p.idle.set()
        return p

    async def _revoke(self, keys: list[TP], wait: bool) -> list[tuple[TP, int]]:
        parts = [p for k in keys if (p := self._partitions.get(k)) is not None]
        for p in parts:
            p.revoking = True
            p.scheduler.drop_queued()  # not started: the next owner fetches them again
        if wait and parts:
            waits = [asyncio.ensure_future(p.idle.wait()) for p in parts]
            _done, not_done = await asyncio.wait(waits, timeout=self.revoke_timeout)
            for w in not_done:
                w.cancel()
        offsets = []
        for p in parts:
            if wait and p.offsets.committable is not None:
                offsets.append((p.tp, p.offsets.committable))
            for t in p.tasks:
                t.cancel()  # overdue: re-processed by the next owner (at-least-once)
            del self._partitions[p.tp]
            self.metrics.forget(*p.tp)
        return offsets

    # ==== loop: records ======================================================================
    def _on_messages(self, msgs: list[Any]) -> None:
        now = time.monotonic()
        touched = set()
        parts = self._partitions
        for m in msgs:
            err = m.error()
            if err is not None:
                self._on_consume_error(err)
                continue
            tp = (m.topic(), m.partition())
            p = parts.get(tp)
            if p is not None:
                p.flow.taken += 1
            if p is None or p.revoking or self._stopping.is_set():
                continue  # not ours (any more): its next owner reads it from the committed offset
            rec = Record.from_message(m)
            try:
                p.offsets.register(rec.offset, now)
            except OffsetRegressionError as e:
                # A seek or offset reset: rebuild the partition's state; its running records
                # belong to the old state and their completions will be ignored.
                log.warning("%s: %s; rebuilding partition state", tp, e)
                self._replace_partition(p)
                p = parts[tp]
                p.offsets.register(rec.offset, now)
            p.scheduler.submit(rec, rec.key if self.ordering == "key" else None)
            touched.add(p)
        for p in touched:
            p.flow.pending = p.offsets.pending
            self._dispatch(p)
        self._loop_took.set()

    def _replace_partition(self, old: _Partition) -> None:
        for t in old.tasks:
            t.cancel()
        new = self._new_partition(old.tp, old.epoch, old.flow)
        self._partitions[old.tp] = new

    def _on_consume_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._PARTITION_EOF:
            return
        if err.fatal():
            self._poll_error = KafkaException(err)
            self.stop()
        log.warning("consume error: %s", err)

    def _dispatch(self, p: _Partition) -> None:
        if p.revoking:
            return
        assert self._loop is not None
        for slot, items in p.scheduler.take():
            task = self._loop.create_task(self._run_slot(p, slot, items))
            p.tasks.add(task)
            p.in_flight_records += len(items)
            p.idle.clear()

    # ==== loop: processing a unit ============================================================
    async def _run_slot(self, p: _Partition, slot: int, items: list[Record]) -> None:
        """Run a slot's units one after another in one task while records are runnable
        (no task and no loop iteration per record), then free the slot."""
        finished = False
        ran = 0
        try:
            while True:
                completed = False
                try:
                    await self._run_unit(p, items)
                    completed = True
                finally:
                    p.in_flight_records -= len(items)
                    if completed and self._partitions.get(p.tp) is p:
                        self._complete(p, items)
                nxt = p.scheduler.next_for(slot)
                if nxt is None:
                    finished = True  # next_for freed the slot
                    return
                items = nxt
                p.in_flight_records += len(items)
                if p.scheduler.can_take and self._partitions.get(p.tp) is p:
                    self._dispatch(p)  # the unit that ended freed more keys than this slot takes
                ran += 1
                if ran % 64 == 0:
                    await asyncio.sleep(0)  # let the poll hand-over and other slots in
        finally:
            if not finished:
                p.scheduler.finish(slot)
            p.tasks.discard(asyncio.current_task())  # type: ignore[arg-type]
            if not p.tasks:
                p.idle.set()
            if self._partitions.get(p.tp) is p and p.scheduler.can_take:
                self._dispatch(p)  # a slot was freed

    async def _run_unit(self, p: _Partition, items: list[Record]) -> None:
        if self._global_limit is not None or self._key_limit is not None:
            await self._rate_limit(items)
        error, attempts = await self._attempts(p, items)
        if error is not None and len(items) > 1:
            # A failed batch: try its records one by one, so that only the failing ones go to
            # the dead-letter topic.
            for r in items:
                error, attempts = await self._attempts(p, [r])
                if error is not None:
                    await self._dead_letter(p, [r], error, attempts)
        elif error is not None:
            await self._dead_letter(p, items, error, attempts)

    def _complete(self, p: _Partition, items: list[Record]) -> None:
        for r in items:
            p.offsets.complete(r.offset)
        self._processed_since_tick += len(items)
        p.processed.inc(len(items))
        p.flow.pending = p.offsets.pending

    async def _call(self, items: list[Record]) -> None:
        arg: Any = items if self._process_batch is not None else items[0]
        fn = self._fn
        assert fn is not None
        if self._is_async:
            await fn(arg)
            return
        assert self._loop is not None
        result = await self._loop.run_in_executor(self._executor, fn, arg)
        if inspect.isawaitable(result):
            await result

    async def _attempts(self, p: _Partition, items: list[Record]
                        ) -> tuple[BaseException | None, int]:
        """Run the unit with retries. (None, n) on success; (last error, attempts) when the
        retries are exhausted. Without a dead-letter topic it retries forever: a failing record
        blocks its key rather than being dropped."""
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._call(items)
                return None, attempt
            except asyncio.CancelledError:
                raise
            except Exception as e:
                retries_left = (self.retry.max_retries - attempt + 1
                                if self.dead_letter_topic else 1)
                if retries_left <= 0:
                    log.warning("%s@%d failed after %d attempts: %r", p.tp, items[0].offset,
                                attempt, e)
                    return e, attempt
                delay = self.retry.backoff(attempt, self._rng)
                log.info("%s@%d attempt %d failed (%r); retry in %.3fs", p.tp, items[0].offset,
                         attempt, e, delay)
                self.metrics.retries.labels(*_labels(p.tp)).inc()
                await asyncio.sleep(delay)

    async def _dead_letter(self, p: _Partition, items: list[Record], error: BaseException,
                           attempts: int) -> None:
        """Write the records to the dead-letter topic and return only once every write is
        acknowledged. A failing write is retried (backoff capped by the retry policy) until it
        succeeds or the partition is revoked or the consumer stops (then the unit is not
        completed and nothing is committed past it)."""
        assert self._loop is not None and self.dead_letter_topic is not None
        n = 0
        while True:
            futs = [self._produce_dead_letter(r, error, attempts) for r in items]
            results = await asyncio.gather(*futs, return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            if not failures:
                self.metrics.dead_lettered.labels(*_labels(p.tp)).inc(len(items))
                return
            n += 1
            self.metrics.dead_letter_failures.labels(*_labels(p.tp)).inc(len(failures))
            log.error("dead-letter write for %s@%d failed (%s); retrying", p.tp, items[0].offset,
                      failures[0])
            await asyncio.sleep(self.retry.backoff(n, self._rng))

    def _produce_dead_letter(self, r: Record, error: BaseException, attempts: int
                             ) -> asyncio.Future[None]:
        loop = self._loop
        assert loop is not None
        fut: asyncio.Future[None] = loop.create_future()

        def on_delivery(err: KafkaError | None, _msg: Any) -> None:
            def settle() -> None:
                if fut.done():
                    return
                if err is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(KafkaException(err))
            loop.call_soon_threadsafe(settle)

        producer, topic = self._producer, self.dead_letter_topic
        if producer is None or topic is None:
            fut.set_exception(RuntimeError("dead-letter producer not running"))
            return fut
        try:
            headers: Any = dead_letter_headers(r, error, attempts)
            producer.produce(topic, r.value, r.key, headers=headers,
                             on_delivery=on_delivery)
        except (BufferError, KafkaException) as e:
            fut.set_exception(e)
        return fut

    async def _rate_limit(self, items: list[Record]) -> None:
        now = time.monotonic()
        delay = 0.0
        if self._global_limit is not None:
            delay = self._global_limit.reserve(now, len(items))
        if self._key_limit is not None:
            for r in items:
                delay = max(delay, self._key_limit.reserve(r.key, now))
        if delay > 0:
            await asyncio.sleep(delay)

    # ==== loop: periodic commit, metrics, shutdown ===========================================
    async def _tick_forever(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.commit_interval)
            now = time.monotonic()
            self._commit_async()
            self._update_metrics(now, now - last)
            last = now

    def _commit_offsets(self, force: bool = False) -> list[tuple[TP, int, int]]:
        out = []
        for p in self._partitions.values():
            c = p.offsets.committable
            if c is not None and (force or c != p.last_committed) and not p.revoking:
                out.append((p.tp, c, p.epoch))
                p.last_committed = c
        return out

    def _commit_async(self) -> None:
        offsets = self._commit_offsets()
        if offsets:
            self._commands.put(_Command("commit", tuple(offsets)))

    def _update_metrics(self, now: float, elapsed: float) -> None:
        m = self.metrics
        if elapsed > 0:
            m.processed_rate.set(self._processed_since_tick / elapsed)
        self._processed_since_tick = 0
        for p in self._partitions.values():
            lb = _labels(p.tp)
            m.in_flight.labels(*lb).set(p.in_flight_records)
            m.pending.labels(*lb).set(p.offsets.pending)
            head = p.offsets.oldest_pending()
            m.oldest_pending_age.labels(*lb).set(now - head[1] if head else 0.0)
            m.paused.labels(*lb).set(1 if p.flow.paused else 0)
            last = p.offsets.last_registered
            committed = p.last_committed
            if last is not None and committed is not None:
                m.commit_lag.labels(*lb).set(max(0, last + 1 - committed))

    async def _shutdown(self) -> None:
        """Stop taking records, wait up to drain_timeout for those in flight, commit
        synchronously, and let the poll thread close the consumer."""
        log.info("stopping: draining in-flight records")
        self._stopping.set()
        for p in self._partitions.values():
            p.scheduler.drop_queued()
        waits = [asyncio.ensure_future(p.idle.wait()) for p in self._partitions.values()]
        if waits:
            _done, not_done = await asyncio.wait(waits, timeout=self.drain_timeout)
            for w in not_done:
                w.cancel()
            if not_done:
                log.warning("drain timeout: %d partitions still had records in flight",
                            len(not_done))
        for p in self._partitions.values():
            for t in p.tasks:
                t.cancel()
        offsets = self._commit_offsets(force=True)
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._commands.put(_Command("commit", tuple(offsets), done))
        try:
            while not self._poll_done.is_set():
                try:
                    await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(done)), 0.5)
                    break
                except TimeoutError:
                    continue
        finally:
            self._final_commit_done.set()


def _labels(tp: TP) -> tuple[str, str]:
    return tp[0], str(tp[1])

