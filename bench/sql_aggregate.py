"""Windowed aggregation throughput: a 10-second tumbling count per key, EMIT FINAL.

Input (fixed seed): --records JSON events (about 120 bytes) over 10,000 keys in one partition;
event time advances 1 s per 10,000 events; 1% of events are out of order by up to 2 s (inside the
5 s grace period), 0.1% arrive 15-20 s late (after their window closed: dropped by every
runner). Every runner reads the same input topic and writes its own output topic, one after
the other, on the same broker:

- hayase: ``CREATE TABLE counts AS SELECT user_id, COUNT(*) AS N FROM pv WINDOW TUMBLING
  (SIZE 10 SECONDS, GRACE PERIOD 5 SECONDS) GROUP BY user_id EMIT FINAL;`` run by the engine's
  Kafka runtime (the code behind ``hayase run``: RocksDB state store, changelog topic, offsets
  in the state);
- plain Python: a confluent-kafka consume/produce loop with a dict per window (the ceiling, and
  the exact expected output, computed in advance with Kafka Streams' rules: stream time, a
  window closes at end + grace, late records dropped);
- Quix Streams 3.28.1: ``tumbling_window(10 s, grace 5 s).count().final(closing_strategy=
  "partition")`` (RocksDB state and changelog topics, its defaults), own virtualenv;
- Bytewax 0.21.1: ``fold_window`` (a dict of counts per user) with an ``EventClock`` (5 s wait)
  and a ``TumblingWindower`` over its ``KafkaSource``/``KafkaSink``, own virtualenv. Bytewax's
  clock is per windowing key and also advances with the system clock, so the script windows
  one key per partition (stream time per partition, as in Kafka Streams) and freezes the system
  clock (``now_getter``): results then depend on event time only. (``count_window`` keyed by
  user keeps a clock per user and accepts late records of users not seen for a while: not the
  same answer.)

Every runner's Kafka consumer (hayase run's own, the plain loop's, Quix Streams' and Bytewax's)
uses ``fetch.queue.backoff.ms=50``: librdkafka's default (1 s) idles a consumer that drains its
prefetched records faster than that.

The results are checked: every runner's (key, window start, count) set must equal the expected
one. (Bytewax closes every open window when its input ends; the windows that have not closed
by stream time are left out of its set before comparing.) Each time runs from the runner's
start until all expected windows are in its output topic. Median of --runs runs.

    .venv/bin/python bench/sql_aggregate.py                      # 1M events, embedded broker
    .venv/bin/python bench/sql_aggregate.py --records 200000 --runs 3 --backend apache

This is a benchmark, never a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import logging
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
from _peers import (
    BYTEWAX_VERSION,
    QUIX_VERSION,
    bench_broker,
    bytewax_python,
    create_topic,
    load_average,
    quix_python,
    run_subprocess,
    run_thread,
)
from confluent_kafka import Consumer, Producer, TopicPartition

KEYS = 10_000
SIZE_MS = 10_000
GRACE_MS = 5_000
EVENTS_PER_SECOND = 10_000  # event time advances 1 s per 10,000 events: 1M events span 100 s
# Every runner's consumer gets the same librdkafka tuning as `hayase run`'s (its default of 1 s
# idles a consumer that drains the prefetched records faster than that).
CONSUMER_TUNING = {"fetch.queue.backoff.ms": 50}

SQL = """
CREATE STREAM pv (user_id STRING KEY, page STRING, referrer STRING, ts BIGINT, agent STRING)
  WITH (kafka_topic='{src}', key_format='KAFKA', value_format='JSON');
CREATE TABLE counts WITH (kafka_topic='{dst}') AS
  SELECT user_id, COUNT(*) AS N FROM pv
  WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 5 SECONDS)
  GROUP BY user_id EMIT FINAL;
"""

QUIX_SCRIPT = """
import sys
from quixstreams import Application
bootstrap, src, dst, group, state_dir = sys.argv[1:6]
app = Application(broker_address=bootstrap, consumer_group=group, auto_offset_reset="earliest",
                  loglevel="WARNING", state_dir=state_dir,
                  consumer_extra_config={"fetch.queue.backoff.ms": 50})
