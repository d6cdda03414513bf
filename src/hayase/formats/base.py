"""What every format shares: the serde interface and the error a bad record raises."""

from __future__ import annotations

from typing import Any, Protocol

Values = tuple[Any, ...]


class SerdeError(Exception):
    """A record could not be serialized or deserialized. The engine routes it to the processing
    log; ``target`` says which part failed ("key" or "value")."""

    def __init__(self, message: str, target: str = "value") -> None:
        super().__init__(message)
        self.message = message
        self.target = target


class FormatError(Exception):
    """A format cannot carry the given columns or options (a statement error in ksqlDB)."""


class Serde(Protocol):
    """Serializes a tuple of column values (in column order) to bytes and back.

    ``None`` bytes mean a null key or a tombstone value; ``deserialize(None)`` returns ``None``
    and ``serialize(None)`` returns ``None``.
    """

    def serialize(self, values: Values | None) -> bytes | None: ...

    def deserialize(self, data: bytes | None) -> Values | None: ...
