"""GROUP BY planning: key/value schema, aggregate functions, HAVING, windows, errors."""

from __future__ import annotations

from typing import Any

import pytest
from tests.sql.conftest import plan_after

from hayase.sql.errors import ParseError, StatementError
from hayase.sql.plan import AggregateStep, FilterStep, QueryPlan

SRC = ("CREATE STREAM S (ID INT KEY, NAME STRING, V BIGINT, D DOUBLE) "
       "WITH (kafka_topic='t', format='JSON');")


def plan_of(sql: str, setup: str = SRC) -> QueryPlan:
    return plan_after(setup, sql)


def aggregate(plan: QueryPlan, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...] | None]:
    """Feed source columns through the plan's steps; one result per accepted row."""
    step = plan.steps[-1]
    assert isinstance(step, AggregateStep)
    filt = plan.steps[0] if isinstance(plan.steps[0], FilterStep) else None
    state: dict[Any, list[Any]] = {}
    out: list[tuple[Any, ...] | None] = []
    for cols in rows:
        row = cols + (0, 0, 0)
        if filt is not None and not filt.predicate(row):
            continue
        key = step.key_fn(row)
        if key is None:
            continue
        state[key] = step.add(state.get(key) or step.init(), row)
        out.append(step.result(key, state[key], None, None))
    return out


def test_non_aggregate_column_outside_group_by_is_refused() -> None:
    with pytest.raises(StatementError, match="Non-aggregate SELECT expression"):
        plan_of("CREATE TABLE T AS SELECT NAME, V, COUNT(*) FROM S GROUP BY NAME;")


def test_count_sum_avg_and_key_order() -> None:
    plan = plan_of("CREATE TABLE T AS SELECT NAME, ID, COUNT(*) AS C, SUM(V) AS SV, AVG(D) AS A "
                   "FROM S GROUP BY ID, NAME;")
    assert str(plan.sink.source.schema) == \
        "ID INTEGER KEY, NAME STRING KEY, C BIGINT, SV BIGINT, A DOUBLE"
    out = aggregate(plan, [(1, "a", 10, 1.0), (1, "a", None, 3.0), (2, "b", 5, None)])
    assert out == [(1, "a", 1, 10, 1.0), (1, "a", 2, 10, 2.0), (2, "b", 1, 5, 0.0)]


def test_multi_column_keys_need_a_key_format_that_can_hold_them() -> None:
    with pytest.raises(StatementError, match="The 'KAFKA' format only supports a single field"):
        plan_of("CREATE TABLE T WITH (KEY_FORMAT='KAFKA') AS SELECT NAME, ID, COUNT(*) FROM S "
                "GROUP BY ID, NAME;")


def test_having_and_expressions_over_aggregates() -> None:
    plan = plan_of("CREATE TABLE T AS SELECT ID, SUM(V) * 10 AS S10 FROM S GROUP BY ID "
                   "HAVING COUNT(*) > 1;")
    out = aggregate(plan, [(1, "a", 1, 0.0), (1, "a", 2, 0.0)])
    assert out == [None, (1, 30)]


def test_group_by_expression_named_by_alias_or_synthetic() -> None:
    plan = plan_of("CREATE TABLE T AS SELECT LEN(NAME), COUNT(*) AS C FROM S GROUP BY LEN(NAME);")
    assert str(plan.sink.source.schema) == "KSQL_COL_0 INTEGER KEY, C BIGINT"
    assert aggregate(plan, [(1, "abc", 0, 0.0)]) == [(3, 1)]


def test_null_group_key_rows_are_dropped() -> None:
    plan = plan_of("CREATE TABLE T AS SELECT NAME, COUNT(*) AS C FROM S GROUP BY NAME;")
    assert aggregate(plan, [(1, None, 0, 0.0), (1, "x", 0, 0.0)]) == [("x", 1)]


@pytest.mark.parametrize(("select", "values", "expected"), [
    ("COLLECT_LIST(V)", [1, 2, 1], [1, 2, 1]),
    ("COLLECT_SET(V)", [1, 2, 1], [1, 2]),
    ("TOPK(V, 2)", [1, 3, 2], [3, 2]),
    ("TOPKDISTINCT(V, 2)", [3, 3, 2], [3, 2]),
    ("MIN(V)", [3, 1, 2], 1),
    ("MAX(V)", [3, 1, 2], 3),
    ("EARLIEST_BY_OFFSET(V)", [None, 4, 5], 4),
    ("LATEST_BY_OFFSET(V)", [4, 5, None], 5),
    ("LATEST_BY_OFFSET(V, 2)", [4, 5, 6], [5, 6]),
    ("COUNT_DISTINCT(V)", [1, 1, 2], 2),
    ("STDDEV_SAMP(V)", [10, 12, 13], pytest.approx(2.3333333333)),
])
def test_aggregate_functions(select: str, values: list[Any], expected: Any) -> None:
    plan = plan_of(f"CREATE TABLE T AS SELECT ID, {select} AS R FROM S GROUP BY ID;")
    out = aggregate(plan, [(1, "a", v, 0.0) for v in values])
    last = out[-1]
    assert last is not None and last[1] == expected


