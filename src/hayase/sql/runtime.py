"""Helpers called by generated expression code: casts, Java-compatible arithmetic, formatting.

Every helper receives non-null arguments unless it says otherwise (the generated code checks
for null first) and raises :class:`~hayase.sql.errors.KsqlRuntimeError` on bad input.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import math
import re
from typing import Any

from hayase.sql.errors import KsqlRuntimeError
from hayase.sql.types import (
    ArrayType,
    DecimalType,
    MapType,
    SqlType,
    StructType,
    quantize,
    wrap_bigint,
    wrap_int,
)

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


# --------------------------------------------------------------------------- arithmetic


def int_div(a: int, b: int, bits: int) -> int | None:
    """Java integer division (truncates toward zero); ksqlDB yields null on division by zero."""
    if b == 0:
        return None
    q = abs(a) // abs(b)
    q = q if (a >= 0) == (b >= 0) else -q
    return wrap_int(q) if bits == 32 else wrap_bigint(q)


def int_mod(a: int, b: int) -> int | None:
    """Java remainder: the sign follows the dividend."""
    if b == 0:
        return None
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


def double_div(a: float, b: float) -> float:
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.inf if (a > 0) == (math.copysign(1.0, b) > 0) else -math.inf
    return a / b


def double_mod(a: float, b: float) -> float:
    if b == 0:
        return math.nan
    return math.fmod(a, b)


def dec(value: Any, t: DecimalType) -> decimal.Decimal | None:
    """Coerce a number to DECIMAL(p, s) (HALF_UP); None (null) when it does not fit."""
    if isinstance(value, decimal.Decimal):
        d = value
    elif isinstance(value, float):
        d = decimal.Decimal(repr(value))
    else:
        d = decimal.Decimal(value)
    return quantize(d, t)


def java_string_key(s: str) -> bytes:
    """Sort key for String.compareTo, which compares UTF-16 code units, not code points: a
    character above U+FFFF (a surrogate pair, D800-DFFF) sorts below U+E000-U+FFFF.  Big-endian
    units compare as bytes.  Every ordering of strings goes through this key."""
    return s.encode("utf-16-be", "surrogatepass")


def double_to_decimal(value: float) -> decimal.Decimal:
    """BigDecimal.valueOf(double): the decimal of Double.toString (Python's repr is the same
    shortest text); NaN and the infinities have none (NumberFormatException)."""
    if not math.isfinite(value):
        raise KsqlRuntimeError(f"Character {'N' if math.isnan(value) else 'I'} is neither a "
                               "decimal digit number, decimal point, nor \"e\" notation "
                               "exponential mark.")
    return decimal.Decimal(repr(value))


# --------------------------------------------------------------------------- formatting


def java_double_str(v: float) -> str:
    """``Double.toString``: plain between 1e-3 and 1e7, otherwise ``d.dddE[-]n``."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0:
        return "-0.0" if math.copysign(1.0, v) < 0 else "0.0"
    a = abs(v)
    r = repr(v)
    if 1e-3 <= a < 1e7:
        if "e" in r or "E" in r:
            r = format(decimal.Decimal(r), "f")
        if "." not in r:
            r += ".0"
        return r
    d = decimal.Decimal(r)
    sign, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    e10 = exp + len(digits) - 1
    mant = ds[0] + "." + (ds[1:] or "0")
    return ("-" if sign else "") + mant + "E" + str(e10)


def decimal_str(v: decimal.Decimal) -> str:
    """``BigDecimal.toString`` (scientific notation only for very small/large exponents)."""
    sign, digits, exp = v.as_tuple()
    assert isinstance(exp, int)
    adjusted = exp + len(digits) - 1
    if exp <= 0 and adjusted >= -6:
        return format(v, "f")
    s = "".join(map(str, digits))
    mant = s[0] + ("." + s[1:] if len(s) > 1 else "")
    return ("-" if sign else "") + mant + "E" + ("+" if adjusted > 0 else "") + str(adjusted)


def timestamp_str(ms: int) -> str:
    dt = _EPOCH + datetime.timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


def date_str(days: int) -> str:
    return (datetime.date(1970, 1, 1) + datetime.timedelta(days=days)).isoformat()


def time_str(ms: int) -> str:
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, milli = divmod(rem, 1000)
    text = f"{h:02d}:{m:02d}"
    if s or milli:
        text += f":{s:02d}"
    if milli:
        text += f".{milli:03d}"
    return text


