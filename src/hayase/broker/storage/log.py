"""PartitionLog: the segments of one topic-partition (Kafka's UnifiedLog + LogLoader, one node).

Invariants:
* offsets increase: appends are contiguous (each batch's base offset is the previous batch's last
  offset + 1); the log cleaner (cleaner.py) leaves gaps, so a segment may start after the offset
  the previous one ends at, and a read at a cleaned-away offset returns the next batch; the high
  watermark is the log end offset;
* the last segment is the active one, the only one written to and the only one holding an open
  file descriptor;
* the recovery point only advances once the data below it is fsynced (flush, or a roll with
  ``flush_on_roll``).

Recovery (``clean_shutdown=False``): every segment holding offsets at or after the recovery point
is rescanned; each batch's magic, length, CRC-32C and offsets (increasing, inside the segment's
range) are checked; the segment is truncated at the first invalid byte, later segments are
deleted, and a WARNING naming the topic-partition and offset is logged on the
``hayase.broker.storage`` logger. A cleaner swap a crash interrupted is finished first. Indexes of the
rescanned segments are rebuilt. With a clean shutdown the indexes are trusted (after a sanity
check; an insane index makes that segment go through recovery). In both cases producer state is
loaded from the newest ``.snapshot`` at or below the log end offset (one is written at every roll
and at clean close) and the batches after it are replayed from the segment headers.

Threading: every method must be called from one thread, except ``flush``, which may run in a
worker thread concurrently with appends (it holds the lock only to capture what to fsync).
"""

from __future__ import annotations

import logging
import os
import random
import struct
import threading
from bisect import bisect_right
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import google_crc32c

from hayase.broker.storage.batch import (
    ATTRIBUTES_OFFSET,
    CONTROL_MASK,
    CRC_OFFSET,
    HEADER,
    HEADER_SIZE,
    INT32_MAX,
    LOG_OVERHEAD,
    MAX_TIMESTAMP_OFFSET,
    MIN_BATCH_LENGTH,
    NO_TIMESTAMP,
    PREFIX_EPOCH,
    TIMESTAMP_TYPE_MASK,
    count_null_keys,
    increment_sequence,
)
from hayase.broker.storage.config import TopicConfig
from hayase.broker.storage.errors import (
    CorruptRecordError,
    InvalidRecordError,
    InvalidTimestampError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    UnknownTopicOrPartitionError,
)
from hayase.broker.storage.producer_state import ProducerStateManager
from hayase.broker.storage.segment import SWAP_SUFFIX, LogSegment, iter_headers

logger = logging.getLogger("hayase.broker.storage")

_unpack_header = HEADER.unpack_from
_pack_prefix = PREFIX_EPOCH.pack
_crc32c = google_crc32c.value
_INT16 = struct.Struct(">h")
_INT64 = struct.Struct(">q")
_UINT32 = struct.Struct(">I")
SNAPSHOTS_TO_KEEP = 2
LEFTOVER_SUFFIXES = (".tmp", ".deleted", ".cleaned", ".swap")


@dataclass(frozen=True)
class AppendResult:
    base_offset: int
    last_offset: int
    log_append_time: int
    log_start_offset: int
    duplicate: bool


@dataclass(frozen=True)
class ReadResult:
    records: bytes
    high_watermark: int
    log_start_offset: int
    last_stable_offset: int


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


