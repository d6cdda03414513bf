"""Serdes for record keys and values: JSON, DELIMITED, KAFKA, NONE, with ksqlDB's semantics.

``key_serde(format, columns)`` and ``value_serde(format, columns)`` build a :class:`Serde` for
the columns of a :class:`~hayase.sql.plan.LogicalSchema` (``schema.key`` / ``schema.value``).
A serde maps a tuple of column values to bytes and back; failures raise :class:`SerdeError`.
``validate(format, columns, is_key)`` raises :class:`FormatError` (ksqlDB's wording) when a
format cannot carry the columns; the analyzer calls it for CREATE and C*AS statements.
"""

from __future__ import annotations

from hayase.formats.base import FormatError, Serde, SerdeError, Values
from hayase.formats.delimited import DelimitedSerde, resolve_delimiter
from hayase.formats.json import JsonSerde
from hayase.formats.kafka import SUPPORTED as KAFKA_TYPES
from hayase.formats.kafka import KafkaSerde
from hayase.formats.none import NoneSerde
from hayase.sql.plan import Column, FormatInfo
from hayase.sql.types import ArrayType, MapType, SqlType, StructType

__all__ = [
    "FORMATS", "FormatError", "Serde", "SerdeError", "Values", "key_serde", "value_serde",
    "validate",
]

FORMATS = ("JSON", "DELIMITED", "KAFKA", "NONE")


class _KeySerde:
    """Keys: null bytes are a null key (``None``, not a tuple); a single NULL key column is
    written as null bytes; several key columns are always written (NULLs inside)."""

    def __init__(self, inner: Serde, width: int) -> None:
        self.inner = inner
        self.width = width

    def deserialize(self, data: bytes | None) -> Values | None:
        if data is None:
            return None
        return self.inner.deserialize(data)

    def serialize(self, values: Values | None) -> bytes | None:
        if values is None or self.width == 0 or (self.width == 1 and values[0] is None):
            return None
        return self.inner.serialize(values)


def _delimiter(fmt: FormatInfo) -> str:
    return resolve_delimiter(fmt.prop("delimiter"))


def key_serde(fmt: FormatInfo, columns: tuple[Column, ...]) -> Serde:
    name = fmt.name.upper()
    if not columns:
        return _KeySerde(NoneSerde(), 0)
    inner: Serde
    if name == "JSON":
        wrapped = len(columns) > 1 or "WRAP_SINGLES" in fmt.features
        inner = JsonSerde(columns, wrapped, target="key")
    elif name == "DELIMITED":
        inner = DelimitedSerde(columns, _delimiter(fmt), target="key")
    elif name == "KAFKA":
        inner = KafkaSerde(columns, target="key")
    elif name == "NONE":
        inner = NoneSerde()
    else:
        raise FormatError(f"Unsupported key format: {fmt.name}")
    return _KeySerde(inner, len(columns))


def value_serde(fmt: FormatInfo, columns: tuple[Column, ...]) -> Serde:
    name = fmt.name.upper()
    if name == "JSON":
        wrapped = not ("UNWRAP_SINGLES" in fmt.features and len(columns) == 1)
        return JsonSerde(columns, wrapped, target="value")
    if name == "DELIMITED":
        return DelimitedSerde(columns, _delimiter(fmt), target="value")
    if name == "KAFKA":
        return KafkaSerde(columns, target="value")
    if name == "NONE":
        return NoneSerde()
    raise FormatError(f"Unsupported value format: {fmt.name}")


def _contains(t: SqlType | None, kinds: tuple[type, ...]) -> bool:
    if t is None:
        return False
    if isinstance(t, kinds):
        return True
    if isinstance(t, ArrayType):
        return _contains(t.element, kinds)
    if isinstance(t, MapType):
        return _contains(t.key, kinds) or _contains(t.value, kinds)
    if isinstance(t, StructType):
        return any(_contains(ft, kinds) for _, ft in t.fields)
    return False


def _json_map_keys_ok(t: SqlType | None) -> bool:
    if t is None:
        return True
    if isinstance(t, MapType):
        return (t.key is None or t.key.base == "STRING") and _json_map_keys_ok(t.value)
    if isinstance(t, ArrayType):
        return _json_map_keys_ok(t.element)
    if isinstance(t, StructType):
        return all(_json_map_keys_ok(ft) for _, ft in t.fields)
    return True


def validate(fmt: FormatInfo, columns: tuple[Column, ...], is_key: bool) -> None:
    """Raise FormatError when ``fmt`` cannot serialize ``columns`` (ksqlDB's messages)."""
    name = fmt.name.upper()
    if name not in FORMATS:
        raise FormatError(f"Unknown format: {fmt.name}")
    if name == "NONE":
        if columns:
            raise FormatError(
                "The 'NONE' format can only be used when no columns are defined. Got: ["
                + ", ".join(str(c) for c in columns) + "]"
            )
        return
    if name in ("KAFKA", "DELIMITED"):
        for c in columns:
            if isinstance(c.type, (ArrayType, MapType, StructType)):
                raise FormatError(f"The '{name}' format does not support type '{c.type.base}'")
            if name == "KAFKA" and c.type.base not in KAFKA_TYPES:
                raise FormatError(f"The 'KAFKA' format does not support type '{c.type.base}'")
        if name == "KAFKA" and len(columns) > 1:
            raise FormatError(
                "The 'KAFKA' format only supports a single field. Got: ["
                + ", ".join(str(c) for c in columns) + "]"
            )
    if name == "JSON":
        for c in columns:
            if not _json_map_keys_ok(c.type):
                raise FormatError("JSON only supports MAP types with STRING keys")
