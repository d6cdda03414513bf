"""JSON, with ksqlDB's coercions (KsqlJsonDeserializer / JsonSerdeUtils).

Reading: field names match columns exactly, else case-insensitively; numbers become the
column's type (INT/BIGINT truncate, DECIMAL rescales to the column's scale); numbers, booleans
and nested JSON become text for STRING columns; numeric strings become numbers; BYTES are base64.
A single column is read from an object (wrapped) or from the bare JSON value (unwrapped:
WRAP_SINGLE_VALUE=false, or a single key column). Writing is the inverse, with DECIMAL written as
a JSON number keeping its scale.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from hayase.formats.base import SerdeError, Values
from hayase.formats.decimals import check_time, ensure_fit
from hayase.formats.javafmt import java_double
from hayase.formats.javanum import parse_big_decimal, parse_double, parse_int
from hayase.sql.plan import Column
from hayase.sql.types import (
    ArrayType,
    DecimalType,
    MapType,
    SqlType,
    StructType,
    struct_of,
    wrap_bigint,
    wrap_int,
)

_loads = orjson.loads


def _type_name(node: Any) -> str:
    if isinstance(node, bool):
        return "BooleanNode"
    if isinstance(node, int):
        if -(2**31) <= node < 2**31:
            return "IntNode"
        return "LongNode" if -(2**63) <= node < 2**63 else "BigIntegerNode"
    if isinstance(node, (float, Decimal)):
        return "DecimalNode"  # ksqlDB reads non-integral numbers as exact BigDecimals
    if isinstance(node, str):
        return "TextNode"
    if isinstance(node, list):
        return "ArrayNode"
    if isinstance(node, dict):
        return "ObjectNode"
    return type(node).__name__


_CONNECT_NAMES = {"INTEGER": "INT", "STRING": "VARCHAR"}
_PRIMITIVES = frozenset({"INTEGER", "BIGINT", "DOUBLE", "BOOLEAN", "STRING", "TIMESTAMP", "DATE",
                         "TIME"})


def _connect_type(t: SqlType | None) -> str:
    """A type as ksqlDB's SqlSchemaFormatter prints the Connect schema: INT, VARCHAR,
    DECIMAL(p, s), ARRAY<...>, MAP<K, V>, STRUCT<NAME TYPE, ...> (names never quoted)."""
    if t is None:
        return "?"
    if isinstance(t, DecimalType):
        return f"DECIMAL({t.precision}, {t.scale})"
    if isinstance(t, ArrayType):
        return f"ARRAY<{_connect_type(t.element)}>"
    if isinstance(t, MapType):
        return f"MAP<{_connect_type(t.key)}, {_connect_type(t.value)}>"
    if isinstance(t, StructType):
        return "STRUCT<" + ", ".join(f"{n} {_connect_type(ft)}" for n, ft in t.fields) + ">"
    return _CONNECT_NAMES.get(t.base, t.base)


def _cannot(node: Any, t: SqlType) -> SerdeError:
    # Primitives are named as SQL base types (INTEGER), the others by their Connect schema.
    required = t.base if t.base in _PRIMITIVES else _connect_type(t)
    return SerdeError(
        f"Can't convert type. sourceType: {_type_name(node)}, requiredType: {required}"
    )


def _failure(node: Any, t: SqlType | None, path: str) -> tuple[str, str] | None:
    """Where reading ``node`` as ``t`` fails: (message, JSON path as ksqlDB reports it: $.F,
    $[1], $.key.value), or None. Walked again only after a failure, so that reading stays
    one pass."""
    if node is None or t is None:
        return None
    found: tuple[str, str] | None = None
    if isinstance(t, ArrayType) and isinstance(node, list):
        for i, x in enumerate(node):
            found = found or _failure(x, t.element, f"{path}[{i}]")
        return found
    if isinstance(t, MapType) and isinstance(node, dict):
        for k, v in node.items():
            found = found or _failure(v, t.value, f"{path}.{k}.value")
        return found
    if isinstance(t, StructType) and isinstance(node, dict):
        for name, ft in t.fields:
            found = found or _failure(lookup_field(node, name), ft, f"{path}.{name}")
        return found
    try:
        from_json(node, t)
    except SerdeError as e:
        return e.message, path
    except NeedsExactNumbers:
        return None
    return None


def _is_number(node: Any) -> bool:
    return isinstance(node, (int, float, Decimal)) and not isinstance(node, bool)


def _cannot_coerce(t: SqlType) -> SerdeError:
    return SerdeError(f"Can't coerce string to type. targetType: {t.base}")


def _to_int(node: Any, t: SqlType, bits: int = 64) -> int:
    """JsonNode.intValue/asLong for numbers (truncated toward zero, the caller wraps);
    Integer.parseInt / Long.parseLong for text (no spaces, Unicode digits allowed)."""
    if _is_number(node):
        if type(node) is float and not -(2.0**53) < node < 2.0**53:
            raise NeedsExactNumbers  # a float has lost the literal's low digits
        return int(node)
    if isinstance(node, str):
        try:
            return parse_int(node, bits)
        except ValueError:
            raise _cannot_coerce(t) from None
    raise _cannot(node, t)


def _to_double(node: Any, t: SqlType) -> float:
    if _is_number(node):
        return float(node) + 0.0  # via BigDecimal, which has no -0: -0.0 reads as 0.0
    if isinstance(node, str):
        try:
            return parse_double(node)
        except ValueError:
            raise _cannot_coerce(t) from None
    raise _cannot(node, t)


def _to_decimal(node: Any, t: DecimalType) -> Decimal:
    """A JSON number (its exact literal), or text as new BigDecimal(String) reads it."""
    if isinstance(node, bool) or not (_is_number(node) or isinstance(node, str)):
        raise _cannot(node, t)
    try:
        if isinstance(node, str):
            d = parse_big_decimal(node)
        else:
            d = Decimal(node) if not isinstance(node, float) else Decimal(repr(node))
    except (ValueError, InvalidOperation):
        raise SerdeError(f"Cannot convert '{node}' to {t}") from None
    return ensure_fit(d, t)


class NeedsExactNumbers(Exception):
    """A non-integral JSON number must become text: ksqlDB writes the literal as
    BigDecimal.toString does ("1.50", "1E+3"), which a float parse has lost. The serde
    reads the record again with exact numbers."""


def _to_text(node: Any) -> str:
    """JsonNode.asText for scalars; an object is written back as compact JSON; an array
    becomes its elements as text, "[a, b]" (ksqlDB's processString)."""
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return "[" + ", ".join("null" if x is None else _to_text(x) for x in node) + "]"
    return _compact(node)  # scalars are written alike, an object as compact JSON


def _number_text(node: int | Decimal) -> str:
    """BigInteger/BigDecimal.toString (Python's Decimal str is the same notation), except
    that BigDecimal has no negative zero."""
    if isinstance(node, Decimal) and node.is_zero():
        node = node.copy_abs()
    return str(node)


def _compact(node: Any) -> str:
    """An object or array written back as compact JSON (Jackson's writeValueAsString), its
    numbers as their literals (BigDecimal.toString)."""
    if node is None:
        return "null"
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, float):
        raise NeedsExactNumbers
    if isinstance(node, (int, Decimal)):
        return _number_text(node)
    if isinstance(node, str):
        return _quoted(node)
    if isinstance(node, list):
        return "[" + ",".join(_compact(x) for x in node) + "]"
    return "{" + ",".join(_quoted(k) + ":" + _compact(v) for k, v in node.items()) + "}"


