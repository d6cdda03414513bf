"""JSON functions: EXTRACTJSONFIELD, IS_JSON_STRING, JSON_* and TO_JSON_STRING."""

from __future__ import annotations

import base64
import decimal
import json
import math
import re
from typing import Any

from hayase.sql.functions import (
    BOOLEAN,
    INTEGER,
    STRING,
    Bound,
    FunctionArgError,
    Udf,
    register,
    simple,
)
from hayase.sql.types import ArrayType, MapType, SqlType, StructType, array_of

_PATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\[\s*(-?\d+)\s*\]|\[\s*'([^']*)'\s*\]|\[\s*\"([^\"]*)\"\s*\]")


def _no_constants(name: str) -> Any:
    # Jackson rejects NaN and Infinity unless ALLOW_NON_NUMERIC_NUMBERS is on (it is not).
    raise ValueError(f"Non-standard token '{name}'")


_DECODER = json.JSONDecoder(parse_float=decimal.Decimal, parse_constant=_no_constants)


def _loads(text: str) -> Any:
    """Parse the first JSON value; trailing text is ignored (as Jackson does)."""
    value, _ = _DECODER.raw_decode(text.strip())
    return value


def _dumps(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), default=_default, ensure_ascii=False)


def _default(v: Any) -> Any:
    if isinstance(v, decimal.Decimal):
        return float(v)
    raise TypeError(type(v).__name__)


def _extract(text: str, path: str) -> str | None:
    try:
        doc = _loads(text)
    except ValueError:
        return None
    p = path.strip()
    if not p.startswith("$"):
        return None
    pos = 1
    cur = doc
    while pos < len(p):
        m = _PATH_TOKEN.match(p, pos)
        if m is None:
            return None
        pos = m.end()
        key, idx, q1, q2 = m.groups()
        name = idx if idx is not None else key if key is not None else (
            q1 if q1 is not None else q2)
        if isinstance(cur, list):
            # Jackson: an array takes integer tokens only; a bad index is a missing node.
            if not re.fullmatch(r"-?\d+", name) or not 0 <= int(name) < len(cur):
                return None
            cur = cur[int(name)]
        elif isinstance(cur, dict) and name in cur:
            cur = cur[name]
        else:
            return None
    if isinstance(cur, str):
        return cur
    return _raw_json(cur)


def _raw_json(v: Any, plain: bool = False) -> str:
    """JsonNode text; ``plain`` writes decimals without exponents (WRITE_BIGDECIMAL_AS_PLAIN)."""
    if isinstance(v, decimal.Decimal):
        return format(v, "f") if plain else _java_big_decimal_str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "{" + ",".join(_json_text(k) + ":" + _raw_json(x, plain)
                              for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_raw_json(x, plain) for x in v) + "]"
    if v is None:
        return "null"
    if isinstance(v, str):
        return _json_text(v)
    return json.dumps(v, ensure_ascii=False)


def _json_text(s: str) -> str:
    """A JSON string as Jackson writes it: control characters as \\u00XX in upper case."""
    out = json.dumps(s, ensure_ascii=False)
    return _LOWER_ESCAPE.sub(lambda m: m.group(1) + "\\u00" + m.group(2).upper(), out)


# A \u00xx escape, not one whose backslash is itself escaped.
_LOWER_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u00([0-9a-f]{2})")


simple("EXTRACTJSONFIELD", [(["STRING", "STRING"], STRING)], _extract, category="JSON")


def _is_json_string(text: str | None) -> bool:
    if text is None:
        return False
    try:
        _loads(text)
        return True
    except ValueError:
        return False


simple("IS_JSON_STRING", [(["STRING"], BOOLEAN)], _is_json_string, nulls=False, category="JSON")


def _json_array_length(text: str) -> int | None:
    try:
        v = _loads(text)
    except ValueError:
        return None
    return len(v) if isinstance(v, list) else None


def _json_item_matches(item: Any, value: Any) -> bool:
    """Jackson token vs. the SQL value's Java class: an integer token matches INT/BIGINT, a float
    token DOUBLE, then the values must be equal (a DECIMAL never matches)."""
    if item is None or value is None:
        return item is None and value is None
    if isinstance(item, bool) or isinstance(value, bool):
        return isinstance(item, bool) and isinstance(value, bool) and item == value
    if isinstance(item, int):
        return isinstance(value, int) and item == value
    if isinstance(item, decimal.Decimal):
        return isinstance(value, float) and float(item) == value
    if isinstance(item, str):
        return isinstance(value, str) and item == value
    return False  # a nested array or object


_WS = re.compile(r"[ \t\n\r]*")


def _json_array_contains(text: str, value: Any) -> bool:
    """Reads the array element by element, as Jackson's streaming parser does: a match before a
    malformed tail still counts; anything but an array is false."""
    pos = _WS.match(text).end()  # type: ignore[union-attr]
    if not text.startswith("[", pos):
        return False
    pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
    if text.startswith("]", pos):
        return False
    while True:
        try:
            item, pos = _DECODER.raw_decode(text, pos)
        except ValueError:
            return False
        if _json_item_matches(item, value):
            return True
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if not text.startswith(",", pos):
            return False
        pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]


