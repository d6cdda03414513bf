"""Which comparisons ksqlDB accepts (its ComparisonUtil) and how mixed types compare."""

from __future__ import annotations

from typing import Any

import pytest
from tests.sql.conftest import evaluate

from hayase.sql.errors import StatementError


@pytest.mark.parametrize(("expr", "columns", "message"), [
    ("X < Y", "X BOOLEAN, Y BOOLEAN", "Cannot compare X (BOOLEAN) to Y (BOOLEAN) with LESS_THAN."),
    ("X >= Y", "X BOOLEAN, Y BOOLEAN", "with GREATER_THAN_OR_EQUAL"),
    ("X = Y", "X TIME, Y TIMESTAMP", "Cannot compare X (TIME) to Y (TIMESTAMP) with EQUAL."),
    ("X < Y", "X DATE, Y TIME", "Cannot compare X (DATE) to Y (TIME) with LESS_THAN."),
    ("X = Y", "X STRING, Y INT", "Cannot compare X (STRING) to Y (INTEGER) with EQUAL."),
    ("X = Y", "X BYTES, Y STRING", "Cannot compare X (BYTES) to Y (STRING) with EQUAL."),
])
def test_refused_comparisons(expr: str, columns: str, message: str) -> None:
    with pytest.raises(StatementError, match=message.replace("(", r"\(").replace(")", r"\)")):
        evaluate(expr, columns, (None, None))


@pytest.mark.parametrize(("expr", "columns", "row", "expected"), [
    ("X = Y", "X BOOLEAN, Y BOOLEAN", (True, True), True),
    ("X <> Y", "X BOOLEAN, Y BOOLEAN", (True, False), True),
    # A string expression beside a TIME is parsed as a TIME, beside DATE / TIMESTAMP as a time.
    ("X = Y", "X TIME, Y STRING", (1000, "00:00:01"), True),
    ("X > Y", "X STRING, Y TIME", ("00:00:01", 999), True),
    ("X = Y", "X DATE, Y STRING", (1, "1970-01-02"), True),
    ("X > Y", "X STRING, Y TIMESTAMP", ("2020-01-01T00:00:00", 1), True),
    ("X < Y", "X DATE, Y TIMESTAMP", (1, 86_400_001), True),
    ("X = Y", "X DECIMAL(2,1), Y DOUBLE", (None, 1.0), False),  # a null operand: false
])
def test_mixed_comparisons(expr: str, columns: str, row: tuple[Any, ...], expected: Any) -> None:
    assert evaluate(expr, columns, row) is expected


@pytest.mark.parametrize(("expr", "message"), [
    ("X = NULL", "Comparison with NULL not supported: INTEGER = NULL"),
    ("NULL <> NULL", "Comparison with NULL not supported: NULL <> NULL"),
    ("NULL < X", "Comparison with NULL not supported: NULL < INTEGER"),
])
def test_a_null_literal_operand_is_refused(expr: str, message: str) -> None:
    with pytest.raises(StatementError) as err:
        evaluate(expr, "X INT", (1,))
    assert err.value.message == message + "\nUse 'IS NULL' or 'IS NOT NULL' instead."


def test_a_null_column_value_compares_false() -> None:
    assert evaluate("X = 1", "X INT", (None,)) is False
    assert evaluate("X IS NULL", "X INT", (None,)) is True


@pytest.mark.parametrize(("expr", "message"), [
    ("CASE WHEN X > 0 THEN 1 ELSE 2.5 END",
     "Invalid Case expression. Type for the default clause should be the same as for 'THEN' "
     "clauses.\nTHEN type: INTEGER.\nDEFAULT type: DECIMAL(2, 1)."),
    ("CASE WHEN X > 0 THEN 1 WHEN X < 0 THEN CAST(2 AS BIGINT) END",
     "Invalid Case expression. Type for all 'THEN' clauses should be the same.\nTHEN expression "
     "'WHEN (X < 0) THEN CAST(2 AS BIGINT)' has type: BIGINT.\nPrevious THEN expression(s) type: "
     "INTEGER."),
    ("CASE WHEN X > 0 THEN 'a' ELSE 1 END", "DEFAULT type: INTEGER."),
])
def test_case_branches_need_the_very_same_type(expr: str, message: str) -> None:
    with pytest.raises(StatementError) as err:
        evaluate(expr, "X INT", (1,))
    assert message in err.value.message


@pytest.mark.parametrize(("expr", "row", "expected"), [
    ("CASE WHEN X > 0 THEN NULL ELSE 2 END", (1,), None),    # a NULL branch takes the type
    ("CASE WHEN X > 0 THEN 1 ELSE NULL END", (0,), None),
    ("CASE WHEN X > 0 THEN 'a' WHEN X = 0 THEN 'b' ELSE 'c' END", (0,), "b"),
])
def test_case_with_null_branches(expr: str, row: tuple[Any, ...], expected: Any) -> None:
    assert evaluate(expr, "X INT", row) == expected


@pytest.mark.parametrize(("expr", "row", "expected"), [
    ("X LIKE 'a%'", (None, "a%"), None),
    ("X NOT LIKE 'a%'", (None, "a%"), None),
    ("X LIKE Y", ("ab", None), None),
    ("X LIKE Y", ("ab", "a%"), True),
    ("X NOT LIKE 'a%'", ("ba", "a%"), True),
])
def test_like_with_a_null_operand_is_null(expr: str, row: tuple[Any, ...], expected: Any) -> None:
    assert evaluate(expr, "X STRING, Y STRING", row) is expected
