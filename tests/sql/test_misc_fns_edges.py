"""NULLIF, COALESCE and IFNULL at their edges, as ksqlDB's UDFs compute them."""

from __future__ import annotations

import math

import pytest
from tests.sql.conftest import evaluate

from hayase.sql.functions.misc import java_equals


@pytest.mark.parametrize(("row", "expected"), [
    ((1.5, 1.5), None),
    ((float("nan"), float("nan")), None),  # Double.equals: NaN equals NaN
    ((0.0, -0.0), 0.0),  # ... and 0.0 is not -0.0
    ((None, 1.0), None),
    ((2.0, None), 2.0),
])
def test_nullif_uses_java_equals(row: tuple[object, object], expected: object) -> None:
    assert evaluate("NULLIF(X, Y)", "X DOUBLE, Y DOUBLE", row) == expected


def test_java_equals_of_decimals_needs_the_same_scale() -> None:
    import decimal

    assert not java_equals(decimal.Decimal("1.0"), decimal.Decimal("1.00"))
    assert java_equals(decimal.Decimal("1.0"), decimal.Decimal("1.0"))
    assert not java_equals(True, 1)
    assert java_equals(math.inf, math.inf)