def _json_array_contains_bind(types: list[SqlType], literals: list[Any]) -> Bound:
    if len(types) != 2 or types[0].base not in ("STRING", "NULL"):
        raise FunctionArgError(f"Function 'json_array_contains' does not accept parameters "
                               f"({', '.join(str(t) for t in types)}).")
    # A null array text fails the call in ksqlDB (the parser gets no input): null.
    return Bound(BOOLEAN, lambda s, v: None if s is None else _json_array_contains(s, v),
                 nulls=False)


register(Udf("JSON_ARRAY_CONTAINS", _json_array_contains_bind, category="JSON"))

simple("JSON_ARRAY_LENGTH", [(["STRING"], INTEGER)], _json_array_length, category="JSON")


def _json_keys(text: str) -> list[str] | None:
    try:
        v = _loads(text)
    except ValueError:
        return None
    return list(v.keys()) if isinstance(v, dict) else None


simple("JSON_KEYS", [(["STRING"], array_of(STRING))], _json_keys, category="JSON")


def _json_records(text: str) -> dict[str, str] | None:
    try:
        v = _loads(text)
    except ValueError:
        return None
    if not isinstance(v, dict):
        return None
    return {k: _raw_json(x) for k, x in v.items()}


def _json_items(text: str) -> list[str] | None:
    try:
        v = _loads(text)
    except ValueError:
        return None
    if not isinstance(v, list):
        return None
    return [_raw_json(x) for x in v]


from hayase.sql.types import map_of  # noqa: E402

simple("JSON_RECORDS", [(["STRING"], map_of(STRING, STRING))], _json_records, category="JSON")
simple("JSON_ITEMS", [(["STRING"], array_of(STRING))], _json_items, category="JSON")


def _json_concat(*texts: str | None) -> str | None:
    """PostgreSQL's ||: objects merge (the last key wins) when every value is an object;
    otherwise every value becomes an array (a non-array is a one-element array) and they join."""
    values: list[Any] = []
    for t in texts:
        if t is None:
            return None
        try:
            values.append(_loads(t))
        except ValueError:
            return None
    if not values:
        return None
    if all(isinstance(v, dict) for v in values):
        merged: dict[str, Any] = {}
        for v in values:
            merged.update(v)
        return _raw_json(merged, plain=True)
    if len(values) == 1:
        return _raw_json(values[0], plain=True)
    joined: list[Any] = []
    for v in values:
        joined.extend(v if isinstance(v, list) else [v])
    return _raw_json(joined, plain=True)


def _java_big_decimal_str(d: decimal.Decimal) -> str:
    """BigDecimal.toString: plain unless the exponent is positive or the value is tiny."""
    sign, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    adjusted = len(digits) - 1 + exp
    if exp <= 0 and adjusted >= -6:
        return format(d, "f")
    mantissa = "".join(map(str, digits))
    text = mantissa[0] + ("." + mantissa[1:] if len(mantissa) > 1 else "")
    return ("-" if sign else "") + text + "E" + ("+" if adjusted >= 0 else "") + str(adjusted)


def _json_concat_bind(types: list[SqlType], literals: list[Any]) -> Bound:
    if not types or any(t.base not in ("STRING", "NULL") for t in types):
        raise FunctionArgError("Function 'json_concat' does not accept parameters.")
    return Bound(STRING, _json_concat, nulls=False)


register(Udf("JSON_CONCAT", _json_concat_bind, category="JSON"))


def to_json_value(v: Any, t: SqlType | None) -> str:
    """Serialize ``v`` of type ``t`` as ksqlDB's TO_JSON_STRING does."""
    if v is None:
        return "null"
    if t is None:
        return _raw_json(v)
    b = t.base
    if b == "BOOLEAN":
        return "true" if v else "false"
    if b in ("INTEGER", "BIGINT", "TIMESTAMP", "TIME", "DATE"):
        if b == "DATE":
            from hayase.sql.runtime import date_str

            return json.dumps(date_str(v))
        if b == "TIME":
            from hayase.sql.runtime import time_str

            return json.dumps(time_str(v))
        if b == "TIMESTAMP":
            from hayase.sql.runtime import timestamp_str

            return json.dumps(timestamp_str(v))
        return str(v)
    if b == "DOUBLE":
        from hayase.sql.runtime import java_double_str

        text = java_double_str(float(v))
        return json.dumps(text) if math.isnan(v) or math.isinf(v) else text
    if b == "DECIMAL":
        return format(v, "f")
    if b == "STRING":
        return _json_text(v)
    if b == "BYTES":
        return json.dumps(base64.b64encode(v).decode())
    if isinstance(t, ArrayType):
        return "[" + ",".join(to_json_value(x, t.element) for x in v) + "]"
    # ksqlDB writes map entries and struct fields in key order (a TreeMap).
    if isinstance(t, MapType):
        return "{" + ",".join(_json_text(str(k)) + ":"
                              + to_json_value(v[k], t.value)
                              for k in sorted(v, key=str)) + "}"
    if isinstance(t, StructType):
        return "{" + ",".join(_json_text(n) + ":" + to_json_value(v.get(n), ft)
                              for n, ft in sorted(t.fields)) + "}"
    return _raw_json(v)


def _to_json_bind(types: list[SqlType], literals: list[Any]) -> Bound:
    if len(types) != 1:
        raise FunctionArgError("Function 'to_json_string' does not accept parameters.")
    t = types[0]
    return Bound(STRING, lambda v: to_json_value(v, t), nulls=False)


register(Udf("TO_JSON_STRING", _to_json_bind, category="JSON"))

