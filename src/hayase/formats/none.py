"""NONE: the key or value carries no columns; whatever bytes are there are ignored."""

from __future__ import annotations

from hayase.formats.base import Values


class NoneSerde:
    def serialize(self, values: Values | None) -> bytes | None:
        return None

    def deserialize(self, data: bytes | None) -> Values | None:
        return ()
