"""Idempotent producer state of one partition (Kafka's ProducerStateManager, without transactions).

For every producer id the last 5 batches (first/last sequence, first/last offset, timestamp) are
kept. A batch whose epoch and sequence range equal one of them is a duplicate; otherwise its first
sequence must follow the last one (with Kafka's wrap-around at INT32_MAX), a new epoch must start
at sequence 0, and an older epoch is fenced.

Snapshots (``<offset>.snapshot``, Kafka's name) hold the whole state as of that offset. They are
taken at every segment roll and at clean close; recovery loads the newest snapshot at or below the
log end offset and replays the batches after it, so rebuilding never rescans the whole log.
"""

from __future__ import annotations

import os
import struct
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import google_crc32c

from hayase.broker.storage.batch import INT32_MAX, NO_PRODUCER_EPOCH
from hayase.broker.storage.errors import InvalidProducerEpochError, OutOfOrderSequenceError

NUM_BATCHES_TO_RETAIN = 5
SNAPSHOT_SUFFIX = ".snapshot"
_SNAP_MAGIC = b"HPS1"
_SNAP_PRODUCER = struct.Struct(">qhb")
_SNAP_BATCH = struct.Struct(">iiqqq")


@dataclass(frozen=True, slots=True)
class BatchMetadata:
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int


@dataclass(slots=True)
class ProducerStateEntry:
    producer_id: int
    producer_epoch: int = NO_PRODUCER_EPOCH
    batches: deque[BatchMetadata] = field(default_factory=lambda: deque(maxlen=NUM_BATCHES_TO_RETAIN))

    def find_duplicate(self, epoch: int, first_seq: int, last_seq: int) -> BatchMetadata | None:
        if epoch != self.producer_epoch:
            return None
        for batch in self.batches:
            if batch.first_seq == first_seq and batch.last_seq == last_seq:
                return batch
        return None

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1


def in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == INT32_MAX)


class ProducerStateManager:
    """State per producer id; ``check`` validates a batch, ``update`` records an appended one."""

    def __init__(self, directory: Path, topic_partition: str) -> None:
        self.directory = directory
        self.topic_partition = topic_partition
        self.producers: dict[int, ProducerStateEntry] = {}

    # --- validation ----------------------------------------------------------------------------

    def check(
        self,
        producer_id: int,
        epoch: int,
        first_seq: int,
        last_seq: int,
        pending: dict[int, tuple[int, int]],
    ) -> BatchMetadata | None:
        """Return the original metadata if this batch is a duplicate; raise if it is fenced or
        out of order; else None. ``pending`` holds (epoch, last_seq) of earlier batches of the
        same append that are not recorded yet; this batch is added to it."""
        entry = self.producers.get(producer_id)
        if entry is not None and producer_id not in pending:
            duplicate = entry.find_duplicate(epoch, first_seq, last_seq)
            if duplicate is not None:
                return duplicate
        if producer_id in pending:
            current_epoch, current_last = pending[producer_id]
        elif entry is not None:
            current_epoch, current_last = entry.producer_epoch, entry.last_seq
        else:
            current_epoch, current_last = NO_PRODUCER_EPOCH, -1
        if epoch < current_epoch:
            raise InvalidProducerEpochError(
                f"producer {producer_id} epoch {epoch} is older than {current_epoch} "
                f"on {self.topic_partition}"
            )
        if epoch > current_epoch:
            if first_seq != 0 and current_epoch != NO_PRODUCER_EPOCH:
                raise OutOfOrderSequenceError(
                    f"producer {producer_id} new epoch {epoch} starts at sequence {first_seq}, "
                    f"not 0, on {self.topic_partition}"
                )
        elif current_epoch != NO_PRODUCER_EPOCH and not in_sequence(current_last, first_seq):
            # With no known epoch (unknown producer, e.g. its data was deleted by retention)
            # any sequence is accepted, as Kafka does.
            raise OutOfOrderSequenceError(
                f"producer {producer_id} sent sequence {first_seq}, expected "
                f"{current_last + 1 if current_last < INT32_MAX else 0} on {self.topic_partition}"
            )
        pending[producer_id] = (epoch, last_seq)
        return None

    def update(
        self, producer_id: int, epoch: int, first_seq: int, last_seq: int, first_offset: int, last_offset: int, timestamp: int
    ) -> None:
        entry = self.producers.get(producer_id)
        if entry is None:
            entry = self.producers[producer_id] = ProducerStateEntry(producer_id)
        if epoch != entry.producer_epoch:
            entry.producer_epoch = epoch
            entry.batches.clear()
        entry.batches.append(BatchMetadata(first_seq, last_seq, first_offset, last_offset, timestamp))

    def clear(self) -> None:
        self.producers.clear()

    # --- snapshots -----------------------------------------------------------------------------

    def snapshot_path(self, offset: int) -> Path:
        return self.directory / f"{offset:020d}{SNAPSHOT_SUFFIX}"

    def snapshot_offsets(self) -> list[int]:
        out = []
        for name in os.listdir(self.directory):
            if name.endswith(SNAPSHOT_SUFFIX) and name[: -len(SNAPSHOT_SUFFIX)].isdigit():
                out.append(int(name[: -len(SNAPSHOT_SUFFIX)]))
        return sorted(out)

    def take_snapshot(self, offset: int) -> None:
        parts = [_SNAP_MAGIC, struct.pack(">i", len(self.producers))]
        for pid, entry in self.producers.items():
            parts.append(_SNAP_PRODUCER.pack(pid, entry.producer_epoch, len(entry.batches)))
            for b in entry.batches:
                parts.append(_SNAP_BATCH.pack(b.first_seq, b.last_seq, b.first_offset, b.last_offset, b.timestamp))
        body = b"".join(parts)
        data = body + struct.pack(">I", google_crc32c.value(body))
        path = self.snapshot_path(offset)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)

    def load_snapshot(self, offset: int) -> bool:
        """Replace the state with the snapshot at ``offset``; False if it is unreadable."""
        try:
            data = self.snapshot_path(offset).read_bytes()
        except FileNotFoundError:
            return False
        if len(data) < 12 or not data.startswith(_SNAP_MAGIC):
            return False
        body, (crc,) = data[:-4], struct.unpack(">I", data[-4:])
        if google_crc32c.value(body) != crc:
            return False
        producers: dict[int, ProducerStateEntry] = {}
        (count,) = struct.unpack_from(">i", body, 4)
        pos = 8
        try:
            for _ in range(count):
                pid, epoch, n = _SNAP_PRODUCER.unpack_from(body, pos)
                pos += _SNAP_PRODUCER.size
                entry = producers[pid] = ProducerStateEntry(pid, epoch)
                for _ in range(n):
                    entry.batches.append(BatchMetadata(*_SNAP_BATCH.unpack_from(body, pos)))
                    pos += _SNAP_BATCH.size
        except struct.error:
            return False
        self.producers = producers
        return True

    def delete_snapshots(self, *, above: int | None = None, below: int | None = None) -> None:
        """Delete snapshots with offset > ``above`` and/or offset < ``below``."""
        for offset in self.snapshot_offsets():
            if (above is not None and offset > above) or (below is not None and offset < below):
                self.snapshot_path(offset).unlink(missing_ok=True)
