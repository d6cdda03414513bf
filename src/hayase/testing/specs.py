"""Test records as JSON (the QTT / ksql-test-runner `key` and `value` fields) <-> bytes.

Encoding follows ksqlDB's test harness: JSON values are written as JSON text; DELIMITED values are
the given string; KAFKA values are typed by the source's single column; BYTES are base64 in the
spec. Decoding of outputs is what ksqlDB's harness compares against: JSON parsed (non-integral
numbers as floats), DELIMITED as the text, KAFKA typed by the sink's column.
"""

from __future__ import annotations

import base64
import struct
from decimal import Decimal
from typing import Any

import orjson

from hayase.engine import windows
from hayase.sql.plan import Column, DataSource, FormatInfo
from hayase.testing.qtt import ABSENT, WindowSpec


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return orjson.Fragment(str(obj).encode())
    raise TypeError(type(obj).__name__)


def _json_bytes(spec: Any) -> bytes:
    try:
        return orjson.dumps(spec, default=_json_default)
    except TypeError:  # integers beyond 64 bits
        import json

        return json.dumps(spec, default=str).encode()


def _kafka_bytes(spec: Any, column: Column | None) -> bytes:
    try:
        return _kafka_typed(spec, column)
    except (ValueError, TypeError, struct.error):
        # Not a value of the column's type: send its text, the engine will log the bad record.
        return spec.encode("utf-8") if isinstance(spec, str) else _json_bytes(spec)


def _kafka_typed(spec: Any, column: Column | None) -> bytes:
    base = column.type.base if column is not None else None
    if base == "INTEGER":
        return struct.pack(">i", int(spec))
    if base == "BIGINT":
        return struct.pack(">q", int(spec))
    if base == "DOUBLE":
        return struct.pack(">d", float(spec))
    if base == "BYTES" and isinstance(spec, str):
        return base64.b64decode(spec)
    if isinstance(spec, str):
        return spec.encode("utf-8")
    if isinstance(spec, bool):
        return b"true" if spec else b"false"
    if isinstance(spec, int):
        return struct.pack(">q", spec) if base is None else str(spec).encode()
    return _json_bytes(spec)


def encode(spec: Any, fmt: FormatInfo | None, columns: tuple[Column, ...]) -> bytes | None:
    """Bytes of a spec `key` or `value` for a topic read with ``fmt`` / ``columns``."""
    if spec is None or spec is ABSENT:
        return None
    name = fmt.name.upper() if fmt is not None else None
    if name == "DELIMITED":
        if isinstance(spec, str):
            return spec.encode("utf-8")
        if isinstance(spec, bool):
            return b"true" if spec else b"false"
        if isinstance(spec, (int, Decimal)):
            return str(spec).encode()
        return _json_bytes(spec)
    if name == "KAFKA":
        return _kafka_bytes(spec, columns[0] if columns else None)
    if name in ("JSON", None) or not columns:
        if name is None and isinstance(spec, str):
            return spec.encode("utf-8")
        return _json_bytes(spec)
    return _json_bytes(spec)


def encode_key(spec: Any, source: DataSource | None, window: WindowSpec | None) -> bytes | None:
    if source is None:
        data = encode(spec, None, ())
    elif not source.schema.key:
        data = None if spec is None or spec is ABSENT else encode(spec, None, ())
    else:
        data = encode(spec, source.key_format, source.schema.key)
    if window is not None:
        return windows.wrap(data, window.type, window.start, window.end)
    return data


def encode_value(spec: Any, source: DataSource | None) -> bytes | None:
    if source is None:
        return encode(spec, None, ())
    return encode(spec, source.value_format, source.schema.value)


def _json_decode(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        import json

        try:
            return json.loads(data)
        except ValueError:
            return data.decode("utf-8", "replace")


def decode(data: bytes | None, fmt: FormatInfo | None, columns: tuple[Column, ...]) -> Any:
    """The JSON-like value ksqlDB's harness compares with a spec (see module doc)."""
    if data is None:
        return None
    name = fmt.name.upper() if fmt is not None else None
    if name == "DELIMITED":
        return data.decode("utf-8", "replace")
    if name == "KAFKA" and columns:
        base = columns[0].type.base
        try:
            if base == "INTEGER":
                return struct.unpack(">i", data)[0]
            if base == "BIGINT":
                return struct.unpack(">q", data)[0]
            if base == "DOUBLE":
                return struct.unpack(">d", data)[0]
            if base == "BYTES":
                return data
        except struct.error:
            return data
        return data.decode("utf-8", "replace")
    if name == "NONE":
        return None
    if name == "JSON":
        return _json_decode(data)
    try:
        return _json_decode(data)
    except UnicodeDecodeError:
        return data


def decode_key(data: bytes | None, source: DataSource | None) -> tuple[Any, WindowSpec | None]:
    """(key, window) of an output record's key bytes."""
    window: WindowSpec | None = None
    if source is not None and source.window is not None and data is not None:
        wtype = "SESSION" if source.window.type.upper() == "SESSION" else "TIME"
        data, start, end = windows.unwrap(data, wtype, source.window.size_ms)
        window = WindowSpec(int(start or 0), int(end if end is not None else 0), wtype)
    if source is None:
        return (None if data is None else _json_decode(data)), window
    return decode(data, source.key_format, source.schema.key), window


def decode_value(data: bytes | None, source: DataSource | None) -> Any:
    if source is None:
        return None if data is None else _json_decode(data)
    return decode(data, source.value_format, source.schema.value)
