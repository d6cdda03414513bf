"""Check mode (``hayase demo --events N --check``): a bounded amount of generated data through the
real pipeline on a broker, compared with the plain-Python batch computation.

The run gets topics of its own (a prefix) and its own ksqlDB service id, so it can share a
cluster with a running demo. Steps: create the input topics (campaigns compacted), produce every
event (acks=all, idempotent), start the pipeline's persistent queries with the engine's Kafka
runtime (the one `hayase run` uses), wait until every query has committed the end of each of its
source topics (and nothing moves any more), stop the queries, read the sink topics from the
beginning, fold them into final results and compare. Exit status 0 only on an exact match.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaException, TopicPartition

from hayase.ads import batch, generator, pipeline_sql, results
from hayase.ads.producer import (
    PARTITIONS,
    EventSender,
    cluster_replicas,
    create_topics,
    send_all,
)
from hayase.ads.segments import expected_segments
from hayase.client.admin import Admin
from hayase.client.config import quiet_logger
from hayase.client.errors import ClientError
from hayase.testing.apache_kafka import free_port

Echo = Callable[[str], None]
T = TypeVar("T")


@dataclass
class CheckOutcome:
    ok: bool
    findings: list[results.Finding]
    expected: batch.Expected
    seconds: float


def _committed(conf: Mapping[str, object], group: str,
               tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    c = Consumer({**conf, "group.id": group, "enable.auto.commit": False,
                  "logger": quiet_logger()})
    try:
        got = c.committed([TopicPartition(t, p) for t, p in tps], timeout=10)
        return {(tp.topic, tp.partition): tp.offset for tp in got}
    finally:
        c.close()


def _offsets(admin: Admin, topic: str) -> dict[int, tuple[int, int]]:
    """Log start and end offset of each partition. A partition whose leader is moving can
    answer -1 (no offset) without an error: refused here, so that an unknown end is never
    taken for an empty partition."""
    offsets = admin.offsets(topic, admin.partitions_of(topic))
    unknown = sorted(p for p, (low, high) in offsets.items() if low < 0 or high < 0)
    if unknown:
        raise ClientError(f"no offsets for {topic} partitions {unknown} yet")
    return offsets


def _ends(admin: Admin, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    out = {}
    for t in topics:
        for p, (_low, high) in _offsets(admin, t).items():
            out[(t, p)] = high
    return out


def wait_quiescent(runtime: Any, conf: Mapping[str, object], timeout: float,
                   echo: Echo, extra_groups: Iterable[tuple[str, list[str]]] = ()) -> bool:
    """True once every query's group has committed the end offset of every partition of its
    source topics, twice in a row with no topic growing in between."""
    from hayase.engine.runtime import group_id

    admin = Admin(dict(conf))
    deadline = time.monotonic() + timeout
    previous: dict[tuple[str, int], int] | None = None
    groups = [(group_id(runtime.service_id, w.query.query_id), list(w.query.source_topics))
              for w in runtime.workers] + list(extra_groups)
    unanswered: set[str] = set()
    lagging: dict[tuple[str, str, int], int] = {}
    while time.monotonic() < deadline:
        if runtime.failed:
            echo("a persistent query failed: " + "; ".join(
                e for w in runtime.workers for e in w.stats.errors))
            return False
        try:
            lagging, all_ends = _progress(admin, conf, groups)
            behind = sum(lagging.values())
        except (ClientError, KafkaException) as e:
            # A broker stopping or starting moves leaders and coordinators: ask again (the
            # queries themselves ride it out), within the timeout.
            if str(e) not in unanswered:
                unanswered.add(str(e))
                echo(f"progress not readable now, asking again: {e}")
            previous = None
            time.sleep(1.0)
            continue
        if behind == 0 and previous == all_ends:
            return True
        previous = all_ends if behind == 0 else None
        time.sleep(1.0)
    if lagging:
        echo("still behind: " + "; ".join(f"{g} {t}[{p}] {n}" for (g, t, p), n in
                                          sorted(lagging.items()) if n))
    return False


def _progress(admin: Admin, conf: Mapping[str, object], groups: list[tuple[str, list[str]]]
              ) -> tuple[dict[tuple[str, str, int], int], dict[tuple[str, int], int]]:
    """Records each group has not committed yet per partition, and the end offsets of their
    topics."""
    lagging: dict[tuple[str, str, int], int] = {}
    all_ends: dict[tuple[str, int], int] = {}
    for group, topics in groups:
        ends = _ends(admin, topics)
        all_ends.update(ends)
        done = _committed(conf, group, list(ends))
        for tp, end in ends.items():
            lagging[(group, *tp)] = max(0, end - max(done.get(tp, 0), 0))
    return lagging, all_ends


def read_topics(conf: Mapping[str, object], topics: Iterable[str],
                timeout: float = 60.0) -> list[tuple[str, bytes | None, bytes | None]]:
    """Every record of the topics (partition order kept), from the log start to the end."""
    admin = Admin(dict(conf))
    c = Consumer({**conf, "group.id": f"hayase-ads-check-read-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False, "logger": quiet_logger()})
    out: list[tuple[str, bytes | None, bytes | None]] = []
    try:
        deadline = time.monotonic() + timeout
        wanted: dict[tuple[str, int], int] = {}
        assign = []
        for t in topics:
            for p, (low, high) in _retry(functools.partial(_offsets, admin, t),
                                         deadline).items():
                if high > low:
                    wanted[(t, p)] = high
                    assign.append(TopicPartition(t, p, low))
        c.assign(assign)
        while wanted and time.monotonic() < deadline:
            for msg in c.consume(500, 0.5):
                if msg.error():
                    continue
                tp = (msg.topic() or "", msg.partition() or 0)
                offset = msg.offset() or 0
                if tp in wanted and offset < wanted[tp]:
                    out.append((tp[0], msg.key(), msg.value()))
                    if offset + 1 >= wanted[tp]:
                        del wanted[tp]
        if wanted:
            raise ClientError(f"could not read the sink topics to their end: {sorted(wanted)}")
        return out
    finally:
        c.close()


def _retry(fn: Callable[[], T], deadline: float) -> T:
    """fn(), asked again while it fails with a client error, until the deadline."""
    while True:
        try:
            return fn()
        except (ClientError, KafkaException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _cleanup(conf: Mapping[str, object], prefix: str, service_id: str) -> None:
    admin = Admin(dict(conf))
    for t in admin.metadata().topics:
        if t.startswith(prefix) or t.startswith(f"_confluent-ksql-{service_id}") \
                or t == f"{service_id}ksql_processing_log":
            with contextlib.suppress(ClientError):
                admin.delete_topic(t)


def _segment_finding(expected: dict[str, set[str]], actual: dict[str, set[str]]
                     ) -> results.Finding:
    diffs = [f"user {u}: expected {sorted(expected.get(u, ()))}, got {sorted(actual.get(u, ()))}"
             for u in sorted(set(expected) | set(actual)) if expected.get(u) != actual.get(u)]
    return results.Finding("user segments in Redis (segment updater)", len(expected),
                           len(actual), diffs[:5] + ([f"... {len(diffs) - 5} more"]
                                                     if len(diffs) > 5 else []))


def recent_start(impressions: int, rate: float, now_ms: int) -> int:
    """Event time of the first impression: a whole hour, early enough that the last late click
    (up to 3 hours after its impression) is still in the past. Recent because a broker's
    retention (7 days by default) deletes records by their timestamps: with events of
    2026-01-01, Apache Kafka's first retention pass (30 s after start-up, then every 5
    minutes) moved the log start to the end under a running check, and the pipeline saw
    nothing. Whole hours keep the minute and hour windows as a fixed start has them."""
    span_ms = int(impressions / rate * 1000 * 1.2) + 4 * generator.HOUR_MS
    return (now_ms - span_ms) // generator.HOUR_MS * generator.HOUR_MS


def run_check(conf: Mapping[str, object], impressions: int, seed: int = 7, rate: float = 20.0,
              echo: Echo = print, timeout: float = 240.0, keep_topics: bool = False,
              segments: bool = True) -> CheckOutcome:
    """``segments``: also run the segment updater against a temporary redis-server and compare
    every user's segments (skipped, and said so, when redis-server is not installed). The
    run's topics are deleted afterwards, whatever the outcome, unless ``keep_topics``."""
    t0 = time.monotonic()
    run = _Run(uuid.uuid4().hex[:8], cluster_replicas(conf))
    cfg = generator.GeneratorConfig(seed=seed, rate=rate, budget_horizon=impressions,
                                    start_ms=recent_start(impressions, rate,
                                                          int(time.time() * 1000)))
    events = generator.bounded(cfg, impressions)
    expected = batch.compute(events)
    counts = {t: sum(1 for e in events if e.topic == t) for t in generator.TOPICS}
    echo(f"generated (seed {seed}): " + ", ".join(f"{n} {t}" for t, n in counts.items())
         + f"; clicks re-sent {expected.duplicates}, outside the hour {expected.outside_window}")
    if segments and shutil.which("redis-server") is None:
        echo("SKIPPED: user segments (redis-server is not installed)")
        segments = False
    echo(f"topics: {PARTITIONS} partitions, replication factor {run.replicas} (inputs, sinks, "
         f"changelogs, processing log)")
    try:
        create_topics(conf, run.prefix, run.replicas)
        sender = EventSender(conf, run.prefix,
                             skip_topics=[] if segments else [generator.APP_EVENTS])
        send_all(sender, events)
        echo(f"produced {sender.stats.acked} records to {run.prefix}* (acks=all)")
        quiet, seg_actual = _run_pipeline(conf, run, segments, timeout, echo)
        if not quiet:
            echo(f"the pipeline did not finish within {timeout:.0f} s: nothing compared")
            return CheckOutcome(False, [], expected, time.monotonic() - t0)
        records = read_topics(conf, [run.prefix + t for t in results.SINK_TOPICS])
    finally:
        if not keep_topics:
            _cleanup(conf, run.prefix, run.service_id)
    actual = results.fold((t[len(run.prefix):], k, v) for t, k, v in records)
    findings = results.compare(expected, actual)
    if segments:
        findings.append(_segment_finding(expected_segments(events), seg_actual))
    for f in findings:
        echo(f"{'MATCH' if f.ok else 'DIFFER'}  {f.name}: batch {f.expected}, "
             f"pipeline {f.actual}")
        for d in f.differences:
            echo(f"        {d}")
    ok = all(f.ok for f in findings)
    elapsed = time.monotonic() - t0
    echo(f"{'exact match' if ok else 'MISMATCH'} ({elapsed:.1f} s)")
    return CheckOutcome(ok, findings, expected, elapsed)


