"""The record cache in front of RocksDB and the fused path for windowed stream aggregations.

- State changes reach the database (and the changelog, via ``commit``'s changes) only at commit;
  a crash before a commit loses nothing a restart does not redo: the state on disk is the last
  commit's, with the offsets it reflects.
- A window opened and closed between two commits never reaches the database or the changelog.
- The fused path (stream rows into TUMBLING / HOPPING windows) gives exactly the outputs,
  late-record counts and processing-log entries of the general path, bad records included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from hayase.engine.aggregate import AggregateQuery, make_query
from hayase.engine.processing_log import ProcessingLog
from hayase.engine.record import OutputRecord, Record
from hayase.engine.state import META_KEY, RocksDBStore, encode
from hayase.sql import Session  # type: ignore[attr-defined]
from hayase.sql.plan import QueryPlan

DDL = ("CREATE STREAM PV (USER_ID STRING KEY, PAGE STRING, N BIGINT) "
       "WITH (KAFKA_TOPIC='pv', KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON');")
TUMBLING = ("CREATE TABLE C AS SELECT USER_ID, COUNT(*) AS CNT, SUM(N) AS TOTAL FROM PV "
            "WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 5 SECONDS) "
            "WHERE PAGE <> 'skip' GROUP BY USER_ID EMIT FINAL;")


def _query(sql: str, store_dir: Path | None = None) -> AggregateQuery:
    plan = [r for r in Session({}).execute(DDL + sql) if isinstance(r, QueryPlan)][0]
    factory = None if store_dir is None else (lambda p: RocksDBStore(store_dir / str(p)))
    q = make_query(plan, ProcessingLog(), store_factory=factory)
    assert isinstance(q, AggregateQuery)
    return q


def _rec(offset: int, user: str | None, ts: int, value: Any = None) -> Record:
    if value is None:
        value = {"PAGE": "p", "N": offset}
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return Record("pv", 0, offset, ts, None if user is None else user.encode(), raw)


def _events(n: int, first: int = 0) -> list[Record]:
    """Keys a..e, time advancing 1 s per 5 records, some records late or out of order."""
    out = []
    for i in range(n):
        ts = 1_000_000 + i * 200
        if i % 17 == 0:
            ts -= 30_000  # after its window closed: dropped
        elif i % 7 == 0:
            ts -= 1_500  # out of order, within the grace period
        out.append(_rec(first + i, "abcde"[i % 5], ts))
    return out


def _run(q: AggregateQuery, records: list[Record]) -> list[OutputRecord]:
    outputs: list[OutputRecord] = []
    for r in records:
        outputs += q.process(r)
    return outputs


def test_state_reaches_the_database_only_at_commit(tmp_path: Path) -> None:
    q = _query(TUMBLING, tmp_path)
    _run(q, _events(20))
    store = q.state(0).store
    assert isinstance(store, RocksDBStore)
    assert store.db.get(encode(META_KEY)) is None  # nothing written before the commit
    assert list(store.db.items()) == []
    changes = q.commit(0)
    written = {k for k, v in changes if v is not None and k != META_KEY}
    assert written and all(store.db.get(encode(k)) is not None for k in written)
    assert q.state(0).offsets == {("pv", 0): 20}


def test_crash_before_commit_loses_nothing(tmp_path: Path) -> None:
    events = _events(400)
    expected = _run(_query(TUMBLING), events)  # uninterrupted, in memory
    q = _query(TUMBLING, tmp_path)
    got = _run(q, events[:150])
    q.commit(0)
    got += _run(q, events[150:260])  # processed, never committed: lost with the process
    q.close()  # the crash: the cache and dirty entries are gone, the database stays
    q = _query(TUMBLING, tmp_path)
    resume = q.state(0).offsets[("pv", 0)]
    assert resume == 150
    outputs = _run(q, events)  # redelivered from the start: applied records are skipped
    # Outputs may repeat rows emitted before the crash, never skip or change one.
    assert {(o.key, o.value) for o in got + outputs} == {(o.key, o.value) for o in expected}
    assert len(expected) > 10


def test_window_opened_and_closed_between_commits_is_never_written(tmp_path: Path) -> None:
    q = _query(TUMBLING, tmp_path)
    q.process(_rec(0, "a", 1_000))
    q.commit(0)  # window [0, 10 s) of "a" is in the database
    q.process(_rec(1, "b", 2_000))  # window [0, 10 s) of "b": opened ...
    outs = q.process(_rec(2, "a", 15_000))  # ... and both closed by stream time (10 s + 5 s)
    assert [orjson.loads(o.value or b"null")["CNT"] for o in outs] == [1, 1]
    changes = dict(q.commit(0))
    assert changes[("W", ("a",), 0)] is None  # committed before: deleted (a tombstone)
    assert ("W", ("b",), 0) not in changes  # never committed: never written
    assert changes[("W", ("a",), 10_000)] is not None


def test_store_reopened_on_existing_data_reads_the_database(tmp_path: Path) -> None:
    s = RocksDBStore(tmp_path / "db")
    s.put(("A", ("k",)), 1)
    s.commit({"offsets": {}})
    s.close()
    s = RocksDBStore(tmp_path / "db")
    assert s.get(("A", ("k",))) == 1  # a cache miss goes to the database
    s.delete(("A", ("k",)))
    assert s.get(("A", ("k",))) is None
    assert (("A", ("k",)), None) in s.commit({"offsets": {}})  # a real delete: logged
    s.close()


BAD_RECORDS = [
    _rec(0, "a", 1_000),
    _rec(1, "a", 1_500, b"{not json"),  # deserialization error
    _rec(2, "a", 2_000, {"PAGE": "p", "N": "x"}),  # N is not a BIGINT
    _rec(3, None, 2_500),  # null key: GROUP BY USER_ID is null
    Record("pv", 0, 4, 3_000, b"b", None),  # tombstone: skipped
    _rec(5, "b", 3_500, {"PAGE": "skip", "N": 1}),  # filtered out by WHERE
    _rec(6, "b", 4_000, {"page": "p", "n": 2}),  # field names case-insensitively
    _rec(7, "c", 30_000),
    _rec(8, "a", 2_000),  # late: its window closed at 15 s
    Record("pv", 0, 9, 31_000, b"\xff\xfe", b'{"PAGE": "p", "N": 1}'),  # key not UTF-8
    _rec(10, "c", 60_000),
]


@pytest.mark.parametrize("sql", [
    TUMBLING,
    TUMBLING.replace("EMIT FINAL", "EMIT CHANGES"),
    TUMBLING.replace("TUMBLING (SIZE 10 SECONDS", "HOPPING (SIZE 10 SECONDS, ADVANCE BY 5 SECONDS"),
])
def test_fused_path_equals_the_general_path(sql: str) -> None:
    fused, general = _query(sql), _query(sql)
    assert fused._fused
    general._fused = False
    for rec in BAD_RECORDS + _events(60, first=100):
        assert fused.process(rec) == general.process(rec)
    assert fused.late_dropped == general.late_dropped > 0
    fused_log = [(e.type, e.error_message) for e in fused.log.drain()]
    assert fused_log == [(e.type, e.error_message) for e in general.log.drain()]
    assert len(fused_log) >= 3


def _emit_each(q: AggregateQuery) -> None:
    """EMIT FINAL's window emission the plain way: every entry through _emit_agg."""
    def emit_window(rec: Record, entries: list[Any], ws: int, we: int) -> list[OutputRecord]:
        outputs: list[OutputRecord] = []
        for _sort, gk, _kb, (accs, agg_ts, _emitted) in entries:
            out = q.agg.result(gk, accs, ws, we)
            if out is not None:
                outputs += q._emit_agg(rec, gk, out, False, agg_ts, ws, we)
        return outputs

    q._emit_window = emit_window  # type: ignore[method-assign]


@pytest.mark.parametrize("sql", [
    TUMBLING,
    TUMBLING.replace("SELECT USER_ID,", "SELECT USER_ID, PAGE,").replace(
        "GROUP BY USER_ID", "GROUP BY USER_ID, PAGE").replace(
        "AS SELECT", "WITH (KEY_FORMAT='JSON') AS SELECT"),
    TUMBLING.replace("SELECT USER_ID,", "SELECT CAST(N AS DOUBLE) / 4 AS D,").replace(
        "GROUP BY USER_ID", "GROUP BY CAST(N AS DOUBLE) / 4"),
    TUMBLING.replace("SELECT USER_ID,", "SELECT N % 3 AS M,").replace(
        "GROUP BY USER_ID", "GROUP BY N % 3").replace("PAGE <> 'skip'", "N <> 4"),
])
def test_emit_final_writes_what_emit_agg_writes(sql: str) -> None:
    fast, plain = _query(sql), _query(sql)
    _emit_each(plain)
    records = BAD_RECORDS + _events(300, first=100)
    out = _run(fast, records)
    assert out == _run(plain, records) and len(out) >= 5
    assert [(e.type, e.error_message) for e in fast.log.drain()] == \
        [(e.type, e.error_message) for e in plain.log.drain()]
