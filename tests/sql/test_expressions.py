"""Expression semantics: nulls, integer overflow and division, decimals, casts, LIKE, IN, CASE."""

from __future__ import annotations

import decimal
import math

import pytest
from tests.sql.conftest import evaluate, result_type

from hayase.sql.errors import StatementError

D = decimal.Decimal


@pytest.mark.parametrize(("expr", "row", "expected"), [
    ("X + 1", (None,), None),
    ("X + 1", (2147483647,), -2147483648),          # Java int wrap-around
    ("X * 2", (-2147483648,), 0),
    ("X / 2", (-7,), -3),                            # truncates toward zero
    ("X % 3", (-7,), -1),                            # sign of the dividend
    ("X / 0", (5,), None),                           # division by zero is null
    ("-X", (None,), None),
])
def test_integer_arithmetic(expr: str, row: tuple[object, ...], expected: object) -> None:
    assert evaluate(expr, "X INT", row) == expected


def test_bigint_wraps_at_64_bits() -> None:
    assert evaluate("X + 1", "X BIGINT", (2**63 - 1,)) == -(2**63)


def test_double_division_by_zero_follows_ieee() -> None:
    assert evaluate("X / 0.0E0", "X DOUBLE", (1.0,)) == math.inf
    assert math.isnan(evaluate("X / 0.0E0", "X DOUBLE", (0.0,)))


@pytest.mark.parametrize(("expr", "typ"), [
    ("D + D", "DECIMAL(5, 2)"),
    ("D - 1", "DECIMAL(13, 2)"),
    ("D * D", "DECIMAL(9, 4)"),
    ("D / D", "DECIMAL(11, 7)"),
    ("D % D", "DECIMAL(4, 2)"),
    ("D + 1.5E0", "DOUBLE"),
    ("D + 0.125", "DECIMAL(6, 3)"),
])
def test_decimal_result_types(expr: str, typ: str) -> None:
    assert result_type(expr, "D DECIMAL(4, 2)") == typ


def test_decimal_values_keep_exact_scale() -> None:
    assert str(evaluate("D * D", "D DECIMAL(4, 2)", (D("1.50"),))) == "2.2500"
    # ksqlDB divides exactly (RoundingMode.UNNECESSARY): 1 / 3 needs rounding and is null.
    assert evaluate("D / 3", "D DECIMAL(4, 2)", (D("1.00"),)) is None
    assert str(evaluate("D / 8", "D DECIMAL(4, 2)", (D("1.00"),))) == "0.1250000000000"
    assert evaluate("D / 0", "D DECIMAL(4, 2)", (D("1.00"),)) is None


@pytest.mark.parametrize(("expr", "expected"), [
    ("X = 1", True),
    ("X IN (1, NULL)", True),
    ("X BETWEEN 0 AND 2", True),
    ("X NOT BETWEEN 0 AND 2", False),
    ("X IS NOT NULL", True),
    ("X IS DISTINCT FROM NULL", True),
    ("X IS NOT DISTINCT FROM 1", True),
    ("(X > 0) AND NULL", None),          # three-valued logic
    ("(X > 5) AND NULL", False),
    ("(X > 0) OR NULL", True),
    ("CASE WHEN X = 1 THEN 'one' ELSE 'other' END", "one"),
])
def test_predicates(expr: str, expected: object) -> None:
    assert evaluate(expr, "X INT", (1,)) == expected


def test_comparison_with_null_value_is_false() -> None:
    assert evaluate("X > 1", "X INT", (None,)) is False
    assert evaluate("X IN (1, 2)", "X INT", (None,)) is False


@pytest.mark.parametrize(("pattern", "value", "expected"), [
    ("'a%'", "abc", True),
    ("'_b_'", "abc", True),
    ("'a!%' ESCAPE '!'", "a%", True),
    ("'a!%' ESCAPE '!'", "ab", False),
    ("'%.%'", "a.b", True),
    ("'%.%'", "ab", False),
])
def test_like(pattern: str, value: str, expected: bool) -> None:
    assert evaluate(f"S LIKE {pattern}", "S STRING", (value,)) is expected