_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                  "\b": "\\b", "\f": "\\f"}


def _quoted(text: str) -> str:
    """A JSON string as Jackson writes it: short escapes where JSON has them, other control
    characters as a u00XX escape with upper-case hex digits (Python writes lower case)."""
    if not any(c < " " for c in text):
        return json.dumps(text, ensure_ascii=False)
    return '"' + "".join(_SHORT_ESCAPES.get(c) or (f"\\u{ord(c):04X}" if c < " " else c)
                         for c in text) + '"'


def lookup_field(obj: dict[str, Any], name: str) -> Any:
    """The field named exactly ``name``, else one whose upper-cased name is ``name`` (ksqlDB
    upper-cases the JSON field names, not the column's: an unquoted column matches any case,
    a quoted "caseField" only itself). Of such fields, the last one wins."""
    if name in obj:
        return obj[name]
    found = None
    for k, v in obj.items():
        if k.upper() == name:
            found = v
    return found


def from_json(node: Any, t: SqlType) -> Any:
    """Coerce a parsed JSON node to the Python carrier of ``t``."""
    if node is None:
        return None
    b = t.base
    if b == "STRING":
        return _to_text(node)
    if b in ("INTEGER", "DATE"):
        return wrap_int(_to_int(node, t, 32))
    if b in ("BIGINT", "TIMESTAMP"):
        return wrap_bigint(_to_int(node, t))
    if b == "TIME":
        return check_time(_to_int(node, t))
    if b == "DOUBLE":
        return _to_double(node, t)
    if b == "BOOLEAN":
        if isinstance(node, bool):  # JsonSerdeUtils.toBoolean: no text, no numbers
            return node
        raise _cannot(node, t)
    if isinstance(t, DecimalType):
        return _to_decimal(node, t)
    if b == "BYTES":
        if not isinstance(node, str):
            raise _cannot(node, t)
        try:
            return base64.b64decode(node, validate=True)
        except ValueError:
            raise SerdeError(f"Value is not a valid Base64 encoded string: {node}") from None
    if isinstance(t, ArrayType):
        if not isinstance(node, list):
            raise _cannot(node, t)
        et = t.element
        return [from_json(x, et) if et is not None else x for x in node]
    if isinstance(t, MapType):
        if not isinstance(node, dict):
            raise _cannot(node, t)
        kt, vt = t.key, t.value
        return {
            (from_json(k, kt) if kt is not None else k): (from_json(v, vt) if vt is not None else v)
            for k, v in node.items()
        }
    if isinstance(t, StructType):
        if not isinstance(node, dict):
            raise _cannot(node, t)
        return {name: from_json(lookup_field(node, name), ft) for name, ft in t.fields}
    raise SerdeError(f"JSON cannot read type {t}")


