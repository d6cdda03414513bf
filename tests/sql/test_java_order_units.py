"""ksqlDB semantics that follow Java's values: DECIMAL compared with DOUBLE as BigDecimals,
String.compareTo over UTF-16 units, string functions counting UTF-16 units, BETWEEN."""

from __future__ import annotations

import decimal
from typing import Any

import pytest
from tests.sql.conftest import evaluate, result_type

from hayase.sql.errors import StatementError
from hayase.sql.runtime import java_string_key

D = decimal.Decimal
SMILE = "\U0001F600"  # above U+FFFF: a surrogate pair (D83D DE00) in Java
PRIVATE = "\ue000"  # code point below SMILE, UTF-16 unit above its surrogates


@pytest.mark.parametrize(("expr", "row", "expected"), [
    # BigDecimal.valueOf(0.1) is exactly 0.1: equal, where 0.1 as a double is not.
    ("X = Y", (D("0.1"), 0.1), True),
    ("X < Y", (D("0.1"), 0.1), False),
    ("Y < X", (D("0.1000000000000000001"), 0.1), True),  # equal once rounded to a double
    ("X <> Y", (D("0.1000000000000000001"), 0.1), True),
    ("X BETWEEN Y AND 1", (D("0.1"), 0.1), True),
    ("X BETWEEN 0 AND Y", (D("0.1000000000000000001"), 0.1), False),
])
def test_decimal_compares_with_double_as_big_decimal(expr: str, row: tuple[Any, ...],
                                                     expected: bool) -> None:
    assert evaluate(expr, "X DECIMAL(20,19), Y DOUBLE", row) is expected


def test_decimal_against_nan_is_an_error_not_a_value() -> None:
    # BigDecimal.valueOf(NaN) throws: the expression fails (null), never true or false.
    assert evaluate("X = Y", "X DECIMAL(3,1), Y DOUBLE", (D("1.0"), float("nan"))) is None


def test_string_key_orders_utf16_units() -> None:
    assert java_string_key(SMILE) < java_string_key(PRIVATE)
    assert SMILE > PRIVATE  # Python's own order, by code point, differs
    assert sorted(["b", "a", ""], key=java_string_key) == ["", "a", "b"]


@pytest.mark.parametrize(("expr", "expected"), [
    ("X < Y", True),
    ("X >= Y", False),
    ("X BETWEEN 'a' AND Y", True),
    ("Y NOT BETWEEN X AND 'z'", True),  # U+E000 is above 'z'
    ("ARRAY_MAX(ARRAY[X, Y])", PRIVATE),
    ("ARRAY_MIN(ARRAY[X, Y])", SMILE),
    ("ARRAY_SORT(ARRAY[Y, X])", [SMILE, PRIVATE]),
    ("GREATEST(X, Y)", PRIVATE),
    ("LEAST(X, Y)", SMILE),
])
def test_string_ordering_is_by_utf16_units(expr: str, expected: Any) -> None:
    assert evaluate(expr, "X STRING, Y STRING", (SMILE, PRIVATE)) == expected


@pytest.mark.parametrize(("expr", "expected"), [
    ("SUBSTRING(X, 2)", SMILE + "b"),
    ("SUBSTRING(X, 4)", "b"),
    ("SUBSTRING(X, 2, 2)", SMILE),
    ("SUBSTRING(X, 3)", "?b"),  # a cut through the pair leaves a lone surrogate: '?'
    ("SUBSTRING(X, -1)", "b"),
    ("INSTR(X, 'b')", 4),
    ("LEN(X)", 4),
    ("LPAD(X, 6, 'x')", "xxa" + SMILE + "b"),
    ("RPAD(X, 5, 'x')", "a" + SMILE + "bx"),
    ("RPAD(X, 2, 'x')", "a?"),
    ("LPAD('b', 3, X)", "a?b"),
])
def test_string_functions_count_utf16_units(expr: str, expected: Any) -> None:
    assert evaluate(expr, "X STRING", ("a" + SMILE + "b",)) == expected


@pytest.mark.parametrize("expr", ["INSTR(X, 'b', -1)", "INSTR(X, 'a', -2)", "INSTR(X, 'b', 3)"])
def test_instr_from_a_position_counts_the_pair_as_two(expr: str) -> None:
    # The pair behaves as the two BMP characters 'xy' would.
    assert evaluate(expr, "X STRING", ("a" + SMILE + "b",)) == evaluate(expr, "X STRING",
                                                                        ("axyb",))


