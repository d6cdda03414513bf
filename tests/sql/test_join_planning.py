"""JOIN planning: result key and column names, criteria validation, JoinStep contract."""

from __future__ import annotations

import pytest
from tests.sql.conftest import plan_after

from hayase.sql.errors import StatementError
from hayase.sql.plan import JoinStep, ProjectStep, QueryPlan

SETUP = """
CREATE STREAM L (A INT KEY, B INT, C INT) WITH (kafka_topic='l', value_format='JSON');
CREATE STREAM R (A INT KEY, B INT, D STRING) WITH (kafka_topic='r', value_format='JSON');
CREATE TABLE T (ID INT PRIMARY KEY, V STRING) WITH (kafka_topic='t', value_format='JSON');
CREATE TABLE T2 (ID INT PRIMARY KEY, FK INT, W STRING) WITH (kafka_topic='t2', value_format='JSON');
CREATE STREAM K (A INT KEY, V BIGINT) WITH (kafka_topic='k', value_format='KAFKA');
"""


def plan_of(sql: str) -> QueryPlan:
    return plan_after(SETUP, sql)


def schema(sql: str) -> str:
    return str(plan_of(sql).sink.source.schema)


@pytest.mark.parametrize(("sql", "expected"), [
    ("CREATE STREAM O AS SELECT * FROM L JOIN R WITHIN 10 SECONDS ON L.A = R.A;",
     "L_A INTEGER KEY, L_B INTEGER, L_C INTEGER, R_A INTEGER, R_B INTEGER, R_D STRING"),
    ("CREATE STREAM O AS SELECT L.B, C, R.* FROM L JOIN R WITHIN 10 SECONDS ON L.A = R.A;",
     "R_A INTEGER KEY, L_B INTEGER, C INTEGER, R_B INTEGER, R_D STRING"),
    ("CREATE STREAM O AS SELECT L.A AS ID, D FROM L LEFT JOIN R WITHIN 1 MINUTE ON L.A = R.A;",
     "ID INTEGER KEY, D STRING"),
    ("CREATE STREAM O AS SELECT * FROM L FULL OUTER JOIN R WITHIN 1 SECOND ON L.A = R.A;",
     "ROWKEY INTEGER KEY, L_A INTEGER, L_B INTEGER, L_C INTEGER, R_A INTEGER, R_B INTEGER, "
     "R_D STRING"),
    ("CREATE STREAM O AS SELECT ROWKEY AS K, L.B FROM L JOIN R WITHIN 1 SECOND "
     "ON ABS(L.A) = ABS(R.A);", "K INTEGER KEY, L_B INTEGER"),
    ("CREATE STREAM O AS SELECT L.A, V FROM L JOIN T ON L.A = T.ID;",
     "A INTEGER KEY, V STRING"),  # A only exists in L: no prefix
    ("CREATE TABLE O AS SELECT T2.ID, W, V FROM T2 JOIN T ON T2.FK = T.ID;",
     "T2_ID INTEGER KEY, W STRING, V STRING"),
])
def test_result_schema(sql: str, expected: str) -> None:
    assert schema(sql) == expected


def test_join_steps_compute_keys_from_each_side() -> None:
    plan = plan_of("CREATE STREAM O AS SELECT L.A, L.B, R.D FROM L JOIN R WITHIN (1 SECOND, "
                   "2 SECONDS) ON L.B = R.A;")
    join = plan.steps[0]
    assert isinstance(join, JoinStep)
    assert (join.kind, join.join_type, join.within) == ("STREAM_STREAM", "INNER", (1000, 2000))
    assert join.left_repartition and not join.right_repartition
    left_row = (1, 7, 3, 100, 0, 0)
    right_row = (7, 9, "x", 200, 0, 1)
    assert join.left_key is not None and join.left_key(left_row) == 7
    assert join.right_key is not None and join.right_key(right_row) == 7
    project = plan.steps[-1]
    assert isinstance(project, ProjectStep)
    joined = left_row + right_row + (7, 200)  # + ROWKEY, JOINTIME
    assert str(plan.sink.source.schema) == "L_B INTEGER KEY, L_A INTEGER, D STRING"
    assert project.fn(joined, None) == (7, 1, "x", 200)


@pytest.mark.parametrize(("sql", "message"), [
    ("CREATE STREAM O AS SELECT * FROM L JOIN R ON L.A = R.A;",
     "Stream-Stream joins must have a WITHIN clause"),
    ("CREATE STREAM O AS SELECT * FROM T JOIN L ON T.ID = L.A;",
     "Invalid join order: table-stream joins are not supported"),
    ("CREATE STREAM O AS SELECT L.A, V FROM L JOIN T WITHIN 1 SECOND ON L.A = T.ID;",
     "A window definition was provided for a Stream-Table join"),
    ("CREATE STREAM O AS SELECT L.A, V FROM L JOIN T ON L.B = T.V;",
     "types don't match"),
    ("CREATE STREAM O AS SELECT * FROM L JOIN R WITHIN 1 SECOND ON L.A = 0;",
     "Each side of the join comparision must contain references from exactly one source"),
    ("CREATE STREAM O AS SELECT * FROM L JOIN R WITHIN 1 SECOND ON L.A = R.A AND L.B = R.B;",
     "joins on multiple conditions are not yet supported"),
    ("CREATE STREAM O AS SELECT L.B FROM L JOIN R WITHIN 1 SECOND ON L.A = R.A;",
     "must include the join expressions L.A or R.A"),
    ("CREATE STREAM O AS SELECT * FROM L JOIN K WITHIN 1 SECOND ON L.A = K.A;",
     "This format does not yet support JOIN"),
    ("CREATE STREAM O AS SELECT A FROM L JOIN R WITHIN 1 SECOND ON L.A = R.A;",
     "Column 'A' is ambiguous"),
    ("CREATE TABLE O AS SELECT T2.ID FROM T2 RIGHT JOIN T ON T2.FK = T.ID;",
     "RIGHT OUTER JOIN on a foreign key is not supported"),
])
def test_join_errors(sql: str, message: str) -> None:
    with pytest.raises(StatementError, match=message):
        plan_of(sql)


def test_partition_by_after_join_lists_value_pseudo_then_key_columns() -> None:
    plan = plan_of("CREATE STREAM O AS SELECT * FROM L JOIN R WITHIN 10 SECONDS ON L.A = R.A "
                   "PARTITION BY L.B;")
    assert str(plan.sink.source.schema) == (
        "L_B INTEGER KEY, L_C INTEGER, L_ROWTIME BIGINT, L_ROWPARTITION INTEGER, "
        "L_ROWOFFSET BIGINT, L_A INTEGER, R_B INTEGER, R_D STRING, R_ROWTIME BIGINT, "
        "R_ROWPARTITION INTEGER, R_ROWOFFSET BIGINT, R_A INTEGER")
    names = [type(s).__name__ for s in plan.steps]
    assert names == ["JoinStep", "SelectKeyStep", "ProjectStep"]
