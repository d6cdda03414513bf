"""Where the coordinator's records live: the internal topic `__consumer_offsets`.

`OffsetLog` is the small interface the shell needs; `StorageOffsetLog` puts the records into the
broker's own log (one partition, cleanup.policy=compact, written as RecordBatch v2 through
`hayase.broker.storage`), `MemoryOffsetLog` keeps them in a list for tests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from hayase.broker.coordinator.records import OFFSETS_TOPIC

Record = tuple[bytes, bytes | None]
log = logging.getLogger("hayase.broker.coordinator")

# Kafka's offsets.topic.segment.bytes default.
OFFSETS_SEGMENT_BYTES = 104_857_600
_READ_CHUNK = 1 << 20
_SNAPSHOT_BATCH = 500
# Where a compaction writes the live records first; complete once it ends with the sentinel.
COMPACTING_TOPIC = OFFSETS_TOPIC + ".compacting"
_SENTINEL = (b"\xff\xffhayase:snapshot-complete", b"")


class OffsetLog(Protocol):
    def append(self, records: Sequence[Record], now_ms: int) -> Any:
        """Append records in order; returns what the shell needs to flush them."""
        ...

    def replay(self) -> Iterator[Record]:
        """Every record from the start of the log, oldest first."""
        ...

    def compact(self, live: Sequence[Record], now_ms: int) -> None:
        """Replace the log's content with `live` (the records a compaction keeps)."""
        ...


class MemoryOffsetLog:
    def __init__(self) -> None:
        self.records: list[Record] = []

    def append(self, records: Sequence[Record], now_ms: int) -> None:
        self.records.extend(records)

    def replay(self) -> Iterator[Record]:
        return iter(list(self.records))

    def compact(self, live: Sequence[Record], now_ms: int) -> None:
        self.records = list(live)


class StorageOffsetLog:
    """`__consumer_offsets` in the broker's LogManager (created on first use).

    The storage has no log cleaner, so the coordinator compacts its own log when it starts
    (`compact`): the live records go to `__consumer_offsets.compacting`, closed by a sentinel
    and flushed; then `__consumer_offsets` is recreated from them and the temporary topic
    deleted. A crash at any point leaves either the old log intact (no sentinel yet: the
    temporary topic is dropped) or a complete copy (the sentinel is there: the rewrite is
    finished at the next start)."""

    def __init__(self, log_manager: Any) -> None:
        self.log_manager = log_manager
        self._recovered = False

    def partition_log(self) -> Any:
        lm = self.log_manager
        if not self._recovered:
            self._recovered = True
            self._finish_interrupted_compaction()
        if not lm.has_topic(OFFSETS_TOPIC):
            self._create(OFFSETS_TOPIC)
        return lm.log(OFFSETS_TOPIC, 0)

    def _create(self, topic: str) -> None:
        self.log_manager.create_topic(
            topic, 1, {"cleanup.policy": "compact", "segment.bytes": str(OFFSETS_SEGMENT_BYTES)}
        )

    def append(self, records: Sequence[Record], now_ms: int) -> Any:
        """Append as one batch (so a commit's offsets land together); returns the partition log."""
        plog = self.partition_log()
        self._append_to(plog, records, now_ms)
        return plog

    @staticmethod
    def _append_to(plog: Any, records: Sequence[Record], now_ms: int) -> None:
        from hayase.broker.storage import Record as StorageRecord
        from hayase.broker.storage import build_batch

        batch = build_batch([StorageRecord(k, v, timestamp=now_ms) for k, v in records])
        plog.append(batch, now_ms)

    def replay(self) -> Iterator[Record]:
        return _read_all(self.partition_log())

    def compact(self, live: Sequence[Record], now_ms: int) -> None:
        lm = self.log_manager
        self.partition_log()  # finishes an interrupted compaction first
        if lm.has_topic(COMPACTING_TOPIC):
            lm.delete_topic(COMPACTING_TOPIC)
        self._create(COMPACTING_TOPIC)
        tmp = lm.log(COMPACTING_TOPIC, 0)
        self._write_chunks(tmp, [*live, _SENTINEL], now_ms)
        self._rewrite_from(tmp, now_ms)

    def _write_chunks(self, plog: Any, records: Sequence[Record], now_ms: int) -> None:
        for i in range(0, len(records), _SNAPSHOT_BATCH):
            self._append_to(plog, records[i : i + _SNAPSHOT_BATCH], now_ms)
        plog.flush()

    def _rewrite_from(self, tmp: Any, now_ms: int) -> None:
        lm = self.log_manager
        live = [r for r in _read_all(tmp) if r != _SENTINEL]
        if lm.has_topic(OFFSETS_TOPIC):
            lm.delete_topic(OFFSETS_TOPIC)
        self._create(OFFSETS_TOPIC)
        if live:
            self._write_chunks(lm.log(OFFSETS_TOPIC, 0), live, now_ms)
        lm.delete_topic(COMPACTING_TOPIC)

    def _finish_interrupted_compaction(self) -> None:
        lm = self.log_manager
        if not lm.has_topic(COMPACTING_TOPIC):
            return
        tmp = lm.log(COMPACTING_TOPIC, 0)
        records = list(_read_all(tmp))
        if records and records[-1] == _SENTINEL:
            log.warning("finishing an interrupted compaction of %s", OFFSETS_TOPIC)
            self._rewrite_from(tmp, int(time.time() * 1000))
        else:
            log.warning("dropping an incomplete compaction of %s", OFFSETS_TOPIC)
            lm.delete_topic(COMPACTING_TOPIC)


def _read_all(plog: Any) -> Iterator[Record]:
    from hayase.broker.storage import decode_records, iter_batches

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