@dataclass
class _Run:
    """One check run's names: its own topics and ksqlDB service id."""

    run_id: str
    replicas: int

    @property
    def prefix(self) -> str:
        return f"ads-check-{self.run_id}-"

    @property
    def service_id(self) -> str:
        return f"ads_check_{self.run_id}_"


def _run_pipeline(conf: Mapping[str, object], run: _Run, segments: bool, timeout: float,
                  echo: Echo) -> tuple[bool, dict[str, set[str]]]:
    """The pipeline's persistent queries (and the segment updater) until every input is
    processed and committed; then stopped. Returns (finished, each user's segments)."""
    from hayase.ads.segments import RedisProcess, SegmentUpdaterThread
    from hayase.engine.runtime import INTERNAL_REPLICAS, SERVICE_ID, STATE_DIR, HeadlessRuntime

    redis_proc: RedisProcess | None = None
    updater: SegmentUpdaterThread | None = None
    extra_groups: list[tuple[str, list[str]]] = []
    seg_actual: dict[str, set[str]] = {}
    with tempfile.TemporaryDirectory(prefix="hayase-ads-check-") as state_dir:
        if segments:
            redis_proc = RedisProcess(Path(state_dir) / "redis", free_port()).start()
            group = f"{run.prefix}segments"
            updater = SegmentUpdaterThread(conf, run.prefix + generator.APP_EVENTS,
                                           redis_proc.url, group=group)
            extra_groups.append((group, [run.prefix + generator.APP_EVENTS]))
            updater.start()
            echo(f"segment updater running (ParallelConsumer -> redis-server {redis_proc.url})")
        runtime = HeadlessRuntime(pipeline_sql(run.prefix, run.replicas), conf, {SERVICE_ID: run.service_id, STATE_DIR: state_dir,
                                              INTERNAL_REPLICAS: str(run.replicas)})
        try:
            runtime.start()
            echo(f"pipeline running: {len(runtime.workers)} persistent queries "
                 f"(service id {run.service_id})")
            quiet = wait_quiescent(runtime, conf, timeout, echo, extra_groups)
            if quiet and updater is not None:
                seg_actual = updater.read_all()
        finally:
            runtime.stop()
            for w in runtime.workers:
                w.join(30)
            if updater is not None:
                updater.stop()
            if redis_proc is not None:
                redis_proc.stop()
    return quiet, seg_actual
