"""Serdes for record keys and values: JSON, DELIMITED, KAFKA, NONE, with ksqlDB's semantics.

``key_serde(format, columns)`` and ``value_serde(format, columns)`` build a :class:`Serde` for
the columns of a :class:`~hayase.sql.plan.LogicalSchema` (``schema.key`` / ``schema.value``).
A serde maps a tuple of column values to bytes and back; failures raise :class:`SerdeError`.
``validate(format, columns, is_key)`` raises :class:`FormatError` (ksqlDB's wording) when a
format cannot carry the columns, with the analyzer's checks.
"""

from __future__ import annotations

import dataclasses

from hayase.formats.base import FormatError, Serde, SerdeError, Values
from hayase.formats.delimited import DelimitedSerde
from hayase.formats.json import JsonSerde
from hayase.formats.kafka import KafkaSerde
from hayase.formats.none import NoneSerde
from hayase.sql.errors import StatementError
from hayase.sql.plan import Column, FormatInfo
from hayase.sql.properties import validate_format

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
        if not isinstance(inner, NoneSerde):
            # Every other serde reads null bytes as None itself: one call less per record.
            self.deserialize = inner.deserialize  # type: ignore[method-assign]

    def deserialize(self, data: bytes | None) -> Values | None:
        if data is None:
            return None
        return self.inner.deserialize(data)

    def serialize(self, values: Values | None) -> bytes | None:
        if values is None or self.width == 0 or (self.width == 1 and values[0] is None):
            return None
        return self.inner.serialize(values)


def key_serde(fmt: FormatInfo, columns: tuple[Column, ...]) -> Serde:
    name = fmt.name.upper()
    if not columns:
        return _KeySerde(NoneSerde(), 0)
    inner: Serde
    if name == "JSON":
        wrapped = len(columns) > 1 or "WRAP_SINGLES" in fmt.features
        inner = JsonSerde(columns, wrapped, target="key")
    elif name == "DELIMITED":
        inner = DelimitedSerde(columns, fmt.delimiter, target="key")
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
        return DelimitedSerde(columns, fmt.delimiter, target="value")
    if name == "KAFKA":
        return KafkaSerde(columns, target="value")
    if name == "NONE":
        return NoneSerde()
    raise FormatError(f"Unsupported value format: {fmt.name}")


def validate(fmt: FormatInfo, columns: tuple[Column, ...], is_key: bool) -> None:
    """Raise FormatError when ``fmt`` cannot serialize ``columns`` (ksqlDB's messages): the
    analyzer's checks (:func:`hayase.sql.properties.validate_format`), for the formats here."""
    if fmt.name.upper() not in FORMATS:
        raise FormatError(f"Unknown format: {fmt.name}")
    try:
        validate_format(dataclasses.replace(fmt, name=fmt.name.upper()), columns, is_key)
    except StatementError as e:
        raise FormatError(e.message) from None
