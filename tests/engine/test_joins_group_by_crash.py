"""GROUP BY over a stream-stream join in `hayase run`, SIGKILLed mid-stream and restarted: the
final table counts each joined pair once. The join's task forwards pairs to the GroupBy
repartition topic read-committed (hayase.engine.repartition): a restarted join task that reads
its two topics in another order re-sends a pair at another source position, which position
marks counted twice. Both backends.

"Mid-stream" is made certain, not hoped for: the process is killed once its group has
committed part of the input, and when it turns out to have committed all of it before the kill
(a fast machine), more input is produced and it runs and is killed again."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from tests.engine.scaleout import produce, read_table, stop_and_read_log

from hayase.client.admin import Admin
from hayase.engine.runtime import group_id
from hayase.sql.plan import QueryPlan
from hayase.sql.session import Session

pytestmark = pytest.mark.integration

PARTITIONS = 3
GROUPS = 7
BASE_TS = int(time.time() * 1000)  # recent: Apache Kafka's retention keeps them


def _pairs(i: int) -> int:
    """Key k<i> has one S1 record and this many S2 records (so this many pairs)."""
    return 2 if i % 3 == 0 else 1


def _produce(bootstrap: str, topics: dict[str, str], start: int, count: int) -> None:
    produce(bootstrap, topics["s2"], [(f"k{i}", {"V": i}, BASE_TS + i + j)
                                      for i in range(start, start + count)
                                      for j in range(_pairs(i))])
    produce(bootstrap, topics["s1"], [(f"k{i}", {"G": f"g{i % GROUPS}"}, BASE_TS + i)
                                      for i in range(start, start + count)])


def _expected(count: int) -> dict[str, dict]:
    table: dict[str, dict] = {}
    for i in range(count):
        row = table.setdefault(f"g{i % GROUPS}", {"N": 0})
        row["N"] += _pairs(i)
    return table


def _committed_to_end(group: Consumer, topics: list[str]) -> bool:
    """Whether the group committed every record of each of ``topics`` (False when its
    coordinator does not answer yet)."""
    try:
        for topic in topics:
            tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            for tp in group.committed(tps, timeout=10):
                if tp.offset < group.get_watermark_offsets(tp, timeout=10)[1]:
                    return False
    except KafkaException:
        return False
    return True


def _committed(group: Consumer, topic: str) -> int:
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    try:
        return sum(max(tp.offset, 0) for tp in group.committed(tps, timeout=10))
    except KafkaException:  # the coordinator is loading
        return 0


def _start(sql: Path, bootstrap: str, service: str, state: Path, log: Path,
           ) -> subprocess.Popen:
    """`hayase run` committing every 100 ms (a kill then comes between commits, with pairs
    forwarded but not committed) as a static member (KIP-345: the restarted process takes
    the killed one's partitions at once, not after the dead member's session)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hayase", "run", str(sql), "--bootstrap-servers", bootstrap,
             "-p", f"ksql.service.id={service}", "-p", f"ksql.streams.state.dir={state}",
             "-p", "ksql.streams.commit.interval.ms=100",
             "--config", "group.instance.id=join-group-by-crash"],
            stdout=out, stderr=subprocess.STDOUT)


def test_sigkill_mid_stream_group_by_over_a_stream_stream_join_is_exact(
        kafka, topic_name, tmp_path: Path) -> None:
    bootstrap = kafka.bootstrap_servers
    topics = {name: f"{topic_name}-{name}" for name in ("s1", "s2", "counts")}
    admin = Admin({"bootstrap.servers": bootstrap})
    for name in ("s1", "s2"):
        admin.create_topic(topics[name], partitions=PARTITIONS)
    sql = tmp_path / "join.sql"
    sql.write_text(
        f"CREATE STREAM S1 (K STRING KEY, G STRING) WITH (kafka_topic='{topics['s1']}', "
        "key_format='KAFKA', value_format='JSON');\n"
        f"CREATE STREAM S2 (K STRING KEY, V INT) WITH (kafka_topic='{topics['s2']}', "
        "key_format='KAFKA', value_format='JSON');\n"
        f"CREATE TABLE COUNTS WITH (kafka_topic='{topics['counts']}', "
        f"partitions={PARTITIONS}) AS SELECT S1.G AS G, COUNT(*) AS N FROM S1 "
        "JOIN S2 WITHIN 1 HOUR ON S1.K = S2.K GROUP BY S1.G;\n")
    service = f"g{uuid.uuid4().hex[:8]}_"
    (query_id,) = [r.query_id for r in Session({}).execute(sql.read_text())
                   if isinstance(r, QueryPlan)]
    group_name = group_id(service, query_id)
    inputs = [topics["s1"], topics["s2"], f"{group_name}-Aggregate-GroupBy-repartition"]
    group = Consumer({"bootstrap.servers": bootstrap, "group.id": group_name})
    state = tmp_path / "state"
    logs: list[str] = []
    produced = 0

    def run(until: Callable[[], bool], sig: int) -> None:
        log = tmp_path / f"run{len(logs)}.log"
        proc = _start(sql, bootstrap, service, state, log)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and not until():
            time.sleep(0.02)
        logs.append(stop_and_read_log(proc, log, sig))

    try:
        step = 6000
        _produce(bootstrap, topics, 0, step)
        produced = step
        above = 0
        for _ in range(6):  # killed after some commits, before it committed everything
            target = above + step // 3
            run(lambda t=target: _committed(group, topics["s1"]) > t, signal.SIGKILL)
            at_kill = _committed(group, topics["s1"])
            assert at_kill > target, logs[-1]  # progress was made and committed
            if not _committed_to_end(group, inputs):
                break
            above = at_kill  # it got through all of it first: more input, run again
            _produce(bootstrap, topics, produced, step)
            produced += step
            step *= 2
        else:
            pytest.fail("every run consumed all its input before the kill:\n"
                        + "\n---\n".join(logs))
        _produce(bootstrap, topics, produced, 2000)  # more input while it is down
        produced += 2000
        expected = _expected(produced)

        def finished() -> bool:
            return _committed_to_end(group, inputs) and \
                read_table(bootstrap, topics["counts"], PARTITIONS) == expected

        run(finished, signal.SIGTERM)  # restarted from its state; stopped once it is done
        table = read_table(bootstrap, topics["counts"], PARTITIONS)
    finally:
        group.close()
    assert table == expected, "\n---\n".join(logs)
