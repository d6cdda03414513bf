"""SIGKILL `hayase run` mid-stream while it aggregates, restart it (from the local RocksDB
state, then with the state directory wiped: from the changelog topic alone) and compare the
final table with the exact answer: no input counted twice, none lost. Both backends.

The lean test (CI) kills as soon as the query has committed anything and checks that the
committed offsets at the kill were below the end of the input (a real kill mid-stream); the
full-size test (slow set) kills after thousands of outputs, with many more records."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from hayase.client.admin import Admin
from hayase.engine.runtime import group_id
from hayase.sql.plan import QueryPlan
from hayase.sql.session import Session

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


def _sql_text(source: str, sink: str, group_by: str) -> str:
    """COUNT and SUM per key (no repartition) or per value column G (repartitioned)."""
    column = "ID" if group_by == "key" else "G"
    return (f"CREATE STREAM s (ID STRING KEY, V BIGINT, G STRING) WITH (kafka_topic='{source}', "
            f"key_format='KAFKA', value_format='JSON');\n"
            f"CREATE TABLE totals WITH (kafka_topic='{sink}', partitions={PARTITIONS}) AS "
            f"SELECT {column}, COUNT(*) AS N, SUM(V) AS TOTAL FROM s GROUP BY {column};\n")


@dataclass
class _Query:
    """The source topic (created), the sink's name, and the SQL file of one test's query."""

    bootstrap: str
    source: str
    sink: str
    service: str
    state: Path
    sql: Path

    @classmethod
    def create(cls, bootstrap: str, topic: str, tmp_path: Path, group_by: str) -> _Query:
        Admin({"bootstrap.servers": bootstrap}).create_topic(topic, partitions=PARTITIONS)
        q = cls(bootstrap, topic, f"{topic}-totals", f"c{uuid.uuid4().hex[:8]}_",
                tmp_path / "state", tmp_path / "agg.sql")
        q.sql.write_text(_sql_text(q.source, q.sink, group_by))
        return q


def _expected(records: int, group_by: str) -> dict[str, dict]:
    """The exact table after records 0..records-1."""
    table: dict[str, dict] = {}
    for i in range(records):
        row = table.setdefault(f"k{i % KEYS if group_by == 'key' else _g(i)}",
                               {"N": 0, "TOTAL": 0})
        row["N"] += 1
        row["TOTAL"] += i
    return table


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


def _start(sql: Path, bootstrap: str, service: str, state: Path,
           *extra: str) -> subprocess.Popen:
    """``extra``: more arguments of `hayase run` (``-p k=v``, ``--config k=v``)."""
    return subprocess.Popen(
        [sys.executable, "-m", "hayase", "run", str(sql), "--bootstrap-servers", bootstrap,
         "-p", f"ksql.service.id={service}", "-p", f"ksql.streams.state.dir={state}", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_for_outputs(bootstrap: str, topic: str, at_least: int, proc: subprocess.Popen,
                      deadline_s: float = 120.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and proc.poll() is None:
        if _table(bootstrap, topic)[1] >= at_least:
            return
        time.sleep(0.3)


def _restored(output: str) -> list[str]:
    """How many changelog records each task restored, from a `hayase run` log."""
    return re.findall(r"state ready \((\d+) changelog records restored\)", output)


def _kill(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGKILL)
    return proc.communicate(timeout=30)[0].decode(errors="replace")


@pytest.mark.slow
@pytest.mark.parametrize("group_by", ["key", "value"])
def test_sigkill_mid_stream_final_table_is_exact(kafka, topic_name, tmp_path: Path,
                                                 group_by: str) -> None:
    q = _Query.create(kafka.bootstrap_servers, topic_name, tmp_path, group_by)
    bootstrap, source, sink, service, state, sql = (q.bootstrap, q.source, q.sink, q.service,
                                                    q.state, q.sql)
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

    expected = _expected(first + second + third, group_by)
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
    assert any(n != "0" for n in _restored(out3)), out3


# The lean test: records per phase, and commits every 100 ms (a few thousand records each), so
# that the kills, after a third of each phase's input is committed, come long before its end.
LEAN_RECORDS = (30_000, 15_000, 5_000)
# A static member (KIP-345): the restarted process takes the killed one's place at once,
# instead of the group waiting out the dead member's session (45 s by default).
LEAN_ARGS = ("-p", "ksql.streams.commit.interval.ms=100",
             "--config", "group.instance.id=crash-test")


def _committed(consumer: Consumer, topic: str) -> list[int]:
    """How many records of each partition of ``topic`` the consumer's group has committed."""
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    try:
        return [max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10)]
    except KafkaException:  # the coordinator is loading
        return [0] * PARTITIONS


