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
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from hayase.ads import batch, generator, pipeline_sql, results
from hayase.ads.producer import (
    PARTITIONS,
    EventSender,
    cluster_replicas,
    create_topics,
    send_all,
)
from hayase.client.admin import Admin
from hayase.client.config import quiet_logger
from hayase.client.errors import ClientError

Echo = Callable[[str], None]


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


def _ends(admin: Admin, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    out = {}
    for t in topics:
        for p, (_low, high) in admin.offsets(t, admin.partitions_of(t)).items():
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
    while time.monotonic() < deadline:
        if runtime.failed:
            echo("a persistent query failed: " + "; ".join(
                e for w in runtime.workers for e in w.stats.errors))
            return False
        try:
            behind, all_ends = _progress(admin, conf, groups)
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
    return False


def _progress(admin: Admin, conf: Mapping[str, object], groups: list[tuple[str, list[str]]]
              ) -> tuple[int, dict[tuple[str, int], int]]:
    """Records the groups have not committed yet, and the end offsets of their topics."""
    behind = 0
    all_ends: dict[tuple[str, int], int] = {}
    for group, topics in groups:
        ends = _ends(admin, topics)
        all_ends.update(ends)
        done = _committed(conf, group, list(ends))
        behind += sum(max(0, end - max(done.get(tp, 0), 0)) for tp, end in ends.items())
    return behind, all_ends


def read_topics(conf: Mapping[str, object], topics: Iterable[str],
                timeout: float = 60.0) -> list[tuple[str, bytes | None, bytes | None]]:
    """Every record of the topics (partition order kept), from the log start to the end."""
    admin = Admin(dict(conf))
    c = Consumer({**conf, "group.id": f"hayase-ads-check-read-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False, "logger": quiet_logger()})
    out: list[tuple[str, bytes | None, bytes | None]] = []
    try:
        wanted: dict[tuple[str, int], int] = {}
        assign = []
        for t in topics:
            for p, (low, high) in admin.offsets(t, admin.partitions_of(t)).items():
                if high > low:
                    wanted[(t, p)] = high
                    assign.append(TopicPartition(t, p, low))
        c.assign(assign)
        deadline = time.monotonic() + timeout
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


def _cleanup(conf: Mapping[str, object], prefix: str, service_id: str) -> None:
    admin = Admin(dict(conf))
    for t in admin.metadata().topics:
        if t.startswith(prefix) or t.startswith(f"_confluent-ksql-{service_id}") \
                or t == f"{service_id}ksql_processing_log":
            with contextlib.suppress(ClientError):
                admin.delete_topic(t)


def _partition_count(admin: Admin, topic: str) -> int:
    try:
        return len(admin.partitions_of(topic))
    except ClientError:  # not (yet) in the metadata
        return 0


def precreate_topics(conf: Mapping[str, object], sql: str, service_id: str,
                     partitions: int, replicas: int = 1, timeout: float = 60.0) -> None:
    """Create every topic the pipeline writes (sinks, changelogs) with ``partitions``
    partitions and wait until each partition answers a watermark request; the runtime then
    finds them existing. Why (both noted for the engine under "Ads notes" in SQL_API.md): on
    Apache Kafka a just-created topic is not at once in the metadata, so (1) the runtime sized
    a C*AS sink from its just-created source as 1 partition and then refused the co-partitioned
    table-table join, and (2) a changelog restore stopped the query with "Failed to get
    watermark offsets: Local: Unknown partition". Stateless queries get an unused changelog
    topic: deleted with the run's topics."""
    from hayase.engine.changelog import CHANGELOG_CONFIGS, changelog_topic
    from hayase.sql import Session  # type: ignore[attr-defined]
    from hayase.sql.plan import QueryPlan

    admin = Admin(dict(conf))
    wanted: dict[str, Mapping[str, str] | None] = {}
    for r in Session({}).execute(sql):
        if isinstance(r, QueryPlan):
            wanted[r.sink.topic] = None
            wanted[changelog_topic(service_id, r.query_id)] = CHANGELOG_CONFIGS
    existing = admin.metadata().topics
    for name, configs in wanted.items():
        if name in existing:
            continue
        try:
            admin.create_topic(name, partitions, replicas, configs)
        except ClientError as e:
            if "already exists" not in str(e):
                raise
    c = Consumer({**conf, "group.id": f"hayase-ads-check-{uuid.uuid4().hex[:8]}",
                  "logger": quiet_logger()})
    deadline = time.monotonic() + timeout
    try:
        for name in wanted:
            while _partition_count(admin, name) < partitions:
                if time.monotonic() > deadline:
                    raise ClientError(f"topic {name} did not appear in the metadata")
                time.sleep(0.2)
            for p in range(partitions):
                while True:
                    try:
                        c.get_watermark_offsets(TopicPartition(name, p), timeout=5)
                        break
                    except Exception:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
    finally:
        c.close()


def _segment_finding(expected: dict[str, set[str]], actual: dict[str, set[str]]
                     ) -> results.Finding:
    diffs = [f"user {u}: expected {sorted(expected.get(u, ()))}, got {sorted(actual.get(u, ()))}"
             for u in sorted(set(expected) | set(actual)) if expected.get(u) != actual.get(u)]
    return results.Finding("user segments in Redis (segment updater)", len(expected),
                           len(actual), diffs[:5] + ([f"... {len(diffs) - 5} more"]
                                                     if len(diffs) > 5 else []))


def run_check(conf: Mapping[str, object], impressions: int, seed: int = 7, rate: float = 20.0,
              echo: Echo = print, timeout: float = 240.0, keep_topics: bool = False,
              segments: bool = True) -> CheckOutcome:
    """``segments``: also run the segment updater against a temporary redis-server and compare
    every user's segments (skipped, and said so, when redis-server is not installed)."""
    from hayase.ads.segments import RedisProcess, SegmentUpdaterThread, expected_segments
    from hayase.engine.runtime import INTERNAL_REPLICAS, SERVICE_ID, STATE_DIR, HeadlessRuntime

    t0 = time.monotonic()
    run = uuid.uuid4().hex[:8]
    prefix = f"ads-check-{run}-"
    service_id = f"ads_check_{run}_"
    cfg = generator.GeneratorConfig(seed=seed, rate=rate, budget_horizon=impressions)
    events = generator.bounded(cfg, impressions)
    expected = batch.compute(events)
    counts = {t: sum(1 for e in events if e.topic == t) for t in generator.TOPICS}
    echo(f"generated (seed {seed}): " + ", ".join(f"{n} {t}" for t, n in counts.items())
         + f"; clicks re-sent {expected.duplicates}, outside the hour {expected.outside_window}")
    if segments and shutil.which("redis-server") is None:
        echo("SKIPPED: user segments (redis-server is not installed)")
        segments = False
    replicas = cluster_replicas(conf)
    echo(f"topics: {PARTITIONS} partitions, replication factor {replicas} (inputs, sinks, "
         f"changelogs, processing log)")
    create_topics(conf, prefix, replicas)
    sender = EventSender(conf, prefix,
                         skip_topics=[] if segments else [generator.APP_EVENTS])
    send_all(sender, events)
    echo(f"produced {sender.stats.acked} records to {prefix}* (acks=all)")
    redis_proc: RedisProcess | None = None
    updater: SegmentUpdaterThread | None = None
    extra_groups: list[tuple[str, list[str]]] = []
    seg_actual: dict[str, set[str]] = {}
    with tempfile.TemporaryDirectory(prefix="hayase-ads-check-") as state_dir:
        if segments:
            from hayase.ads.app import free_port

            redis_proc = RedisProcess(Path(state_dir) / "redis", free_port()).start()
            group = f"{prefix}segments"
            updater = SegmentUpdaterThread(conf, prefix + generator.APP_EVENTS, redis_proc.url,
                                           group=group)
            extra_groups.append((group, [prefix + generator.APP_EVENTS]))
            updater.start()
            echo(f"segment updater running (ParallelConsumer -> redis-server {redis_proc.url})")
        sql = pipeline_sql(prefix, replicas)
        precreate_topics(conf, sql, service_id, PARTITIONS, replicas)
        runtime = HeadlessRuntime(sql, conf, {SERVICE_ID: service_id, STATE_DIR: state_dir,
                                              INTERNAL_REPLICAS: str(replicas)})
        try:
            runtime.start()
            echo(f"pipeline running: {len(runtime.workers)} persistent queries "
                 f"(service id {service_id})")
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
    if not quiet:
        echo(f"the pipeline did not finish within {timeout:.0f} s: nothing compared")
        return CheckOutcome(False, [], expected, time.monotonic() - t0)
    records = read_topics(conf, [prefix + t for t in results.SINK_TOPICS])
    actual = results.fold((t[len(prefix):], k, v) for t, k, v in records)
    findings = results.compare(expected, actual)
    if segments:
        findings.append(_segment_finding(expected_segments(events), seg_actual))
    for f in findings:
        echo(f"{'MATCH' if f.ok else 'DIFFER'}  {f.name}: batch {f.expected}, "
             f"pipeline {f.actual}")
        for d in f.differences:
            echo(f"        {d}")
    if not keep_topics:
        _cleanup(conf, prefix, service_id)
    ok = all(f.ok for f in findings)
    elapsed = time.monotonic() - t0
    echo(f"{'exact match' if ok else 'MISMATCH'} ({elapsed:.1f} s)")
    return CheckOutcome(ok, findings, expected, elapsed)
