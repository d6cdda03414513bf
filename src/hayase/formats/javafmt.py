"""Java's text forms of numbers, for formats whose output is text (DELIMITED, JSON strings)."""

from __future__ import annotations

import math
from decimal import Decimal


def java_double(value: float) -> str:
    """``Double.toString``: plain notation in [1e-3, 1e7), otherwise ``d.dddE±n``; always a
    fraction digit ("1.0")."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    text = repr(value)  # shortest round-trip digits, like Java's algorithm (JDK 19+)
    mag = abs(value)
    if 1e-3 <= mag < 1e7:
        if "e" in text or "E" in text:
            text = format(Decimal(text), "f")
        if "." not in text:
            text += ".0"
        return text
    digits, _, exp = format(Decimal(text), "E").partition("E")
    mantissa = digits.rstrip("0").rstrip(".") if "." in digits else digits
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}E{int(exp)}"


def java_float_text(value: float) -> str:
    return java_double(value)


def plain_decimal(value: Decimal) -> str:
    """``BigDecimal.toPlainString``: no exponent, scale kept."""
    return format(value, "f")
