"""The Kafka runtime's batch path for windowed aggregations (AggregateQuery.batch_path):
QueryWorker.process_batch over consumed messages gives exactly what running every record through
``AggregateQuery.process`` gives — outputs (with their headers), state entries, offsets kept in
the state and committed to the group, stream time, late records and processing-log entries —
whatever the mix of plain records, bad ones, consumer errors, partitions and records the state
already reflects."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError

from hayase.engine.aggregate import AggregateQuery, make_query
from hayase.engine.processing_log import ProcessingLog
from hayase.engine.record import Record
from hayase.engine.runtime import QueryStats, QueryWorker
from hayase.engine.state import MemoryStore
from hayase.sql import Session  # type: ignore[attr-defined]
from hayase.sql.plan import QueryPlan

DDL = ("CREATE STREAM PV (USER_ID STRING KEY, PAGE STRING, N BIGINT) "
       "WITH (KAFKA_TOPIC='pv', KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON');")
FINAL = ("CREATE TABLE C AS SELECT USER_ID, COUNT(*) AS CNT, SUM(N) AS TOTAL FROM PV "
         "WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 5 SECONDS) "
         "WHERE PAGE <> 'skip' GROUP BY USER_ID EMIT FINAL;")
# WHERE fails (logged, row dropped) for a PAGE that is not a number.
CAST_WHERE = FINAL.replace("PAGE <> 'skip'", "CAST(PAGE AS INT) >= 0")
# An aggregate argument fails (logged, null) for a PAGE that is not a number.
CAST_ARG = FINAL.replace("SUM(N)", "SUM(CAST(PAGE AS INT))")
# The group key is a value column, not the record key.
BY_PAGE = FINAL.replace("SELECT USER_ID,", "SELECT PAGE,").replace("GROUP BY USER_ID",
                                                                   "GROUP BY PAGE")


class FakeMessage:
    def __init__(self, partition: int, offset: int, ts: int, key: bytes | None,
                 value: bytes | None, headers: list[tuple[str, bytes]] | None = None,
                 error: KafkaError | None = None) -> None:
        self._p, self._o, self._ts, self._k, self._v = partition, offset, ts, key, value
        self._h, self._e = headers, error

    def error(self) -> KafkaError | None:
        return self._e

    def topic(self) -> str:
        return "pv"

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def timestamp(self) -> tuple[int, int]:
        return (1, self._ts)

    def key(self) -> bytes | None:
        return self._k

    def value(self) -> bytes | None:
        return self._v

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._h

    def record(self) -> Record:
        return Record("pv", self._p, self._o, self._ts, self._k, self._v,
                      tuple(self._h or ()))


class FakeProducer:
    def __init__(self) -> None:
        self.records: list[tuple[Any, ...]] = []

    def produce(self, topic: str, value: bytes | None, key: bytes | None, timestamp: int,
                on_delivery: Any = None, headers: Any = None, partition: Any = None) -> None:
        self.records.append((topic, key, value, timestamp, tuple(headers or ())))

    def flush(self, timeout: float) -> int:
        return 0

    def list_topics(self, topic: str, timeout: float) -> Any:
        return SimpleNamespace(topics={})


class FakeConsumer:
    def __init__(self) -> None:
        self.committed: dict[tuple[str, int], int] = {}

    def commit(self, offsets: Any, asynchronous: bool) -> None:
        self.committed.update({(tp.topic, tp.partition): tp.offset for tp in offsets})


def _query(sql: str) -> AggregateQuery:
    plan = [r for r in Session({}).execute(DDL + sql) if isinstance(r, QueryPlan)][0]
    q = make_query(plan, ProcessingLog(), store_factory=lambda _p: MemoryStore())
    assert isinstance(q, AggregateQuery)
    return q


def _worker(query: AggregateQuery) -> Any:
    w = object.__new__(QueryWorker)
    w.query = query
    w.include_rows = False
    w.log_topic = "log"
    w.stats = QueryStats()
    w._pending = {}
    w._partition_counts = {}
    w._failure = None
    w._purge = None
    w.changelog = None
    w.commit_interval_s = 0.0
    w._next_commit = 0.0
    w._task_of = lambda _t, p: p
    w.producer = FakeProducer()
    w.consumer = FakeConsumer()
    w._batch_path = query.batch_path()
    assert w._batch_path is not None
    return w


def _msg(p: int, offset: int, user: str | None, ts: int, value: Any = None,
         **kw: Any) -> FakeMessage:
    if value is None:
        value = {"PAGE": str(offset % 3), "N": offset}
    return FakeMessage(p, offset, ts, None if user is None else user.encode(),
                       orjson.dumps(value), **kw)


def _messages() -> list[FakeMessage]:
    """Two partitions in runs; plain records with bad, late, closing and erroring ones."""
    out: list[FakeMessage] = []
    offsets = [0, 0]
    for i in range(400):
        p = (i // 7) % 2
        o = offsets[p]
        offsets[p] += 1
        ts = 1_000_000 + i * 150
        if i % 29 == 0:
            ts -= 30_000  # late
        elif i % 11 == 0:
            ts -= 4_000  # out of order, within grace
        user = "abcdefg"[i % 7]
        if i % 41 == 5:
            out.append(_msg(p, o, user, ts, {"PAGE": "skip", "N": 1}))
        elif i % 41 == 9:
            out.append(FakeMessage(p, o, ts, user.encode(), b"not json"))
        elif i % 41 == 13:
            out.append(FakeMessage(p, o, ts, user.encode(), None))  # tombstone: skipped
        elif i % 41 == 17:
            out.append(FakeMessage(p, o, ts, None, b'{"PAGE": "1", "N": 1}'))  # null key
        elif i % 41 == 21:
            out.append(_msg(p, o, user, ts, {"PAGE": "abc", "N": 2}))  # CAST fails
        elif i % 41 == 25:
            out.append(FakeMessage(p, o, ts, b"\xff\xfe", b'{"PAGE": "1", "N": 1}'))
        elif i % 41 == 33:
            out.append(_msg(p, o, user, -1))  # no event time
        elif i % 43 == 2:  # other JSON shapes and values: the serde's general reading
            out.append(FakeMessage(p, o, ts, user.encode(), [
                b'{"page": "1", "n": 3}', b'{"PAGE": "1", "N": 2, "X": 1}', b'{"PAGE": "1"}',
                b'{"page": "1", "PAGE": "2", "N": 1}', b'{"PAGE": 5, "N": "7"}', b'[1, 2]',
                b'null', b'{"PAGE": "1", "N": 99999999999999999999}'][(i // 43) % 8]))
        elif i % 53 == 0:
            out.append(FakeMessage(p, -1, -1, None, None,
                                   error=KafkaError(KafkaError._MSG_TIMED_OUT)))
            out.append(_msg(p, o, user, ts, headers=[("h", str(i).encode())]))
        else:
            out.append(_msg(p, o, user, ts, headers=[("h", b"x")] if i % 5 == 0 else None))
    return out


def _reference(sql: str, messages: list[FakeMessage],
               applied: dict[int, int]) -> tuple[AggregateQuery, list[tuple[Any, ...]]]:
    q = _query(sql)
    for p, o in applied.items():
        q.state(p).offsets[("pv", p)] = o
    outputs = []
    for m in messages:
        if m.error() is None:
            for out in q.process(m.record()):
                outputs.append((out.topic, out.key, out.value, out.timestamp, out.headers))
    return q, outputs


def _state(q: AggregateQuery) -> dict[int, Any]:
    return {p: (sorted(st.store.items(), key=repr), st.offsets, st.stream_time, st.store_time,
                st.first_end, st.open_windows) for p, st in q.states.items()}


@pytest.mark.parametrize("sql", [FINAL, CAST_WHERE, CAST_ARG, BY_PAGE])
@pytest.mark.parametrize("batch_size", [1, 7, 64, 1000])
@pytest.mark.parametrize("applied", [{}, {0: 40, 1: 3}])
def test_batches_equal_record_by_record(sql: str, batch_size: int,
                                        applied: dict[int, int]) -> None:
    messages = _messages()
    ref, ref_out = _reference(sql, messages, applied)
    q = _query(sql)
    for p, o in applied.items():
        q.state(p).offsets[("pv", p)] = o
    w = _worker(q)
    fast = w._batch_path
    applied_fast = []

    def counted(batch: Any, start: int, offsets: Any) -> int:
        end = fast(batch, start, offsets)
        applied_fast.append(end - start)
        return int(end)

    w._batch_path = counted
    for i in range(0, len(messages), batch_size):
        w.process_batch(messages[i:i + batch_size])
    got = [r for r in w.producer.records if r[0] != "log"]
    assert got == ref_out and len(got) > 20
    assert _state(q) == _state(ref)
    assert q.late_dropped == ref.late_dropped > 0
    logged = [r[2] for r in w.producer.records if r[0] == "log"]
    assert logged == [e.to_json() for e in ref.log.drain()] and len(logged) >= 4
    last = {}
    for m in messages:
        if m.error() is None:
            last[("pv", m.partition())] = m.offset() + 1
    assert w.consumer.committed == last
    assert w.stats.consumed == sum(1 for m in messages if m.error() is None)
    assert sum(applied_fast) > len(messages) // 2  # most records took the batch path


def test_batches_over_a_reopened_rocksdb_store(tmp_path: Any) -> None:
    """After a commit and a restart on the same RocksDB files (a store that is not complete:
    cache misses read the database), batches continue exactly where process() would."""
    from hayase.engine.state import RocksDBStore

    messages = _messages()
    half = len(messages) // 2
    ref, ref_out = _reference(FINAL, messages, {})

    def query() -> AggregateQuery:
        plan = [r for r in Session({}).execute(DDL + FINAL) if isinstance(r, QueryPlan)][0]
        q = make_query(plan, ProcessingLog(),
                       store_factory=lambda p: RocksDBStore(tmp_path / str(p)))
        assert isinstance(q, AggregateQuery)
        return q

    q = query()
    w = _worker(q)
    for i in range(0, half, 50):
        w.process_batch(messages[i:min(i + 50, half)])
    for p in list(q.states):
        q.commit(p)
    q.close()
    q = query()
    for p in (0, 1):
        q.state(p)  # reopened: offsets, stream time and open windows from the database
    w2 = _worker(q)
    for i in range(half, len(messages), 50):
        w2.process_batch(messages[i:i + 50])
    got = [r for r in w.producer.records + w2.producer.records if r[0] != "log"]
    assert got == ref_out
    assert _state(q) == _state(ref)
