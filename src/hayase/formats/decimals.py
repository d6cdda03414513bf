"""ksqlDB's DecimalUtil.ensureFit for values read from records: the value must fit the column's
DECIMAL(p, s) exactly; trailing zeros are added, digits are never rounded away."""

from __future__ import annotations

from decimal import Decimal

from hayase.formats.base import SerdeError
from hayase.sql.types import DecimalType, quantize


def ensure_fit(value: Decimal, t: DecimalType, text: object = None) -> Decimal:
    shown = value if text is None else text
    q = quantize(value, t)
    if q is None:
        raise SerdeError(f"Cannot fit decimal '{shown}' into {t}: precision overflow")
    if q != value:
        raise SerdeError(f"Cannot fit decimal '{shown}' into {t} without rounding.")
    return q
