"""GROUP BY on other columns than the key through a repartition topic (operator level, no
broker): rows forwarded by group key, aggregated per repartition partition, copies re-sent
after a crash skipped, table updates retracted and added in different partitions; consumed
repartition records purged."""

from __future__ import annotations

import orjson

from hayase.client.partitioners import kafka_partition
from hayase.engine.aggregate import AggregateQuery, make_query
from hayase.engine.processing_log import ProcessingLog
from hayase.engine.record import OutputRecord, Record
from hayase.engine.runtime import RepartitionPurge
from hayase.sql import Session  # type: ignore[attr-defined]
from hayase.sql.plan import QueryPlan

PARTITIONS = 3
PREFIX = "_confluent-ksql-x_query_CTAS_P_1"
REP = f"{PREFIX}-Aggregate-GroupBy-repartition"
STREAM = "CREATE STREAM PV (USER_ID STRING KEY, PAGE STRING) WITH (KAFKA_TOPIC='pv', " \
         "FORMAT='JSON');"
TABLE = "CREATE TABLE U (USER_ID STRING PRIMARY KEY, REGION STRING, SCORE BIGINT) WITH " \
        "(KAFKA_TOPIC='u', FORMAT='JSON');"


def _query(ddl: str, sql: str, repartitioned: bool = True) -> AggregateQuery:
    plan = [r for r in Session({}).execute(ddl + sql) if isinstance(r, QueryPlan)][0]
    q = make_query(plan, ProcessingLog())
    assert isinstance(q, AggregateQuery)
    if repartitioned:
        assert q.repartition_through(PREFIX) == REP
    return q


def _pv(offset: int, partition: int, user: str, page: str) -> Record:
    return Record("pv", partition, offset, 1000 + offset, orjson.dumps(user),
                  orjson.dumps({"PAGE": page}))


def _route(q: AggregateQuery, outs: list[OutputRecord]) -> tuple[list[Record], list]:
    """Forwarded records as the repartition topic's consumer would read them (placed by
    murmur2 on the key, offsets per partition); the rest are sink records."""
    routed, sink = [], []
    for o in outs:
        if o.topic != REP:
            sink.append(o)
            continue
        assert o.key is not None
        p = kafka_partition(o.key, PARTITIONS)
        routed.append(Record(REP, p, len([r for r in routed if r.partition == p]),
                             o.timestamp, o.key, o.value, o.headers))
    return routed, sink


def _table(outs: list[OutputRecord]) -> dict:
    """Last value per key bytes (windowed keys included)."""
    table: dict = {}
    for o in outs:
        key = o.key
        if o.value is None:
            table.pop(key, None)
        else:
            table[key] = orjson.loads(o.value)
    return table


def test_only_a_group_key_other_than_the_source_key_needs_the_topic() -> None:
    by_key = _query(STREAM, "CREATE TABLE C AS SELECT USER_ID, COUNT(*) AS N FROM PV "
                    "GROUP BY USER_ID;", repartitioned=False)
    by_page = _query(STREAM, "CREATE TABLE P AS SELECT PAGE, COUNT(*) AS N FROM PV "
                     "GROUP BY PAGE;", repartitioned=False)
    assert by_key.groups_by_source_key() and not by_page.groups_by_source_key()
    assert by_page.source_topics == ("pv",)  # until the runtime asks for the topic