def test_histogram_and_undo_on_table_sources() -> None:
    setup = ("CREATE TABLE TB (ID INT PRIMARY KEY, NAME STRING, V BIGINT) WITH (kafka_topic='tb', "
             "value_format='JSON');")
    plan = plan_of("CREATE TABLE T AS SELECT NAME, COUNT(*) AS C, SUM(V) AS S, HISTOGRAM(NAME) "
                   "AS H FROM TB GROUP BY NAME;", setup)
    step = plan.steps[-1]
    assert isinstance(step, AggregateStep) and step.undo is not None
    row1 = (1, "a", 5, 0, 0, 0)
    row2 = (2, "a", 7, 0, 0, 0)
    accs = step.add(step.add(step.init(), row1), row2)
    assert step.result(("a",), accs, None, None) == ("a", 2, 12, {"a": 2})
    accs = step.undo(accs, row1)
    assert step.result(("a",), accs, None, None) == ("a", 1, 7, {"a": 1})
    with pytest.raises(StatementError, match="cannot be applied to a table source"):
        plan_of("CREATE TABLE T AS SELECT NAME, MAX(V) FROM TB GROUP BY NAME;", setup)


def test_windowed_aggregation_plan() -> None:
    plan = plan_of("CREATE TABLE T AS SELECT ID, WINDOWSTART AS WS, COUNT(*) AS C FROM S "
                   "WINDOW HOPPING (SIZE 30 SECONDS, ADVANCE BY 10 SECONDS, GRACE PERIOD 5 SECONDS) "
                   "GROUP BY ID EMIT FINAL;")
    step = plan.steps[-1]
    assert isinstance(step, AggregateStep)
    assert step.window is not None
    assert (step.window.type, step.window.size_ms, step.window.advance_ms, step.window.grace_ms) \
        == ("HOPPING", 30_000, 10_000, 5_000)
    assert step.emit_final
    sink = plan.sink.source
    assert sink.window is not None and sink.window.type == "HOPPING"
    accs = step.add(step.init(), (1, "a", 0, 0.0, 0, 0, 0))
    assert step.result((1,), accs, 20_000, 50_000) == (1, 20_000, 1)


@pytest.mark.parametrize(("sql", "message"), [
    ("CREATE TABLE T AS SELECT NAME, COUNT(*) FROM S GROUP BY NAME, NAME;",
     "Duplicate GROUP BY expression"),
    ("CREATE TABLE T AS SELECT COUNT(*) FROM S GROUP BY NAME;",
     "must include the grouping expression"),
    ("CREATE TABLE T AS SELECT NAME, SUM(COUNT(*)) FROM S GROUP BY NAME;",
     "Aggregate functions can not be nested"),
    ("CREATE TABLE T AS SELECT SUM(V), COUNT(*) FROM S GROUP BY SUM(V);",
     "GROUP BY does not support aggregate functions"),
    ("CREATE TABLE T AS SELECT ID, EARLIEST_BY_OFFSET(V, NAME) FROM S GROUP BY ID;",
     "must be a literal constant"),
    ("CREATE TABLE T AS SELECT COUNT(*) FROM S;",
     "without a GROUP BY clause"),
    ("CREATE TABLE T AS SELECT ID, COUNT(*) FROM S GROUP BY ID HAVING SUM(V) > '1';",
     "Error in HAVING expression: Cannot compare"),
    ("CREATE STREAM T AS SELECT ID, COUNT(*) FROM S GROUP BY ID;",
     "Your SELECT query produces a TABLE"),
])
def test_aggregation_errors(sql: str, message: str) -> None:
    with pytest.raises(StatementError, match=message):
        plan_of(sql)


def test_group_by_takes_value_expressions_only() -> None:
    with pytest.raises(ParseError):
        plan_of("CREATE TABLE T AS SELECT COUNT(*) FROM S GROUP BY NAME AND ID;")


def test_sum_list_adds_the_elements_of_each_array_and_wraps_like_java() -> None:
    setup = ("CREATE STREAM A (ID INT KEY, I ARRAY<INT>, D ARRAY<DOUBLE>) "
             "WITH (kafka_topic='a', format='JSON');")
    plan = plan_of("CREATE TABLE T AS SELECT ID, SUM_LIST(I) AS SI, SUM_LIST(D) AS SD FROM A "
                   "GROUP BY ID;", setup)
    assert str(plan.sink.source.schema) == "ID INTEGER KEY, SI INTEGER, SD DOUBLE"
    out = aggregate(plan, [(1, [1, 2, None], [0.5]), (1, None, None),
                           (1, [2147483647], [1.0, 1.0])])
    assert out == [(1, 3, 0.5), (1, 3, 0.5), (1, -2147483646, 2.5)]
    with pytest.raises(StatementError, match="does not accept parameters"):
        plan_of("CREATE TABLE T AS SELECT ID, SUM_LIST(NAME) FROM S GROUP BY ID;")


def test_collect_map_merges_the_maps_a_later_value_wins() -> None:
    setup = ("CREATE STREAM M (ID INT KEY, E MAP<STRING, INT>) "
             "WITH (kafka_topic='m', format='JSON');")
    plan = plan_of("CREATE TABLE T AS SELECT ID, COLLECT_MAP(E) AS C FROM M GROUP BY ID;", setup)
    assert str(plan.sink.source.schema) == "ID INTEGER KEY, C MAP<STRING, INTEGER>"
    out = aggregate(plan, [(1, {"a": 1}), (1, None), (1, {"a": 2, "b": 3})])
    assert out == [(1, {"a": 1}), (1, {"a": 1}), (1, {"a": 2, "b": 3})]
    with pytest.raises(StatementError, match="does not accept parameters"):
        plan_of("CREATE TABLE T AS SELECT ID, COLLECT_MAP(NAME) FROM S GROUP BY ID;")
