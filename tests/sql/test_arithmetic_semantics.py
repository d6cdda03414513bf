"""Binary arithmetic and CAST as ksqlDB's generated Java evaluates them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from tests.sql.conftest import evaluate, result_type

D = Decimal


@pytest.mark.parametrize(("expr", "columns", "row", "expected"), [
    # DECIMAL arithmetic is exact (BigDecimal with RoundingMode.UNNECESSARY): a result that
    # needs rounding is null (ksql#9874), an exact one keeps the result type's scale.
    ("X / Y", "X DECIMAL(2,0), Y DECIMAL(2,0)", (D("1"), D("3")), None),
    ("X / Y", "X DECIMAL(2,0), Y DECIMAL(2,0)", (D("1"), D("4")), D("0.250000")),
    ("X / Y", "X DECIMAL(4,2), Y INT", (D("10.00"), 4), D("2.5000000000000")),
    ("X / 0", "X DECIMAL(4,2)", (D("1.00"),), None),
    ("X * Y", "X DECIMAL(3,2), Y DECIMAL(3,2)", (D("1.11"), D("1.11")), D("1.2321")),
    ("X % Y", "X DECIMAL(3,1), Y DECIMAL(3,1)", (D("-5.5"), D("2.0")), D("-1.5")),
    ("X - Y", "X DECIMAL(3,1), Y INT", (D("-5.5"), 2), D("-7.5")),
    ("X + Y", "X DECIMAL(38,0), Y DECIMAL(38,0)", (D("9" * 38), D("1")), None),
    # A DECIMAL beside a DOUBLE is a double.
    ("X + Y", "X DECIMAL(2,1), Y DOUBLE", (D("1.5"), 0.25), 1.75),
    ("X * Y", "X DECIMAL(2,1), Y DOUBLE", (D("1.5"), 2.0), 3.0),
    ("X / Y", "X DECIMAL(2,1), Y DOUBLE", (D("1.5"), 0.0), float("inf")),
    ("X % Y", "X DOUBLE, Y DECIMAL(2,1)", (5.5, D("2.0")), 1.5),
    # Java string concatenation: a null operand reads "null" (ksql#9136, compiled code).
    ("X + Y", "X STRING, Y STRING", ("a", None), "anull"),
    ("X + Y", "X STRING, Y STRING", (None, None), "nullnull"),
    ("X + '-' + Y", "X STRING, Y STRING", ("a", "b"), "a-b"),
    # Java integer arithmetic
    ("X / Y", "X INT, Y INT", (-7, 2), -3),
    ("X % Y", "X INT, Y INT", (-7, 3), -1),
    ("X / Y", "X INT, Y INT", (7, 0), None),
    ("X + 1", "X INT", (2147483647,), -2147483648),
    ("X % Y", "X DOUBLE, Y DOUBLE", (-5.5, 2.0), -1.5),
])
def test_arithmetic(expr: str, columns: str, row: tuple[Any, ...], expected: Any) -> None:
    assert evaluate(expr, columns, row) == expected


@pytest.mark.parametrize(("expr", "columns", "expected"), [
    ("X / Y", "X DECIMAL(4,2), Y DECIMAL(3,1)", "DECIMAL(9, 6)"),
    ("X * Y", "X DECIMAL(4,2), Y DECIMAL(3,1)", "DECIMAL(8, 3)"),
    ("X % Y", "X DECIMAL(4,2), Y DECIMAL(3,1)", "DECIMAL(4, 2)"),
    ("X + Y", "X DECIMAL(4,2), Y BIGINT", "DECIMAL(22, 2)"),
    ("X + Y", "X DECIMAL(4,2), Y DOUBLE", "DOUBLE"),
    ("X + Y", "X INT, Y BIGINT", "BIGINT"),
])
def test_result_types(expr: str, columns: str, expected: str) -> None:
    assert result_type(expr, columns) == expected


def test_cast_string_to_bytes_reads_base64() -> None:
    assert result_type("CAST(X AS BYTES)", "X STRING") == "BYTES"
    assert evaluate("CAST(X AS BYTES)", "X STRING", (" YWJj ",)) == b"abc"
    assert evaluate("CAST(X AS BYTES)", "X STRING", ("not base64!",)) is None
    assert evaluate("CAST(X AS BYTES)", "X STRING", (None,)) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("true", True), ("TrUe", True), ("t", True), (" tr ", True), ("yes", True), ("Y", True),
    ("truex", False), ("yess", False), ("", False), ("no", False), ("false", False),
    ("1", False),
])
def test_cast_string_to_boolean_as_sql_booleans_parse_boolean(text: str, expected: bool) -> None:
    assert evaluate("CAST(X AS BOOLEAN)", "X STRING", (text,)) is expected
