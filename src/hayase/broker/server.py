"""The broker's asyncio network shell.

One task per connection reads frames and dispatches them in arrival order; a second task per
connection writes the responses in that same order (Kafka's per-connection ordering guarantee),
so clients may pipeline: a request's synchronous part (an append, a read) runs as soon as it is
read, while its response may wait (a long-poll Fetch, an fsync) without reordering anything. A
malformed or unsupported frame closes only its connection, with a log line; nothing a client
sends can stop the broker.

Lifecycle (`Broker`): open the LogManager (recovery happens there), listen, run the retention
timer (`log.retention.check.interval.ms`) and, with `hayase.durability=interval`, the flush
timer (`log.flush.interval.ms`); on stop, close the listener and the connections, flush, close
the group handler, then the LogManager (which writes the clean-shutdown marker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from typing import Any

from hayase.broker.config import BrokerConfig
from hayase.broker.context import BrokerState
from hayase.broker.dispatch import Dispatcher, FrameError, Observer
from hayase.broker.protocol.versions import ApiKey
from hayase.broker.storage import prepare_cleaning

log = logging.getLogger("hayase.broker")

_SIZE = struct.Struct(">i")
MAX_IN_FLIGHT = 1000  # per connection; the reader pauses when this many responses are pending
MAX_QUEUED_BYTES = 64 * 2**20  # ... or when this many response bytes wait to be sent
COALESCE_BYTES = 256 * 1024  # small pipelined responses are joined into one write up to this
_CLOSE = object()


class Broker:
    """The running broker: state, listener, connections and timers."""

    def __init__(self, state: BrokerState, observer: Observer | None = None) -> None:
        self.state = state
        self.config: BrokerConfig = state.config
        self.dispatcher = Dispatcher(state, observer)
        self.max_request = self.config.get_int("socket.request.max.bytes")
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._senders: set[asyncio.Task[None]] = set()
        # connection -> [transport, monotonic time of the last frame in or out, pending count]
        self._activity: dict[asyncio.Task[None], list[Any]] = {}
        self._timers: list[asyncio.Task[None]] = []
        self._cleaning: asyncio.Future[Any] | None = None
        self.port: int | None = None

    async def start(self) -> None:
        listener = self.config.listener
        if self.state.group_handler is not None:
            await self.state.group_handler.start()  # before any client can reach it
        self._server = await asyncio.start_server(
            self._on_connection, listener.host, listener.port, limit=2**20)
        self.port = self._server.sockets[0].getsockname()[1]
        self.state.bound_port = self.port
        self._timers.append(asyncio.create_task(self._retention_timer()))
        self._timers.append(asyncio.create_task(self._cleaner_timer()))
        self._timers.append(asyncio.create_task(self._idle_timer()))
        if self.config.durability == "interval":
            self._timers.append(asyncio.create_task(self._flush_timer()))
        if "log.flush.scheduler.interval.ms" in self.config.props:
            self._timers.append(asyncio.create_task(self._flush_due_timer()))
        adv = self.state.advertised
        log.info("hayase broker listening on %s:%d (node.id=%d, cluster.id=%s, durability=%s); "
                 "connect with bootstrap.servers=%s:%d", listener.host, self.port,
                 self.state.node_id, self.state.cluster_id, self.config.durability,
                 adv.host, adv.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        # senders too: one may be waiting for a parked long-poll Fetch
        tasks = list(self._connections) + list(self._senders) + self._timers
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        if self._cleaning is not None:  # the manager must not close under a preparation
            with contextlib.suppress(BaseException):
                await self._cleaning
        await self.state.group_commit.close()
        if self.state.group_handler is not None:
            try:
                await self.state.group_handler.close()
            except Exception:  # noqa: BLE001
                log.exception("closing the group handler failed")
        self.state.log_manager.flush_all()
        self.state.log_manager.close()
        log.info("hayase broker stopped cleanly")

    # ------------------------------------------------------------------ timers

    async def _retention_timer(self) -> None:
        interval = self.config.get_int("log.retention.check.interval.ms") / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                deleted = self.state.log_manager.run_retention(self.state.clock())
                if deleted:
                    log.info("retention deleted %d segment(s)", deleted)
            except Exception:  # noqa: BLE001 - retention must never stop the broker
                log.exception("retention check failed")

    async def _cleaner_timer(self) -> None:
        """Kafka's log cleaner: every log.cleaner.backoff.ms, compact the logs whose
        cleanup.policy contains `compact` and that are dirty enough. The heavy part (reading
        segments, writing .cleaned files) runs in a thread; the swaps happen on the loop."""
        interval = self.config.get_int("log.cleaner.backoff.ms") / 1000
        lm = self.state.log_manager
        while True:
            await asyncio.sleep(interval)
            try:
                tasks = lm.plan_cleaning(self.state.clock())
                if not tasks:
                    continue
                self._cleaning = asyncio.ensure_future(asyncio.to_thread(prepare_cleaning, tasks))
                prepared = await asyncio.shield(self._cleaning)
                self._cleaning = None
                cleaned = lm.commit_cleaning(prepared)
                if cleaned:
                    log.info("log cleaner compacted %d log(s)", cleaned)
            except Exception:  # noqa: BLE001 - cleaning must never stop the broker
                log.exception("log cleaner pass failed")

    async def _flush_timer(self) -> None:
        interval = self.config.flush_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                await self.state.group_commit.flush_now()
            except Exception:  # noqa: BLE001
                log.exception("interval flush failed")

    async def _flush_due_timer(self) -> None:
        """Kafka's log flusher: every log.flush.scheduler.interval.ms, fsync the partitions
        whose unflushed data is older than their topic's flush.ms (off unless configured, as in
        Kafka, whose default interval is Long.MAX_VALUE)."""
        interval = self.config.get_int("log.flush.scheduler.interval.ms") / 1000
        lm = self.state.log_manager
        while True:
            await asyncio.sleep(interval)
            try:
                now = self.state.clock()
                due = [plog for plog in getattr(lm, "logs", list)() if plog.flush_due(now)]
                for plog in due:
                    self.state.group_commit.mark(plog)
                if due:
                    await self.state.group_commit.sync()
            except Exception:  # noqa: BLE001
                log.exception("scheduled flush failed")

    async def _idle_timer(self) -> None:
        """Close connections idle longer than connections.max.idle.ms (Kafka's default: 10
        minutes) with nothing pending, so abandoned sockets do not pile up."""
        limit = self.config.get_int("connections.max.idle.ms") / 1000
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(limit / 2, 30))
            now = loop.time()
            for entry in list(self._activity.values()):
                transport, last, pending = entry
                if pending == 0 and now - last > limit and not transport.is_closing():
                    log.info("closing connection idle for %.0f s (connections.max.idle.ms)",
                             now - last)
                    transport.close()

    # ------------------------------------------------------------------ connections

    async def _on_connection(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._activity[task] = [writer.transport, asyncio.get_running_loop().time(), 0]
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        try:
            await self._serve(reader, writer, peer)
        finally:
            self._connections.discard(task)
            self._activity.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     peer: str) -> None:
        pending: asyncio.Queue[Any] = asyncio.Queue(MAX_IN_FLIGHT)
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        activity = self._activity.get(task) if task is not None else None
        if activity is None:
            activity = [writer.transport, loop.time(), 0]
        room = asyncio.Event()  # set while the queued response bytes are under the bound
        room.set()
        queued = [0]
        sender = asyncio.create_task(self._send_loop(pending, writer, peer, activity, room,
                                                     queued))
        self._senders.add(sender)
        sender.add_done_callback(self._senders.discard)
        sender.add_done_callback(lambda _task: room.set())  # never leave the reader waiting
        graceful = True  # end of stream: answer what was asked, then close
        try:
            while not sender.done():
                head = await reader.readexactly(4)
                (size,) = _SIZE.unpack(head)
                if size < 0 or size > self.max_request:
                    log.warning("closing connection from %s: frame size %d outside [0, %d] "
                                "(socket.request.max.bytes)", peer, size, self.max_request)
                    graceful = False
                    break
                frame = await reader.readexactly(size)
                activity[1] = loop.time()
                try:
                    outcome = self.dispatcher.dispatch(frame, peer)
                except FrameError as e:
                    log.warning("closing connection from %s: %s", peer, e)
                    graceful = False
                    break
                except Exception:  # noqa: BLE001 - a bug must cost one connection, not the broker
                    log.exception("closing connection from %s: unexpected error", peer)
                    graceful = False
                    break
                if outcome is not None:
                    activity[2] += 1
                    if isinstance(outcome, bytes):
                        queued[0] += len(outcome)
                    await pending.put(outcome)
                    if queued[0] > MAX_QUEUED_BYTES:
                        # a client pipelining big fetches without reading: stop reading it
                        room.clear()
                        await room.wait()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        finally:
            if not sender.done():
                try:
                    if not graceful:
                        raise asyncio.QueueFull
                    pending.put_nowait(_CLOSE)
                except asyncio.QueueFull:
                    sender.cancel()  # like Kafka: a bad request closes at once
                with contextlib.suppress(BaseException):
                    await sender
            while not pending.empty():  # responses nobody will read
                item = pending.get_nowait()
                if isinstance(item, asyncio.Future):
                    item.cancel()

    async def _send_loop(self, pending: asyncio.Queue[Any], writer: asyncio.StreamWriter,
                         peer: str, activity: list[Any], room: asyncio.Event,
                         queued: list[int]) -> None:
        transport = writer.transport
        loop = asyncio.get_running_loop()
        carry: Any = None
        while True:
            item = carry if carry is not None else await pending.get()
            carry = None
            if item is _CLOSE:
                return
            if isinstance(item, bytes):
                queued[0] -= len(item)
            else:
                try:
                    item = await item
                except FrameError as e:
                    log.warning("closing connection from %s: %s", peer, e)
                    transport.abort()
                    return
                if item is None:
                    activity[2] -= 1
                    continue
            # Pipelined requests answered at once go out in one write (one syscall).
            chunks = [item]
            size = len(item)
            while size < COALESCE_BYTES and not pending.empty():
                nxt = pending.get_nowait()
                if not isinstance(nxt, bytes):
                    carry = nxt
                    break
                queued[0] -= len(nxt)
                size += len(nxt)
                chunks.append(nxt)
            if transport.is_closing():
                return
            writer.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))
            activity[1] = loop.time()
            activity[2] -= len(chunks)
            if queued[0] <= MAX_QUEUED_BYTES:
                room.set()
            if carry is None or transport.get_write_buffer_size() > 2**20:
                try:
                    await writer.drain()
                except ConnectionError:
                    return


async def run_broker(config: BrokerConfig, stop: asyncio.Event, metrics: Any = None,
                     metrics_port: int | None = None) -> None:
    """Open the storage, serve until `stop` is set, shut down cleanly. `metrics` is a
    hayase.broker.metrics.BrokerMetrics (served on 127.0.0.1:metrics_port) or None."""
    from hayase.broker.storage import LogManager

    config.data_dir.mkdir(parents=True, exist_ok=True)
    log_manager = LogManager(config.data_dir, config.storage_props())
    metrics_server: asyncio.Server | None = None
    handler: Any = None
    try:
        state = BrokerState(config, log_manager)
        handler = _group_handler(state)
        if handler is not None:
            state.install_group_handler(handler)
        observer = None
        if metrics is not None:
            metrics.attach(log_manager=log_manager, data_dir=config.data_dir,
                           group_lag=getattr(handler, "group_lag", None))
            observer = _request_observer(metrics)
            state.produce_observer = metrics.produce_observed
            state.topic_deleted_listeners.append(metrics.forget_topic)
            if metrics_port is not None:
                metrics_server = await metrics.serve(metrics_port)
                log.info("metrics on http://127.0.0.1:%d/metrics", metrics_port)
        broker = Broker(state, observer)
        await broker.start()
    except BaseException:
        if metrics_server is not None:
            metrics_server.close()
        if handler is not None:
            with contextlib.suppress(Exception):
                await handler.close()
        log_manager.close()
        raise
    try:
        await stop.wait()
    finally:
        if metrics_server is not None:
            metrics_server.close()
        await broker.stop()


def _request_observer(metrics: Any) -> Observer:
    names = {int(k): k.name.lower() for k in ApiKey}

    def observe(api_key: int, seconds: float, bytes_in: int, bytes_out: int) -> None:
        metrics.request_observed(names.get(api_key, str(api_key)), seconds, bytes_in, bytes_out)

    return observe


def _group_handler(state: BrokerState) -> Any:
    """The coordinator's handler, when the coordinator package provides a factory."""
    try:
        from hayase.broker import coordinator
    except ImportError:
        return None
    factory = getattr(coordinator, "create_group_handler", None)
    return factory(state) if factory is not None else None
