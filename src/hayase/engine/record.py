"""The record the operators consume and produce: Kafka's vocabulary, bytes in and bytes out."""

from __future__ import annotations

from dataclasses import dataclass

Headers = tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True, slots=True)
class Record:
    """A consumed record: where it came from, its timestamp (ms), key and value bytes."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """A record to produce. ``partition`` None lets the producer's partitioner choose
    (murmur2 of the key bytes, like Kafka's Java client)."""

    topic: str
    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: Headers = ()
    partition: int | None = None
    # Bytes to place the record by instead of the key (windowed keys: Kafka Streams'
    # WindowedStreamPartitioner hashes the key without its window).
    partition_key: bytes | None = None
