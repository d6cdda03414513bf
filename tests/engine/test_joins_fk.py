"""Foreign-key table-table joins over several partitions (KIP-213, as ksqlDB runs them): the
left rows' subscriptions travel to the right table's task of the foreign key, the answers
back to the left row's task, and answers to a left row that changed since are dropped.

The topics are simulated in memory (three partitions each, or different counts on each side,
murmur2 placement like the runtime's producer, internal records delivered in random order across
partitions), tasks (Kafka Streams' (sub-topology, partition): the right table and the
registrations have their own) crash and restart from their last commit, and the final table must
be the join of the final tables."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.engine.simulated_tasks import SimulatedTasks

from hayase.client.partitioners import kafka_partition
from hayase.engine.joins import JoinQuery, make_query
from hayase.engine.processing_log import ProcessingLog
from hayase.engine.record import OutputRecord
from hayase.engine.state import META_KEY
from hayase.sql import Session  # type: ignore[attr-defined]
from hayase.sql.plan import QueryPlan

N = 3
PREFIX = "_confluent-ksql-svc_query_CTAS_J_0"


# (left partitions, right partitions): equal, and different counts on both sides
COUNTS = [(N, N), (3, 2), (2, 5)]


def _sql(join: str, nl: int = N, nr: int = N) -> str:
    return (
        "CREATE TABLE L (ID STRING PRIMARY KEY, FK STRING, V INT) WITH "
        f"(KAFKA_TOPIC='l', KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON', PARTITIONS={nl});"
        "CREATE TABLE R (ID STRING PRIMARY KEY, NAME STRING) WITH "
        f"(KAFKA_TOPIC='r', KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON', PARTITIONS={nr});"
        f"CREATE TABLE J AS SELECT L.ID, FK, V, NAME FROM L {join} JOIN R ON L.FK = R.ID;")


class Cluster(SimulatedTasks):
    """Topics in memory (``nl`` partitions for the left table and the responses, ``nr`` for
    the right table and the registrations), one store per task as the runtime numbers them."""

    def __init__(self, join: str, rng: random.Random, nl: int = N, nr: int = N,
                 sql: str | None = None) -> None:
        """``sql``: another query over L and R than ``_sql(join, nl, nr)``."""
        super().__init__(sql or _sql(join, nl, nr), rng, PREFIX, N, {"l": nl, "r": nr})


def _key(s: str) -> bytes:
    return s.encode()


def _final_sink(sink: list[OutputRecord]) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for out in sink:
        assert out.key is not None
        if out.value is None:
            table.pop(out.key.decode(), None)
        else:
            table[out.key.decode()] = orjson.loads(out.value)
    return table


Op = tuple[str, int, Any]
ops_strategy = st.lists(st.one_of(
    st.tuples(st.just("L"), st.integers(0, 5),
              st.one_of(st.none(), st.integers(0, 3))),          # left row (fk or null fk)
    st.tuples(st.just("L-"), st.integers(0, 5), st.none()),      # left tombstone
    st.tuples(st.just("R"), st.integers(0, 3), st.integers(0, 9)),  # right row
    st.tuples(st.just("R-"), st.integers(0, 3), st.none()),      # right tombstone
), min_size=1, max_size=40)


def _expected(ops: list[Op], join: str) -> dict[str, dict[str, Any]]:
    left: dict[str, tuple[str | None, int]] = {}
    right: dict[str, str] = {}
    for i, (kind, k, arg) in enumerate(ops):
        if kind == "L":
            left[f"l{k}"] = (None if arg is None else f"r{arg}", i)
        elif kind == "L-":
            left.pop(f"l{k}", None)
        elif kind == "R":
            right[f"r{k}"] = f"n{arg}.{i}"
        else:
            right.pop(f"r{k}", None)
    out = {}
    for lk, (fk, v) in left.items():
        name = right.get(fk) if fk is not None else None
        if name is not None or join == "LEFT":
            out[lk] = {"FK": fk, "V": v, "NAME": name}
    return out


def _feed(c: Cluster, ops: list[Op], start: int = 0) -> None:
    for i, (kind, k, arg) in enumerate(ops, start):
        if kind in ("L", "L-"):
            value = None if kind == "L-" else orjson.dumps(
                {"FK": None if arg is None else f"r{arg}", "V": i})
            c.produce(OutputRecord("l", _key(f"l{k}"), value, i))
        else:
            value = None if kind == "R-" else orjson.dumps({"NAME": f"n{arg}.{i}"})
            c.produce(OutputRecord("r", _key(f"r{k}"), value, i))


@pytest.mark.parametrize("counts", COUNTS)
@pytest.mark.parametrize("join", ["INNER", "LEFT"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops_strategy, seed=st.integers(0, 2**16))
def test_final_table_is_the_join_of_the_final_tables(join: str, counts: tuple[int, int],
                                                     ops: list[Op], seed: int) -> None:
    c = Cluster(join, random.Random(seed), *counts)
    # Sources arrive in any interleaving of their partitions; internal records in any order.
    _feed(c, ops)
    c.drain()
    assert _final_sink(c.sink) == _expected(ops, join)


@pytest.mark.parametrize("counts", COUNTS)
@pytest.mark.parametrize("join", ["INNER", "LEFT"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops_strategy, seed=st.integers(0, 2**16))
# Found by this test: answers read before the restarted left task replayed its rows (the
# subscription copy must be answered again), and a restarted right task answering in another
# order (an answer's source position does not identify its content).
@example(ops=[("L", 0, 0), ("L", 1, 0), ("L-", 0, None), ("L-", 0, None)], seed=789)
@example(ops=[("L", 2, 0), ("L-", 1, None), ("L", 1, None), ("L", 0, 0), ("R-", 0, None),
              ("L", 0, None), ("L", 0, None), ("L", 1, 1), ("R", 0, 0), ("R", 3, 0),
              ("R", 3, 0)], seed=0)
def test_tasks_crashing_between_commits_still_give_the_exact_table(
        join: str, counts: tuple[int, int], ops: list[Op], seed: int) -> None:
    c = Cluster(join, random.Random(seed), *counts)
    _feed(c, ops[: len(ops) // 2])
    c.drain(crash_every=5)
    _feed(c, ops[len(ops) // 2:], len(ops) // 2)
    c.drain(crash_every=9)
    assert _final_sink(c.sink) == _expected(ops, join)


def test_the_internal_topics_are_kafka_streams_subscription_topics() -> None:
    c = Cluster("INNER", random.Random(0))
    topics = dict(c.q.internal_topics())
    reg = f"{PREFIX}-KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000012-topic"
    resp = f"{PREFIX}-KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-0000000020-topic"
    assert topics == {reg: "r", resp: "l"}  # sized like the right table, the left table
    assert {reg, resp} <= set(c.q.source_topics)
    # A subscription is placed like the right table's row of the foreign key.
    c.produce(OutputRecord("l", b"l1", orjson.dumps({"FK": "r7", "V": 1}), 5))
    c.step(("l", kafka_partition(b"l1", N)))
    assert list(c.logs) == [("l", kafka_partition(b"l1", N)), (reg, kafka_partition(b"r7", N))]


def test_a_stale_answer_is_dropped() -> None:
    """An answer to a left row that changed meanwhile joins nothing; the newer one does."""
    c = Cluster("INNER", random.Random(0))
    lp = kafka_partition(b"l1", N)
    c.produce(OutputRecord("r", b"r1", orjson.dumps({"NAME": "one"}), 1))
    c.produce(OutputRecord("r", b"r2", orjson.dumps({"NAME": "two"}), 2))
    c.step(("r", kafka_partition(b"r1", N)))
    c.step(("r", kafka_partition(b"r2", N)))
    c.produce(OutputRecord("l", b"l1", orjson.dumps({"FK": "r1", "V": 1}), 3))
    c.produce(OutputRecord("l", b"l1", orjson.dumps({"FK": "r2", "V": 2}), 4))
    c.step(("l", lp))
    c.step(("l", lp))
    resp = c.q.fk_topics[0][1]
    reg = c.q.fk_topics[0][0]
    for fk in (b"r1", b"r2"):  # both subscriptions answered, the first one is stale
        while (reg, kafka_partition(fk, N)) in c.pending():
            c.step((reg, kafka_partition(fk, N)))
    while (resp, lp) in c.pending():
        c.step((resp, lp))
    assert [orjson.loads(o.value or b"null") for o in c.sink] == \
        [{"FK": "r2", "V": 2, "NAME": "two"}]


def test_any_partition_counts_are_accepted() -> None:
    """ksqlDB's "Should allow partition count mismatch": the sides need no co-partitioning."""
    c = Cluster("INNER", random.Random(0))
    for counts in ({"l": 3, "r": 3}, {"l": 1, "r": 4}, {"l": 2, "r": 3}, {"l": 5, "r": 2}):
        c.q.check_copartitioning(counts.get)


