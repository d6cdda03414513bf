"""SIGKILL `hayase run` mid-stream while it aggregates, restart it (from the local RocksDB
state, then with the state directory wiped: from the changelog topic alone) and compare the
final table with the exact answer: no input counted twice, none lost. Both backends."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from hayase.client.admin import Admin

pytestmark = pytest.mark.integration

KEYS = 40
# Recent timestamps: Apache Kafka's retention would delete records stamped in 1970.
BASE_TS = int(time.time() * 1000)
PARTITIONS = 3


def _produce(bootstrap: str, topic: str, start: int, count: int) -> None:
    """Record i: key k<i % KEYS>; value column G = k<(i // KEYS) % KEYS>, so the records of
    one G have every key and sit in every partition."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for i in range(start, start + count):
        producer.produce(topic, key=f"k{i % KEYS}".encode(),
                         value=json.dumps({"V": i, "G": f"k{_g(i)}"}).encode(),
                         timestamp=BASE_TS + i)
        if i % 5000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0


def _g(i: int) -> int:
    return (i // KEYS) % KEYS


def _table(bootstrap: str, topic: str) -> tuple[dict[str, dict], int]:
    """The sink read from the start to its end: last value per key, and the record count."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"chk-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        ends, starts = {}, {}
        for p in range(PARTITIONS):
            try:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            except KafkaException:  # the sink topic is not created yet
                return {}, 0
            starts[p], ends[p] = low, high
        consumer.assign([TopicPartition(topic, p, starts[p]) for p in ends
                         if ends[p] > starts[p]])
        table: dict[str, dict] = {}
        count, done = 0, {p for p in ends if ends[p] <= starts[p]}
        while len(done) < len(ends):
            msg = consumer.poll(1.0)
            if msg is None or msg.error() is not None:
                continue
            count += 1
            table[msg.key().decode()] = json.loads(msg.value())
            if msg.offset() + 1 >= ends[msg.partition()]:
                done.add(msg.partition())
        return table, count
    finally:
        consumer.close()


def _start(sql: Path, bootstrap: str, service: str, state: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hayase", "run", str(sql), "--bootstrap-servers", bootstrap,
         "-p", f"ksql.service.id={service}", "-p", f"ksql.streams.state.dir={state}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_for_outputs(bootstrap: str, topic: str, at_least: int, proc: subprocess.Popen,
                      deadline_s: float = 120.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and proc.poll() is None:
        if _table(bootstrap, topic)[1] >= at_least:
            return
        time.sleep(0.3)


def _kill(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGKILL)
    return proc.communicate(timeout=30)[0].decode(errors="replace")


@pytest.mark.parametrize("group_by", ["key", "value"])
def test_sigkill_mid_stream_final_table_is_exact(kafka, topic_name, tmp_path: Path,
                                                 group_by: str) -> None:
    bootstrap = kafka.bootstrap_servers
    source, sink = topic_name, f"{topic_name}-totals"
    service = f"c{uuid.uuid4().hex[:8]}_"
    state = tmp_path / "state"
    Admin({"bootstrap.servers": bootstrap}).create_topic(source, partitions=PARTITIONS)
    sql = tmp_path / "agg.sql"
    sql.write_text(
        f"CREATE STREAM s (ID STRING KEY, V BIGINT, G STRING) WITH (kafka_topic='{source}', "
        f"key_format='KAFKA', value_format='JSON');\n"
        f"CREATE TABLE totals WITH (kafka_topic='{sink}', partitions={PARTITIONS}) AS "
        + ("SELECT ID, COUNT(*) AS N, SUM(V) AS TOTAL FROM s GROUP BY ID;\n"
           if group_by == "key" else
           "SELECT G, COUNT(*) AS N, SUM(V) AS TOTAL FROM s GROUP BY G;\n"))
    first, second = 30_000, 30_000
    _produce(bootstrap, source, 0, first)

    proc = _start(sql, bootstrap, service, state)
    _wait_for_outputs(bootstrap, sink, 3_000, proc)
    out1 = _kill(proc)
    _produce(bootstrap, source, first, second)  # more input arrives while it is down

    proc = _start(sql, bootstrap, service, state)  # restarts from its local RocksDB state
    _wait_for_outputs(bootstrap, sink, _table(bootstrap, sink)[1] + 5_000, proc)
    out2 = _kill(proc)
    shutil.rmtree(state)  # the next start has only the changelog topic
    third = 10_000
    _produce(bootstrap, source, first + second, third)  # so the table needs the third run

    expected = {}
    for k in range(KEYS):
        values = [i for i in range(first + second + third)
                  if (i % KEYS if group_by == "key" else _g(i)) == k]
        expected[f"k{k}"] = {"N": len(values), "TOTAL": sum(values)}
    proc = _start(sql, bootstrap, service, state)
    try:
        deadline = time.monotonic() + 180
        table: dict[str, dict] = {}
        while time.monotonic() < deadline and proc.poll() is None:
            table, _ = _table(bootstrap, sink)
            if table == expected:
                break
            time.sleep(0.5)
    finally:
        out3 = _kill(proc)
    assert table == expected, f"{out1}\n---\n{out2}\n---\n{out3}"
    assert "restoring partition" in out3, out3
