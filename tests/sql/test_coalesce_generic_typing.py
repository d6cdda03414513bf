"""COALESCE and IFNULL bind one generic T (ksqlDB's UdfIndex never casts a generic argument):
every typed argument must have the very same type, an untyped NULL binds nothing."""

from __future__ import annotations

import decimal

import pytest
from tests.sql.conftest import evaluate

from hayase.sql.errors import StatementError


@pytest.mark.parametrize(("expr", "schema"), [
    ("IFNULL(X, Y)", "X INT, Y BIGINT"),
    ("COALESCE(X, Y, Z)", "X INT, Y BIGINT, Z DOUBLE"),
    ("COALESCE(X, Y)", "X DECIMAL(5, 2), Y DECIMAL(6, 3)"),
    ("IFNULL(X, 1.5)", "X DOUBLE"),  # 1.5 is a DECIMAL(2, 1) literal
    ("COALESCE(X, Y)", "X ARRAY<INT>, Y ARRAY<BIGINT>"),
])
def test_arguments_of_different_types_are_refused(expr: str, schema: str) -> None:
    with pytest.raises(StatementError, match="does not accept parameters"):
        evaluate(expr, schema, (None, None, None)[:schema.count(",") + 1])


def test_same_types_and_untyped_nulls_are_accepted() -> None:
    assert evaluate("IFNULL(X, 10)", "X INT", (None,)) == 10
    assert evaluate("COALESCE(NULL, X, NULL, Y)", "X BIGINT, Y BIGINT", (None, 7)) == 7
    got = evaluate("COALESCE(X, Y)", "X DECIMAL(5, 2), Y DECIMAL(5, 2)",
                   (None, decimal.Decimal("1.25")))
    assert got == decimal.Decimal("1.25")
