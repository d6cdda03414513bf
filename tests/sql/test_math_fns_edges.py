"""Math functions at their edges, as ksqlDB's UDFs compute them."""

from __future__ import annotations

import decimal
import math

import pytest
from tests.sql.conftest import evaluate, result_type

D = decimal.Decimal


@pytest.mark.parametrize(("expr", "cols", "row", "expected"), [
    # ROUND on a DECIMAL rounds halves toward +infinity, like Math.round on a DOUBLE.
    ("ROUND(D)", "D DECIMAL(3, 1)", (D("-1.5"),), D("-1")),
    ("ROUND(D)", "D DECIMAL(3, 1)", (D("1.5"),), D("2")),
    ("ROUND(D)", "D DECIMAL(3, 1)", (D("-1.6"),), D("-2")),
    ("ROUND(D)", "D DECIMAL(3, 1)", (D("-0.5"),), D("0")),
    ("ROUND(D, 1)", "D DECIMAL(4, 2)", (D("-1.25"),), D("-1.20")),
    ("ROUND(D, 0)", "D DECIMAL(3, 1)", (D("-1.5"),), D("-1.0")),
    ("ROUND(D, -1)", "D DECIMAL(5, 2)", (D("125.00"),), D("130.00")),
    ("ROUND(D, 1)", "D DECIMAL(4, 2)", (D("1.25"),), D("1.30")),
    ("ROUND(D, NULL)", "D DECIMAL(4, 2)", (D("1.25"),), None),
    ("ROUND(X, 1)", "X DOUBLE", (-1.25,), -1.2),
    # LOG(value) is the natural logarithm; LOG(base, value) divides natural logarithms.
    ("LOG(X)", "X DOUBLE", (math.e ** 2,), 2.0),
    ("LOG(X)", "X INT", (1,), 0.0),
    ("LOG(X)", "X DOUBLE", (0.0,), -math.inf),
    ("LOG(B, X)", "B DOUBLE, X DOUBLE", (0.5, 0.0), math.inf),
    ("LOG(B, X)", "B DOUBLE, X DOUBLE", (10.0, 1000.0), math.log(1000.0) / math.log(10.0)),
    # Math.abs of the minimum int/long is itself.
    ("ABS(X)", "X INT", (-2 ** 31,), -2 ** 31),
    ("ABS(X)", "X BIGINT", (-2 ** 63,), -2 ** 63),
    ("ABS(X)", "X BIGINT", (-5,), 5),
    # Math.cbrt is exact on perfect cubes.
    ("CBRT(X)", "X DOUBLE", (64.0,), 4.0),
    ("CBRT(X)", "X INT", (-27,), -3.0),
    ("CBRT(X)", "X DOUBLE", (2.0,), 1.2599210498948732),
])
def test_math_edges(expr: str, cols: str, row: tuple[object, ...], expected: object) -> None:
    out = evaluate(expr, cols, row)
    assert out == expected
    if isinstance(expected, D):
        assert str(out) == str(expected)  # the scale too


def test_math_edge_nan_and_types() -> None:
    assert math.isnan(evaluate("LOG(X)", "X DOUBLE", (-1.0,)))
    assert math.isnan(evaluate("LOG(B, X)", "B DOUBLE, X DOUBLE", (1.0, 13.0)))
    assert result_type("ABS(X)", "X INT") == "INTEGER"
    assert result_type("ABS(X)", "X BIGINT") == "BIGINT"
    assert result_type("ABS(D)", "D DECIMAL(5, 2)") == "DECIMAL(5, 2)"
    assert result_type("ROUND(D, 1)", "D DECIMAL(5, 2)") == "DECIMAL(5, 2)"


@pytest.mark.parametrize(("expr", "expected"), [
    ("GEO_DISTANCE(37.4439, -122.1663, 51.5257, -0.1122)", 8634.6598),
    ("GEO_DISTANCE(37.4439, -122.1663, 51.5257, -0.1122, 'Miles')", 5365.6597),
    ("GEO_DISTANCE(37.4439, -122.1663, 51.5257, -0.1122, 'kilometres')", 8634.6598),
    ("GEO_DISTANCE(37.4439, -122.1663, 51.5257, -0.1122, '')", 8634.6598),  # empty: KM
    ("GEO_DISTANCE(37.4439, -122.1663, 51.5257, -0.1122, 'kms')", None),
    ("GEO_DISTANCE(97.0, 0.0, 0.0, 0.0)", None),  # latitude out of range
])
def test_geo_distance(expr: str, expected: float | None) -> None:
    out = evaluate(expr, "X INT", (1,))
    assert (out is None) if expected is None else round(out, 4) == expected


def test_geo_distance_has_no_numeric_radius_overload() -> None:
    from hayase.sql.errors import StatementError

    with pytest.raises(StatementError, match="does not accept parameters"):
        evaluate("GEO_DISTANCE(0.0, 0.0, 1.0, 1.0, 2.0)", "X INT", (1,))


@pytest.mark.parametrize(("expr", "row", "expected"), [
    ("POWER(X, Y)", (0.0, -1.0), math.inf),
    ("POWER(X, Y)", (-0.0, -1.0), -math.inf),
    ("POWER(X, Y)", (-10.0, 309.0), -math.inf),  # overflow keeps the sign
    ("POWER(X, Y)", (10.0, 309.0), math.inf),
    ("COT(X)", (-0.0, 0.0), -math.inf),
    ("SINH(X)", (-1000.0, 0.0), -math.inf),
    ("COSH(X)", (-1000.0, 0.0), math.inf),
])
def test_java_math_infinities(expr: str, row: tuple[float, float], expected: float) -> None:
    assert evaluate(expr, "X DOUBLE, Y DOUBLE", row) == expected


@pytest.mark.parametrize(("expr", "cols"), [
    ("ROUND(X, 1)", "X INT"),  # ROUND(DOUBLE, INT) or ROUND(DECIMAL, INT)
    ("TRUNC(X, 1)", "X BIGINT"),
    ("POWER(X, Y)", "X INT, Y BIGINT"),  # POWER(BIGINT, BIGINT) or POWER(DOUBLE, DOUBLE)
    ("LOG(X, Y)", "X BIGINT, Y INT"),
    ("ATAN2(X, Y)", "X INT, Y DECIMAL(3, 1)"),
])
def test_calls_that_casts_make_ambiguous(expr: str, cols: str) -> None:
    from hayase.sql.errors import StatementError

    with pytest.raises(StatementError, match="cannot be resolved due to ambiguous method"):
        result_type(expr, cols)


@pytest.mark.parametrize(("expr", "cols", "expected"), [
    ("ROUND(X)", "X INT", "BIGINT"),
    ("POWER(X, Y)", "X INT, Y DOUBLE", "DOUBLE"),
    ("ATAN2(X, Y)", "X INT, Y BIGINT", "DOUBLE"),  # every pair is declared
    ("LOG(X, Y)", "X DECIMAL(3, 1), Y INT", "DOUBLE"),  # only LOG(DOUBLE, DOUBLE) fits
])
def test_calls_that_resolve(expr: str, cols: str, expected: str) -> None:
    assert result_type(expr, cols) == expected


def test_greatest_and_least_order_nan_as_java() -> None:
    row = (1.0, math.nan)
    assert math.isnan(evaluate("GREATEST(X, Y)", "X DOUBLE, Y DOUBLE", row))
    assert evaluate("LEAST(X, Y)", "X DOUBLE, Y DOUBLE", row) == 1.0
    assert evaluate("LEAST(Y, X)", "X DOUBLE, Y DOUBLE", row) == 1.0
