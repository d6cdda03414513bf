"""Java's text forms of numbers, for formats whose output is text (DELIMITED, JSON strings)."""

from __future__ import annotations

from decimal import Decimal

from hayase.sql.runtime import java_double_str

# ``Double.toString`` (plain notation in [1e-3, 1e7), otherwise ``d.dddE±n``; always a fraction
# digit): one implementation, shared with CAST(... AS STRING).
java_double = java_double_str


def java_float_text(value: float) -> str:
    return java_double(value)


def plain_decimal(value: Decimal) -> str:
    """``BigDecimal.toPlainString``: no exponent, scale kept."""
    return format(value, "f")
