"""Where the coordinator's records live: the internal topic `__consumer_offsets`.

`OffsetLog` is the small interface the shell needs; `StorageOffsetLog` puts the records into the
broker's own log (one partition, cleanup.policy=compact, written as RecordBatch v2 through
`hayase.broker.storage`), `MemoryOffsetLog` keeps them in a list for tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from hayase.broker.coordinator.records import OFFSETS_TOPIC

Record = tuple[bytes, bytes | None]

# Kafka's offsets.topic.segment.bytes default.
OFFSETS_SEGMENT_BYTES = 104_857_600
_READ_CHUNK = 1 << 20


class OffsetLog(Protocol):
    def append(self, records: Sequence[Record], now_ms: int) -> Any:
        """Append records in order; returns what the shell needs to flush them."""
        ...

    def replay(self) -> Iterator[Record]:
        """Every record from the start of the log, oldest first."""
        ...


class MemoryOffsetLog:
    def __init__(self) -> None:
        self.records: list[Record] = []

    def append(self, records: Sequence[Record], now_ms: int) -> None:
        self.records.extend(records)

    def replay(self) -> Iterator[Record]:
        return iter(list(self.records))


class StorageOffsetLog:
    """`__consumer_offsets` in the broker's LogManager (created on first use)."""

    def __init__(self, log_manager: Any) -> None:
        self.log_manager = log_manager

    def partition_log(self) -> Any:
        lm = self.log_manager
        if not lm.has_topic(OFFSETS_TOPIC):
            lm.create_topic(
                OFFSETS_TOPIC,
                1,
                {"cleanup.policy": "compact", "segment.bytes": str(OFFSETS_SEGMENT_BYTES)},
            )
        return lm.log(OFFSETS_TOPIC, 0)

    def append(self, records: Sequence[Record], now_ms: int) -> Any:
        """Append as one batch (so a commit's offsets land together); returns the partition log."""
        from hayase.broker.storage import Record as StorageRecord
        from hayase.broker.storage import build_batch

        plog = self.partition_log()
        batch = build_batch([StorageRecord(k, v, timestamp=now_ms) for k, v in records])
        plog.append(batch, now_ms)
        return plog

    def replay(self) -> Iterator[Record]:
        from hayase.broker.storage import decode_records, iter_batches

        plog = self.partition_log()
        offset = plog.log_start_offset
        while offset < plog.high_watermark:
            data = plog.read(offset, _READ_CHUNK).records
            if not data:
                break
            for pos, header in iter_batches(data):
                for record in decode_records(data, pos):
                    if record.offset >= offset and record.key is not None:
                        yield record.key, record.value
                offset = max(offset, header.last_offset + 1)