def to_json(value: Any, t: SqlType) -> Any:
    """The orjson-serializable form of a Python carrier of ``t``."""
    if value is None:
        return None
    b = t.base
    if isinstance(t, DecimalType):
        return orjson.Fragment(format(value, "f").encode())
    if b == "DOUBLE":
        return _double_out(value)
    if b == "BYTES":
        return base64.b64encode(value).decode("ascii")
    if isinstance(t, ArrayType):
        et = t.element
        return [to_json(x, et) if et is not None else x for x in value]
    if isinstance(t, MapType):
        vt = t.value
        return {_map_key(k): (to_json(v, vt) if vt is not None else v) for k, v in value.items()}
    if isinstance(t, StructType):
        return {name: to_json(value.get(name), ft) for name, ft in t.fields}
    return value


def _double_out(value: Any) -> Any:
    """A DOUBLE as Jackson writes it: Double.toString (1.0E10, 1.0E-4), non-finite as text."""
    f = float(value)
    if 1e-3 <= abs(f) < 1e7 or f == 0.0:
        return f  # where Double.toString is plain, it is also Python's (orjson's) form
    if math.isnan(f) or math.isinf(f):
        return java_double(f)  # Jackson writes non-finite doubles as strings
    return orjson.Fragment(java_double(f).encode())