def test_stream_group_by_value_column_is_exact_across_partitions() -> None:
    q = _query(STREAM, "CREATE TABLE P AS SELECT PAGE, COUNT(*) AS N FROM PV GROUP BY PAGE;")
    assert q.source_topics == ("pv", REP)
    pages = ["home", "cart", "pay", "faq", "blog"]
    forwarded: list[OutputRecord] = []
    for i in range(60):
        out = q.process(_pv(i // PARTITIONS, i % PARTITIONS, f"u{i % 7}", pages[i % 5]))
        assert [o.topic for o in out] == [REP]  # nothing aggregated at the source
        forwarded += out
    routed, _ = _route(q, forwarded)
    by_partition = {r.partition for r in routed}
    assert len(by_partition) > 1  # the groups really are spread
    sink: list[OutputRecord] = []
    for rec in routed:
        sink += q.process(rec)
    assert _table(sink) == {orjson.dumps(p): {"N": 12} for p in pages}
    # Each group was aggregated in exactly one task: the partition of its key.
    for page in pages:
        owners = [p for p, st in q.states.items() if st.store.get(("A", (page,))) is not None]
        assert owners == [kafka_partition(orjson.dumps(page), PARTITIONS)]


def test_copies_resent_after_a_restart_are_skipped() -> None:
    q = _query(STREAM, "CREATE TABLE P AS SELECT PAGE, COUNT(*) AS N FROM PV GROUP BY PAGE;")
    routed, _ = _route(q, q.process(_pv(0, 0, "a", "home")) + q.process(_pv(1, 0, "b", "home")))
    assert [orjson.loads(o.value)["N"] for rec in routed for o in q.process(rec)] == [1, 2]
    # The forwarding task restarted from an older commit: it forwards the same records
    # again (same source position and sequence), in new repartition records.
    again = _query(STREAM, "CREATE TABLE P AS SELECT PAGE, COUNT(*) AS N FROM PV "
                   "GROUP BY PAGE;")
    copies, _ = _route(again, again.process(_pv(1, 0, "b", "home")))
    copies = [Record(r.topic, r.partition, r.offset + 2, r.timestamp, r.key, r.value)
              for r in copies]
    assert [q.process(r) for r in copies] == [[]]
    newer, _ = _route(again, again.process(_pv(2, 0, "c", "home")))
    newer = [Record(r.topic, r.partition, r.offset + 3, r.timestamp, r.key, r.value)
             for r in newer]
    assert [orjson.loads(o.value)["N"] for rec in newer for o in q.process(rec)] == [3]


def test_table_update_retracts_in_one_partition_and_adds_in_another() -> None:
    q = _query(TABLE, "CREATE TABLE R AS SELECT REGION, SUM(SCORE) AS S, COUNT(*) AS N "
               "FROM U GROUP BY REGION;")
    regions = [f"r{i}" for i in range(20)]
    old, new = next((a, b) for a in regions for b in regions
                    if kafka_partition(orjson.dumps(a), PARTITIONS) !=
                    kafka_partition(orjson.dumps(b), PARTITIONS))

    def upd(offset: int, user: str, region: str | None, score: int = 0) -> Record:
        value = None if region is None else orjson.dumps({"REGION": region, "SCORE": score})
        return Record("u", 1, offset, 10 + offset, orjson.dumps(user), value)

    sink: list[OutputRecord] = []
    for i, rec in enumerate([upd(0, "a", old, 5), upd(1, "b", old, 7), upd(2, "a", new, 11),
                             upd(3, "b", old, 8), upd(4, "b", None)]):
        out = q.process(rec)
        # The move of "a" is a retraction and an addition, to the two groups' partitions.
        assert len(out) == (2 if i == 2 else 1)
        routed, _ = _route(q, out)
        if i == 2:
            assert [r.partition for r in routed] == [
                kafka_partition(orjson.dumps(old), PARTITIONS),
                kafka_partition(orjson.dumps(new), PARTITIONS)]
        for r in routed:
            sink += q.process(Record(r.topic, r.partition, 100 + len(sink), r.timestamp,
                                     r.key, r.value))
    assert [orjson.loads(o.value) if o.value else None for o in sink] == [
        {"S": 5, "N": 1}, {"S": 12, "N": 2},  # a, b in `old`
        {"S": 7, "N": 1}, {"S": 11, "N": 1},  # a leaves `old`, joins `new`
        {"S": 8, "N": 1},  # b's score changes in its group: one retract+add, one row
        {"S": 0, "N": 0},  # b deleted
    ]
    assert _table(sink) == {orjson.dumps(old): {"S": 0, "N": 0},
                           orjson.dumps(new): {"S": 11, "N": 1}}


def test_same_results_as_one_task_without_repartition() -> None:
    sql = "CREATE TABLE P AS SELECT PAGE, COUNT(*) AS N, COLLECT_SET(USER_ID) AS U " \
          "FROM PV WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY PAGE;"
    records = [_pv(i, 0, f"u{i % 4}", f"p{i % 6}") for i in range(40)]
    plain = _query(STREAM, sql, repartitioned=False)
    expected = _table([o for r in records for o in plain.process(r)])
    q = _query(STREAM, sql)
    routed, _ = _route(q, [o for r in records for o in q.process(r)])
    actual = _table([o for r in routed for o in q.process(r)])
    assert actual == expected and len(expected) == 6


class _FakeAdmin:
    def __init__(self) -> None:
        self.calls: list[list[tuple[str, int, int]]] = []

    def delete_records(self, tps: list, request_timeout: float) -> dict:
        self.calls.append(sorted((tp.topic, tp.partition, tp.offset) for tp in tps))
        return {}


def test_purge_deletes_committed_repartition_records_at_most_every_interval() -> None:
    now = [0.0]
    admin = _FakeAdmin()
    purge = RepartitionPurge({}, {REP}, interval_s=30, clock=lambda: now[0], admin=admin)
    purge.committed({(REP, 0): 10, ("pv", 0): 7})
    assert admin.calls == []  # not yet due
    now[0] = 31
    purge.committed({(REP, 1): 4, (REP, 0): 12})
    assert admin.calls == [[(REP, 0, 12), (REP, 1, 4)]]  # the latest committed, sources never
    now[0] = 40
    purge.committed({(REP, 0): 20})
    assert len(admin.calls) == 1
    now[0] = 62
    purge.committed({("pv", 0): 9})
    assert admin.calls[-1] == [(REP, 0, 20)]