def _kill_after_commit(proc: subprocess.Popen, group: Consumer, topic: str, above: int,
                       each_of: str | None = None) -> tuple[int, str]:
    """SIGKILL ``proc`` as soon as its group has committed more than ``above`` records of
    ``topic`` (and, with ``each_of``, some of each partition of that topic: every task has
    state); the records of ``topic`` committed when it died (none are committed after), and
    its output."""

    def reached() -> bool:
        return sum(_committed(group, topic)) > above and (
            each_of is None or min(_committed(group, each_of)) > 0)

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not reached():
        time.sleep(0.02)
    out = _kill(proc)
    return sum(_committed(group, topic)), out


def _committed_to_end(group: Consumer, topics: list[str]) -> bool:
    """Whether the group committed every record of each topic, in order: a repartition topic
    is complete once its source is committed (outputs are flushed before each commit)."""
    for topic in topics:
        ends = sum(group.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in range(PARTITIONS))
        if sum(_committed(group, topic)) < ends:
            return False
    return True


@dataclass
class _LeanRun:
    """One lean test's query, its consumer group and what has been produced so far."""

    q: _Query
    group: Consumer
    topics: list[str]  # the source, and the repartition topic when there is one
    produced: int = 0
    outputs: list[str] = field(default_factory=list)

    def produce(self, count: int) -> None:
        _produce(self.q.bootstrap, self.q.source, self.produced, count)
        self.produced += count

    def start(self) -> subprocess.Popen:
        return _start(self.q.sql, self.q.bootstrap, self.q.service, self.q.state, *LEAN_ARGS)

    def kill_mid_stream(self, above: int, each_of: str | None = None) -> int:
        """Start the query and SIGKILL it once its group has committed more than ``above``
        source records but before it has committed all input: a kill mid-stream is certain,
        not a matter of speed. When the process got through everything before the kill (a
        fast or a loaded machine), more input is produced and the query runs again, from
        where it was, with twice as much. The source records committed at the kill."""
        extra = LEAN_RECORDS[-1]
        for _ in range(6):
            at_kill, out = _kill_after_commit(self.start(), self.group, self.q.source, above,
                                              each_of)
            self.outputs.append(out)
            assert at_kill > above, out  # it made progress, and committed it, before the kill
            if not _committed_to_end(self.group, self.topics):
                return at_kill
            above = at_kill
            self.produce(extra)
            extra *= 2
        pytest.fail("the query consumed all its input before every kill:\n"
                    + "\n---\n".join(self.outputs))


@pytest.mark.parametrize("group_by", ["key", "value"])
def test_sigkill_mid_stream_lean_final_table_is_exact(kafka, topic_name, tmp_path: Path,
                                                      group_by: str) -> None:
    q = _Query.create(kafka.bootstrap_servers, topic_name, tmp_path, group_by)
    (query_id,) = [r.query_id for r in Session({}).execute(q.sql.read_text())
                   if isinstance(r, QueryPlan)]
    group_name = group_id(q.service, query_id)
    topics = [q.source] if group_by == "key" else \
        [q.source, f"{group_name}-Aggregate-GroupBy-repartition"]
    run = _LeanRun(q, Consumer({"bootstrap.servers": q.bootstrap, "group.id": group_name}),
                   topics)
    first, second, third = LEAN_RECORDS
    try:
        run.produce(first)
        # Killed after commits, before the end: some input not yet committed (in the state).
        at_kill = run.kill_mid_stream(first // 3)
        run.produce(second)  # more input arrives while it is down

        # Restarted from its local state. A query reads one partition after another here:
        # the kill waits until each task has state (the aggregation's input: the source, or
        # the repartition topic), after progress past the first kill.
        run.kill_mid_stream(at_kill, each_of=topics[-1])
        shutil.rmtree(q.state)  # the next start has only the changelog topic
        run.produce(third)

        proc = run.start()
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None \
                    and not _committed_to_end(run.group, topics):
                time.sleep(0.2)
        finally:
            run.outputs.append(_kill(proc))
        table, _ = _table(q.bootstrap, q.sink)
    finally:
        run.group.close()
    outputs = run.outputs
    assert table == _expected(run.produced, group_by), "\n---\n".join(outputs)
    # Every task had committed state, and the last run restored it from the changelog alone.
    restored = _restored(outputs[-1])
    assert len(restored) == PARTITIONS and "0" not in restored, outputs[-1]