def _map_key(k: Any) -> str:
    if k is None:
        return "null"
    if isinstance(k, bool):
        return "true" if k else "false"
    return str(k)


_MISSING: Any = object()


def _identity(v: Any) -> Any:
    return v


# Inline checks that let a compiled reader skip the converter call for a value already of the
# column's Python type (the converter's own fast path, without the call).
_MISSING = object()
_ALREADY = {
    "STRING": "type({v}) is str",
    "BIGINT": "type({v}) is int and -9223372036854775808 <= {v} <= 9223372036854775807",
    "TIMESTAMP": "type({v}) is int and -9223372036854775808 <= {v} <= 9223372036854775807",
    "INTEGER": "type({v}) is int and -2147483648 <= {v} <= 2147483647",
    "DOUBLE": "type({v}) is float and {v}",  # 0.0 and -0.0 to the converter (-0.0 -> 0.0)
    "BOOLEAN": "type({v}) is bool",
}


def compile_reader(plan: tuple[tuple[str, Callable[[Any], Any]], ...],
                   types: tuple[SqlType, ...],
                   loads: Callable[[bytes], Any] | None = None,
                   shape: tuple[str, ...] | None = None) -> Callable[..., Any]:
    """``node -> tuple`` reading the columns' fields (``plan``: field name and converter per
    column) in one generated function: the same values as ``_read_object``'s loop, without a
    call per column when a value already has the column's type.

    With ``loads`` and ``shape`` (the field names of an object, the plan resolved against
    them): ``data -> tuple``, parsing too, for objects with exactly the fields of ``shape``
    (None for any other JSON: the caller falls back to JsonSerde.deserialize)."""
    ns: dict[str, Any] = {}
    if loads is None or shape is None:
        lines = ["def read(node):", "    get = node.get"]
    else:
        ns["loads"], ns["_M"] = loads, _MISSING
        lines = ["def read(data):", "    node = loads(data)",
                 f"    if type(node) is not dict or len(node) != {len(shape)}:",
                 "        return None", "    get = node.get"]
        lines += [f"    v{i} = get({field!r}, _M)" for i, (field, _c) in enumerate(plan)]
        others = [k for k in shape if k not in {field for field, _c in plan}]
        lines += ["    if " + " or ".join([f"v{i} is _M" for i in range(len(plan))]
                                          + [f"{k!r} not in node" for k in others]) + ":",
                  "        return None"]
    for i, ((field, conv), t) in enumerate(zip(plan, types, strict=True)):
        v = f"v{i}"
        ns[f"c{i}"] = conv
        if loads is None or shape is None:
            lines.append(f"    {v} = get({field!r})")
        check = _ALREADY.get(t.base)
        if check is None:
            lines.append(f"    if {v} is not None: {v} = c{i}({v})")
        else:
            lines.append(f"    if {v} is not None and not ({check.format(v=v)}): "
                         f"{v} = c{i}({v})")
    lines.append("    return (" + "".join(f"v{i}, " for i in range(len(plan))) + ")")
    exec(compile("\n".join(lines), "<hayase-json-reader>", "exec"), ns)  # noqa: S102
    return ns["read"]  # type: ignore[no-any-return]


def compile_writer(writers: tuple[tuple[str, Callable[[Any], Any]], ...],
                   dump: Callable[[Any], bytes]) -> Callable[[Values], bytes]:
    """``values -> JSON object bytes`` for ``writers`` (column name and writer) in one generated
    function: the object ``JsonSerde.serialize`` builds, without a call per column whose
    writer is the identity. ``values`` must have one value per column."""
    ns: dict[str, Any] = {"dump": dump}
    names = [f"v{i}" for i in range(len(writers))]
    fields = []
    for i, (name, w) in enumerate(writers):
        ns[f"w{i}"] = w
        value = names[i] if w is _identity else f"None if v{i} is None else w{i}(v{i})"
        fields.append(f"{name!r}: {value}")
    lines = ["def write(values):",
             f"    {''.join(n + ', ' for n in names)}= values",
             "    return dump({" + ", ".join(fields) + "})"]
    exec(compile("\n".join(lines), "<hayase-json-writer>", "exec"), ns)  # noqa: S102
    return ns["write"]  # type: ignore[no-any-return]


