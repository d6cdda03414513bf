"""Joins over several partitions: rows whose join key is not their key go through a
repartition topic (placed like the other side by murmur2 of the key bytes), and a copy
re-sent after a crash is applied once."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from hayase.client.partitioners import kafka_partition
from hayase.engine.joins import JoinQuery, make_query
from hayase.engine.processing_log import ProcessingLog
from hayase.engine.record import OutputRecord, Record
from hayase.sql import Session  # type: ignore[attr-defined]
from hayase.sql.plan import QueryPlan

DDL = (
    "CREATE STREAM IMPRESSIONS (ID STRING KEY, CAMPAIGN STRING) "
    "WITH (KAFKA_TOPIC='impressions', FORMAT='JSON', PARTITIONS=2);"
    "CREATE TABLE CAMPAIGNS (CAMPAIGN STRING PRIMARY KEY, ADVERTISER STRING) "
    "WITH (KAFKA_TOPIC='campaigns', FORMAT='JSON', PARTITIONS=2);"
    "CREATE STREAM E AS SELECT C.CAMPAIGN, I.ID, ADVERTISER FROM IMPRESSIONS I "
    "JOIN CAMPAIGNS C ON I.CAMPAIGN = C.CAMPAIGN;"
)
N = 2


def _query() -> JoinQuery:
    plan = [r for r in Session({}).execute(DDL) if isinstance(r, QueryPlan)][0]
    q = make_query(plan, ProcessingLog(), repartition_prefix="svc-q")
    assert isinstance(q, JoinQuery)
    return q


class Cluster:
    """Topics with N partitions; records placed by murmur2 like the runtime's producer."""

    def __init__(self, q: JoinQuery) -> None:
        self.q = q
        self.logs: dict[tuple[str, int], list[OutputRecord]] = {}
        self.sink: list[OutputRecord] = []

    def produce(self, out: OutputRecord) -> None:
        if out.topic == self.q.sink_topic:
            self.sink.append(out)
            return
        assert out.key is not None
        p = kafka_partition(out.key, N)
        self.logs.setdefault((out.topic, p), []).append(out)

    def run(self, topic: str, partition: int, start: int = 0) -> None:
        for off, r in enumerate(self.logs.get((topic, partition), [])[start:], start):
            for out in self.q.process(Record(topic, partition, off, r.timestamp, r.key,
                                             r.value, ())):
                self.produce(out)


def _out(topic: str, key: Any, value: Any, ts: int) -> OutputRecord:
    return OutputRecord(topic, orjson.dumps(key), orjson.dumps(value), ts, ())


def test_stream_rekeyed_to_the_table_partition_joins_every_row() -> None:
    q = _query()
    assert [t for t, _ in q.internal_topics()] == ["svc-q-Join-repartition"]
    assert "svc-q-Join-repartition" in q.source_topics
    c = Cluster(q)
    campaigns = [f"c{i}" for i in range(8)]
    for i, camp in enumerate(campaigns):
        c.produce(_out("campaigns", camp, {"ADVERTISER": f"a{i}"}, 0))
    for i in range(40):
        c.produce(_out("impressions", f"i{i}", {"CAMPAIGN": campaigns[i % 8]}, 10 + i))
    for p in range(N):
        c.run("campaigns", p)
        c.run("impressions", p)
    # Impressions of one campaign sit in both partitions before the repartition.
    rep = "svc-q-Join-repartition"
    for p in range(N):
        c.run(rep, p)
    got = sorted((orjson.loads(o.key), orjson.loads(o.value)["I_ID"] if "I_ID" in
                  orjson.loads(o.value) else orjson.loads(o.value)["ID"]) for o in c.sink)
    want = sorted((campaigns[i % 8], f"i{i}") for i in range(40))
    assert got == want


def test_repartitioned_copies_resent_after_a_crash_apply_once() -> None:
    q = _query()
    c = Cluster(q)
    c.produce(_out("campaigns", "c1", {"ADVERTISER": "acme"}, 0))
    for i in range(5):
        c.produce(_out("impressions", f"i{i}", {"CAMPAIGN": "c1"}, 10 + i))
    for p in range(N):
        c.run("campaigns", p)
        c.run("impressions", p)
        # A crash before the commit: the restarted task forwards the same records again.
        q.state(p).offsets.pop(("impressions", p), None)
        c.run("impressions", p)
    assert sum(len(v) for (t, _), v in c.logs.items() if "repartition" in t) == 10
    rep = "svc-q-Join-repartition"
    for p in range(N):
        c.run(rep, p)
    counts = Counter(orjson.loads(o.value)["ID"] if "ID" in orjson.loads(o.value)
                     else orjson.loads(o.value)["I_ID"] for o in c.sink)
    assert counts == Counter({f"i{i}": 1 for i in range(5)})


def test_sides_with_different_partition_counts_are_refused_like_ksqldb() -> None:
    import pytest

    from hayase.sql.errors import StatementError

    sql = ("CREATE STREAM A (ID STRING KEY, V INT) WITH (KAFKA_TOPIC='a', FORMAT='JSON');"
           "CREATE STREAM B (ID STRING KEY, W INT) WITH (KAFKA_TOPIC='b', FORMAT='JSON');"
           "CREATE STREAM J AS SELECT A.ID, V, W FROM A JOIN B WITHIN 1 SECOND "
           "ON A.ID = B.ID;")
    plan = [r for r in Session({}).execute(sql) if isinstance(r, QueryPlan)][0]
    q = make_query(plan, ProcessingLog(), repartition_prefix="svc-q")
    assert q.internal_topics() == []
    q.check_copartitioning({"a": 3, "b": 3}.get)  # same counts: fine
    with pytest.raises(StatementError, match="number of partitions don't match"):
        q.check_copartitioning({"a": 2, "b": 3}.get)
    # A side that is repartitioned takes the other side's count: no refusal.
    rekeyed = _query()
    rekeyed.check_copartitioning({"impressions": 2, "campaigns": 5}.get)
