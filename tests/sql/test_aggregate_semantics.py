"""Aggregate functions as ksqlDB defines them: limits, nulls, undo order, accepted types."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest

from hayase.sql.errors import StatementError
from hayase.sql.functions import aggregates, lookup
from hayase.sql.types import BOOLEAN, DOUBLE, INTEGER, STRING, SqlType, decimal_type


def bind(name: str, types: list[SqlType], literals: list[Any] | None = None,
         props: dict[str, str] | None = None) -> aggregates.BoundAggregate:
    aggregates.CONFIG = dict(props or {})
    try:
        udf = lookup(name)
        assert udf is not None
        return udf.bind_aggregate(types, literals or [])  # type: ignore[attr-defined, no-any-return]
    finally:
        aggregates.CONFIG = {}


def fold(agg: aggregates.BoundAggregate, *rows: Any) -> Any:
    acc = agg.init()
    for r in rows:
        acc = agg.add(acc, r if isinstance(r, tuple) else (r,))
    return acc


def test_collect_list_and_set_have_no_limit_unless_configured() -> None:
    values = list(range(1500))
    assert len(bind("COLLECT_LIST", [INTEGER]).result(fold(bind("COLLECT_LIST", [INTEGER]),
                                                          *values))) == 1500
    agg = bind("COLLECT_SET", [INTEGER])
    assert len(agg.result(fold(agg, *values))) == 1500


@pytest.mark.parametrize(("prop", "expected"), [("3", [1, 2, 3]), ("-1", [1, 2, 3, 4]),
                                                ("0", [])])
def test_collect_list_limit_property(prop: str, expected: list[int]) -> None:
    agg = bind("COLLECT_LIST", [INTEGER], props={"ksql.functions.collect_list.limit": prop})
    assert agg.result(fold(agg, 1, 2, 3, 4)) == expected
    agg = bind("COLLECT_SET", [INTEGER], props={"ksql.functions.collect_set.limit": prop})
    assert agg.result(fold(agg, 1, 2, 2, 3, 4)) == expected


def test_collect_list_keeps_nulls_and_undo_removes_the_last_occurrence() -> None:
    agg = bind("COLLECT_LIST", [STRING])
    acc = fold(agg, "a", None, "b", "a")
    assert agg.result(acc) == ["a", None, "b", "a"]
    assert agg.undo is not None
    assert agg.result(agg.undo(acc, ("a",))) == ["a", None, "b"]
    assert agg.result(agg.undo(acc, ("z",))) == ["a", None, "b", "a"]


def test_avg_of_only_nulls_is_zero_and_integer_sums_wrap() -> None:
    agg = bind("AVG", [DOUBLE])
    assert agg.result(fold(agg, None, None)) == 0.0
    ints = bind("AVG", [INTEGER])
    # Java int sum: 2147483647 + 1 wraps to -2147483648
    assert ints.result(fold(ints, 2147483647, 1)) == -2147483648 / 2
    assert ints.undo is not None
    assert ints.result(ints.undo(fold(ints, 4), (4,))) == 0.0


def test_min_max_refuse_boolean() -> None:
    with pytest.raises(Exception, match="(?i)min"):
        bind("MIN", [BOOLEAN])
    with pytest.raises(Exception, match="(?i)max"):
        bind("MAX", [BOOLEAN])


def test_sum_decimal_keeps_its_type_and_an_overflowing_value_is_not_added() -> None:
    t = decimal_type(4, 2)
    agg = bind("SUM", [t])
    assert agg.return_type == t
    acc = fold(agg, Decimal("1.10"), None, Decimal("2.25"))
    assert agg.result(acc) == Decimal("3.35")
    acc = agg.add(acc, (Decimal("99.99"),))  # 103.34 does not fit DECIMAL(4, 2)
    assert agg.result(acc) == Decimal("3.35")
    assert agg.result(agg.add(acc, (Decimal("1.00"),))) == Decimal("4.35")


def test_correlation_follows_the_single_pass_formula() -> None:
    agg = bind("CORRELATION", [DOUBLE, DOUBLE])
    assert math.isnan(agg.result(agg.init()))
    assert math.isnan(agg.result(fold(agg, (1.0, 2.0))))  # one row: 0 / 0
    assert math.isnan(agg.result(fold(agg, (1.0, 2.0), (1.0, 3.0))))  # x constant
    assert agg.result(fold(agg, (1.0, 2.0), (2.0, 4.0), (None, 1.0), (3.0, 6.0))) == \
        pytest.approx(1.0)
    assert agg.result(fold(agg, (1.0, 3.0), (2.0, 2.0), (3.0, 1.0))) == pytest.approx(-1.0)


def test_histogram_keeps_at_most_1000_distinct_strings() -> None:
    agg = bind("HISTOGRAM", [STRING])
    acc = fold(agg, *[str(i) for i in range(1001)], "0")
    out = agg.result(acc)
    assert len(out) == 1000 and out["0"] == 2 and "1000" not in out
    assert agg.merge is not None
    merged = agg.merge(acc, {"new": 1, "1": 1})
    assert "new" not in merged and merged["1"] == 2


def test_min_max_over_strings_and_decimals_plan(session: Any) -> None:
    from tests.sql.conftest import last_plan

    session.execute("CREATE STREAM S (ID INT KEY, N STRING, D DECIMAL(4,2), B BOOLEAN) "
                    "WITH (kafka_topic='t', format='JSON');")
    plan = last_plan(session, "CREATE TABLE T AS SELECT ID, MIN(N) AS MN, MAX(D) AS MD FROM S "
                              "GROUP BY ID;")
    assert str(plan.sink.source.schema) == "ID INTEGER KEY, MN STRING, MD DECIMAL(4, 2)"
    with pytest.raises(StatementError):
        session.execute("CREATE TABLE T2 AS SELECT ID, MAX(B) FROM S GROUP BY ID;")


@pytest.mark.parametrize(("name", "type_text", "accepted"), [
    ("TOPK", "INT", True), ("TOPK", "STRING", True), ("TOPK", "DECIMAL(4,2)", False),
    ("TOPK", "TIMESTAMP", False), ("TOPK", "BOOLEAN", False),
    ("TOPKDISTINCT", "DECIMAL(4,2)", True), ("TOPKDISTINCT", "DOUBLE", True),
    ("TOPKDISTINCT", "DATE", False),
])
def test_topk_sort_types(name: str, type_text: str, accepted: bool) -> None:
    from hayase.sql.types import parse_type

    if accepted:
        agg = bind(name, [parse_type(type_text)], [2])
        assert str(agg.return_type) == f"ARRAY<{parse_type(type_text)}>"
    else:
        with pytest.raises(Exception, match=name.lower()):
            bind(name, [parse_type(type_text)], [2])


def test_min_max_and_topk_order_doubles_and_bytes_as_java_compare_to() -> None:
    from hayase.sql.types import BYTES

    nan = float("nan")
    mn, mx = bind("MIN", [DOUBLE]), bind("MAX", [DOUBLE])
    assert mn.result(fold(mn, nan, 2.0, 1.0)) == 1.0       # NaN is above every double
    assert math.isnan(mx.result(fold(mx, 1.0, nan, 2.0)))
    assert math.copysign(1.0, mn.result(fold(mn, 0.0, -0.0))) == -1.0  # -0.0 < 0.0
    bmin, bmax = bind("MIN", [BYTES]), bind("MAX", [BYTES])
    assert bmin.result(fold(bmin, b"\x01", b"\x80")) == b"\x80"  # signed: 0x80 is -128
    assert bmax.result(fold(bmax, b"\xff", b"\x01")) == b"\x01"
    top = bind("TOPK", [DOUBLE], [2])
    out = top.result(fold(top, 1.0, nan, 3.0))
    assert math.isnan(out[0]) and out[1] == 3.0
