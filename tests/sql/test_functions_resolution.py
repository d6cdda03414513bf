"""How a call picks a function's overload when an argument is the untyped NULL literal."""

from __future__ import annotations

import pytest
from tests.sql.conftest import evaluate

from hayase.sql.errors import StatementError


@pytest.mark.parametrize("expr", [
    "SUBSTRING(NULL, 1)",  # SUBSTRING(STRING, INT) or SUBSTRING(BYTES, INT)
    "LEN(NULL)",
    "CHR(NULL)",  # CHR(INT) or CHR(STRING)
    "FLOOR(NULL)",
    "ROUND(NULL)",
    "ROUND(NULL, 1)",  # ROUND(DOUBLE, INT) or ROUND(DECIMAL, INT)
    "ABS(NULL)",
    "ROUND(S, NULL)",  # after casts: ROUND(DOUBLE, INT) or ROUND(DECIMAL, INT)
    "LOG(NULL)",
    "ATAN2(NULL, S)",
    "SQRT(NULL)",  # SQRT(INT), SQRT(BIGINT) or SQRT(DOUBLE)
    "SIGN(NULL)",
])
def test_null_literal_matching_two_overloads_is_ambiguous(expr: str) -> None:
    with pytest.raises(StatementError, match="cannot be resolved due to ambiguous method "
                                             r"parameters \((INTEGER, )?null"):
        evaluate(expr.replace("(S", "(I").replace(", S)", ", I)"), "I INT", (1,))


@pytest.mark.parametrize(("expr", "expected"), [
    ("SUBSTRING(CAST(NULL AS STRING), 1)", None),
    ("SUBSTRING(S, NULL)", None),
    ("LPAD(S, NULL, 'x')", None),
    ("MASK(NULL)", None),  # one overload takes a single argument
    ("POWER(NULL, 2)", None),  # only POWER(INT, INT) fits without a cast
])
def test_null_literal_with_one_overload(expr: str, expected: object) -> None:
    assert evaluate(expr, "S STRING", ("x",)) == expected
