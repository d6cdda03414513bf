"""GROUP BY over a JOIN of 3-partition topics in `hayase run`: the joined rows go through
ksqlDB's -Aggregate-GroupBy-repartition topic to the task of their group. Two processes share
the query; one is SIGKILLed mid-stream, the other takes its tasks over from the changelog, and
the final table equals the exact answer (no joined row lost, none counted twice). Both
backends."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from hayase.client.admin import Admin
from hayase.engine.runtime import group_id

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # ~40 s per backend

PARTITIONS = 3
BASE_TS = int(time.time() * 1000) - 60_000  # recent: Apache Kafka's retention keeps them
EVENTS = 1500  # per batch (four batches)
USERS, REGIONS = 30, 7
QUERY_ID = "CTAS_BY_REGION_0"


def _region(u: int) -> str:
    return f"r{(u * 3) % REGIONS}"


def _event(i: int) -> tuple[str, dict, int]:
    return f"u{i % USERS}", {"V": i}, BASE_TS + 1000 + i


def _produce(bootstrap: str, topic: str, records: list[tuple[str, dict, int]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 10,
                         "partitioner": "murmur2_random"})
    for key, value, ts in records:
        producer.produce(topic, key=key.encode(), value=json.dumps(value).encode(),
                         timestamp=ts)
    assert producer.flush(60) == 0


def _table(bootstrap: str, topic: str) -> dict[str, dict]:
    """The sink read from the start to its end: the last value per key."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"chk-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        ends = {}
        for p in range(PARTITIONS):
            try:
                ends[p] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            except KafkaException:  # not created yet
                return {}
        todo = {p for p, (low, high) in ends.items() if high > low}
        consumer.assign([TopicPartition(topic, p, ends[p][0]) for p in todo])
        table: dict[str, dict] = {}
        while todo:
            msg = consumer.poll(1.0)
            if msg is None or msg.error() is not None:
                continue
            key = msg.key().decode()
            if msg.value() is None:
                table.pop(key, None)
            else:
                table[key] = json.loads(msg.value())
            if msg.offset() + 1 >= ends[msg.partition()][1]:
                todo.discard(msg.partition())
        return table
    finally:
        consumer.close()


def _committed_to_end(bootstrap: str, group: str, topic: str) -> bool:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        try:
            committed = consumer.committed(tps, timeout=10)
            return all(tp.offset >= consumer.get_watermark_offsets(tp, timeout=10)[1]
                       for tp in committed)
        except KafkaException:  # the coordinator is still loading
            return False
    finally:
        consumer.close()


def _wait(condition: Callable[[], bool], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not condition():
        time.sleep(0.5)


def _expected(n: int) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for i in range(n):
        user, value, _ts = _event(i)
        row = out.setdefault(_region(int(user[1:])), {"N": 0, "TOTAL": 0})
        row["N"] += 1
        row["TOTAL"] += value["V"]
    return out


def _start(sql: Path, bootstrap: str, service: str, state: Path, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hayase", "run", str(sql), "--bootstrap-servers", bootstrap,
             "-p", f"ksql.service.id={service}", "-p", f"ksql.streams.state.dir={state}",
             # a dead member's partitions move after 6 s (the broker's minimum), not 45 s
             "--config", "session.timeout.ms=6000", "--config", "heartbeat.interval.ms=1000"],
            stdout=out, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen, sig: int) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_two_processes_share_a_group_by_over_a_join_and_survive_a_sigkill(
        kafka, topic_name, tmp_path: Path) -> None:
    bootstrap = kafka.bootstrap_servers
    t = {n: f"{topic_name}-{n}" for n in ("events", "users", "by_region")}
    admin = Admin({"bootstrap.servers": bootstrap})
    for n in ("events", "users"):
        admin.create_topic(t[n], partitions=PARTITIONS)
    sql = tmp_path / "join_agg.sql"
    sql.write_text(
        f"CREATE STREAM EVENTS (ID STRING KEY, V BIGINT) WITH (kafka_topic='{t['events']}', "
        "key_format='KAFKA', value_format='JSON');\n"
        f"CREATE TABLE USERS (ID STRING PRIMARY KEY, REGION STRING) WITH "
        f"(kafka_topic='{t['users']}', key_format='KAFKA', value_format='JSON');\n"
        f"CREATE TABLE BY_REGION WITH (kafka_topic='{t['by_region']}', key_format='KAFKA') AS "
        "SELECT U.REGION AS REGION, COUNT(*) AS N, SUM(E.V) AS TOTAL FROM EVENTS E "
        "JOIN USERS U ON E.ID = U.ID GROUP BY U.REGION;\n")
    # The users are older than every event: each event finds its user.
    _produce(bootstrap, t["users"], [(f"u{u}", {"REGION": _region(u)}, BASE_TS)
                                     for u in range(USERS)])
    service = f"r{uuid.uuid4().hex[:8]}_"
    logs = [tmp_path / f"run{i}.log" for i in range(2)]

    def batch(n: int) -> None:
        _produce(bootstrap, t["events"], [_event(i) for i in range(n * EVENTS,
                                                                   (n + 1) * EVENTS)])

    def log_has(i: int, text: str) -> bool:
        return text in logs[i].read_text(errors="replace")

    batch(0)
    procs = [_start(sql, bootstrap, service, tmp_path / f"state{i}", logs[i])
             for i in range(2)]
    table: dict[str, dict] = {}
    want = _expected(4 * EVENTS)
    try:
        _wait(lambda: log_has(0, "state ready") and log_has(1, "state ready"))
        shared = [log_has(i, "state ready") for i in range(2)]  # both have tasks
        batch(1)
        # Both processes committed state for their tasks: the changelog holds it.
        _wait(lambda: _committed_to_end(bootstrap, group_id(service, QUERY_ID), t["events"]))
        batch(2)
        _stop(procs[0], signal.SIGKILL)  # mid-stream: batch 2 is being processed
        batch(3)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and procs[1].poll() is None:
            table = _table(bootstrap, t["by_region"])
            if table == want:
                break
            time.sleep(1)
    finally:
        for p in procs:
            _stop(p, signal.SIGTERM)
    out = [log.read_text(errors="replace") for log in logs]
    detail = "\n---\n".join(o[-3000:] for o in out)
    assert all(shared), detail
    assert table == want, detail
    assert "restoring partition" in out[1], detail  # the survivor restored the dead one's
    rep = f"{group_id(service, QUERY_ID)}-Aggregate-GroupBy-repartition"
    assert rep in {s.name for s in admin.list_topics()}