@pytest.mark.parametrize(("expr", "cols", "row", "expected"), [
    ("CAST(S AS INT)", "S STRING", (" 12 ",), 12),
    ("CAST(S AS INT)", "S STRING", ("x",), None),              # failure yields null
    ("CAST(X AS STRING)", "X DOUBLE", (1e21,), "1.0E21"),
    ("CAST(X AS STRING)", "X DOUBLE", (0.5,), "0.5"),
    ("CAST(X AS DECIMAL(4, 1))", "X DOUBLE", (1.25,), D("1.3")),
    ("CAST(X AS INT)", "X DOUBLE", (-1.9,), -1),
    ("CAST(X AS BOOLEAN)", "X STRING", ("TrUe",), True),
    ("CAST(T AS STRING)", "T TIMESTAMP", (1_000,), "1970-01-01T00:00:01.000"),
    ("CAST(S AS TIMESTAMP)", "S STRING", ("1970-01-01T00:00:01.5Z",), 1_500),
])
def test_casts(expr: str, cols: str, row: tuple[object, ...], expected: object) -> None:
    assert evaluate(expr, cols, row) == expected


def test_unsupported_cast_is_a_statement_error() -> None:
    with pytest.raises(StatementError, match="Cast of STRING to ARRAY<INTEGER> is not supported"):
        evaluate("CAST(S AS ARRAY<INT>)", "S STRING", ("x",))


def test_struct_array_and_map_access() -> None:
    cols = "S STRUCT<A INT, `b` STRING>, L ARRAY<INT>, M MAP<STRING, INT>"
    row = ({"A": 1, "b": "x"}, [10, 20, 30], {"k": 5})
    assert evaluate("S->A", cols, row + ()) == 1
    assert evaluate("S->`b`", cols, row) == "x"
    assert evaluate("L[1]", cols, row) == 10
    assert evaluate("L[-1]", cols, row) == 30
    assert evaluate("L[4]", cols, row) is None
    assert evaluate("M['k']", cols, row) == 5
    assert evaluate("M['z']", cols, row) is None


def test_constructors_coerce_elements() -> None:
    assert result_type("ARRAY[1, X]", "X BIGINT") == "ARRAY<BIGINT>"
    assert evaluate("ARRAY[NULL, 10, '20', X]", "X BIGINT", (30,)) == [None, 10, 20, 30]
    assert evaluate("MAP('a' := X)", "X INT", (1,)) == {"a": 1}
    assert evaluate("STRUCT(F := X)", "X INT", (1,)) == {"F": 1}
    with pytest.raises(StatementError, match="Array constructor cannot be empty"):
        evaluate("ARRAY[]")


@pytest.mark.parametrize(("expr", "message"), [
    ("NULL + 1", "(null + 1). Arithmetic on types null and INTEGER are not supported."),
    ("5.0 / NULL", "(5.0 / null). Arithmetic on types DECIMAL(2, 1) and null are not supported."),
    ("NULL * NULL", "(null * null). Arithmetic on types null and null are not supported."),
    ("ARRAY[1] + NULL", "Arithmetic on types ARRAY<INTEGER> and null are not supported."),
])
def test_arithmetic_on_a_null_literal_is_refused(expr: str, message: str) -> None:
    with pytest.raises(StatementError) as info:
        evaluate(expr)
    assert message in info.value.message


def test_arithmetic_on_a_null_value_is_null() -> None:
    assert evaluate("X + 1", "X INT", (None,)) is None
    assert evaluate("CAST(NULL AS INT) + 1") is None


def test_string_literal_compared_to_number_is_cast_at_compile_time() -> None:
    assert evaluate("X = '1'", "X INT", (1,)) is True
    with pytest.raises(StatementError, match='invalid input syntax for type INTEGER: "one"'):
        evaluate("X = 'one'", "X INT", (1,))


def test_incomparable_types_are_refused() -> None:
    with pytest.raises(StatementError, match="Cannot compare"):
        evaluate("X = S", "X INT, S STRING", (1, "1"))


def test_rowtime_compared_with_timestamp_text() -> None:
    assert evaluate("ROWTIME >= '1970-01-01T00:00:00'", "X INT", (1,)) is True


def test_lambdas() -> None:
    cols = "L ARRAY<INT>, M MAP<STRING, INT>"
    row = ([1, 2, 3], {"a": 1, "bb": 2})
    assert evaluate("TRANSFORM(L, x => x * 10)", cols, row) == [10, 20, 30]
    assert evaluate("FILTER(L, x => x > 1)", cols, row) == [2, 3]
    assert evaluate("REDUCE(L, 0, (s, x) => s + x)", cols, row) == 6
    assert evaluate("TRANSFORM(M, (k, v) => UCASE(k), (k, v) => v + 1)", cols, row) == \
        {"A": 2, "BB": 3}
    assert evaluate("FILTER(M, (k, v) => LEN(k) > 1)", cols, row) == {"bb": 2}
