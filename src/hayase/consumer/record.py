"""The record handed to a processing function: a plain, immutable copy of a consumed message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp: int | None = None  # milliseconds since the epoch, as the broker reported it

    @classmethod
    def from_message(cls, m: Any) -> Record:
        """From a confluent_kafka.Message."""
        ts_type, ts = m.timestamp()
        headers = m.headers()
        return cls(m.topic(), m.partition(), m.offset(), m.key(), m.value(),
                   tuple(headers) if headers else (), ts if ts_type else None)