def test_the_right_table_and_the_registrations_are_a_sub_topology_of_their_own() -> None:
    """Kafka Streams' task ids: (sub-topology, partition), numbered one sub-topology after
    the other (left 2 partitions: tasks 0-1; right 5: tasks 2-6, the changelog's 7)."""
    c = Cluster("INNER", random.Random(0), 2, 5)
    reg, resp = c.q.fk_topics[0]
    assert c.q.subtopologies() == [("l", resp), ("r", reg)]
    assert c.tasks == 7
    assert [c.q.task_of("l", p) for p in range(2)] == [0, 1]
    assert [c.q.task_of(resp, p) for p in range(2)] == [0, 1]
    assert [c.q.task_of(t, p) for t in ("r", reg) for p in range(5)] == [2, 3, 4, 5, 6] * 2
    # Right rows and subscriptions live in the right table's tasks only.
    c.produce(OutputRecord("r", b"r7", orjson.dumps({"NAME": "seven"}), 1))
    c.produce(OutputRecord("l", b"l1", orjson.dumps({"FK": "r7", "V": 1}), 2))
    c.drain()
    right_task = 2 + kafka_partition(b"r7", 5)
    left_task = kafka_partition(b"l1", 2)
    assert {k[0] for k in c.q.states[right_task].store.data if k != META_KEY} == {"T", "S"}
    assert {k[2] for k in c.q.states[left_task].store.data if k != META_KEY} == {"L"}
    assert _final_sink(c.sink) == {"l1": {"FK": "r7", "V": 1, "NAME": "seven"}}


