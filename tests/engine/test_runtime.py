"""`hayase run` against a real broker: a persistent query as a consumer-group member,
commits after acknowledged produces, the processing log, a clean SIGTERM stop, and a restart
that resumes from the committed offsets."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from hayase.client.admin import Admin
from hayase.engine.runtime import group_id

pytestmark = pytest.mark.integration


def _consume(bootstrap: str, topic: str, count: int, deadline_s: float = 60.0) -> list:
    """Up to `count` records from the start of `topic` (the deadline only bounds a failure)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got: list = []
    deadline = time.monotonic() + deadline_s
    try:
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg)
    finally:
        consumer.close()
    return got


def _produce(bootstrap: str, topic: str, people: list[tuple[int, str, int]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for pid, name, age in people:
        producer.produce(topic, key=pid.to_bytes(4, "big"),
                         value=json.dumps({"name": name, "age": age}).encode(),
                         timestamp=1000 + pid)
    assert producer.flush(30) == 0


class HayaseRun:
    def __init__(self, sql: Path, bootstrap: str, service: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hayase", "run", str(sql), "--bootstrap-servers", bootstrap,
             "-p", f"ksql.service.id={service}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.output = ""

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            out = self.proc.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out = self.proc.communicate()[0]
        self.output = out.decode(errors="replace")
        return self.proc.returncode

    def query_id(self) -> str:
        for line in self.output.splitlines():
            if "started " in line:
                return line.split("started ", 1)[1].split(":", 1)[0]
        raise AssertionError(f"no query started:\n{self.output}")


def test_run_filters_projects_logs_bad_records_stops_and_resumes(kafka, topic_name,
                                                                  tmp_path: Path):
    bootstrap = kafka.bootstrap_servers
    source, sink = topic_name, f"{topic_name}-adults"
    service = f"t{uuid.uuid4().hex[:8]}_"
    Admin({"bootstrap.servers": bootstrap}).create_topic(source, partitions=2)
    people = [(1, "ann", 31), (2, "bob", 12), (3, "cy", 44), (4, "di", 17), (5, "ed", 18)]
    _produce(bootstrap, source, people)
    bad = Producer({"bootstrap.servers": bootstrap})
    bad.produce(source, key=(9).to_bytes(4, "big"), value=b"{not json", timestamp=9)
    assert bad.flush(30) == 0
    sql = tmp_path / "q.sql"
    sql.write_text(
        f"CREATE STREAM people (id INT KEY, name STRING, age INT) "
        f"WITH (kafka_topic='{source}', value_format='JSON');\n"
        f"CREATE STREAM adults WITH (kafka_topic='{sink}') AS "
        f"SELECT id, UCASE(name) AS name FROM people WHERE age >= 18;\n")

    run = HayaseRun(sql, bootstrap, service)
    try:
        out = _consume(bootstrap, sink, 3)
        logged = _consume(bootstrap, f"{service}ksql_processing_log", 1)
    finally:
        assert run.stop() == 0, run.output
    values = sorted((int.from_bytes(m.key(), "big"), json.loads(m.value()), m.timestamp()[1])
                    for m in out)
    assert values == [(1, {"NAME": "ANN"}, 1001), (3, {"NAME": "CY"}, 1003),
                      (5, {"NAME": "ED"}, 1005)]
    assert json.loads(logged[0].value())["message"]["deserializationError"]["topic"] == source
    reader = Consumer({"bootstrap.servers": bootstrap,
                       "group.id": group_id(service, run.query_id())})
    try:
        committed = reader.committed([TopicPartition(source, p) for p in (0, 1)], timeout=30)
    finally:
        reader.close()
    assert sum(tp.offset for tp in committed if tp.offset >= 0) == len(people) + 1

    # A restart resumes after the committed offsets: only the new records are processed.
    _produce(bootstrap, source, [(6, "fay", 50), (7, "gus", 60)])
    run = HayaseRun(sql, bootstrap, service)
    try:
        out = _consume(bootstrap, sink, 5)
    finally:
        assert run.stop() == 0, run.output
    # And no duplicates: the stopped query wrote exactly these five (a read bounded by a few
    # seconds could come back short on a loaded machine; the log end offsets cannot).
    admin = Admin({"bootstrap.servers": bootstrap})
    ends = admin.offsets(sink, admin.partitions_of(sink))
    assert sum(high - low for low, high in ends.values()) == 5, ends
    assert sorted(int.from_bytes(m.key(), "big") for m in out) == [1, 3, 5, 6, 7]