tin = app.topic(src, key_deserializer="str", value_deserializer="json")
tout = app.topic(dst, key_serializer="str", value_serializer="json")
sdf = app.dataframe(tin)
sdf = sdf.tumbling_window(duration_ms=10_000, grace_ms=5_000).count().final(
    closing_strategy="partition")
sdf = sdf.apply(lambda w: {"start": w["start"], "count": w["value"]})
sdf.to_topic(tout)
app.run()
"""

BYTEWAX_SCRIPT = """
import sys
from datetime import datetime, timedelta, timezone
import orjson
import bytewax.operators as op
import bytewax.operators.windowing as win
from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage, KafkaSource
from bytewax.dataflow import Dataflow
from bytewax.operators.windowing import EventClock, TumblingWindower
from bytewax.testing import run_main
bootstrap, src, dst = sys.argv[1:4]
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
flow = Dataflow("windowed_count")
msgs = op.input("in", flow, KafkaSource([bootstrap], [src], tail=False,
                                         add_config={"fetch.queue.backoff.ms": "50"}))
# One windowing key for the partition: Bytewax's clock is per windowing key, and Kafka Streams'
# stream time is per partition; the counts per user live in the window's accumulator.
events = op.map("event", msgs, lambda m: ("p0", (m.key.decode(), m.timestamp[1])))
# Event time only: the system clock is frozen, so the watermark is the largest event time
# minus 5 s whatever the speed of the run.
clock = EventClock(lambda e: EPOCH + timedelta(milliseconds=e[1]),
                   wait_for_system_duration=timedelta(seconds=5),
                   now_getter=lambda: EPOCH, to_system_utc=lambda t: None)
windower = TumblingWindower(length=timedelta(seconds=10), align_to=EPOCH)

def fold(acc, e):
    acc[e[0]] = acc.get(e[0], 0) + 1
    return acc

def merge(a, b):
    for k, n in b.items():
        a[k] = a.get(k, 0) + n
    return a

counted = win.fold_window("count", events, clock, windower, dict, fold, merge)
out = op.flat_map("encode", counted.down, lambda kv: [
    KafkaSinkMessage(user.encode(), orjson.dumps({"start": kv[1][0] * 10_000, "count": n}))
    for user, n in sorted(kv[1][1].items())])
op.output("out", out, KafkaSink([bootstrap], dst))
run_main(flow)
"""


# --------------------------------------------------------------------------- data


def make_events(n: int, base_ms: int, seed: int = 7) -> list[tuple[bytes, bytes, int]]:
    """(key, value, timestamp) records in topic order."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        ts = base_ms + i * 1000 // EVENTS_PER_SECOND
        r = rnd.random()
        if r < 0.001:
            ts -= 15_000 + rnd.randrange(5_000)  # after its window closed: dropped
        elif r < 0.011:
            ts -= rnd.randrange(1, 2_000)  # out of order, inside the grace period
        user = f"u{rnd.randrange(KEYS)}"
        value = orjson.dumps({"user_id": user, "page": f"/products/{rnd.randrange(500)}",
                              "referrer": "search", "ts": ts, "agent": "Mozilla/5.0"})
        out.append((user.encode(), value, ts))
    return out


def expected_windows(events: list[tuple[bytes, bytes, int]]) -> tuple[dict[tuple[str, int], int],
                                                                       int, int]:
    """Kafka Streams' rules with a dict: returns the closed windows' counts, the number of
    late records dropped, and the final stream time."""
    counts: dict[tuple[str, int], int] = {}
    stream_time = -1
    late = 0
    for key, _value, ts in events:
        if ts > stream_time:
            stream_time = ts
        start = ts - ts % SIZE_MS
        if start + SIZE_MS <= stream_time - GRACE_MS:
            late += 1
            continue
        k = (key.decode(), start)
        counts[k] = counts.get(k, 0) + 1
    close = stream_time - GRACE_MS
    return {k: v for k, v in counts.items() if k[1] + SIZE_MS <= close}, late, stream_time


# --------------------------------------------------------------------------- kafka helpers


def produce_input(bootstrap: str, topic: str, events: list[tuple[bytes, bytes, int]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all",
                         "batch.size": 1_000_000, "queue.buffering.max.messages": 500_000})
    for key, value, ts in events:
        while True:
            try:
                producer.produce(topic, value=value, key=key, timestamp=ts)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(120) == 0


