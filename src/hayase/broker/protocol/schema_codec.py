"""Readers and writers compiled from kio's schema classes.

kio (generated from Kafka's JSON message schemas) gives one frozen dataclass per API, version and
nested struct, with each field's Kafka type, nullability and tag in its metadata. We compile, once
per class, a plain Python function that reads or writes that exact wire layout:

* the reader returns kio instances, typed exactly as kio's own reader types them (timedelta for
  `timedelta_i32`, datetime for `datetime_i64`, ErrorCode, UUID), but it **skips unknown tagged
  fields** as KIP-482 requires (kio 0.6.5's reader raises KeyError on them);
* the writer takes a version-independent tree of dicts (or kio instances): handlers build one
  response with the union of every version's fields, and the writer for version N serialises
  only the fields that version has, with Kafka's defaults for the missing ones. Plain ints are
  accepted where kio wants timedelta/datetime/ErrorCode.

Generated source (exec) rather than closures keeps per-field overhead to one struct call.
"""

from __future__ import annotations

import dataclasses
import datetime
import struct
import uuid
from collections.abc import Callable
from typing import Any

from kio.schema.errors import ErrorCode
from kio.serial._implicit_defaults import get_tagged_field_default
from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    PrimitiveField,
    PrimitiveTupleField,
    classify_field,
    get_field_tag,
    get_schema_field_type,
    is_optional,
)


class DecodeError(ValueError):
    """The bytes do not form a valid message of the expected type."""


Writer = Callable[[list[bytes], Any], None]
Reader = Callable[[bytes, int], tuple[Any, int]]

_FIXED = {
    "int8": ("b", 1), "int16": ("h", 2), "int32": ("i", 4), "int64": ("q", 8),
    "uint8": ("B", 1), "uint16": ("H", 2), "uint32": ("I", 4), "uint64": ("Q", 8),
    "float64": ("d", 8), "error_code": ("h", 2), "timedelta_i32": ("i", 4),
    "timedelta_i64": ("q", 8), "datetime_i64": ("q", 8), "bool": ("?", 1),
}
_STRUCTS = {code: struct.Struct(">" + code) for code, _ in _FIXED.values()}
_CODE_NAMES = {c: ("bool" if c == "?" else c) for c in _STRUCTS}
_ZERO_UUID = bytes(16)
_UTC = datetime.UTC


# ---------------------------------------------------------------- primitives shared by both sides

def uvarint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise DecodeError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise DecodeError("varint too long")


def _ms(value: Any) -> int:
    if isinstance(value, datetime.timedelta):
        return round(value.total_seconds() * 1000)
    return int(value)


def _ts(value: Any) -> int:
    if value is None:
        return -1
    if isinstance(value, datetime.datetime):
        return round(value.timestamp() * 1000)
    return int(value)


def _uuid_bytes(value: Any) -> bytes:
    if value is None:
        return _ZERO_UUID
    if isinstance(value, uuid.UUID):
        return value.bytes
    return bytes(value)


def _to_datetime(ms: int) -> datetime.datetime | None:
    if ms < 0:
        return None
    return datetime.datetime.fromtimestamp(ms / 1000, tz=_UTC)


def _to_uuid(raw: bytes) -> uuid.UUID | None:
    # kio reads the all-zero UUID as None ("no topic id").
    return None if raw == _ZERO_UUID else uuid.UUID(bytes=raw)


def _get(value: Any, name: str, default: Any) -> Any:
    if isinstance(value, dict):
        return value.get(name, default)
    return getattr(value, name, default)


# ---------------------------------------------------------------- writers

_writer_cache: dict[type, Writer] = {}
_reader_cache: dict[type, Reader] = {}


def _implicit_default(kafka_type: str, optional: bool, array: bool) -> Any:
    if optional:
        return None
    if array:
        return ()
    if kafka_type in ("string",):
        return ""
    if kafka_type in ("bytes", "records"):
        return b""
    if kafka_type == "uuid":
        return None
    if kafka_type == "bool":
        return False
    if kafka_type == "datetime_i64":
        return -1
    return 0


def _field_default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    if get_field_tag(f) is not None:
        return get_tagged_field_default(f)
    cls = classify_field(f)
    if isinstance(cls, EntityField):
        return None if is_optional(f) else {}
    kafka_type = f.metadata.get("kafka_type", "")
    return _implicit_default(kafka_type, is_optional(f), cls.is_array)