def converter(t: SqlType) -> Callable[[Any], Any]:
    """A reader for non-null JSON nodes of type ``t``, with fast paths for the common case."""
    b = t.base
    if b == "STRING":
        return lambda v: v if type(v) is str else _to_text(v)
    if b in ("BIGINT", "TIMESTAMP"):
        return lambda v: v if type(v) is int and -(2**63) <= v < 2**63 else from_json(v, t)
    if b == "INTEGER":
        return lambda v: v if type(v) is int and -(2**31) <= v < 2**31 else from_json(v, t)
    if b == "DOUBLE":
        return lambda v: v if type(v) is float and v else from_json(v, t)
    if b == "BOOLEAN":
        return lambda v: v if type(v) is bool else from_json(v, t)
    return lambda v: from_json(v, t)


def writer(t: SqlType) -> Callable[[Any], Any]:
    """The orjson form of non-null values of type ``t``."""
    if t.base in ("STRING", "BIGINT", "INTEGER", "BOOLEAN", "TIMESTAMP", "DATE", "TIME"):
        return _identity
    if t.base == "DOUBLE":
        return _double_out
    return lambda v: to_json(v, t)


def _has_decimal(t: SqlType) -> bool:
    if isinstance(t, DecimalType):
        return True
    if isinstance(t, ArrayType):
        return t.element is not None and _has_decimal(t.element)
    if isinstance(t, MapType):
        return t.value is not None and _has_decimal(t.value)
    if isinstance(t, StructType):
        return any(_has_decimal(ft) for _, ft in t.fields)
    return False


def _no_constant(name: str) -> Any:
    # Jackson refuses NaN and Infinity (ALLOW_NON_NUMERIC_NUMBERS is off); Python reads them.
    raise ValueError(f"Non-standard token '{name}': not allowed in JSON")


_EXACT = json.JSONDecoder(parse_float=Decimal, parse_constant=_no_constant)


def parse_json_bytes(data: bytes, exact: bool) -> Any:
    """Parse JSON; ``exact`` keeps non-integral numbers as Decimal (their literals, as
    Jackson's exact BigDecimals). As ObjectMapper.readTree, the first JSON value is read and
    anything after it ignored (FAIL_ON_TRAILING_TOKENS is off)."""
    try:
        if not exact:
            try:
                return orjson.loads(data)
            except orjson.JSONDecodeError:
                pass  # may still be JSON orjson refuses (integers beyond 64 bits, trailing data)
        text = data.decode("utf-8").lstrip(" \t\r\n")
        return _EXACT.raw_decode(text)[0]
    except (ValueError, UnicodeDecodeError) as e:
        raise SerdeError(f"Failed to deserialize JSON: {e}") from None