def test_a_right_table_topic_read_by_another_input_is_not_split_off() -> None:
    """A topic cannot be in two sub-topologies: when another input also reads the right
    table's topic, both sides share tasks and need equal counts (or one partition)."""
    plan = [r for r in Session({}).execute(
        "CREATE TABLE L (ID STRING PRIMARY KEY, FK STRING) WITH "
        "(KAFKA_TOPIC='t', KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON', PARTITIONS=2);"
        "CREATE TABLE R (ID STRING PRIMARY KEY, FK STRING) WITH "
        "(KAFKA_TOPIC='t', KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON', PARTITIONS=2);"
        "CREATE TABLE J AS SELECT L.ID, R.FK AS RFK FROM L JOIN R ON L.FK = R.ID;")
        if isinstance(r, QueryPlan)][0]
    q = make_query(plan, ProcessingLog(), repartition_prefix=PREFIX)
    assert isinstance(q, JoinQuery)
    assert len(q.subtopologies()) == 1
    q.check_copartitioning({"t": 2}.get)


def _l1_joined_to_r1(counts: tuple[int, int]) -> tuple[Cluster, int, int, int, int]:
    """An INNER join where l1 joined r1 and was output, nothing committed: (cluster, l1's
    partition, r1's partition, left task, right task)."""
    c = Cluster("INNER", random.Random(0), *counts)
    reg, resp = c.q.fk_topics[0]
    lp, rp = kafka_partition(b"l1", counts[0]), kafka_partition(b"r1", counts[1])
    c.produce(OutputRecord("r", b"r1", orjson.dumps({"NAME": "one"}), 1))
    c.step(("r", rp))
    c.produce(OutputRecord("l", b"l1", orjson.dumps({"FK": "r1", "V": 1}), 2))
    c.step(("l", lp))
    c.step((reg, rp))
    c.step((resp, lp))
    assert _final_sink(c.sink) == {"l1": {"FK": "r1", "V": 1, "NAME": "one"}}
    return c, lp, rp, c.q.task_of("l", lp), c.q.task_of("r", rp)


@pytest.mark.parametrize("counts", COUNTS)
def test_a_replayed_inner_row_whose_right_row_went_meanwhile_is_retracted(
        counts: tuple[int, int]) -> None:
    """Seen with two hayase run processes and a SIGKILL: a left row joined and output, its
    task crashed before committing, the right row was deleted, and the answers reached the
    restarted task before it replayed the row. The replayed subscription is a copy the right
    task already holds (same hash): it is answered even without a right row, and the stale
    joined row is retracted."""
    c, lp, rp, left_task, right_task = _l1_joined_to_r1(counts)
    resp = c.q.fk_topics[0][1]
    c.commit(right_task)
    c.produce(OutputRecord("r", b"r1", None, 3))
    c.step(("r", rp))  # answers l1's subscription: no right row any more
    c.crash(left_task)  # never committed: l1 and both answers are read again
    c.step((resp, lp))
    c.step((resp, lp))  # both dropped: the restarted task has no l1 yet
    c.drain()
    assert _final_sink(c.sink) == {}


@pytest.mark.parametrize("counts", COUNTS)
def test_a_subscription_a_crashed_right_task_answered_is_answered_again_without_a_row(
        counts: tuple[int, int]) -> None:
    """Seen on a three-node cluster: the right task answered a subscription and crashed
    before committing; the left row (committed) had joined and been output. The restarted
    right task reads the right row's deletion before the subscription again (timestamp
    order): the subscription, below where the partition ended when the task reopened, is
    answered without a right row, and the stale joined row is retracted."""
    c, _lp, rp, left_task, right_task = _l1_joined_to_r1(counts)
    c.commit(left_task)
    c.crash(right_task)  # never committed: r1 and the subscription are read again
    c.produce(OutputRecord("r", b"r1", None, 3))
    c.step(("r", rp))
    c.step(("r", rp))  # r1 created and deleted before the subscription is read again
    c.drain()
    assert _final_sink(c.sink) == {}