class _Gen:
    """Accumulates generated source lines and the names they refer to."""

    def __init__(self) -> None:
        self.env: dict[str, Any] = {
            "uvarint": uvarint, "_ms": _ms, "_ts": _ts, "_uuid_bytes": _uuid_bytes,
            "_get": _get, "read_uvarint": read_uvarint, "DecodeError": DecodeError,
            "_to_datetime": _to_datetime, "_to_uuid": _to_uuid, "ErrorCode": ErrorCode,
            "timedelta": datetime.timedelta,
        }
        for code, s in _STRUCTS.items():
            self.env[f"pack_{_CODE_NAMES[code]}"] = s.pack
            self.env[f"unpack_{_CODE_NAMES[code]}"] = s.unpack_from
        self.counter = 0

    def name(self, prefix: str, obj: Any) -> str:
        self.counter += 1
        n = f"{prefix}{self.counter}"
        self.env[n] = obj
        return n


def _write_scalar(g: _Gen, kafka_type: str, flexible: bool, optional: bool, x: str,
                  legacy_string: bool = False) -> list[str]:
    if kafka_type in _FIXED:
        code = _CODE_NAMES[_FIXED[kafka_type][0]]
        conv = {"timedelta_i32": "_ms", "timedelta_i64": "_ms", "datetime_i64": "_ts"}.get(kafka_type)
        val = f"{conv}({x})" if conv else (f"bool({x})" if code == "bool" else x)
        return [f"out.append(pack_{code}({val}))"]
    if kafka_type == "uuid":
        return [f"out.append(_uuid_bytes({x}))"]
    if kafka_type in ("string", "bytes", "records"):
        enc = f"{x}.encode()" if kafka_type == "string" else x
        lines = [f"if {x} is None:"]
        if flexible and not legacy_string:
            lines += ["    out.append(b'\\x00')", "else:", f"    _b = {enc}",
                      "    out.append(uvarint(len(_b) + 1)); out.append(_b)"]
        else:
            pack = "pack_h" if kafka_type == "string" else "pack_i"
            lines += [f"    out.append({pack}(-1))", "else:", f"    _b = {enc}",
                      f"    out.append({pack}(len(_b))); out.append(_b)"]
        return lines
    raise NotImplementedError(kafka_type)


def _write_field_lines(g: _Gen, f: dataclasses.Field[Any], flexible: bool, x: str,
                       legacy_string: bool) -> list[str]:
    cls = classify_field(f)
    optional = is_optional(f)
    if isinstance(cls, PrimitiveField):
        kafka_type = get_schema_field_type(f)
        return _write_scalar(g, kafka_type, flexible, optional, x, legacy_string)
    if isinstance(cls, EntityField):
        w = g.name("w_", entity_writer(cls.type_))
        if optional:
            return [f"if {x} is None:", "    out.append(b'\\xff')", "else:",
                    "    out.append(b'\\x01')", f"    {w}(out, {x})"]
        return [f"{w}(out, {x})"]
    # arrays
    if flexible:
        head = [f"if {x} is None:", "    out.append(b'\\x00')", "else:",
                f"    out.append(uvarint(len({x}) + 1))"]
    else:
        head = [f"if {x} is None:", "    out.append(pack_i(-1))", "else:",
                f"    out.append(pack_i(len({x})))"]
    if isinstance(cls, EntityTupleField):
        w = g.name("w_", entity_writer(cls.type_))
        body = [f"    for _it in {x}:", f"        {w}(out, _it)"]
    else:
        assert isinstance(cls, PrimitiveTupleField)
        inner = _write_scalar(g, get_schema_field_type(f), flexible, False, "_it")
        body = [f"    for _it in {x}:"] + ["        " + line for line in inner]
    return head + body