def read_topic(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        md = consumer.list_topics(topic, timeout=10).topics[topic]
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in md.partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p, e in ends.items() if e > 0])
        out: list[tuple[bytes | None, bytes | None]] = []
        remaining = sum(ends.values())
        while len(out) < remaining:
            for msg in consumer.consume(10_000, 1.0):
                if msg.error() is None:
                    out.append((msg.key(), msg.value()))  # type: ignore[arg-type]
        return out
    finally:
        consumer.close()


# --------------------------------------------------------------------------- decoders


def decode_hayase(records: list[tuple[bytes | None, bytes | None]]) -> dict[tuple[str, int], int]:
    out = {}
    for key, value in records:
        assert key is not None and value is not None
        start = int.from_bytes(key[-8:], "big", signed=True)  # windowed key: key + start
        out[(key[:-8].decode(), start)] = orjson.loads(value)["N"]
    return out


def decode_start_count(records: list[tuple[bytes | None, bytes | None]],
                       ) -> dict[tuple[str, int], int]:
    out = {}
    for key, value in records:
        assert key is not None and value is not None
        v = orjson.loads(value)
        out[(key.decode(), int(v["start"]))] = int(v["count"])
    return out


# --------------------------------------------------------------------------- runners


def run_hayase(bootstrap: str, src: str, dst: str, expected: int) -> float:
    """``hayase run`` in its own process, like the peers (and so the benchmark's own polling
    never competes with it for the GIL)."""
    work = Path(tempfile.mkdtemp(prefix="hayase-bench-"))
    sql = work / "counts.sql"
    sql.write_text(SQL.format(src=src, dst=dst), encoding="utf-8")
    try:
        return run_subprocess([sys.executable, "-m", "hayase", "run", str(sql),
                               "--bootstrap-servers", bootstrap,
                               "-p", f"ksql.service.id=bench_{uuid.uuid4().hex[:6]}_",
                               "-p", f"ksql.streams.state.dir={work / 'state'}"],
                              bootstrap, dst, expected, work / "run.log", create=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def plain_loop(bootstrap: str, src: str, dst: str, stop: threading.Event) -> None:
    """The ceiling: the same windowed count with a dict and no engine in between."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"plain-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         **CONSUMER_TUNING})
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all",
                         "enable.idempotence": True})
    consumer.subscribe([src])
    windows: dict[int, dict[bytes, int]] = {}
    stream_time = -1
    loads, dumps = orjson.loads, orjson.dumps
    try:
        while not stop.is_set():
            batch = consumer.consume(500, 0.2)
            if not batch:
                continue
            for msg in batch:
                if msg.error():
                    continue
                loads(msg.value())  # the same parsing work as the engines
                ts = msg.timestamp()[1]
                if ts > stream_time:
                    stream_time = ts
                start = ts - ts % SIZE_MS
                close = stream_time - GRACE_MS
                if start + SIZE_MS <= close:
                    continue
                w = windows.get(start)
                if w is None:
                    w = windows[start] = {}
                key: bytes = msg.key()  # type: ignore[assignment]
                w[key] = w.get(key, 0) + 1
                for ws in [s for s in windows if s + SIZE_MS <= close]:
                    for k, n in sorted(windows.pop(ws).items()):
                        while True:
                            try:
                                producer.produce(dst, value=dumps({"start": ws, "count": n}),
                                                 key=k, timestamp=ws)
                                break
                            except BufferError:
                                producer.poll(0.05)
            producer.flush(30)
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()


def run_plain(bootstrap: str, src: str, dst: str, expected: int) -> float:
    return run_thread(plain_loop, bootstrap, src, dst, expected)


def run_quix(python: Path, bootstrap: str, src: str, dst: str, expected: int) -> float:
    state_dir = tempfile.mkdtemp(prefix="quix-bench-state-")
    try:
        return run_subprocess([str(python), "-c", QUIX_SCRIPT, bootstrap, src, dst,
                               f"quix-{uuid.uuid4().hex[:8]}", state_dir], bootstrap, dst,
                              expected, Path(state_dir) / "run.log")
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


def run_bytewax(python: Path, bootstrap: str, src: str, dst: str, expected: int) -> float:
    work = Path(tempfile.mkdtemp(prefix="bytewax-bench-"))
    try:
        return run_subprocess([str(python), "-c", BYTEWAX_SCRIPT, bootstrap, src, dst],
                              bootstrap, dst, expected, work / "run.log")
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", choices=["embedded", "apache"], default="embedded")
    parser.add_argument("--bootstrap-servers", help="use a running cluster instead")
    parser.add_argument("--skip", action="append", default=[],
                        help="runner to skip: plain, hayase, quix, bytewax (repeatable)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # Recent (brokers' retention keeps it) and window-aligned.
    base = (int(time.time() * 1000) // SIZE_MS) * SIZE_MS - 3_600_000
    events = make_events(args.records, base)
    expected, late, stream_time = expected_windows(events)
    quix = None if "quix" in args.skip else quix_python()
    bytewax = None if "bytewax" in args.skip else bytewax_python()
    with bench_broker(args.backend, args.bootstrap_servers) as bootstrap:
        run_all(args, bootstrap, events, expected, late, stream_time, quix, bytewax)
    return 0


def run_all(args: argparse.Namespace, bootstrap: str, events: list[tuple[bytes, bytes, int]],
            expected: dict[tuple[str, int], int], late: int, stream_time: int,
            quix: Path | None, bytewax: Path | None) -> None:
    runners: dict[str, Callable[[str, str, int], float]] = {}
    if "plain" not in args.skip:
        runners["plain Python dict (ceiling)"] = lambda s, d, e: run_plain(bootstrap, s, d, e)
    if "hayase" not in args.skip:
        runners["hayase"] = lambda s, d, e: run_hayase(bootstrap, s, d, e)
    if quix is not None:
        runners[f"Quix Streams {QUIX_VERSION}"] = lambda s, d, e: run_quix(quix, bootstrap, s,
                                                                            d, e)
    if bytewax is not None:
        runners[f"Bytewax {BYTEWAX_VERSION}"] = lambda s, d, e: run_bytewax(bytewax, bootstrap,
                                                                             s, d, e)
    decoders = {"hayase": decode_hayase}
    run_id = uuid.uuid4().hex[:8]
    src = f"bench-pv-{run_id}"
    create_topic(bootstrap, src)
    t0 = time.monotonic()
    produce_input(bootstrap, src, events)
    avg = sum(len(v) for _, v, _ in events) // len(events)
    print(f"input: {args.records} JSON events ({avg} bytes on average), {KEYS} keys, "
          f"{late} late (dropped); expected {len(expected)} closed windows; produced in "
          f"{time.monotonic() - t0:.1f}s ({args.bootstrap_servers or args.backend}); "
          f"load average {load_average()}")
    times: dict[str, list[float]] = {name: [] for name in runners}
    checks: dict[str, str] = {}
    for run in range(args.runs):
        for name, runner in runners.items():
            dst = f"out-{name.split()[0].lower()}-{run_id}-{run}"
            seconds = runner(src, dst, len(expected))
            times[name].append(seconds)
            got = decoders.get(name, decode_start_count)(read_topic(bootstrap, dst))
            got = {k: v for k, v in got.items() if k[1] + SIZE_MS <= stream_time - GRACE_MS}
            ok = got == expected
            if not ok:
                diff = [(k, expected.get(k), got.get(k))
                        for k in set(expected) | set(got) if expected.get(k) != got.get(k)]
                checks[name] = f"DIFFERENT ({len(diff)} windows, e.g. {diff[:3]})"
            else:
                checks.setdefault(name, "identical")
            print(f"  run {run + 1}: {name}: {seconds:.2f}s, "
                  f"{'identical' if ok else 'DIFFERENT'}; load average {load_average()}",
                  flush=True)
    medians = {name: statistics.median(t) for name, t in times.items()}
    hayase_rate = args.records / medians["hayase"] if "hayase" in medians else None
    print(f"\n{'runner':30s} {'median s':>9s} {'records/s':>10s} {'hayase/runner':>14s}"
          f"  results")
    for name, seconds in medians.items():
        rate = args.records / seconds
        ratio = f"{hayase_rate / rate:14.2f}" if hayase_rate else f"{'':14s}"
        print(f"{name:30s} {seconds:9.2f} {rate:10.0f} {ratio}  {checks[name]}")


if __name__ == "__main__":
    sys.exit(main())