@pytest.mark.parametrize(("expr", "row", "expected"), [
    ("X BETWEEN 1 AND 3", (None,), False),
    ("X NOT BETWEEN 1 AND 3", (None,), True),  # NOT (false): ksqlDB's NotExpression
    ("X NOT BETWEEN 1 AND 3", (2,), False),
    ("X NOT BETWEEN 1 AND 3", (4,), True),
])
def test_between_with_null_value(expr: str, row: tuple[Any, ...], expected: bool) -> None:
    assert evaluate(expr, "X INT", row) is expected


@pytest.mark.parametrize("expr", ["X BETWEEN NULL AND 3", "X BETWEEN 1 AND NULL",
                                  "NULL BETWEEN 1 AND X"])
def test_between_with_an_untyped_null_is_refused(expr: str) -> None:
    with pytest.raises(StatementError, match="NULL"):
        evaluate(expr, "X INT", (1,))


def test_simple_case_is_refused_as_ksqldb_does() -> None:
    # ksqlDB parses CASE x WHEN v THEN ... but its type checker implements only the searched
    # form (CASE WHEN x = v THEN ...), which stays available.
    with pytest.raises(StatementError, match="visitSimpleCaseExpression"):
        evaluate("CASE X WHEN 2 THEN 'two' END", "X INT", (2,))
    assert evaluate("CASE WHEN X = 2 THEN 'two' END", "X INT", (2,)) == "two"


@pytest.mark.parametrize(("expr", "columns"), [
    ("NULLIF(X, Y)", "X INT, Y BIGINT"),
    ("NULLIF(X, Y)", "X DECIMAL(3,1), Y DECIMAL(4,1)"),
    ("NULLIF(X, 1.5)", "X DOUBLE, Y INT"),  # 1.5 is a DECIMAL literal
    ("NULLIF(X, Y)", "X ARRAY<INT>, Y ARRAY<BIGINT>"),
])
def test_nullif_takes_two_arguments_of_one_type(expr: str, columns: str) -> None:
    with pytest.raises(StatementError, match="Function 'nullif' does not accept parameters"):
        evaluate(expr, columns, (None, None))


def test_nullif_of_one_type_or_null() -> None:
    assert evaluate("NULLIF(X, Y)", "X BIGINT, Y BIGINT", (3, 3)) is None
    assert evaluate("NULLIF(X, Y)", "X BIGINT, Y BIGINT", (3, 4)) == 3
    assert evaluate("NULLIF(X, NULL)", "X BIGINT, Y BIGINT", (3, 4)) == 3


@pytest.mark.parametrize("value", ["INT", "BIGINT", "DOUBLE", "BOOLEAN", "STRING"])
def test_entries_value_types(value: str) -> None:
    expected = "INTEGER" if value == "INT" else value
    assert result_type("ENTRIES(M, true)", f"M MAP<STRING, {value}>") == (
        f"ARRAY<STRUCT<`K` STRING, `V` {expected}>>")


def test_entries_widens_a_decimal_value_to_double() -> None:
    # No DECIMAL overload: the implicit-cast pass picks MAP<STRING, DOUBLE>.
    assert result_type("ENTRIES(M, true)", "M MAP<STRING, DECIMAL(4,2)>") == (
        "ARRAY<STRUCT<`K` STRING, `V` DOUBLE>>")
    assert evaluate("ENTRIES(M, true)", "M MAP<STRING, DECIMAL(4,2)>",
                    ({"b": D("1.50"), "a": None},)) == [{"K": "a", "V": None},
                                                         {"K": "b", "V": 1.5}]


@pytest.mark.parametrize(("expr", "columns", "message"), [
    ("ENTRIES(M, true)", "M MAP<STRING, ARRAY<INT>>", "does not accept parameters"),
    ("ENTRIES(M, true)", "M MAP<STRING, DATE>", "does not accept parameters"),
    ("ENTRIES(M, 1)", "M MAP<STRING, INT>", "does not accept parameters"),
    ("ENTRIES(NULL, true)", "M MAP<STRING, INT>", "ambiguous method parameters"),
])
def test_entries_refused_types(expr: str, columns: str, message: str) -> None:
    with pytest.raises(StatementError, match=message):
        evaluate(expr, columns, (None,))