def entity_writer(entity_type: type) -> Writer:
    """A function `write(out: list[bytes], value: dict | kio entity)` for this schema class."""
    cached = _writer_cache.get(entity_type)
    if cached is not None:
        return cached
    g = _Gen()
    flexible = bool(entity_type.__flexible__)  # type: ignore[attr-defined]
    legacy_client_id = entity_type.__name__ == "RequestHeader"
    lines = ["def write(out, v):"]
    tagged: list[tuple[int, dataclasses.Field[Any]]] = []
    for i, f in enumerate(dataclasses.fields(entity_type)):
        tag = get_field_tag(f)
        if tag is not None:
            tagged.append((int(tag), f))
            continue
        d = g.name("d_", _field_default(f))
        x = f"x{i}"
        lines.append(f"    {x} = v.get({f.name!r}, {d}) if type(v) is dict else "
                     f"getattr(v, {f.name!r}, {d})")
        legacy = legacy_client_id and f.name == "client_id"
        lines += ["    " + line for line in _write_field_lines(g, f, flexible, x, legacy)]
    if flexible:
        if not tagged:
            lines.append("    out.append(b'\\x00')")
        else:
            lines.append("    tags = []")
            for tag_no, f in sorted(tagged, key=lambda t: t[0]):
                d = g.name("d_", _field_default(f))
                x = f"t{tag_no}"
                lines.append(f"    {x} = v.get({f.name!r}, {d}) if type(v) is dict else "
                     f"getattr(v, {f.name!r}, {d})")
                lines.append(f"    if {x} is not None and {x} != {d}:")
                lines.append("        _o = out; out = []")
                inner = _write_field_lines(g, f, flexible, x, False)
                lines += ["        " + line for line in inner]
                lines.append("        _t = b''.join(out); out = _o")
                lines.append(f"        tags.append(uvarint({tag_no}) + uvarint(len(_t)) + _t)")
            lines.append("    out.append(uvarint(len(tags))); out.extend(tags)")
    if len(lines) == 1:
        lines.append("    pass")
    src = "\n".join(lines)
    exec(compile(src, f"<writer {entity_type.__module__}.{entity_type.__name__}>", "exec"), g.env)
    fn: Writer = g.env["write"]
    _writer_cache[entity_type] = fn
    return fn


def encode(entity_type: type, value: Any) -> bytes:
    out: list[bytes] = []
    entity_writer(entity_type)(out, value)
    return b"".join(out)


# ---------------------------------------------------------------- readers

def _uvarint_lines(var: str) -> list[str]:
    """Read an unsigned varint into `var`, inlining the one-byte case (lengths < 128)."""
    return ["if pos >= end: raise DecodeError('truncated')",
            f"{var} = buf[pos]",
            f"if {var} < 0x80: pos += 1",
            f"else: {var}, pos = read_uvarint(buf, pos)"]


def _read_scalar(kafka_type: str, flexible: bool, optional: bool, x: str,
                 legacy_string: bool = False) -> list[str]:
    if kafka_type in _FIXED:
        code, size = _FIXED[kafka_type]
        code = _CODE_NAMES[code]
        lines = [f"if pos + {size} > end: raise DecodeError('truncated')",
                 f"{x}, = unpack_{code}(buf, pos); pos += {size}"]
        if kafka_type == "error_code":
            lines.append(f"{x} = ErrorCode({x})")
        elif kafka_type in ("timedelta_i32", "timedelta_i64"):
            lines.append(f"{x} = timedelta(milliseconds={x})")
        elif kafka_type == "datetime_i64":
            lines.append(f"{x} = _to_datetime({x})")
        return lines
    if kafka_type == "uuid":
        return ["if pos + 16 > end: raise DecodeError('truncated')",
                f"{x} = _to_uuid(bytes(buf[pos:pos + 16])); pos += 16"]
    if kafka_type in ("string", "bytes", "records"):
        if flexible and not legacy_string:
            lines = _uvarint_lines("_n") + ["_n -= 1"]
        elif kafka_type == "string":
            lines = ["if pos + 2 > end: raise DecodeError('truncated')",
                     "_n, = unpack_h(buf, pos); pos += 2"]
        else:
            lines = ["if pos + 4 > end: raise DecodeError('truncated')",
                     "_n, = unpack_i(buf, pos); pos += 4"]
        conv = "str(buf[pos:pos + _n], 'utf-8')" if kafka_type == "string" else "bytes(buf[pos:pos + _n])"
        lines += ["if _n < 0:",
                  f"    {x} = None" if optional else "    raise DecodeError('null in non-nullable field')",
                  "else:",
                  "    if pos + _n > end: raise DecodeError('truncated')",
                  f"    {x} = {conv}; pos += _n"]
        return lines
    raise NotImplementedError(kafka_type)