class PartitionLog:
    def __init__(
        self,
        directory: Path,
        topic: str,
        partition: int,
        config: TopicConfig,
        *,
        recovery_point: int = 0,
        log_start_offset: int = 0,
        clean_shutdown: bool = False,
        now_ms: int | None = None,
        leader_epoch: int = 0,
        flush_on_roll: bool = True,
        flusher: Executor | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.topic = topic
        self.partition = partition
        self.config = config
        self.leader_epoch = leader_epoch
        self.flush_on_roll = flush_on_roll
        # With a flusher (LogManager's single worker thread) the fsync that follows a roll runs
        # there, as in Kafka's scheduler, instead of stalling the appending thread.
        self._flusher = flusher
        self._flush_lock = threading.Lock()  # one flush at a time: the recovery point is exact
        self.recovery_point = recovery_point
        self.log_start_offset = log_start_offset
        self.high_watermark = 0
        self.segments: list[LogSegment] = []
        self._bases: list[int] = []
        self._unflushed: list[LogSegment] = []  # rolled but not fsynced (flush_on_roll=False)
        self._unflushed_messages = 0
        self._last_flush_ms = now_ms if now_ms is not None else _now_ms()
        self._lock = threading.Lock()
        self._closed = False
        self._directory_dirty = True
        self.producer_state = ProducerStateManager(self.directory, self.name)
        self._load(clean_shutdown, self._last_flush_ms)

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.partition}"

    @property
    def log_end_offset(self) -> int:
        return self.high_watermark

    # --- loading and recovery ------------------------------------------------------------------

    def _load(self, clean_shutdown: bool, now_ms: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        interval = self.config.index_interval_bytes
        names = self._complete_swaps(os.listdir(self.directory), interval, now_ms)
        for name in names:
            if name.endswith(LEFTOVER_SUFFIXES):
                (self.directory / name).unlink(missing_ok=True)
        bases = sorted(int(n[:-4]) for n in names if n.endswith(".log") and n[:-4].isdigit())
        for i, base in enumerate(bases):
            last = i == len(bases) - 1
            must_recover = not clean_shutdown and (last or bases[i + 1] > self.recovery_point)
            cut = None
            seg: LogSegment | None = None
            if not must_recover:
                seg, sane = LogSegment.load(self.directory, base, interval, now_ms)
                if not sane:
                    logger.warning("%s: segment %d failed its open check (index or tail); recovering it",
                                   self.name, base)
                    seg = None
            if seg is None:
                seg = LogSegment(self.directory, base, interval, now_ms)
                cut = seg.recover(None if last else bases[i + 1])
                if cut is not None:
                    logger.warning(
                        "%s: truncating at offset %d (segment %d, byte %d, %d bytes removed): %s",
                        self.name, cut.offset, base, cut.position, cut.bytes_removed, cut.reason)
            # A segment may end before the next one starts (the cleaner removed its last
            # batches), never after; a segment that recovery cut ends the log.
            expected = self.segments[-1].next_offset if self.segments else base
            if base < expected:
                logger.warning("%s: segment %d starts below offset %d; dropping it and the rest",
                               self.name, base, expected)
                self._drop_segment_files(bases[i:])
                break
            self.segments.append(seg)
            self._bases.append(base)
            if not last and (cut is not None or seg.next_offset > bases[i + 1]):
                self._drop_segment_files(bases[i + 1 :], reason_offset=seg.next_offset)
                break
        if not self.segments:
            base = max(self.log_start_offset, 0)
            self.segments.append(LogSegment.create(self.directory, base, interval, now_ms))
            self._bases.append(base)
        active = self.segments[-1]
        active.open_for_append()
        self._set_jitter(active)
        self.high_watermark = active.next_offset
        self.log_start_offset = min(max(self.log_start_offset, self.segments[0].base_offset), self.high_watermark)
        self.recovery_point = min(self.recovery_point, self.high_watermark)
        if clean_shutdown:
            self.recovery_point = self.high_watermark
        self._rebuild_producer_state()

    def _complete_swaps(self, names: list[str], interval: int, now_ms: int) -> list[str]:
        """Finish a cleaner swap that a crash interrupted, as Kafka's LogLoader does. A
        ``<base>.log.swap`` is a complete, fsynced cleaned segment (its name is the commit
        point): the segments it replaces, those with base offsets in [base, its next offset),
        are deleted and it takes the plain name; its indexes are rebuilt. ``.cleaned`` files and
        swap indexes without their ``.log.swap`` belong to a cleaning that never committed and
        go with the other leftovers. Returns the directory listing afterwards."""
        swaps = sorted(n for n in names if n.endswith(".log" + SWAP_SUFFIX) and n[:20].isdigit())
        if not swaps:
            return names
        bases = sorted(int(n[:-4]) for n in names if n.endswith(".log") and n[:-4].isdigit())
        for name in swaps:
            base = int(name[:20])
            seg = LogSegment(self.directory, base, interval, now_ms)
            seg.set_paths(SWAP_SUFFIX)  # the files already have these names
            seg.recover()
            end = max(seg.next_offset, base + 1)
            replaced = [b for b in bases if base <= b < end]
            for b in replaced:
                if b != base:
                    LogSegment(self.directory, b, 0, 0).delete()
            for path in seg.file_paths()[:2]:
                path.unlink(missing_ok=True)
            seg.change_file_suffix("")  # replaces the old segment at ``base``; no stale index stays
            logger.warning("%s: completed an interrupted cleaner swap of segment %d (replaced %s)",
                           self.name, base, replaced)
        _fsync_path(self.directory)
        return os.listdir(self.directory)

    def _drop_segment_files(self, bases: list[int], reason_offset: int | None = None) -> None:
        if bases and reason_offset is not None:
            logger.warning("%s: deleting %d segment(s) after offset %d left by recovery",
                           self.name, len(bases), reason_offset)
        for base in bases:
            LogSegment(self.directory, base, 0, 0).delete()

    def _rebuild_producer_state(self) -> None:
        ps = self.producer_state
        end = self.high_watermark
        ps.delete_snapshots(above=end)
        start = None
        for offset in reversed(ps.snapshot_offsets()):
            if ps.load_snapshot(offset):
                start = offset
                break
            ps.snapshot_path(offset).unlink(missing_ok=True)
        if start is None:
            ps.clear()
            start = self.segments[0].base_offset
        self._replay_producer_state(start, end)

    def _replay_producer_state(self, start: int, end: int) -> None:
        update = self.producer_state.update
        for seg in self.segments:
            if seg.next_offset <= start or seg.size == 0:
                continue
            with seg._reader() as fd:
                for _, h in iter_headers(fd, seg.offset_index.lookup(start), seg.size):
                    if h.base_offset >= end:
                        return
                    last = h.base_offset + h.last_offset_delta
                    if last < start or h.producer_id < 0:
                        continue
                    update(h.producer_id, h.producer_epoch, h.base_sequence,
                           increment_sequence(h.base_sequence, h.last_offset_delta),
                           h.base_offset, last, h.max_timestamp)

    def _set_jitter(self, seg: LogSegment) -> None:
        jitter = self.config.segment_jitter_ms
        seg.roll_jitter_ms = random.randrange(min(jitter, self.config.segment_ms)) if jitter > 0 else 0

    # --- append --------------------------------------------------------------------------------

    def append(self, records: bytes, now_ms: int) -> AppendResult:
        """Validate and append one or more RecordBatch v2; see STORAGE_API.md."""
        with self._lock:
            if self._closed:
                raise UnknownTopicOrPartitionError(f"{self.name} is closed (deleted or shut down)")
            result = self._append(records, now_ms)
        # flush.messages is checked on append, as in Kafka's UnifiedLog; flush.ms belongs to a
        # periodic flusher (the server's), which can ask ``flush_due``.
        if self._unflushed_messages >= self.config.flush_messages:
            self.flush(now_ms)
        return result

    def _append(self, records: bytes, now_ms: int) -> AppendResult:
        n = len(records)
        config = self.config
        batches = []
        pos = 0
        count = 0
        max_ts_in = NO_TIMESTAMP
        crc_input = records if isinstance(records, bytes) else bytes(records)
        while pos < n:
            if n - pos < HEADER_SIZE:
                raise CorruptRecordError(f"{self.name}: {n - pos} trailing bytes are not a batch")
            t = _unpack_header(records, pos)
            length = t[1]
            size = length + LOG_OVERHEAD
            if t[3] != 2:
                raise CorruptRecordError(f"{self.name}: batch at byte {pos} has magic {t[3]}, not 2")
            if length < MIN_BATCH_LENGTH or pos + size > n:
                raise CorruptRecordError(f"{self.name}: batch at byte {pos} has bad length {length}")
            if _crc32c(crc_input[pos + ATTRIBUTES_OFFSET : pos + size]) != t[4]:
                raise CorruptRecordError(f"{self.name}: batch at byte {pos} fails its CRC-32C check")
            if t[6] < 0 or t[12] != t[6] + 1:
                raise InvalidRecordError(
                    f"{self.name}: record count {t[12]} does not match lastOffsetDelta {t[6]}")
            if size > config.max_message_bytes:
                raise RecordTooLargeError(
                    f"{self.name}: batch of {size} bytes exceeds max.message.bytes {config.max_message_bytes}")
            if t[5] & CONTROL_MASK:
                raise InvalidRecordError(f"{self.name}: clients may not write control batches")
            if config.compact_enabled and count_null_keys(records, pos, size, t[5], t[12]):
                # Kafka's LogValidator.validateKey: the cleaner could only drop such a record.
                raise InvalidRecordError(
                    f"{self.name}: compacted topic cannot accept a record without a key")
            if not config.log_append_time and t[7] != NO_TIMESTAMP and (
                t[7] < now_ms - config.timestamp_before_max_ms or t[8] > now_ms + config.timestamp_after_max_ms
            ):
                raise InvalidTimestampError(
                    f"{self.name}: timestamps {t[7]}..{t[8]} are outside the allowed range around {now_ms}")
            batches.append((pos, size, t))
            pos += size
            count += t[6] + 1
            if t[8] > max_ts_in:
                max_ts_in = t[8]
        if not batches:
            raise CorruptRecordError(f"{self.name}: no record batch in the request")

        pending: dict[int, tuple[int, int]] = {}
        for _, _, t in batches:
            if t[9] >= 0:
                dup = self.producer_state.check(t[9], t[10], t[11], increment_sequence(t[11], t[6]), pending)
                if dup is not None:
                    return AppendResult(dup.first_offset, dup.last_offset, NO_TIMESTAMP, self.log_start_offset, True)

        append_time = config.log_append_time
        if append_time:
            max_ts_in = now_ms
        first = self.high_watermark
        if self._should_roll(n, max_ts_in, now_ms, first + count - 1):
            self._roll(now_ms)

        mv = memoryview(records)
        pieces: list[bytes | memoryview] = []
        meta: list[tuple[int, int, int]] = []
        offset = first
        epoch = self.leader_epoch
        for pos, size, t in batches:
            if append_time:
                header = bytearray(records[pos : pos + HEADER_SIZE])
                PREFIX_EPOCH.pack_into(header, 0, offset, t[1], epoch)
                _INT16.pack_into(header, ATTRIBUTES_OFFSET, t[5] | TIMESTAMP_TYPE_MASK)
                _INT64.pack_into(header, MAX_TIMESTAMP_OFFSET, now_ms)
                tail = bytes(records[pos + HEADER_SIZE : pos + size])
                crc = google_crc32c.extend(google_crc32c.value(bytes(header[ATTRIBUTES_OFFSET:])), tail)
                _UINT32.pack_into(header, CRC_OFFSET, crc)
                pieces.append(bytes(header))
                pieces.append(tail)
                max_ts = now_ms
            else:
                pieces.append(_pack_prefix(offset, t[1], epoch))
                pieces.append(mv[pos + 16 : pos + size])
                max_ts = t[8]
            meta.append((offset + t[6], max_ts, size))
            offset += t[6] + 1
        self.segments[-1].append(pieces, n, meta)
        self.high_watermark = offset
        self._unflushed_messages += offset - first

        offset = first
        for _, _, t in batches:
            if t[9] >= 0:
                self.producer_state.update(
                    t[9], t[10], t[11], increment_sequence(t[11], t[6]), offset, offset + t[6],
                    now_ms if append_time else t[8])
            offset += t[6] + 1
        return AppendResult(first, offset - 1, now_ms if append_time else NO_TIMESTAMP,
                            self.log_start_offset, False)

    def _should_roll(self, size: int, max_ts_in: int, now_ms: int, last_offset: int) -> bool:
        """Kafka's LogSegment.shouldRoll."""
        seg = self.segments[-1]
        if seg.size == 0:
            return False
        config = self.config
        if seg.size > config.segment_bytes - size:
            return True
        if seg.rolling_timestamp >= 0:
            waited = max_ts_in - seg.rolling_timestamp
        else:
            waited = now_ms - seg.created_ms
        if waited > config.max_segment_ms - seg.roll_jitter_ms:
            return True
        if len(seg.offset_index.positions) >= config.segment_index_bytes // 8:
            return True
        if len(seg.time_index.timestamps) >= config.segment_index_bytes // 12:
            return True
        return last_offset - seg.base_offset > INT32_MAX

    def _roll(self, now_ms: int) -> None:
        """Make a new active segment at the log end offset."""
        old = self.segments[-1]
        base = self.high_watermark
        if old.size == 0:
            return
        sync = self.flush_on_roll and self._flusher is None
        old.become_inactive(fsync=sync)
        if not sync:
            self._unflushed.append(old)
        seg = LogSegment.create(self.directory, base, self.config.index_interval_bytes, now_ms)
        self._directory_dirty = True
        if sync:
            _fsync_path(self.directory)
            self._directory_dirty = False
        self._set_jitter(seg)
        self.segments.append(seg)
        self._bases.append(base)
        self.producer_state.take_snapshot(base)
        kept = self.producer_state.snapshot_offsets()[-SNAPSHOTS_TO_KEEP:]
        if kept:
            self.producer_state.delete_snapshots(below=kept[0])
        if sync and not self._unflushed:
            self.recovery_point = max(self.recovery_point, base)
        elif self.flush_on_roll and self._flusher is not None:
            self._flusher.submit(self._background_flush)

    def _background_flush(self) -> None:
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - logged; the next flush retries the same segments
            logger.exception("%s: background flush after a roll failed", self.name)

    def replace_segments(self, cleaned: LogSegment, old: list[LogSegment]) -> None:
        """Swap ``cleaned`` (closed, fsynced, named ``.cleaned``, same base offset as ``old[0]``)
        in for ``old``, consecutive inactive segments (Kafka's UnifiedLog.replaceSegments):
        rename it to ``.swap`` (the commit point, made durable), delete the other old segments,
        then rename it over the first one. A crash anywhere is finished by ``_complete_swaps``."""
        with self._lock:
            if self._closed:
                raise UnknownTopicOrPartitionError(f"{self.name} is closed (deleted or shut down)")
            i = next((j for j, seg in enumerate(self.segments) if seg is old[0]), -1)
            if (i < 0 or i + len(old) >= len(self.segments) or cleaned.base_offset != old[0].base_offset
                    or any(a is not b for a, b in zip(self.segments[i : i + len(old)], old, strict=True))):
                raise ValueError(f"{self.name}: the segments to replace are not consecutive inactive ones")
            cleaned.change_file_suffix(SWAP_SUFFIX)
            _fsync_path(self.directory)
            # Committed: from here the log serves the cleaned segment (under whatever name it
            # has), and an error below leaves nothing that the next open does not finish.
            self.segments[i : i + len(old)] = [cleaned]
            self._bases[i : i + len(old)] = [cleaned.base_offset]
            self._unflushed = [seg for seg in self._unflushed if all(seg is not o for o in old)]
            for seg in old[1:]:
                seg.delete()
            old[0].close()
            cleaned.change_file_suffix("")
            _fsync_path(self.directory)

    def roll(self, now_ms: int) -> None:
        """Roll now (if the active segment holds data)."""
        with self._lock:
            self._roll(now_ms)

    # --- read ----------------------------------------------------------------------------------

    def read(self, offset: int, max_bytes: int) -> ReadResult:
        if self._closed:
            raise UnknownTopicOrPartitionError(f"{self.name} is closed (deleted or shut down)")
        hw = self.high_watermark
        start = self.log_start_offset
        if offset == hw:
            return ReadResult(b"", hw, start, hw)
        if offset < start or offset > hw:
            raise OffsetOutOfRangeError(
                f"{self.name}: offset {offset} is outside [{start}, {hw}]")
        segments = self.segments
        i = max(bisect_right(self._bases, offset) - 1, 0)
        while i < len(segments):
            data = segments[i].read(offset, max_bytes)
            if data:
                return ReadResult(data, hw, start, hw)
            i += 1
        return ReadResult(b"", hw, start, hw)

    def offset_for_timestamp(self, timestamp_ms: int) -> tuple[int, int] | None:
        """First (offset, timestamp) with timestamp >= timestamp_ms, None if none."""
        for seg in self.segments:
            if seg.max_timestamp >= timestamp_ms:
                found = seg.find_offset_by_timestamp(timestamp_ms, self.log_start_offset)
                if found is not None:
                    return found
        return None

    def max_timestamp_and_offset(self) -> tuple[int, int] | None:
        """(max timestamp, its offset) over the log, for ListOffsets MAX_TIMESTAMP; None if empty."""
        best: tuple[int, int] | None = None
        for seg in self.segments:
            if seg.max_timestamp != NO_TIMESTAMP and (best is None or seg.max_timestamp > best[0]):
                best = (seg.max_timestamp, seg.offset_of_max_timestamp)
        return best

    def size_bytes(self) -> int:
        return sum(seg.size for seg in self.segments)

    # --- retention -----------------------------------------------------------------------------

    def delete_old_segments(self, now_ms: int) -> int:
        """Retention by retention.ms and retention.bytes; returns the number of segments deleted.
        The active segment is never deleted: when every segment is due, the log rolls first."""
        with self._lock:
            if self._closed or not self.config.delete_enabled:
                return 0
            deleted = 0
            if self.config.retention_ms >= 0:
                limit = self.config.retention_ms
                deleted += self._delete_prefix(
                    lambda seg, _: now_ms - seg.largest_timestamp > limit, now_ms)
            if self.config.retention_bytes >= 0:
                excess = [self.size_bytes() - self.config.retention_bytes]

                def over(seg: LogSegment, _: int) -> bool:
                    if excess[0] - seg.size < 0:
                        return False
                    excess[0] -= seg.size
                    return True

                deleted += self._delete_prefix(over, now_ms)
            return deleted

    def delete_records(self, offset: int) -> int:
        """DeleteRecords: raise the log start offset to ``offset`` (-1 = the high watermark) and
        delete the segments wholly below it; returns the new log start offset."""
        with self._lock:
            if self._closed:
                raise UnknownTopicOrPartitionError(f"{self.name} is closed (deleted or shut down)")
            if offset == -1:
                offset = self.high_watermark
            if offset < 0 or offset > self.high_watermark:
                raise OffsetOutOfRangeError(
                    f"{self.name}: cannot delete records below {offset}: outside [0, {self.high_watermark}]")
            if offset <= self.log_start_offset:
                return self.log_start_offset
            self.log_start_offset = offset
            # A segment goes once the next one starts at or below the offset (Kafka's rule; with
            # compaction gaps a segment's last batch may end well before the next one starts).
            bases = self._bases
            self._delete_prefix(
                lambda seg, i: (bases[i + 1] if i + 1 < len(bases) else seg.next_offset) <= offset, 0)
            return self.log_start_offset

    def _delete_prefix(self, predicate: object, now_ms: int) -> int:
        count = 0
        last = len(self.segments) - 1
        for i, seg in enumerate(self.segments):
            # An empty segment stops it only when active; the cleaner may leave empty ones before.
            if (seg.size == 0 and i == last) or not predicate(seg, i):  # type: ignore[operator]
                break
            count += 1
        if count == 0:
            return 0
        if count == len(self.segments):
            self._roll(now_ms)
        doomed, self.segments = self.segments[:count], self.segments[count:]
        self._bases = self._bases[count:]
        for seg in doomed:
            seg.delete()
            if seg in self._unflushed:
                self._unflushed.remove(seg)
        self.log_start_offset = max(self.log_start_offset, self.segments[0].base_offset)
        snapshots = self.producer_state.snapshot_offsets()
        if snapshots:  # the newest snapshot always stays: replay starts from it
            self.producer_state.delete_snapshots(below=min(self.log_start_offset, snapshots[-1]))
        return count

    # --- flush and close -----------------------------------------------------------------------

    def flush(self, now_ms: int | None = None) -> None:
        """fsync data and indexes up to the current log end offset; advances the recovery point.
        Safe to call from a worker thread while appends go on; a no-op once closed."""
        with self._flush_lock:
            self._flush(now_ms)

    def _flush(self, now_ms: int | None) -> None:
        with self._lock:
            if self._closed:
                return
            end = self.high_watermark
            active = self.segments[-1]
            # Only the active segment's data: its indexes need no fsync, because the active
            # segment always holds the recovery point and is rescanned after a crash.
            fds = [os.dup(active.fd)] if active.fd is not None else []
            paths: list[Path] = []
            if self._directory_dirty:  # a segment was created: make its directory entry durable
                paths.append(self.directory)
                self._directory_dirty = False
            for seg in self._unflushed:
                paths += [seg.log_path, seg.offset_index.path, seg.time_index.path]
            unflushed, self._unflushed = self._unflushed, []
            self._unflushed_messages = 0
            self._last_flush_ms = now_ms if now_ms is not None else _now_ms()
        try:
            for fd in fds:
                os.fsync(fd)
            for path in paths:
                _fsync_path(path)
        except BaseException:
            with self._lock:
                self._unflushed = unflushed + self._unflushed
                self._directory_dirty = True
            raise
        finally:
            for fd in fds:
                os.close(fd)
        with self._lock:
            self.recovery_point = max(self.recovery_point, end)

    def close(self, flush: bool = True) -> None:
        """Close every file at once. With ``flush`` (a clean close) fsync everything, write the
        final index entries and a producer state snapshot at the log end offset."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if flush:
                    active = self.segments[-1]
                    if active.max_timestamp != NO_TIMESTAMP:
                        active.time_index.maybe_append(active.max_timestamp, active.offset_of_max_timestamp)
                    for seg in self._unflushed:
                        seg.flush(fsync=True)
                    active.flush(fsync=True)
                    self.producer_state.take_snapshot(self.high_watermark)
                    self.recovery_point = self.high_watermark
            finally:
                for seg in self.segments:
                    seg.close()
                self._unflushed = []

    def flush_due(self, now_ms: int) -> bool:
        """True when unflushed data is older than flush.ms (for a periodic flusher)."""
        return self._unflushed_messages > 0 and now_ms - self._last_flush_ms >= self.config.flush_ms

    @property
    def closed(self) -> bool:
        return self._closed

    def open_file_descriptors(self) -> int:
        """How many descriptors this log holds open right now (for tests and metrics)."""
        return sum(1 for seg in self.segments if seg.fd is not None)


def _fsync_path(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return  # deleted by retention meanwhile
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

