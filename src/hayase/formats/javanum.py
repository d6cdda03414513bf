"""Java's text-to-number rules (Integer.parseInt, Long.parseLong, Double.parseDouble,
new BigDecimal(String), Boolean.parseBoolean), which ksqlDB's serdes use: Python's int(),
float() and Decimal() accept more (whitespace, underscores, "inf", "NaN") and would let bad
records through.

The character rules are the ones CAST uses (hayase.sql.runtime): Integer.parseInt and
new BigDecimal read digits with Character.digit (any Unicode decimal digit of the Basic
Multilingual Plane, no trimming); Double.parseDouble trims what String.trim trims and then
reads ASCII only."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from hayase.sql.runtime import _JAVA_DECIMAL, _JAVA_INT, _java_digits, java_trim

_DOUBLE = re.compile(
    r"[+-]?(NaN|Infinity|(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?)|"
    r"(0[xX][0-9a-fA-F]*\.?[0-9a-fA-F]*[pP][+-]?[0-9]+))[fFdD]?\Z"
)


def parse_long(text: str) -> int:
    """Long.parseLong: a sign and decimal digits, nothing else (no spaces)."""
    if not (_JAVA_INT.match(text) and _java_digits(text)):
        raise ValueError(f'For input string: "{text}"')
    return int(text)


def parse_int(text: str, bits: int = 32) -> int:
    value = parse_long(text)
    if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        raise ValueError(f'For input string: "{text}"')
    return value


def parse_double(text: str) -> float:
    """Double.parseDouble: String.trim, then ASCII decimal or hex floating-point text."""
    stripped = java_trim(text)
    if not (stripped.isascii() and _DOUBLE.match(stripped)):
        raise ValueError(f'For input string: "{text}"')
    if "x" in stripped.lower():
        return float.fromhex(stripped.rstrip("fFdD"))
    if stripped[-1] in "fFdD":
        stripped = stripped[:-1]
    return float(stripped)


def parse_big_decimal(text: str) -> Decimal:
    """new BigDecimal(String): no spaces, no NaN or Infinity, no underscores."""
    if not (_JAVA_DECIMAL.match(text) and _java_digits(text)):
        raise ValueError(f'For input string: "{text}"')
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f'For input string: "{text}"') from None


def parse_boolean(text: str) -> bool:
    """Boolean.parseBoolean: "true" in any case is true, anything else false."""
    return text.lower() == "true"
