"""The aggregation operator: state, offsets already applied, restore, late records."""

from __future__ import annotations

from pathlib import Path

import orjson

from hayase.engine.aggregate import AggregateQuery, freeze, make_query
from hayase.engine.processing_log import ProcessingLog
from hayase.engine.record import Record
from hayase.engine.state import RocksDBStore
from hayase.sql import Session  # type: ignore[attr-defined]
from hayase.sql.plan import QueryPlan

DDL = "CREATE STREAM PV (USER_ID STRING KEY, PAGE STRING) WITH (KAFKA_TOPIC='pv', FORMAT='JSON');"


def _plan(sql: str) -> QueryPlan:
    plans = [r for r in Session({}).execute(DDL + sql) if isinstance(r, QueryPlan)]
    return plans[0]


def _rec(offset: int, user: str, ts: int, partition: int = 0) -> Record:
    return Record("pv", partition, offset, ts, orjson.dumps(user),
                  orjson.dumps({"PAGE": "p"}))


def _values(outs: list) -> list:
    return [orjson.loads(o.value) if o.value else None for o in outs]


def test_count_per_key_and_already_applied_offsets_are_skipped() -> None:
    q = make_query(_plan("CREATE TABLE C AS SELECT USER_ID, COUNT(*) AS N FROM PV "
                         "GROUP BY USER_ID;"), ProcessingLog())
    assert isinstance(q, AggregateQuery)
    assert _values(q.process(_rec(0, "a", 1))) == [{"N": 1}]
    assert _values(q.process(_rec(1, "a", 2))) == [{"N": 2}]
    assert q.process(_rec(1, "a", 2)) == []  # redelivered: already in the state
    assert _values(q.process(_rec(2, "b", 3))) == [{"N": 1}]


def test_state_restored_from_rocksdb_continues_exactly(tmp_path: Path) -> None:
    sql = "CREATE TABLE C AS SELECT USER_ID, COUNT(*) AS N FROM PV GROUP BY USER_ID;"
    q = make_query(_plan(sql), ProcessingLog(),
                   store_factory=lambda p: RocksDBStore(tmp_path / str(p)))
    assert isinstance(q, AggregateQuery)
    for i in range(3):
        q.process(_rec(i, "a", i))
    q.commit(0)
    q.process(_rec(3, "a", 3))  # applied but never committed: a crash loses it
    q.close()
    q2 = make_query(_plan(sql), ProcessingLog(),
                    store_factory=lambda p: RocksDBStore(tmp_path / str(p)))
    assert q2.process(_rec(1, "a", 1)) == []
    assert _values(q2.process(_rec(3, "a", 3))) == [{"N": 4}]
    q2.close()  # type: ignore[attr-defined]


def test_emit_final_tumbling_drops_late_records() -> None:
    q = make_query(_plan(
        "CREATE TABLE C AS SELECT USER_ID, COUNT(*) AS N FROM PV WINDOW TUMBLING "
        "(SIZE 10 SECONDS, GRACE PERIOD 5 SECONDS) GROUP BY USER_ID EMIT FINAL;"),
        ProcessingLog())
    assert isinstance(q, AggregateQuery)
    outs = []
    for i, (user, ts) in enumerate([("a", 1000), ("b", 2000), ("a", 12000), ("a", 9000),
                                    ("a", 15000), ("b", 3000), ("a", 25000)]):
        outs += q.process(_rec(i, user, ts))
    # [0,10s) closes at stream time 15s: a=2 (1000, 9000), b=1; the b at 3000 came after it
    # closed and is dropped; [10s,20s) closes at 25s: a=2.
    assert _values(outs) == [{"N": 2}, {"N": 1}, {"N": 2}]
    assert [o.timestamp for o in outs] == [9000, 2000, 15000]
    # Windowed key = key + 8-byte window start; placed by the key alone (Kafka Streams'
    # WindowedStreamPartitioner).
    assert outs[0].key == b'"a"' + (0).to_bytes(8, "big") and outs[0].partition_key == b'"a"'
    assert outs[2].key == b'"a"' + (10000).to_bytes(8, "big")
    assert q.late_dropped == 1



def test_freeze_makes_struct_array_and_map_keys_hashable_inside_tuples() -> None:
    key = ({"A": [1, 2], "B": {"C": 3}}, 1000, None)  # a windowed STRUCT key
    frozen = freeze(key)
    assert hash(frozen) == hash(freeze(({"A": [1, 2], "B": {"C": 3}}, 1000, None)))
    assert frozen == key and frozen != freeze(({"A": [1, 3], "B": {"C": 3}}, 1000, None))
    assert {frozen: 1}[freeze(key)] == 1
