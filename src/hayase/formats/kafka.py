"""KAFKA: Kafka's own primitive serializers for a single column. INT is 4 bytes big-endian,
BIGINT 8 bytes, DOUBLE an 8-byte IEEE 754 double, STRING UTF-8, BYTES as is. No column at all is
also allowed (the bytes are ignored)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from hayase.formats.base import SerdeError, Values
from hayase.sql.plan import Column

_INT = struct.Struct(">i")
_LONG = struct.Struct(">q")
_DOUBLE = struct.Struct(">d")


def _fixed(st: struct.Struct, name: str) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    def ser(v: Any) -> bytes:
        return st.pack(v)

    def de(data: bytes) -> Any:
        if len(data) != st.size:
            raise SerdeError(f"Size of data received by {name} is not {st.size}")
        return st.unpack(data)[0]

    return ser, de


_CODECS: dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any]]] = {
    "INTEGER": _fixed(_INT, "IntegerDeserializer"),
    "BIGINT": _fixed(_LONG, "LongDeserializer"),
    "DOUBLE": _fixed(_DOUBLE, "Deserializer"),  # Kafka's DoubleDeserializer's own wording
    # StringDeserializer is new String(bytes, UTF_8): malformed bytes become U+FFFD, no error.
    # (and StringSerializer is String.getBytes(UTF_8): a lone surrogate is written as '?')
    "STRING": (lambda v: v.encode("utf-8", "replace"), lambda d: d.decode("utf-8", "replace")),
    "BYTES": (lambda v: bytes(v), lambda d: bytes(d)),
}


class KafkaSerde:
    def __init__(self, columns: tuple[Column, ...], target: str = "value") -> None:
        if len(columns) > 1:
            raise ValueError("The 'KAFKA' format only supports a single field")
        self.columns = columns
        self.target = target
        if columns:
            base = columns[0].type.base
            if base not in _CODECS:
                raise ValueError(f"The 'KAFKA' format does not support type '{base}'")
            self._ser, self._de = _CODECS[base]
            if base == "STRING":  # the common key: one call per record
                self.deserialize = self._deserialize_string  # type: ignore[method-assign]

    def _deserialize_string(self, data: bytes | None) -> Values | None:
        if data is None:
            return None
        return (data.decode("utf-8", "replace"),)

    def deserialize(self, data: bytes | None) -> Values | None:
        if data is None:
            return None
        if not self.columns:
            return ()
        try:
            return (self._de(data),)
        except SerdeError as e:
            e.target = self.target
            raise
        except (UnicodeDecodeError, struct.error) as e:
            raise SerdeError(f"Failed to deserialize KAFKA {self.target}: {e}",
                             self.target) from None

    def serialize(self, values: Values | None) -> bytes | None:
        if values is None or not self.columns or values[0] is None:
            return None
        try:
            return self._ser(values[0])
        except (struct.error, UnicodeEncodeError, TypeError) as e:
            raise SerdeError(f"Failed to serialize KAFKA {self.target}: {e}", self.target) from e
