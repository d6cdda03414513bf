"""ARRAY and MAP functions at their edges, as ksqlDB's UDFs compute them."""

from __future__ import annotations

import math

import pytest
from tests.sql.conftest import evaluate


@pytest.mark.parametrize(("expr", "expected"), [
    ("SLICE(L, 2, 3)", [2, 3]),
    ("SLICE(L, 1, 4)", [1, 2, 3, 4]),
    ("SLICE(L, 0, 2)", None),  # subList(-1, 2): out of bounds
    ("SLICE(L, 2, 5)", None),  # past the end
    ("SLICE(L, 3, 2)", []),  # subList(2, 2)
    ("SLICE(L, 4, 2)", None),  # start after end
    ("SLICE(L, 3, 3)", [3]),
    ("SLICE(L, NULL, 2)", [1, 2]),  # a null bound is the array's end
    ("SLICE(L, 3, NULL)", [3, 4]),
    ("ARRAY_SORT(L, 'descending')", [4, 3, 2, 1]),
    ("ARRAY_SORT(L, 'Ascending')", [1, 2, 3, 4]),
    ("ARRAY_SORT(L, 'up')", None),
    ("GENERATE_SERIES(5, 2)", [5, 4, 3, 2]),  # two arguments count down
    ("GENERATE_SERIES(3, 3)", [3]),
    ("GENERATE_SERIES(1, 7, 3)", [1, 4, 7]),
    ("GENERATE_SERIES(1, 7, -3)", None),  # wrong sign fails the call
    ("AS_MAP(ARRAY['a', 'b', 'c'], ARRAY[1])", {"a": 1, "b": None, "c": None}),
    ("AS_MAP(ARRAY['a', 'a'], ARRAY[1, 2])", {"a": 2}),
    ("ARRAY_JOIN(ARRAY[ARRAY[1]], ',')", None),  # only primitive elements join
    ("ARRAY_JOIN(ARRAY[1.5E0, NULL], NULL)", "1.5null"),
])
def test_array_edges(expr: str, expected: object) -> None:
    assert evaluate(expr, "L ARRAY<INT>", ([1, 2, 3, 4],)) == expected


def test_nan_orders_above_every_double() -> None:
    row = ([1.0, math.nan, None, -2.0],)
    assert math.isnan(evaluate("ARRAY_MAX(L)", "L ARRAY<DOUBLE>", row))
    assert evaluate("ARRAY_MIN(L)", "L ARRAY<DOUBLE>", row) == -2.0
    out = evaluate("ARRAY_SORT(L)", "L ARRAY<DOUBLE>", row)
    assert out[:2] == [-2.0, 1.0] and math.isnan(out[2]) and out[3] is None


@pytest.mark.parametrize(("expr", "cols", "row", "expected"), [
    # A lambda's BOOLEAN is unboxed: null fails the whole call.
    ("FILTER(L, x => x > 1)", "L ARRAY<INT>", ([1, 2, 3],), [2, 3]),
    ("FILTER(L, x => x > 1)", "L ARRAY<INT>", ([1, None, 3],), [3]),  # null > 1 is false
    ("FILTER(L, x => CASE WHEN x = 2 THEN CAST(NULL AS BOOLEAN) ELSE true END)", "L ARRAY<INT>",
     ([1, 2, 3],), None),
    # Maps are collected with Collectors.toMap: repeated keys or null values fail the call.
    ("TRANSFORM(M, (k, v) => 'same', (k, v) => v)", "M MAP<STRING, INT>", ({"a": 1, "b": 2},),
     None),
    ("TRANSFORM(M, (k, v) => UCASE(k), (k, v) => v + 1)", "M MAP<STRING, INT>",
     ({"a": 1, "b": 2},), {"A": 2, "B": 3}),
    ("FILTER(M, (k, v) => k = 'a')", "M MAP<STRING, INT>", ({"a": None, "b": 2},), None),
    ("FILTER(M, (k, v) => k = 'b')", "M MAP<STRING, INT>", ({"a": None, "b": 2},), {"b": 2}),
    # REDUCE: a null initial state is null; a null collection is the initial state.
    ("REDUCE(L, 0, (s, x) => s + x)", "L ARRAY<INT>", (None,), 0),
    ("REDUCE(L, CAST(NULL AS INT), (s, x) => s + x)", "L ARRAY<INT>", ([1],), None),
])
def test_lambda_edges(expr: str, cols: str, row: tuple[object, ...], expected: object) -> None:
    assert evaluate(expr, cols, row) == expected


def test_generate_series_types() -> None:
    from tests.sql.conftest import result_type

    from hayase.sql.errors import StatementError

    assert result_type("GENERATE_SERIES(1, X)", "X BIGINT") == "ARRAY<BIGINT>"
    assert result_type("GENERATE_SERIES(X, 3)", "X INT") == "ARRAY<INTEGER>"
    with pytest.raises(StatementError, match="does not accept parameters"):
        result_type("GENERATE_SERIES(1, 5, X)", "X BIGINT")  # the step is an INT
