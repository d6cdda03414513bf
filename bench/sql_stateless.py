"""Stateless SQL throughput: a filter-and-project persistent query, topic to topic.

Three runners read the same input topic (--records JSON values of about 120 bytes, one
partition) and write their own output topic, one after the other on the same broker:

- hayase: `CREATE STREAM out AS SELECT id, amount, country FROM events WHERE amount > 50 AND
  status = 'ok'` run by the engine's Kafka runtime (the code behind `hayase run`);
- plain Python: a confluent-kafka consume/produce loop doing the same work with the same JSON
  library (orjson), batch commits after the producer's acknowledgements: the ceiling;
- Quix Streams: the same filter and projection as a StreamingDataFrame, in its own virtualenv
  (created on first use under ~/.cache/hayase/bench/quix-venv; skipped with a message if it
  cannot be installed).

Each time is measured from the runner's start until all expected output records are in its
output topic (startup included, as a user sees it). Records/s count input records.

    .venv/bin/python bench/sql_stateless.py                       # 1M records, embedded broker
    .venv/bin/python bench/sql_stateless.py --backend apache --records 200000

This is a benchmark, never a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import orjson
from _peers import (
    bench_broker,
    create_topic,
    load_average,
    quix_python,
    run_subprocess,
    run_thread,
    wait_for,
)
from confluent_kafka import Consumer, Producer

SQL = """
CREATE STREAM events (user_id STRING KEY, id BIGINT, amount DOUBLE, currency STRING,
                      country STRING, status STRING, ts BIGINT, note STRING)
  WITH (kafka_topic='{src}', value_format='JSON');
CREATE STREAM filtered WITH (kafka_topic='{dst}') AS
  SELECT user_id, id, amount, country FROM events WHERE amount > 50 AND status = 'ok';
"""

QUIX_SCRIPT = """
import sys
from quixstreams import Application
bootstrap, src, dst, group = sys.argv[1:5]
app = Application(broker_address=bootstrap, consumer_group=group, auto_offset_reset="earliest",
                  loglevel="WARNING", use_changelog_topics=False,
                  consumer_extra_config={"fetch.queue.backoff.ms": 50})
tin = app.topic(src, key_deserializer="str", value_deserializer="json")
tout = app.topic(dst, key_serializer="str", value_serializer="json")
sdf = app.dataframe(tin)
sdf = sdf.filter(lambda v: v["amount"] > 50 and v["status"] == "ok")
sdf = sdf.apply(lambda v: {"ID": v["id"], "AMOUNT": v["amount"], "COUNTRY": v["country"]})
sdf.to_topic(tout)
app.run()
"""


def make_value(i: int) -> bytes:
    amount = (i * 7919 % 10000) / 100.0
    return orjson.dumps({
        "id": i, "amount": amount, "currency": "JPY", "country": "JP",
        "status": "ok" if i % 10 else "void", "ts": 1_700_000_000_000 + i, "note": "n" * 12,
    })


def expected_outputs(n: int) -> int:
    return sum(1 for i in range(n) if (i * 7919 % 10000) / 100.0 > 50 and i % 10)


def produce_input(bootstrap: str, topic: str, n: int) -> int:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all",
                         "batch.size": 1_000_000, "queue.buffering.max.messages": 500_000})
    size = 0
    for i in range(n):
        value = make_value(i)
        size += len(value)
        while True:
            try:
                producer.produce(topic, value=value, key=f"user{i % 1000}".encode(), timestamp=i)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(120) == 0
    return size // n


def run_hayase(bootstrap: str, src: str, dst: str, expected: int) -> float:
    from hayase.engine.runtime import HeadlessRuntime

    started = time.monotonic()
    runtime = HeadlessRuntime(SQL.format(src=src, dst=dst), {"bootstrap.servers": bootstrap},
                              {"ksql.service.id": f"bench_{uuid.uuid4().hex[:6]}_"})
    runtime.start()
    try:
        return wait_for(bootstrap, dst, expected, started, lambda: not runtime.failed,
                        interval=0.2)
    finally:
        runtime.stop()
        runtime.wait()


def plain_loop(bootstrap: str, src: str, dst: str, stop: threading.Event) -> None:
    """The ceiling: the same filter and projection with no engine in between."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"plain-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "fetch.queue.backoff.ms": 50})  # as hayase run's consumers
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all",
                         "enable.idempotence": True})
    consumer.subscribe([src])
    loads, dumps = orjson.loads, orjson.dumps
    try:
        while not stop.is_set():
            batch = consumer.consume(500, 0.2)
            if not batch:
                continue
            for msg in batch:
                if msg.error():
                    continue
                v = loads(msg.value())
                if v["amount"] > 50 and v["status"] == "ok":
                    out = {"ID": v["id"], "AMOUNT": v["amount"], "COUNTRY": v["country"]}
                    try:
                        producer.produce(dst, value=dumps(out), key=msg.key(),
                                         timestamp=msg.timestamp()[1])
                    except BufferError:
                        producer.flush(30)
                        producer.produce(dst, value=dumps(out), key=msg.key(),
                                         timestamp=msg.timestamp()[1])
            producer.flush(30)
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()


def run_plain(bootstrap: str, src: str, dst: str, expected: int) -> float:
    return run_thread(plain_loop, bootstrap, src, dst, expected, interval=0.2)


def run_quix(bootstrap: str, src: str, dst: str, expected: int) -> float | None:
    python = quix_python()
    if python is None:
        return None
    work = Path(tempfile.mkdtemp(prefix="quix-bench-"))
    try:
        return run_subprocess([str(python), "-c", QUIX_SCRIPT, bootstrap, src, dst,
                               f"quix-{uuid.uuid4().hex[:8]}"], bootstrap, dst, expected,
                              work / "run.log")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["embedded", "apache"], default="embedded")
    parser.add_argument("--bootstrap-servers", help="use a running cluster instead")
    parser.add_argument("--skip-quix", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with bench_broker(args.backend, args.bootstrap_servers) as bootstrap:
        run_id = uuid.uuid4().hex[:8]
        src = f"bench-events-{run_id}"
        create_topic(bootstrap, src)
        t0 = time.monotonic()
        size = produce_input(bootstrap, src, args.records)
        print(f"input: {args.records} JSON records, {size} bytes on average, produced in "
              f"{time.monotonic() - t0:.1f}s ({args.bootstrap_servers or args.backend}); "
              f"load average {load_average()}")
        expected = expected_outputs(args.records)
        results: dict[str, float | None] = {}
        results["plain Python (ceiling)"] = run_plain(bootstrap, src, f"out-plain-{run_id}",
                                                      expected)
        results["hayase"] = run_hayase(bootstrap, src, f"out-hayase-{run_id}", expected)
        results["Quix Streams"] = None if args.skip_quix else run_quix(
            bootstrap, src, f"out-quix-{run_id}", expected)
        hayase_rate = args.records / results["hayase"]
        print(f"{'runner':24s} {'seconds':>8s} {'records/s':>10s} {'hayase / runner':>16s}")
        for name, seconds in results.items():
            if seconds is None:
                print(f"{name:24s} {'skipped':>8s}")
                continue
            rate = args.records / seconds
            print(f"{name:24s} {seconds:8.2f} {rate:10.0f} {hayase_rate / rate:16.2f}")
        print(f"({expected} of {args.records} records pass the filter; load average "
              f"{load_average()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
