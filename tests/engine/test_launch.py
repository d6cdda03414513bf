"""hayase.engine.launch without a broker: which topics a query gets (repartition, changelog,
sizes, configs, internal replicas), the co-partitioning refusal, and KafkaTopics' handling of a
metadata answer that does not know a topic it created yet."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hayase.client.partitioners import kafka_partition
from hayase.engine.aggregate import AggregateQuery
from hayase.engine.changelog import CHANGELOG_CONFIGS, changelog_topic
from hayase.engine.joins import JoinQuery
from hayase.engine.launch import KafkaTopics, build_query
from hayase.engine.record import Record
from hayase.engine.runtime import REPARTITION_CONFIGS
from hayase.sql import Session  # type: ignore[attr-defined]
from hayase.sql.errors import StatementError
from hayase.sql.plan import QueryPlan

PREFIX = "_confluent-ksql-svc_query_"


class FakeTopics:
    def __init__(self, **counts: int) -> None:
        self.counts = dict(counts)
        self.created: dict[str, tuple[int | None, int | None, dict[str, str]]] = {}

    def ensure_topic(self, name: str, partitions: int | None, replicas: int | None,
                     configs: Mapping[str, str] | None = None) -> None:
        if name not in self.counts:
            self.counts[name] = partitions or 1
            self.created[name] = (partitions, replicas, dict(configs or {}))

    def partitions(self, topic: str) -> int | None:
        return self.counts.get(topic)


def _plan(sql: str) -> QueryPlan:
    plans = [r for r in Session({}).execute(sql) if isinstance(r, QueryPlan)]
    assert len(plans) == 1
    return plans[0]


GROUP_BY_COLOR = ("CREATE STREAM S (ID INT KEY, COLOR STRING) WITH (KAFKA_TOPIC='s', "
                  "VALUE_FORMAT='JSON');"
                  "CREATE TABLE T AS SELECT COLOR, COUNT(*) AS N FROM S GROUP BY COLOR;")


def test_group_by_a_non_key_column_over_partitions_goes_through_a_repartition_topic(
        tmp_path: Path) -> None:
    topics = FakeTopics(s=3)
    props = {"ksql.internal.topic.replicas": "3"}
    query = build_query(_plan(GROUP_BY_COLOR), props, topics, "svc_", tmp_path)
    assert isinstance(query, AggregateQuery)
    rep = f"{PREFIX}CTAS_T_0-Aggregate-GroupBy-repartition"
    assert query.source_topics == ("s", rep)
    assert topics.created[rep] == (3, 3, REPARTITION_CONFIGS)
    assert topics.created[changelog_topic("svc_", "CTAS_T_0")] == (3, 3, CHANGELOG_CONFIGS)
    assert topics.created["T"] == (3, None, {})  # the sink: the source's partitions
    query.close()


def test_one_partition_needs_no_repartition_topic(tmp_path: Path) -> None:
    topics = FakeTopics(s=1)
    query = build_query(_plan(GROUP_BY_COLOR), {}, topics, "svc_", tmp_path)
    assert query.source_topics == ("s",)
    assert not any("repartition" in name for name in topics.created)
    query.close()


JOIN = ("CREATE TABLE C (CUST STRING PRIMARY KEY, NAME STRING) WITH (KAFKA_TOPIC='c', "
        "VALUE_FORMAT='JSON');"
        "CREATE STREAM O (ID INT KEY, CUST STRING) WITH (KAFKA_TOPIC='o', VALUE_FORMAT='JSON');")


def test_a_join_on_a_non_key_column_gets_its_repartition_topic(tmp_path: Path) -> None:
    topics = FakeTopics(c=3, o=3)
    plan = _plan(JOIN + "CREATE STREAM J AS SELECT O.CUST AS CUST, O.ID, C.NAME FROM O "
                        "JOIN C ON O.CUST = C.CUST;")
    query = build_query(plan, {}, topics, "svc_", tmp_path)
    assert isinstance(query, JoinQuery)
    reps = [n for n in topics.created if n.endswith("-repartition")]
    assert reps == [f"{PREFIX}CSAS_J_0-Join-repartition"]
    assert topics.created[reps[0]] == (3, None, REPARTITION_CONFIGS)
    query.close()


def test_a_join_of_sides_with_different_partition_counts_is_refused(tmp_path: Path) -> None:
    topics = FakeTopics(c=2, o=3)
    plan = _plan("CREATE TABLE C (CUST STRING PRIMARY KEY, NAME STRING) WITH (KAFKA_TOPIC='c', "
                 "VALUE_FORMAT='JSON');"
                 "CREATE STREAM O (CUST STRING KEY, ID INT) WITH (KAFKA_TOPIC='o', "
                 "VALUE_FORMAT='JSON');"
                 "CREATE STREAM J AS SELECT O.CUST AS CUST, O.ID, C.NAME FROM O "
                 "JOIN C ON O.CUST = C.CUST;")
    with pytest.raises(StatementError, match="number of partitions don't match"):
        build_query(plan, {}, topics, "svc_", tmp_path)


# ---------------------------------------------------------------------------- KafkaTopics


class FakeAdmin:
    """Metadata answers scripted per call; create_topic records the request."""

    def __init__(self, answers: list[dict[str, int]]) -> None:
        self.answers = answers
        self.created: list[tuple[str, int, int]] = []

    def metadata(self) -> Any:
        counts = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return SimpleNamespace(topics={
            name: SimpleNamespace(error=None, partitions={
                p: SimpleNamespace(leader=1) for p in range(n)}) for name, n in counts.items()})

    def create_topic(self, name: str, partitions: int, replicas: int,
                     configs: Mapping[str, str] | None = None) -> None:
        self.created.append((name, partitions, replicas))

    def offsets(self, topic: str, partitions: list[int]) -> dict[int, tuple[int, int]]:
        return {p: (0, 0) for p in partitions}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def test_a_created_topic_missing_from_a_later_answer_is_asked_again() -> None:
    # created; complete in the metadata; then one broker that does not know it yet.
    admin = FakeAdmin([{}, {"t": 3}, {}, {}, {"t": 3}])
    clock = FakeClock()
    topics = KafkaTopics(admin, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    topics.ensure_topic("t", 3, None)
    assert admin.created == [("t", 3, 1)]
    assert topics.partitions("t") == 3


def test_an_unknown_topic_is_absent_at_once_and_a_vanished_one_after_the_timeout() -> None:
    admin = FakeAdmin([{"t": 2}, {"t": 2}, {}])
    clock = FakeClock()
    topics = KafkaTopics(admin, timeout_s=5, clock=clock,  # type: ignore[arg-type]
                         sleep=clock.sleep)
    assert topics.partitions("u") is None and clock.now == 0
    assert topics.partitions("t") == 2
    assert topics.partitions("t") is None  # deleted by someone else: believed after 5 s
    assert clock.now >= 5
    assert topics.partitions("t") is None and "t" not in topics.known


# ------------------------------------------------------- GROUP BY over a JOIN, partitioned

JOIN_GROUP_BY = (
    "CREATE STREAM EVENTS (ID STRING KEY, V BIGINT) WITH (KAFKA_TOPIC='e', KEY_FORMAT='KAFKA', "
    "VALUE_FORMAT='JSON');"
    "CREATE TABLE USERS (ID STRING PRIMARY KEY, REGION STRING) WITH (KAFKA_TOPIC='u', "
    "KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON');"
    "CREATE TABLE BY_REGION WITH (KAFKA_TOPIC='br', KEY_FORMAT='KAFKA') AS SELECT U.REGION AS "
    "REGION, COUNT(*) AS N, SUM(E.V) AS TOTAL FROM EVENTS E JOIN USERS U ON E.ID = U.ID "
    "GROUP BY U.REGION;")

# The events keyed by their own id: the join re-keys them first (Join-repartition), then the
# joined rows move again, by region.
REKEYED_JOIN_GROUP_BY = (
    "CREATE STREAM EVENTS (EID STRING KEY, USR STRING, V BIGINT) WITH (KAFKA_TOPIC='e', "
    "KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON');"
    "CREATE TABLE USERS (ID STRING PRIMARY KEY, REGION STRING) WITH (KAFKA_TOPIC='u', "
    "KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON');"
    "CREATE TABLE BY_REGION WITH (KAFKA_TOPIC='br', KEY_FORMAT='KAFKA') AS SELECT U.REGION AS "
    "REGION, COUNT(*) AS N, SUM(E.V) AS TOTAL FROM EVENTS E JOIN USERS U ON E.USR = U.ID "
    "GROUP BY U.REGION;")


class Cluster:
    """Partitioned topics in memory: records placed like the Java client (murmur2);
    ``counts``: topics with another partition count than ``partitions``."""

    def __init__(self, partitions: int, counts: Mapping[str, int] | None = None) -> None:
        self.n = partitions
        self.counts = counts or {}
        self.logs: dict[tuple[str, int], list[Record]] = {}

    def produce(self, topic: str, key: bytes | None, value: bytes | None, ts: int,
                partition: int | None = None) -> None:
        n = self.counts.get(topic, self.n)
        p = partition if partition is not None else kafka_partition(key or b"", n)
        assert p < n
        log_ = self.logs.setdefault((topic, p), [])
        log_.append(Record(topic, p, len(log_), ts, key, value))

    def run(self, query: Any, positions: dict[tuple[str, int], int],
            stop_after: int | None = None) -> int:
        """Feed every unread record (oldest timestamp first across the query's topics) until
        none is left, or ``stop_after`` records; returns how many were processed."""
        done = 0
        while stop_after is None or done < stop_after:
            heads = [(log_[positions.get(tp, 0)].timestamp, tp) for tp, log_ in
                     self.logs.items() if tp[0] in query.source_topics
                     and positions.get(tp, 0) < len(log_)]
            if not heads:
                return done
            _ts, tp = min(heads)
            rec = self.logs[tp][positions.get(tp, 0)]
            positions[tp] = rec.offset + 1
            for out in query.process(rec):
                self.produce(out.topic, out.key, out.value, out.timestamp, out.partition)
            done += 1
        return done


def _final_table(cluster: Cluster, topic: str) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for (t, _p), log_ in sorted(cluster.logs.items()):
        if t == topic:
            for rec in log_:
                assert rec.key is not None
                table[rec.key.decode()] = None if rec.value is None else json.loads(rec.value)
    return {k: v for k, v in table.items() if v is not None}


@pytest.mark.parametrize("plan_text", [JOIN_GROUP_BY, REKEYED_JOIN_GROUP_BY],
                         ids=["join-on-key", "join-repartitioned"])
def test_group_by_over_a_partitioned_join_is_exact_across_a_restart(plan_text: str,
                                                                    tmp_path: Path) -> None:
    rekeyed = plan_text is REKEYED_JOIN_GROUP_BY
    topics = FakeTopics(e=3, u=3)
    query = build_query(_plan(plan_text), {}, topics, "svc_", tmp_path / "a")
    rep = f"{PREFIX}CTAS_BY_REGION_0-Aggregate-GroupBy-repartition"
    assert rep in query.source_topics
    assert topics.created[rep] == (3, None, REPARTITION_CONFIGS)
    assert any(t.endswith("-Join-repartition") for t in query.source_topics) is rekeyed
    # One sub-topology: task p is partition p of every topic, as before FK sub-topologies.
    assert len(query.subtopologies()) == 1
    assert topics.created[changelog_topic("svc_", "CTAS_BY_REGION_0")][0] == 3
    cluster = Cluster(3)
    users = {f"u{i}": f"r{i % 4}" for i in range(12)}
    for user, region in users.items():
        cluster.produce("u", user.encode(), json.dumps({"REGION": region}).encode(), 1)
    for i in range(300):
        if rekeyed:
            cluster.produce("e", f"e{i}".encode(),
                            json.dumps({"USR": f"u{i % 12}", "V": i}).encode(), 10 + i)
        else:
            cluster.produce("e", f"u{i % 12}".encode(), json.dumps({"V": i}).encode(), 10 + i)
    positions: dict[tuple[str, int], int] = {}
    assert cluster.run(query, positions, stop_after=350) == 350
    for p in list(query.states):
        query.commit(p)
    # A crash: 100 more records processed (their forwards are on the repartition topic) but
    # not committed; the restarted query reads every topic from the start (the group's offsets
    # lag the state): the state's offsets and marks give each record exactly one effect.
    assert cluster.run(query, positions, stop_after=100) == 100
    query.close()
    query = build_query(_plan(plan_text), {}, topics, "svc_", tmp_path / "a")
    cluster.run(query, {})
    query.close()
    want: dict[str, dict[str, int]] = {}
    for i in range(300):
        row = want.setdefault(users[f"u{i % 12}"], {"N": 0, "TOTAL": 0})
        row["N"] += 1
        row["TOTAL"] += i
    assert _final_table(cluster, "br") == want


# ------------------------------------------- FK joins: the right table's own sub-topology

FK_JOIN = (
    "CREATE TABLE ORDERS (ID STRING PRIMARY KEY, CUST STRING, V BIGINT) WITH (KAFKA_TOPIC='o', "
    "KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON');"
    "CREATE TABLE CUSTOMERS (ID STRING PRIMARY KEY, REGION STRING) WITH (KAFKA_TOPIC='c', "
    "KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON');")
FK_GROUP_BY = FK_JOIN + (
    "CREATE TABLE BY_REGION WITH (KAFKA_TOPIC='br', KEY_FORMAT='KAFKA') AS SELECT C.REGION AS "
    "REGION, COUNT(*) AS N, SUM(O.V) AS TOTAL FROM ORDERS O JOIN CUSTOMERS C ON O.CUST = C.ID "
    "GROUP BY C.REGION;")


@pytest.mark.parametrize(("left", "right"), [(3, 2), (2, 5), (3, 3), (1, 4)])
def test_fk_join_tasks_are_numbered_per_sub_topology(left: int, right: int,
                                                     tmp_path: Path) -> None:
    """Any partition counts run (ksqlDB's "partition count mismatch" is allowed): the left
    table and the responses are sub-topology 0 (tasks 0..left-1), the right table and the
    registrations sub-topology 1 (the next ``right`` tasks); one changelog partition each."""
    topics = FakeTopics(o=left, c=right)
    plan = _plan(FK_JOIN + "CREATE TABLE J AS SELECT O.ID, CUST, V, REGION FROM ORDERS O "
                           "JOIN CUSTOMERS C ON O.CUST = C.ID;")
    query = build_query(plan, {}, topics, "svc_", tmp_path)
    assert isinstance(query, JoinQuery)
    reg, resp = query.fk_topics[0]
    assert query.subtopologies() == [("o", resp), ("c", reg)]
    assert topics.created[reg][0] == right and topics.created[resp][0] == left
    assert topics.created[changelog_topic("svc_", "CTAS_J_0")][0] == left + right
    assert [query.task_of("o", p) for p in range(left)] == list(range(left))
    assert [query.task_of(reg, p) for p in range(right)] == list(range(left, left + right))
    query.close()


@pytest.mark.parametrize("crash", [False, True], ids=["restart", "crash"])
def test_group_by_over_an_fk_join_of_different_counts_is_exact_across_a_restart(
        crash: bool, tmp_path: Path) -> None:
    """No regression of the GROUP BY repartition: the joined rows (from the left tasks)
    move by region through the GroupBy repartition topic, sized like the left table."""
    topics = FakeTopics(o=3, c=2)
    query = build_query(_plan(FK_GROUP_BY), {}, topics, "svc_", tmp_path)
    rep = f"{PREFIX}CTAS_BY_REGION_0-Aggregate-GroupBy-repartition"
    assert topics.created[rep][0] == 3 and rep in query.subtopologies()[0]
    cluster = Cluster(3, topics.counts)
    customers = {f"c{i}": f"r{i % 4}" for i in range(10)}
    for cust, region in customers.items():
        cluster.produce("c", cust.encode(), json.dumps({"REGION": region}).encode(), 1)
    orders = {f"o{i}": (f"c{i % 10}", i) for i in range(150)}
    for oid, (cust, v) in orders.items():
        cluster.produce("o", oid.encode(), json.dumps({"CUST": cust, "V": v}).encode(), 10)
    positions: dict[tuple[str, int], int] = {}
    cluster.run(query, positions, stop_after=300)
    for task in list(query.states):
        query.commit(task)
    if crash:
        cluster.run(query, positions, stop_after=150)  # processed, never committed
    query.close()
    query = build_query(_plan(FK_GROUP_BY), {}, topics, "svc_", tmp_path)
    cluster.run(query, {})  # every topic from its start: the state's offsets decide
    query.close()
    want: dict[str, dict[str, int]] = {}
    for cust, v in orders.values():
        row = want.setdefault(customers[cust], {"N": 0, "TOTAL": 0})
        row["N"] += 1
        row["TOTAL"] += v
    assert _final_table(cluster, "br") == want