def to_string(v: Any, t: SqlType) -> str:
    """CAST(v AS STRING) as ksqlDB prints each type."""
    b = t.base
    if b == "STRING":
        return str(v)
    if b == "BOOLEAN":
        return "true" if v else "false"
    if b in ("INTEGER", "BIGINT"):
        return str(v)
    if b == "DOUBLE":
        return java_double_str(float(v))
    if b == "DECIMAL":
        return decimal_str(v)
    if b == "TIMESTAMP":
        return timestamp_str(v)
    if b == "DATE":
        return date_str(v)
    if b == "TIME":
        return time_str(v)
    if b == "BYTES":
        return base64.b64encode(v).decode()
    if isinstance(t, ArrayType):
        return "[" + ", ".join(_inner_str(x, t.element) for x in v) + "]"
    if isinstance(t, MapType):
        return "{" + ", ".join(f"{_inner_str(k, t.key)}={_inner_str(x, t.value)}"
                               for k, x in v.items()) + "}"
    if isinstance(t, StructType):
        return "Struct{" + ",".join(f"{n}={_inner_str(v.get(n), ft)}" for n, ft in t.fields
                                    if v.get(n) is not None) + "}"
    return str(v)


def _inner_str(v: Any, t: SqlType | None) -> str:
    if v is None:
        return "null"
    if t is None:
        return str(v)
    return to_string(v, t)


# --------------------------------------------------------------------------- parsing / casts


def java_trim(s: str) -> str:
    """Java's String.trim: strips the characters up to U+0020 (controls and space) at both
    ends and nothing else (Python's strip also strips Unicode spaces such as U+00A0)."""
    i, j = 0, len(s)
    while i < j and s[i] <= " ":
        i += 1
    while j > i and s[j - 1] <= " ":
        j -= 1
    return s[i:j]


# Integer.parseInt / Long.parseLong: a sign, then decimal digits as Character.digit reads them
# (any Unicode Nd digit of the Basic Multilingual Plane: "١٢" is 12); no underscores, no spaces.
_JAVA_INT = re.compile(r"[+-]?\d+\Z")
# new BigDecimal(String): sign, digits with one optional point, optional exponent; the digits
# again as Character.digit reads them. No NaN, no Infinity, no underscores.
_JAVA_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")


def _java_digits(s: str) -> bool:
    """Python's ``\\d`` and int() take Nd digits of every plane; Java reads UTF-16 units, so
    a supplementary-plane digit (two surrogates) is no digit to it."""
    return all(ord(c) <= 0xFFFF for c in s)


def parse_int(s: str, bits: int) -> int:
    """CAST(STRING AS INT / BIGINT): ksqlDB's ``Integer.parseInt(s.trim())`` (Long.parseLong)."""
    name = "INTEGER" if bits == 32 else "BIGINT"
    text = java_trim(s)
    if not (_JAVA_INT.match(text) and _java_digits(text)):
        raise KsqlRuntimeError(f'invalid input syntax for type {name}: "{s}".')
    v = int(text)
    limit = 2 ** (bits - 1)
    if not -limit <= v < limit:
        raise KsqlRuntimeError(f'invalid input syntax for type {name}: "{s}".')
    return v


def parse_double(s: str) -> float:
    """CAST(STRING AS DOUBLE): ksqlDB's ``SqlDoubles.parseDouble(s.trim())``, Java's
    Double.parseDouble (ASCII digits, hex floats and a trailing f/F/d/D accepted; Python's
    float takes "inf", "nan" in any case, underscores and Unicode digits instead) refusing
    NaN and infinities, as SqlDoubles does."""
    from hayase.formats.javanum import parse_double as java_parse_double

    text = java_trim(s)
    try:
        # FloatingDecimal reads ASCII only: no Unicode digits, no Unicode space left by trim.
        if not text.isascii():
            raise ValueError(text)
        value = java_parse_double(text)
    except ValueError:
        raise KsqlRuntimeError(f'invalid input syntax for type DOUBLE: "{s}".') from None
    if not math.isfinite(value):
        raise KsqlRuntimeError(f'invalid input syntax for type DOUBLE: "{s}".')
    return value


def parse_decimal(s: str, t: DecimalType) -> decimal.Decimal | None:
    """CAST(STRING AS DECIMAL): ksqlDB's ``new BigDecimal(s.trim())`` (DecimalUtil.cast)."""
    text = java_trim(s)
    if not (_JAVA_DECIMAL.match(text) and _java_digits(text)):
        raise KsqlRuntimeError(f'invalid input syntax for type DECIMAL: "{s}".')
    try:
        d = decimal.Decimal(text)
    except decimal.InvalidOperation:
        raise KsqlRuntimeError(f'invalid input syntax for type DECIMAL: "{s}".') from None
    return quantize(d, t)


