"""GROUP BY over a foreign-key table-table join over several partitions: each joined row change
is broadcast by its left key to every partition of the GroupBy repartition topic, and the task
owning the group applies it (AggregateQuery._broadcast). Tasks crash and restart from their
last commit (the crash simulation of test_joins_fk); the final aggregate table must be the
aggregation of the join of the final tables."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.engine.test_joins_fk import (
    COUNTS,
    Cluster,
    Op,
    _expected,
    _feed,
    _final_sink,
    ops_strategy,
)

from hayase.client.partitioners import kafka_partition
from hayase.engine.record import OutputRecord


def _sql(join: str, nl: int, nr: int) -> str:
    return (
        "CREATE TABLE L (ID STRING PRIMARY KEY, FK STRING, V INT) WITH "
        f"(KAFKA_TOPIC='l', KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON', PARTITIONS={nl});"
        "CREATE TABLE R (ID STRING PRIMARY KEY, NAME STRING) WITH "
        f"(KAFKA_TOPIC='r', KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON', PARTITIONS={nr});"
        f"CREATE TABLE J AS SELECT NAME, COUNT(*) AS N, SUM(V) AS S FROM L {join} JOIN R "
        "ON L.FK = R.ID GROUP BY NAME;")


def _cluster(join: str, seed: int, nl: int = 3, nr: int = 3) -> Cluster:
    return Cluster(join, random.Random(seed), nl, nr, sql=_sql(join, nl, nr))


def _aggregated(ops: list[Op], join: str) -> dict[str, dict[str, Any]]:
    """The aggregation of the join of the final tables (a null NAME is no group)."""
    out: dict[str, dict[str, Any]] = {}
    for row in _expected(ops, join).values():
        if row["NAME"] is None:
            continue
        agg = out.setdefault(row["NAME"], {"N": 0, "S": 0})
        agg["N"] += 1
        agg["S"] += row["V"]
    return out


def _final(c: Cluster) -> dict[str, dict[str, Any]]:
    """The sink table; groups whose count fell to 0 stay, as in ksqlDB (KTable aggregate)."""
    return {k: v for k, v in _final_sink(c.sink).items() if v["N"] != 0}


@pytest.mark.parametrize("counts", COUNTS)
@pytest.mark.parametrize("join", ["INNER", "LEFT"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops_strategy, seed=st.integers(0, 2**16))
def test_no_crash(join: str, counts: tuple[int, int], ops: list[Op], seed: int) -> None:
    c = _cluster(join, seed, *counts)
    _feed(c, ops)
    c.drain()
    assert _final(c) == _aggregated(ops, join)


@pytest.mark.parametrize("counts", COUNTS)
@pytest.mark.parametrize("join", ["INNER", "LEFT"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops_strategy, seed=st.integers(0, 2**16))
def test_crashes(join: str, counts: tuple[int, int], ops: list[Op], seed: int) -> None:
    c = _cluster(join, seed, *counts)
    _feed(c, ops[: len(ops) // 2])
    c.drain(crash_every=5)
    _feed(c, ops[len(ops) // 2:], len(ops) // 2)
    c.drain(crash_every=9)
    assert _final(c) == _aggregated(ops, join)


def test_a_row_moved_to_another_group_while_its_task_was_down_leaves_the_old_group() -> None:
    """The left task output l's row in group n0.0 (another partition's), crashed before its
    commit, and r0's NAME changed meanwhile: replayed, it reads the old answer before l (the
    hash drops it) and joins l to n1.2 only. The partition of n0.0 must still retract l:
    neither the old source positions nor a per-group record of l can tell it to."""
    c = _cluster("INNER", 0)
    reg, resp = c.q.fk_topics[0]
    assert c.q.aggregate is not None
    rep = c.q.aggregate.repartition_topic
    g0 = kafka_partition(b"n0.0", 3)
    lkey = next(f"l{i}" for i in range(50) if kafka_partition(f"l{i}".encode(), 3) != g0)
    lp, rp = kafka_partition(lkey.encode(), 3), kafka_partition(b"r0", 3)
    c.produce(OutputRecord("r", b"r0", orjson.dumps({"NAME": "n0.0"}), 0))
    c.produce(OutputRecord("l", lkey.encode(), orjson.dumps({"FK": "r0", "V": 1}), 1))
    for tp in [("r", rp), ("l", lp), (reg, rp), (resp, lp)]:
        c.step(tp)
    while (rep, g0) in c.pending():
        c.step((rep, g0))
    for task in range(c.tasks):
        if task != lp:
            c.commit(task)
    assert _final(c) == {"n0.0": {"N": 1, "S": 1}}
    c.crash(lp)
    c.produce(OutputRecord("r", b"r0", orjson.dumps({"NAME": "n1.2"}), 2))
    c.step(("r", rp))
    while (resp, lp) in c.pending():  # answers before the left row is replayed
        c.step((resp, lp))
    c.drain()
    assert _final(c) == {"n1.2": {"N": 1, "S": 1}}