def _read_field_lines(g: _Gen, f: dataclasses.Field[Any], flexible: bool, x: str,
                      legacy_string: bool) -> list[str]:
    cls = classify_field(f)
    optional = is_optional(f)
    if isinstance(cls, PrimitiveField):
        return _read_scalar(get_schema_field_type(f), flexible, optional, x, legacy_string)
    if isinstance(cls, EntityField):
        r = g.name("r_", entity_reader(cls.type_))
        if optional:
            return ["if pos >= end: raise DecodeError('truncated')",
                    "if buf[pos] == 0xff:", f"    {x} = None; pos += 1", "else:",
                    f"    {x}, pos = {r}(buf, pos + 1, end)"]
        return [f"{x}, pos = {r}(buf, pos, end)"]
    if flexible:
        head = _uvarint_lines("_c") + ["_c -= 1"]
    else:
        head = ["if pos + 4 > end: raise DecodeError('truncated')",
                "_c, = unpack_i(buf, pos); pos += 4"]
    head += ["if _c < 0:",
             f"    {x} = None" if optional else "    raise DecodeError('null array')",
             "else:",
             "    if _c > end - pos: raise DecodeError('array length exceeds frame')",
             "    _l = []"]
    if isinstance(cls, EntityTupleField):
        r = g.name("r_", entity_reader(cls.type_))
        body = ["    for _ in range(_c):", f"        _e, pos = {r}(buf, pos, end)",
                "        _l.append(_e)"]
    else:
        assert isinstance(cls, PrimitiveTupleField)
        inner = _read_scalar(get_schema_field_type(f), flexible, False, "_e")
        body = ["    for _ in range(_c):"] + ["        " + line for line in inner]
        body.append("        _l.append(_e)")
    return head + body + [f"    {x} = tuple(_l)"]


def entity_reader(entity_type: type) -> Callable[[bytes, int, int], tuple[Any, int]]:
    """A function `read(buf, pos, end) -> (kio entity, new pos)`; unknown tags are skipped."""
    cached = _reader_cache.get(entity_type)
    if cached is not None:
        return cached  # type: ignore[return-value]
    g = _Gen()
    g.env["cls"] = entity_type
    flexible = bool(entity_type.__flexible__)  # type: ignore[attr-defined]
    legacy_client_id = entity_type.__name__ == "RequestHeader"
    lines = ["def read(buf, pos, end):", "    kw = {}"]
    tagged: dict[int, dataclasses.Field[Any]] = {}
    for f in dataclasses.fields(entity_type):
        tag = get_field_tag(f)
        if tag is not None:
            tagged[int(tag)] = f
            continue
        legacy = legacy_client_id and f.name == "client_id"
        lines += ["    " + line for line in _read_field_lines(g, f, flexible, "_v", legacy)]
        lines.append(f"    kw[{f.name!r}] = _v")
    if flexible:
        lines += ["    " + line for line in _uvarint_lines("_tc")]
        lines += [
                  "    for _ in range(_tc):",
                  "        _tag, pos = read_uvarint(buf, pos)",
                  "        _sz, pos = read_uvarint(buf, pos)",
                  "        if pos + _sz > end: raise DecodeError('truncated tagged field')",
                  "        _tend = pos + _sz"]
        first = True
        for tag_no, f in sorted(tagged.items()):
            kw = "if" if first else "elif"
            first = False
            lines.append(f"        {kw} _tag == {tag_no}:")
            inner = _read_field_lines(g, f, flexible, "_v", False)
            # a tagged field's value must stay inside its declared size
            lines.append("            _save = end; end = _tend")
            lines += ["            " + line for line in inner]
            lines.append("            end = _save")
            lines.append(f"            kw[{f.name!r}] = _v")
        # unknown tag (or a known one we parsed short): jump to the declared end
        lines.append("        pos = _tend")
    lines.append("    return cls(**kw), pos")
    src = "\n".join(lines)
    exec(compile(src, f"<reader {entity_type.__module__}.{entity_type.__name__}>", "exec"), g.env)
    fn = g.env["read"]
    _reader_cache[entity_type] = fn
    return fn  # type: ignore[no-any-return]


def decode(entity_type: type, buf: bytes, pos: int = 0, end: int | None = None) -> tuple[Any, int]:
    """Decode one entity; raises DecodeError on malformed input."""
    end = len(buf) if end is None else end
    try:
        return entity_reader(entity_type)(buf, pos, end)
    except DecodeError:
        raise
    except (struct.error, UnicodeDecodeError, ValueError, IndexError, OverflowError) as e:
        raise DecodeError(f"{entity_type.__name__}: {e}") from e