def parse_bool(s: str) -> bool:
    low = s.strip().lower()
    # ksqlDB accepts any prefix of true/false/yes/no.
    if low and ("true".startswith(low) or "yes".startswith(low)):
        return True
    if low and ("false".startswith(low) or "no".startswith(low)):
        return False
    raise KsqlRuntimeError(f'invalid input syntax for type BOOLEAN: "{s}".')


_TS_RE = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?)?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?$")


def parse_timestamp(s: str) -> int:
    """ISO-8601 timestamp text (partial forms allowed, as ksqlDB) -> epoch ms (UTC default)."""
    m = _TS_RE.match(s.strip())
    if not m:
        raise KsqlRuntimeError(f"Failed to parse timestamp '{s}'")
    y, mo, d, h, mi, se, frac, tz = m.groups()
    ms = int((frac or "0").ljust(3, "0")[:3])
    dt = datetime.datetime(int(y), int(mo or 1), int(d or 1), int(h or 0), int(mi or 0),
                           int(se or 0), ms * 1000, tzinfo=datetime.UTC)
    offset = 0
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60)
    return (dt - _EPOCH) // datetime.timedelta(milliseconds=1) - offset * 1000


def parse_date(s: str) -> int:
    try:
        return (datetime.date.fromisoformat(s.strip()) - datetime.date(1970, 1, 1)).days
    except ValueError:
        raise KsqlRuntimeError(f"Failed to parse date '{s}'") from None


def parse_time(s: str) -> int:
    try:
        t = datetime.time.fromisoformat(s.strip())
    except ValueError:
        raise KsqlRuntimeError(f"Failed to parse time '{s}'") from None
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1000 + t.microsecond // 1000


def double_to_int(v: float, bits: int) -> int:
    """Java's (int)/(long) cast of a double: truncate, saturate, NaN -> 0."""
    if math.isnan(v):
        return 0
    limit = 2 ** (bits - 1)
    if math.isinf(v):
        return limit - 1 if v > 0 else -limit
    i = int(v)
    return max(-limit, min(limit - 1, i))


def decimal_to_int(v: decimal.Decimal, bits: int) -> int:
    i = int(v)  # truncates toward zero
    return wrap_int(i) if bits == 32 else wrap_bigint(i)


# --------------------------------------------------------------------------- LIKE


# Java's "." without DOTALL: any character but a line terminator (Pattern's default set).
_ANY = "[^\n\r\u0085\u2028\u2029]"
_LIKE_CACHE: dict[tuple[str, str | None], re.Pattern[str] | _EscapeAtEnd] = {}


class _EscapeAtEnd:
    """A LIKE pattern that ends with its escape character: ksqlDB's LikeEvaluator fails on
    every record it matches (so the expression fails), it does not match literally."""

    def fullmatch(self, _value: str) -> re.Match[str] | None:
        raise KsqlRuntimeError("LIKE pattern must not end with escape character")


def like_regex(pattern: str, escape: str | None) -> re.Pattern[str] | _EscapeAtEnd:
    """The regular expression ksqlDB's LikeEvaluator builds: ``%`` is ``.*`` and ``_`` is
    ``.``, Java's dot, which matches no line terminator (so ``'a%'`` does not match
    ``'a\\nb'``); the escape character makes the next character literal."""
    key = (pattern, escape)
    rx = _LIKE_CACHE.get(key)
    if rx is None:
        out: list[str] = []
        i = 0
        while i < len(pattern):
            ch = pattern[i]
            if escape is not None and ch == escape:
                if i + 1 == len(pattern):
                    break
                out.append(re.escape(pattern[i + 1]))
                i += 2
                continue
            out.append(_ANY + "*" if ch == "%" else _ANY if ch == "_" else re.escape(ch))
            i += 1
        else:
            rx = re.compile("".join(out))
        if rx is None:
            rx = _EscapeAtEnd()
        if len(_LIKE_CACHE) < 10_000:
            _LIKE_CACHE[key] = rx
    return rx


def like(value: str, pattern: str, escape: str | None) -> bool:
    return like_regex(pattern, escape).fullmatch(value) is not None


# --------------------------------------------------------------------------- collections


def array_index(arr: list[Any], idx: int) -> Any:
    """1-based index; negative counts from the end; out of range -> null."""
    n = len(arr)
    if idx > 0:
        return arr[idx - 1] if idx <= n else None
    if idx < 0:
        return arr[n + idx] if -idx <= n else None
    return None


def struct_get(v: dict[str, Any], name: str) -> Any:
    return v.get(name)


def json_dumps(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"))


def values_equal(a: Any, b: Any) -> bool:
    """Equality as ksqlDB compares values of the same (widened) type."""
    return bool(a == b)
