"""Java's text-to-number rules (Integer.parseInt, Long.parseLong, Double.parseDouble,
Boolean.parseBoolean), which ksqlDB's serdes use: Python's int() and float() accept more
(whitespace, underscores, "inf") and would let bad records through."""

from __future__ import annotations

import re

_INT = re.compile(r"[+-]?[0-9]+\Z")
_DOUBLE = re.compile(
    r"[+-]?(NaN|Infinity|((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)|"
    r"(0[xX][0-9a-fA-F]*\.?[0-9a-fA-F]*[pP][+-]?\d+))[fFdD]?\Z"
)


def parse_long(text: str) -> int:
    if not _INT.match(text):
        raise ValueError(f'For input string: "{text}"')
    return int(text)


def parse_int(text: str, bits: int = 32) -> int:
    value = parse_long(text)
    if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        raise ValueError(f'For input string: "{text}"')
    return value


def parse_double(text: str) -> float:
    stripped = text.strip()  # Double.parseDouble trims whitespace
    if not _DOUBLE.match(stripped):
        raise ValueError(f'For input string: "{text}"')
    if stripped[-1] in "fFdD" and "x" not in stripped.lower():
        stripped = stripped[:-1]
    if "x" in stripped.lower():
        return float.fromhex(stripped.rstrip("fFdD"))
    return float(stripped)


def parse_boolean(text: str) -> bool:
    """Boolean.parseBoolean: "true" in any case is true, anything else false."""
    return text.lower() == "true"
