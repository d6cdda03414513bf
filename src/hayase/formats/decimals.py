"""Range checks on values read from records: ksqlDB's DecimalUtil.ensureFit (the value must fit
the column's DECIMAL(p, s) exactly; trailing zeros are added, digits are never rounded away) and
the TIME check (milliseconds within one day)."""

from __future__ import annotations

from decimal import Decimal

from hayase.formats.base import SerdeError
from hayase.formats.javafmt import plain_decimal
from hayase.sql.types import DecimalType, quantize


def ensure_fit(value: Decimal, t: DecimalType) -> Decimal:
    """First the integer digits (|value| < 10^(p-s), checked before any rounding), then the
    scale (no digit may be lost), each with ksqlDB's message."""
    digits = t.precision - t.scale
    if abs(value) >= Decimal(10) ** digits:
        raise SerdeError(
            f"Numeric field overflow: A field with precision {t.precision} and scale {t.scale} "
            f"must round to an absolute value less than 10^{digits}. Got {plain_decimal(value)}")
    q = quantize(value, t)
    if q is None or q != value:
        _sign, figures, exponent = value.as_tuple()
        assert isinstance(exponent, int)  # finite: the callers parse numbers only
        raise SerdeError(
            f"Cannot fit decimal '{plain_decimal(value)}' into DECIMAL({t.precision}, "
            f"{t.scale}) without rounding. (Requires {len(figures)},{-exponent})")
    return q


def check_time(ms: int) -> int:
    """TIME read from a record: milliseconds of the day, 0 to 86400000 (as Connect's Time)."""
    if not 0 <= ms <= 86_400_000:
        raise SerdeError("Time values must use number of milliseconds greater than 0 and less "
                         "than 86400000.")
    return ms
