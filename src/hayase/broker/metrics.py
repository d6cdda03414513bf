"""The broker's Prometheus metrics: what operators could not see until it hurt (talk 4).

The server calls four hooks; everything else is computed when /metrics is scraped:

- ``request_observed(api, seconds, bytes_in, bytes_out)`` once per answered request;
- ``produce_observed(client_id, partitions, batches, records)`` once per Produce request, with
  the (topic, partition) pairs it wrote;
- ``new_event_loop()`` gives the broker an asyncio loop whose selector times its own waits:
  the share of wall time spent waiting for work is the request-handler idle ratio (Kafka's
  RequestHandlerAvgIdlePercent, for a single-threaded handler);
- ``attach(log_manager=..., group_lag=...)`` lets scrapes read partition counts, log sizes and
  consumer-group lag.

``serve(port)`` answers GET /metrics on 127.0.0.1 (or the host given) from the broker's own
loop, so scrapes never race the handlers that mutate the state they read.
"""

from __future__ import annotations

import asyncio
import os
import resource
import selectors
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

IDLE_WINDOW_S = 10.0
ACTIVE_WINDOW_S = 60.0
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _Logs(Protocol):
    def topics(self) -> dict[str, int]: ...

    def log(self, topic: str, partition: int) -> Any: ...


GroupLag = Callable[[], Iterable[tuple[str, str, int, int]]]  # (group, topic, partition, lag)


class IdleClock:
    """Cumulative time the event loop spent blocked in select(), readable from anywhere."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._idle = 0.0
        self._since: float | None = None
        self._samples: deque[tuple[float, float]] = deque()

    def enter(self) -> None:
        self._since = self._clock()

    def leave(self) -> None:
        if self._since is not None:
            now = self._clock()
            self._idle += now - self._since
            self._since = None
            self._sample(now)

    def idle_seconds(self, now: float) -> float:
        return self._idle + (now - self._since if self._since is not None else 0.0)

    def _sample(self, now: float) -> None:
        if not self._samples or now - self._samples[-1][0] >= 0.5:
            self._samples.append((now, self._idle))
            while len(self._samples) > 2 and now - self._samples[1][0] >= IDLE_WINDOW_S:
                self._samples.popleft()

    def idle_ratio(self) -> float:
        """Idle share over about the last IDLE_WINDOW_S seconds (1.0 before any sample)."""
        now = self._clock()
        if not self._samples:
            return 1.0
        t0, idle0 = self._samples[0]
        wall = now - t0
        if wall <= 0:
            return 1.0
        return max(0.0, min(1.0, (self.idle_seconds(now) - idle0) / wall))


class TimedSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """The default selector, timing how long each select() waits."""

    def __init__(self, idle: IdleClock) -> None:
        super().__init__()
        self._idle_clock = idle

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        self._idle_clock.enter()
        try:
            return super().select(timeout)  # type: ignore[no-any-return]
        finally:
            self._idle_clock.leave()


def open_files(under: Path | None = None) -> tuple[int, int, int]:
    """(open file descriptors, their soft limit, descriptors of deleted files under `under`).

    Only files under the data folder count as leaked: anonymous temporary files (O_TMPFILE,
    memfd) also read as "(deleted)" and are nobody's leak."""
    fd_dir = Path("/proc/self/fd")
    prefix = str(under.resolve()) if under is not None else "/"
    count = deleted = 0
    for entry in fd_dir.iterdir() if fd_dir.exists() else ():
        count += 1
        try:
            target = os.readlink(entry)
        except OSError:
            continue
        if target.endswith(" (deleted)") and target.startswith(prefix) and "/memfd:" not in target:
            deleted += 1
    return count, resource.getrlimit(resource.RLIMIT_NOFILE)[0], deleted


