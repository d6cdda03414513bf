"""The join operators: stream-stream windows and outer semantics, stream-table enrichment,
table-table and foreign-key joins, n-way chains, and state that survives a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from hayase.engine.joins import JoinQuery, make_query
from hayase.engine.processing_log import ProcessingLog
from hayase.engine.record import OutputRecord, Record
from hayase.engine.state import RocksDBStore
from hayase.sql import Session  # type: ignore[attr-defined]
from hayase.sql.plan import QueryPlan

STREAMS = (
    "CREATE STREAM IMPRESSIONS (ID STRING KEY, CAMPAIGN STRING) "
    "WITH (KAFKA_TOPIC='impressions', FORMAT='JSON');"
    "CREATE STREAM CLICKS (ID STRING KEY, X INT) WITH (KAFKA_TOPIC='clicks', FORMAT='JSON');"
    "CREATE TABLE CAMPAIGNS (CAMPAIGN STRING PRIMARY KEY, ADVERTISER STRING) "
    "WITH (KAFKA_TOPIC='campaigns', FORMAT='JSON');"
)


def _query(sql: str, **kw: Any) -> JoinQuery:
    plans = [r for r in Session({}).execute(STREAMS + sql) if isinstance(r, QueryPlan)]
    q = make_query(plans[0], ProcessingLog(), **kw)
    assert isinstance(q, JoinQuery)
    return q


class Feed:
    """Offsets per topic, like one partition of each input topic."""

    def __init__(self, q: JoinQuery) -> None:
        self.q = q
        self.offsets: dict[str, int] = {}

    def __call__(self, topic: str, key: Any, value: Any, ts: int) -> list[tuple[Any, Any, int]]:
        off = self.offsets.get(topic, 0)
        self.offsets[topic] = off + 1
        rec = Record(topic, 0, off, ts, orjson.dumps(key),
                     None if value is None else orjson.dumps(value))
        return [_decode(o) for o in self.q.process(rec)]


def _decode(o: OutputRecord) -> tuple[Any, Any, int]:
    return (orjson.loads(o.key) if o.key else None,
            orjson.loads(o.value) if o.value is not None else None, o.timestamp)


def test_stream_stream_inner_join_within_window_both_directions() -> None:
    feed = Feed(_query("CREATE STREAM J AS SELECT I.ID, CAMPAIGN, X FROM IMPRESSIONS I "
                       "JOIN CLICKS C WITHIN 10 SECONDS ON I.ID = C.ID;"))
    assert feed("impressions", "a", {"CAMPAIGN": "c1"}, 1000) == []
    assert feed("clicks", "a", {"X": 1}, 5000) == [("a", {"CAMPAIGN": "c1", "X": 1}, 5000)]
    assert feed("clicks", "a", {"X": 2}, 20000) == []  # 19 s after the impression
    # An impression arriving later still joins earlier clicks inside its window.
    assert feed("impressions", "a", {"CAMPAIGN": "c2"}, 12000) == [
        ("a", {"CAMPAIGN": "c2", "X": 1}, 12000), ("a", {"CAMPAIGN": "c2", "X": 2}, 20000)]
    assert feed("clicks", "b", {"X": 3}, 12000) == []


def test_asymmetric_window_before_and_after() -> None:
    feed = Feed(_query("CREATE STREAM J AS SELECT I.ID, X FROM IMPRESSIONS I JOIN CLICKS C "
                       "WITHIN (1 SECOND, 5 SECONDS) ON I.ID = C.ID;"))
    feed("impressions", "a", {"CAMPAIGN": "c"}, 10000)
    assert feed("clicks", "a", {"X": 1}, 15000) == [("a", {"X": 1}, 15000)]  # 5 s after: in
    assert feed("clicks", "a", {"X": 2}, 8500) == []  # 1.5 s before: out
    assert feed("clicks", "a", {"X": 3}, 9000) == [("a", {"X": 3}, 10000)]  # 1 s before: in


def test_left_join_without_grace_pads_at_once() -> None:
    feed = Feed(_query("CREATE STREAM J AS SELECT I.ID, CAMPAIGN, X FROM IMPRESSIONS I "
                       "LEFT JOIN CLICKS C WITHIN 10 SECONDS ON I.ID = C.ID;"))
    assert feed("impressions", "a", {"CAMPAIGN": "c"}, 0) == [
        ("a", {"CAMPAIGN": "c", "X": None}, 0)]
    assert feed("clicks", "a", {"X": 1}, 1000) == [("a", {"CAMPAIGN": "c", "X": 1}, 1000)]


def test_left_join_with_grace_waits_until_the_window_closes() -> None:
    feed = Feed(_query("CREATE STREAM J AS SELECT I.ID, CAMPAIGN, X FROM IMPRESSIONS I "
                       "LEFT JOIN CLICKS C WITHIN 10 SECONDS GRACE PERIOD 5 SECONDS "
                       "ON I.ID = C.ID;"))
    assert feed("impressions", "a", {"CAMPAIGN": "matched"}, 0) == []
    assert feed("impressions", "b", {"CAMPAIGN": "unmatched"}, 1000) == []
    assert feed("clicks", "a", {"X": 1}, 2000) == [("a", {"CAMPAIGN": "matched", "X": 1}, 2000)]
    # Stream time 16001 > 1000 + 10000 + 5000: b's window has closed; a was matched.
    assert feed("clicks", "z", {"X": 9}, 15000) == []
    assert feed("clicks", "z", {"X": 9}, 16001) == [
        ("b", {"CAMPAIGN": "unmatched", "X": None}, 1000)]


def test_full_outer_join_pads_either_side() -> None:
    feed = Feed(_query("CREATE STREAM J AS SELECT ROWKEY AS K, CAMPAIGN, X FROM IMPRESSIONS I "
                       "FULL OUTER JOIN CLICKS C WITHIN 1 SECOND ON I.ID = C.ID;"))
    assert feed("clicks", "c", {"X": 1}, 0) == [("c", {"CAMPAIGN": None, "X": 1}, 0)]
    assert feed("impressions", "i", {"CAMPAIGN": "x"}, 0) == [
        ("i", {"CAMPAIGN": "x", "X": None}, 0)]


def test_stream_table_enrichment_inner_and_left() -> None:
    sql = ("CREATE STREAM E AS SELECT I.ID, I.CAMPAIGN, ADVERTISER FROM IMPRESSIONS I "
           "{} JOIN CAMPAIGNS C ON I.CAMPAIGN = C.CAMPAIGN;")
    inner = Feed(_query(sql.format("")))
    left = Feed(_query(sql.format("LEFT")))
    for feed in (inner, left):
        assert feed("campaigns", "c1", {"ADVERTISER": "acme"}, 0) == []
    # The result is keyed by the join key (the campaign), as in ksqlDB (a repartition).
    assert inner("impressions", "i1", {"CAMPAIGN": "c1"}, 5) == [
        ("c1", {"ID": "i1", "ADVERTISER": "acme"}, 5)]
    assert inner("impressions", "i2", {"CAMPAIGN": "c2"}, 6) == []
    assert left("impressions", "i2", {"CAMPAIGN": "c2"}, 6) == [
        ("c2", {"ID": "i2", "ADVERTISER": None}, 6)]
    # A table tombstone removes the row for later stream records.
    left("campaigns", "c1", None, 7)
    assert left("impressions", "i3", {"CAMPAIGN": "c1"}, 8) == [
        ("c1", {"ID": "i3", "ADVERTISER": None}, 8)]


TABLES = (
    "CREATE TABLE A (ID INT PRIMARY KEY, VA STRING) WITH (KAFKA_TOPIC='a', FORMAT='JSON');"
    "CREATE TABLE B (ID INT PRIMARY KEY, VB STRING) WITH (KAFKA_TOPIC='b', FORMAT='JSON');"
)


def test_table_table_left_join_updates_and_tombstones() -> None:
    feed = Feed(_query(TABLES + "CREATE TABLE J AS SELECT A.ID, VA, VB FROM A LEFT JOIN B "
                                "ON A.ID = B.ID;"))
    assert feed("b", 1, {"VB": "b1"}, 1) == []  # no left row yet
    assert feed("a", 1, {"VA": "a1"}, 2) == [(1, {"VA": "a1", "VB": "b1"}, 2)]
    assert feed("b", 1, None, 3) == [(1, {"VA": "a1", "VB": None}, 3)]
    assert feed("a", 1, None, 4) == [(1, None, 4)]


def test_table_table_inner_join_tombstone_when_a_side_goes() -> None:
    feed = Feed(_query(TABLES + "CREATE TABLE J AS SELECT A.ID, VA, VB FROM A JOIN B "
                                "ON A.ID = B.ID;"))
    assert feed("a", 1, {"VA": "a1"}, 5) == []
    assert feed("b", 1, {"VB": "b1"}, 2) == [(1, {"VA": "a1", "VB": "b1"}, 5)]
    assert feed("b", 1, None, 6) == [(1, None, 6)]


def test_foreign_key_join_follows_the_right_table() -> None:
    sql = ("CREATE TABLE ORDERS (OID INT PRIMARY KEY, CID INT) WITH (KAFKA_TOPIC='o', "
           "FORMAT='JSON');"
           "CREATE TABLE CUSTOMERS (CID INT PRIMARY KEY, NAME STRING) WITH (KAFKA_TOPIC='c', "
           "FORMAT='JSON');"
           "CREATE TABLE J AS SELECT OID, NAME FROM ORDERS LEFT JOIN CUSTOMERS "
           "ON ORDERS.CID = CUSTOMERS.CID;")
    feed = Feed(_query(sql))
    assert feed("o", 10, {"CID": 1}, 1) == [(10, {"NAME": None}, 1)]
    assert feed("o", 11, {"CID": 1}, 2) == [(11, {"NAME": None}, 2)]
    # One customer update re-emits every order that references it.
    assert feed("c", 1, {"NAME": "ann"}, 3) == [(10, {"NAME": "ann"}, 3), (11, {"NAME": "ann"}, 3)]
    assert feed("o", 11, {"CID": 2}, 4) == [(11, {"NAME": None}, 4)]
    assert feed("c", 1, {"NAME": "bob"}, 5) == [(10, {"NAME": "bob"}, 5)]


def test_three_way_stream_stream_table() -> None:
    sql = ("CREATE STREAM J AS SELECT T.CAMPAIGN, I.ID, X, ADVERTISER FROM IMPRESSIONS I "
           "JOIN CLICKS C WITHIN 1 MINUTE ON I.ID = C.ID "
           "LEFT JOIN CAMPAIGNS T ON I.CAMPAIGN = T.CAMPAIGN;")
    feed = Feed(_query(sql))
    feed("campaigns", "c1", {"ADVERTISER": "acme"}, 0)
    assert feed("impressions", "i1", {"CAMPAIGN": "c1"}, 10) == []
    assert feed("impressions", "i2", {"CAMPAIGN": "c9"}, 10) == []
    assert feed("clicks", "i1", {"X": 1}, 20) == [
        ("c1", {"I_ID": "i1", "X": 1, "ADVERTISER": "acme"}, 20)]
    assert feed("clicks", "i2", {"X": 2}, 30) == [
        ("c9", {"I_ID": "i2", "X": 2, "ADVERTISER": None}, 30)]


def test_join_state_restored_from_rocksdb_skips_applied_offsets(tmp_path: Path) -> None:
    sql = ("CREATE STREAM J AS SELECT I.ID, CAMPAIGN, X FROM IMPRESSIONS I "
           "JOIN CLICKS C WITHIN 10 SECONDS ON I.ID = C.ID;")

    def factory(p: int) -> RocksDBStore:
        return RocksDBStore(tmp_path / str(p))

    q = _query(sql, store_factory=factory)
    feed = Feed(q)
    feed("impressions", "a", {"CAMPAIGN": "c1"}, 0)
    q.commit(0)
    feed("impressions", "b", {"CAMPAIGN": "lost"}, 0)  # applied, never committed: a crash
    q.close()
    q2 = _query(sql, store_factory=factory)
    again = Feed(q2)
    # Redelivered from the committed offsets: offset 0 is already in the state.
    assert again("impressions", "a", {"CAMPAIGN": "c1"}, 0) == []
    assert again("impressions", "b", {"CAMPAIGN": "b"}, 0) == []
    assert again("clicks", "a", {"X": 1}, 1) == [("a", {"CAMPAIGN": "c1", "X": 1}, 1)]
    assert again("clicks", "b", {"X": 2}, 1) == [("b", {"CAMPAIGN": "b", "X": 2}, 1)]
    q2.close()


def test_window_entries_expire_after_retention_for_every_key() -> None:
    q = _query("CREATE STREAM J AS SELECT I.ID, X FROM IMPRESSIONS I JOIN CLICKS C "
               "WITHIN 1 SECOND GRACE PERIOD 0 SECONDS ON I.ID = C.ID;")
    feed = Feed(q)
    feed("impressions", "a", {"CAMPAIGN": "c"}, 0)
    feed("impressions", "b", {"CAMPAIGN": "c"}, 1500)
    store = q.state(0).store
    assert store.get(("W", 0, "L", "a")) is not None  # 0 > 1500 - 2000: still readable
    feed("impressions", "z", {"CAMPAIGN": "c"}, 2001)
    assert store.get(("W", 0, "L", "a")) is None  # retention (2 s) passed: dropped
    assert store.get(("W", 0, "L", "b")) is not None
    assert feed("clicks", "a", {"X": 1}, 900) == []


def test_group_by_over_a_join_counts_clicks_per_campaign() -> None:
    q = _query("CREATE TABLE CTR AS SELECT I.CAMPAIGN, COUNT(*) AS CLICKS FROM IMPRESSIONS I "
               "JOIN CLICKS C WITHIN 1 MINUTE ON I.ID = C.ID GROUP BY I.CAMPAIGN;")
    feed = Feed(q)
    feed("impressions", "i1", {"CAMPAIGN": "c1"}, 0)
    feed("impressions", "i2", {"CAMPAIGN": "c1"}, 0)
    assert feed("clicks", "i1", {"X": 1}, 10) == [("c1", {"CLICKS": 1}, 10)]
    assert feed("clicks", "i2", {"X": 1}, 20) == [("c1", {"CLICKS": 2}, 20)]
    assert feed("clicks", "i9", {"X": 1}, 30) == []
    q.commit(0)  # the aggregation's metadata lands in the join's store
    assert q.state(0).store.get(("agg", ("A", ("c1",)))) is not None
