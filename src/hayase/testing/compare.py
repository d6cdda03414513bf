"""ksqlDB's comparison of expected and actual output records (ExpectedRecordComparator).

Per topic: same number of records, in order; key, value, timestamp (when given), window (when
given) and headers (missing expected headers mean none). Objects need the same number of fields;
each expected field is looked up as written, then upper-cased, and reads as null when absent. Numbers: integers exact, doubles within
1e-6, decimals equal with the same scale (an expected integer only matches scale 0). Expected
strings also match decimals (parsed) and bytes (base64). null only matches null.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from hayase.testing.qtt import ABSENT, RecordSpec, WindowSpec

DOUBLE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ActualRecord:
    topic: str
    key: Any
    value: Any
    timestamp: int
    window: WindowSpec | None
    headers: list[tuple[str, bytes | None]]


def _exponent(d: Decimal) -> int:
    exp = d.as_tuple().exponent
    return exp if isinstance(exp, int) else 0


def _number_matches(actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return False
    if isinstance(actual, int):
        if isinstance(expected, int):
            return actual == expected
        return isinstance(expected, Decimal) and expected == actual
    if isinstance(actual, float):
        if math.isnan(actual):
            return isinstance(expected, Decimal) and expected.is_nan()
        exp = float(expected)
        return abs(actual - exp) <= DOUBLE_TOLERANCE * max(1.0, abs(exp))
    if isinstance(actual, Decimal):
        if isinstance(expected, int):
            return _exponent(actual) >= 0 and actual == expected
        return actual == expected and _exponent(actual) == _exponent(expected)
    return False


def matches(actual: Any, expected: Any) -> bool:
    if expected is None:
        return actual is None
    if actual is None:
        return False
    if isinstance(expected, bool):
        return actual is expected or (isinstance(actual, str) and actual == str(expected).lower())
    if isinstance(expected, (int, Decimal)):
        if isinstance(actual, str):
            return False
        return _number_matches(actual, expected)
    if isinstance(expected, str):
        if isinstance(actual, str):
            return actual == expected
        if isinstance(actual, bytes):
            try:
                return base64.b64decode(expected) == actual
            except ValueError:
                return False
        if isinstance(actual, Decimal):
            try:
                return Decimal(expected) == actual and \
                    _exponent(Decimal(expected)) == _exponent(actual)
            except InvalidOperation:
                return False
        if isinstance(actual, float) and not isinstance(actual, bool):
            try:
                return _number_matches(actual, Decimal(expected))
            except InvalidOperation:
                return False
        return False
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(
            matches(a, e) for a, e in zip(actual, expected, strict=True))
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or len(actual) != len(expected):
            return False
        for k, e in expected.items():
            # As in ksqlDB (a Java Map.get): a field missing from the actual object reads as
            # null, so it matches an expected null when the field counts are equal.
            a = actual[k] if k in actual else actual.get(k.upper())
            if not matches(a, e):
                return False
        return True
    return False


def render(value: Any) -> str:
    def plain(v: Any) -> Any:
        if isinstance(v, Decimal):
            return float(v) if _exponent(v) < 0 else int(v)
        if isinstance(v, bytes):
            return base64.b64encode(v).decode()
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(plain(value), separators=(",", ":"))


def _describe_expected(r: RecordSpec) -> str:
    ts = "" if r.timestamp is ABSENT else f" with timestamp={r.timestamp}"
    return f"<{render(r.key_or_none)}, {render(r.value)}>{ts}"


def _describe_actual(r: ActualRecord) -> str:
    return f"<{render(r.key)}, {render(r.value)}> with timestamp={r.timestamp}"


def _headers_match(actual: list[tuple[str, bytes | None]],
                   expected: list[tuple[str, bytes | None]] | None) -> bool:
    return list(actual) == list(expected or [])


def first_difference(topic: str, expected: list[RecordSpec], actual: list[ActualRecord],
                     check_zero_timestamps: bool = True) -> str | None:
    """None when the topic's records match; else the first difference, in ksqlDB's words."""
    for i, exp in enumerate(expected):
        if i >= len(actual):
            return (f"Topic '{topic}': expected {len(expected)} records but got {len(actual)}"
                    f" (missing {_describe_expected(exp)} at message {i})")
        act = actual[i]
        ok = matches(act.key, exp.key_or_none) and matches(act.value, exp.value)
        if ok and exp.timestamp is not ABSENT and not (
                exp.timestamp == 0 and not check_zero_timestamps):
            ok = act.timestamp == exp.timestamp
        if ok and exp.window is not None:
            ok = act.window == exp.window
        if ok:
            ok = _headers_match(act.headers, exp.headers)
        if not ok:
            return (f"Topic '{topic}', message {i}: Expected {_describe_expected(exp)}"
                    f"{_window_text(exp.window)}{_headers_text(exp.headers)} but was "
                    f"{_describe_actual(act)}{_window_text(act.window)}"
                    f"{_headers_text(act.headers)}")
    if len(actual) > len(expected):
        extra = actual[len(expected)]
        return (f"Topic '{topic}': expected {len(expected)} records but got {len(actual)}"
                f" (unexpected {_describe_actual(extra)} at message {len(expected)})")
    return None


def _window_text(w: WindowSpec | None) -> str:
    return "" if w is None else f" window={w.type.lower()}[{w.start},{w.end}]"


def _headers_text(h: list[tuple[str, bytes | None]] | None) -> str:
    if not h:
        return ""
    return " headers=" + render([{"KEY": k, "VALUE": v} for k, v in h])