class JsonSerde:
    """JSON for a tuple of columns. ``wrapped``: an object of column name -> value; otherwise
    the single column's bare value."""

    def __init__(self, columns: tuple[Column, ...], wrapped: bool, target: str = "value") -> None:
        if not wrapped and len(columns) != 1:
            raise ValueError("an unwrapped JSON serde needs exactly one column")
        self.columns = columns
        self.wrapped = wrapped
        self.target = target
        self._exact = any(_has_decimal(c.type) for c in columns)
        self._dump: Callable[[Any], bytes] = orjson.dumps
        self._fields = tuple((c.name, converter(c.type)) for c in columns)
        self._types = tuple(c.type for c in columns)
        self._row_type = struct_of([(c.name, c.type) for c in columns])  # the wrapped record
        self._shapes: dict[tuple[str, ...], Callable[[dict[str, Any]], Values]] = {}
        self._bytes_reader: Callable[[bytes], Values | None] | None = None
        self._writers = tuple((c.name, writer(c.type)) for c in columns)
        self._write = compile_writer(self._writers, orjson.dumps) if columns else None

    def _read_object(self, node: dict[str, Any]) -> Values:
        """Column values from a JSON object. Field names match exactly, else
        case-insensitively; the resolution (a compiled reader) is cached per set of field
        names, since the records of a topic nearly always share one shape."""
        shape = tuple(node)
        read = self._shapes.get(shape)
        if read is None:
            read = self._reader_for(shape)
        return read(node)

    def _reader_for(self, shape: tuple[str, ...]) -> Callable[[dict[str, Any]], Values]:
        upper: dict[str, str] = {}
        for k in shape:
            upper[k.upper()] = k  # fields equal but for case: the last wins, as in ksqlDB
        plan = tuple(
            (name if name in shape else upper.get(name, name), conv)
            for name, conv in self._fields
        )
        if len(self._shapes) >= 256:
            self._shapes.clear()
        read = self._shapes[shape] = compile_reader(plan, self._types)
        if self._bytes_reader is None and not self._exact and plan and len(upper) == len(shape):
            # The first shape without fields equal but for case (their order would matter).
            self._bytes_reader = compile_reader(plan, self._types, _loads, shape)
        return read

    def bytes_reader(self) -> Callable[[bytes], Values | None] | None:
        """For the engine's per-record loops: ``data -> values`` of a JSON object with the
        fields of the first object this serde read (what ``deserialize`` gives for it), None
        for any other input, or an exception: then ``deserialize`` gives the answer or the
        error. None until an object was read, and for DECIMAL columns."""
        return self._bytes_reader

    def deserialize(self, data: bytes | None) -> Values | None:
        if data is None:
            return None
        if self._exact:
            node = parse_json_bytes(data, True)
        else:
            try:
                node = _loads(data)
            except orjson.JSONDecodeError:
                node = parse_json_bytes(data, False)  # JSON orjson refuses, or the error
        if type(node) is dict and self.wrapped:  # the common case first, without a call
            read = self._shapes.get(tuple(node))
            if read is not None:
                try:
                    return read(node)
                except Exception:  # noqa: BLE001, S110 - _read gives the answer or the error
                    pass
        try:
            return self._read(node)
        except NeedsExactNumbers:
            return self._read(parse_json_bytes(data, True))

    def _read(self, node: Any) -> Values | None:
        try:
            if not self.wrapped:
                return (from_json(node, self.columns[0].type),)
            if node is None:
                return None
            if not isinstance(node, dict):
                raise _cannot(node, self._row_type)
            return self._read_object(node)
        except SerdeError as e:
            raise self._located(node, e) from None
        except (ValueError, TypeError, InvalidOperation) as e:
            raise SerdeError(f"Failed to deserialize JSON {self.target}: {e}", self.target) from e

    def _located(self, node: Any, error: SerdeError) -> SerdeError:
        """``error`` with the path of the value that failed, as ksqlDB words it."""
        found = _failure(node, self._row_type if self.wrapped else self.columns[0].type, "$")
        message, path = found if found is not None else (error.message, "$")
        return SerdeError(f"{message}, path: {path}", self.target)

    def serialize(self, values: Values | None) -> bytes | None:
        if values is None:
            return None
        try:
            if not self.wrapped:
                return self._dump(to_json(values[0], self.columns[0].type))
            if self._write is not None and len(values) == len(self._writers):
                return self._write(values)
            return self._dump({name: None if v is None else w(v)
                               for (name, w), v in zip(self._writers, values, strict=True)})
        except (TypeError, ValueError, orjson.JSONEncodeError) as e:
            raise SerdeError(f"Failed to serialize JSON {self.target}: {e}", self.target) from e