class BrokerMetrics(Collector):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.registry = CollectorRegistry(auto_describe=False)
        self.idle = IdleClock(clock)
        self._logs: _Logs | None = None
        self._data_dir: Path | None = None
        self._group_lag: GroupLag | None = None
        self._last_write: dict[tuple[str, int], float] = {}
        self._client_partitions: dict[str, dict[tuple[str, int], float]] = {}
        r = self.registry
        self.requests = Counter("hayase_broker_requests", "Requests answered, per API.", ["api"], registry=r)
        self.latency = Histogram("hayase_broker_request_latency_seconds",
                                 "Time from a request's arrival to its response, per API.", ["api"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.bytes_in = Counter("hayase_broker_bytes_in", "Request bytes received.", registry=r)
        self.bytes_out = Counter("hayase_broker_bytes_out", "Response bytes sent.", registry=r)
        labels = ["client_id"]
        self.produce_requests = Counter("hayase_broker_client_produce_requests",
                                        "Produce requests, per client id.", labels, registry=r)
        self.partitions_written = Counter(
            "hayase_broker_client_partitions_written",
            "Sum over Produce requests of the partitions each wrote, per client id.", labels, registry=r)
        self.batches = Counter("hayase_broker_client_batches", "Record batches appended, per client id.",
                               labels, registry=r)
        self.records = Counter("hayase_broker_client_records", "Records appended, per client id.",
                               labels, registry=r)
        r.register(self)

    # hooks called by the server

    def request_observed(self, api: str, seconds: float, bytes_in: int, bytes_out: int) -> None:
        self.requests.labels(api).inc()
        self.latency.labels(api).observe(seconds)
        self.bytes_in.inc(bytes_in)
        self.bytes_out.inc(bytes_out)

    def produce_observed(self, client_id: str | None, partitions: Iterable[tuple[str, int]],
                         batches: int, records: int) -> None:
        cid = client_id or ""
        now = self._clock()
        seen = self._client_partitions.setdefault(cid, {})
        n = 0
        for tp in partitions:
            n += 1
            self._last_write[tp] = now
            seen[tp] = now
        self.produce_requests.labels(cid).inc()
        self.partitions_written.labels(cid).inc(n)
        self.batches.labels(cid).inc(batches)
        self.records.labels(cid).inc(records)

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.SelectorEventLoop(TimedSelector(self.idle))

    def attach(self, log_manager: _Logs | None = None, group_lag: GroupLag | None = None,
               data_dir: Path | None = None) -> None:
        if data_dir is not None:
            self._data_dir = data_dir
        if log_manager is not None:
            self._logs = log_manager
        if group_lag is not None:
            self._group_lag = group_lag

    def forget_topic(self, topic: str) -> None:
        """Drop a deleted topic's per-partition state."""
        for tp in [tp for tp in self._last_write if tp[0] == topic]:
            del self._last_write[tp]
        for seen in self._client_partitions.values():
            for tp in [tp for tp in seen if tp[0] == topic]:
                del seen[tp]

    # scrape-time metrics

    def collect(self) -> Iterator[Metric]:
        now = self._clock()
        yield GaugeMetricFamily("hayase_broker_request_handler_idle_ratio",
                                "Share of wall time the request-handling loop waited for work "
                                f"(last {IDLE_WINDOW_S:.0f} s).", value=self.idle.idle_ratio())
        fds, limit, deleted = open_files(self._data_dir)
        yield GaugeMetricFamily("hayase_broker_open_fds", "Open file descriptors.", value=fds)
        yield GaugeMetricFamily("hayase_broker_max_fds", "File descriptor limit (soft).", value=limit)
        yield GaugeMetricFamily("hayase_broker_deleted_open_files",
                                "Descriptors still held on deleted files.", value=deleted)
        self._drop_deleted_topics()
        yield from self._client_activity(now)
        yield from self._partitions(now)
        if self._group_lag is not None:
            lag = GaugeMetricFamily("hayase_broker_group_lag", "Log end offset minus committed offset.",
                                    labels=["group", "topic", "partition"])
            for group, topic, partition, value in self._group_lag():
                lag.add_metric([group, topic, str(partition)], value)
            yield lag

    def _drop_deleted_topics(self) -> None:
        """Forget partitions of topics the log manager no longer has, so "active" never counts
        a deleted topic (even if the server did not call forget_topic) and memory stays bounded
        under topic churn."""
        if self._logs is None:
            return
        live = self._logs.topics()
        gone = {tp[0] for tp in self._last_write if tp[0] not in live}
        for seen in self._client_partitions.values():
            gone.update(tp[0] for tp in seen if tp[0] not in live)
        for topic in gone:
            self.forget_topic(topic)

    def _client_activity(self, now: float) -> Iterator[Metric]:
        g = GaugeMetricFamily("hayase_broker_client_partitions_active",
                              f"Distinct partitions a client wrote in the last {ACTIVE_WINDOW_S:.0f} s.",
                              labels=["client_id"])
        for cid, seen in self._client_partitions.items():
            for tp in [tp for tp, t in seen.items() if now - t > ACTIVE_WINDOW_S]:
                del seen[tp]
            g.add_metric([cid], len(seen))
        yield g

    def _partitions(self, now: float) -> Iterator[Metric]:
        active = sum(1 for t in self._last_write.values() if now - t <= ACTIVE_WINDOW_S)
        yield GaugeMetricFamily("hayase_broker_partitions_active",
                                f"Partitions that received data in the last {ACTIVE_WINDOW_S:.0f} s.",
                                value=active)
        if self._logs is None:
            return
        topics = self._logs.topics()
        yield GaugeMetricFamily("hayase_broker_partitions", "Partitions in total.",
                                value=sum(topics.values()))
        size = GaugeMetricFamily("hayase_broker_log_size_bytes", "Bytes on disk per partition.",
                                 labels=["topic", "partition"])
        for topic, count in topics.items():
            for p in range(count):
                try:
                    size.add_metric([topic, str(p)], self._logs.log(topic, p).size_bytes())
                except Exception:  # noqa: BLE001 - a topic deleted mid-scrape
                    continue
        yield size

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    async def serve(self, port: int, host: str = "127.0.0.1") -> asyncio.Server:
        """Serve GET /metrics (Prometheus text format) on the running loop."""
        return await asyncio.start_server(self._handle_http, host, port)

    async def _handle_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b""
            if path.split(b"?")[0] in (b"/metrics", b"/"):
                body, status = self.exposition(), b"200 OK"
            else:
                body, status = b"not found\n", b"404 Not Found"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; version=0.0.4\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
                         + body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
