"""The log cleaner: compaction of logs with cleanup.policy=compact (Kafka's LogCleaner, Cleaner,
LogCleanerManager and OffsetMap, for one node). No thread of its own: the caller schedules it,
either whole (``LogCleaner.run``) or split so that the heavy part runs in a worker thread
(``plan`` in the logs' thread, ``prepare_cleaning`` anywhere, ``commit`` in the logs' thread).

A pass over one log (Kafka's vocabulary):

* the **first dirty offset** is where the previous pass stopped (``cleaner-offset-checkpoint``,
  kept by the LogManager); the **first uncleanable offset** is the active segment's base offset,
  or earlier when a dirty segment is younger than ``min.compaction.lag.ms``. The active segment
  is never cleaned.
* a log is cleaned when its **dirty ratio** (dirty bytes / all bytes below the first uncleanable
  offset) exceeds ``min.cleanable.dirty.ratio``, when a dirty segment's first batch is older than
  ``max.compaction.lag.ms``, or when a tombstone's delete horizon has passed.
* the **offset map** holds the latest offset of every key of the dirty range (whole segments,
  as many as fit ``log.cleaner.dedupe.buffer.size``, 24 bytes a key as in Kafka's SkeinOffsetMap).
* every segment below the end of that range is rewritten, in groups that fit
  ``segment.bytes``, keeping a record only if its offset is the latest for its key. Offsets do
  not change (gaps are left), every batch keeps its base offset, last offset delta, producer id,
  epoch and base sequence; a batch whose records are all kept is copied byte for byte (its
  compression too), a filtered one is rewritten with the same codec. The batch holding a producer's
  last sequence stays even when emptied (Kafka's RETAIN_EMPTY), so producer state can be rebuilt
  from the log after a restart. Records without a key are dropped, as Kafka does.
* a **tombstone** (null value) is kept for ``delete.retention.ms``: the pass that first keeps it
  stamps its batch with a delete horizon (KIP-534: attribute bit 0x40, baseTimestamp = now +
  delete.retention.ms); a later pass after the horizon drops it.
* each group is written to ``<base>.log.cleaned`` (+ ``.index.cleaned``, ``.timeindex.cleaned``),
  fsynced, renamed to ``.swap`` (the commit point), then the replaced segments are deleted and the
  swap takes the plain name (``PartitionLog.replace_segments``; a crash is finished at open).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field

import google_crc32c

from hayase.broker.storage.batch import (
    ATTRIBUTES_OFFSET,
    COMPRESSION_MASK,
    CRC_OFFSET,
    HEADER,
    HEADER_SIZE,
    INT32_MAX,
    LOG_OVERHEAD,
    NO_TIMESTAMP,
    BatchHeader,
    Record,
    _decompress,
    _encode_record,
    compress,
    decode_records,
    parse_header,
    read_varint,
    validate_batch,
)
from hayase.broker.storage.config import TopicConfig
from hayase.broker.storage.errors import CorruptRecordError, InvalidConfigError
from hayase.broker.storage.log import PartitionLog
from hayase.broker.storage.segment import LogSegment, iter_headers

logger = logging.getLogger("hayase.broker.storage")

DELETE_HORIZON_MASK = 0x40  # attributes bit 6: baseTimestamp is the delete horizon (KIP-534)
CLEANER_CHECKPOINT = "cleaner-offset-checkpoint"
OFFSET_MAP_ENTRY_BYTES = 24  # Kafka's SkeinOffsetMap: a 16-byte MD5 of the key + an 8-byte offset
READ_CHUNK = 1 << 20
WRITE_CHUNK = 1 << 20

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class CleanerConfig:
    """Broker-wide cleaner settings (Kafka's ``log.cleaner.*`` property names)."""

    enabled: bool = True
    dedupe_buffer_size: int = 128 * 1024 * 1024
    io_buffer_load_factor: float = 0.9
    threads: int = 1

    @classmethod
    def from_broker(cls, broker_config: dict[str, str]) -> CleanerConfig:
        try:
            return cls(
                enabled=broker_config.get("log.cleaner.enable", "true").strip().lower() == "true",
                dedupe_buffer_size=int(broker_config.get("log.cleaner.dedupe.buffer.size", 128 * 1024 * 1024)),
                io_buffer_load_factor=float(broker_config.get("log.cleaner.io.buffer.load.factor", 0.9)),
                threads=max(1, int(broker_config.get("log.cleaner.threads", 1))),
            )
        except ValueError as exc:
            raise InvalidConfigError(f"bad log.cleaner.* broker property: {exc}") from None

    @property
    def max_keys(self) -> int:
        """How many keys the offset map holds (the dedupe buffer is shared by the threads)."""
        per_thread = self.dedupe_buffer_size // self.threads
        return max(1, int(per_thread // OFFSET_MAP_ENTRY_BYTES * self.io_buffer_load_factor))


# --- choosing what to clean ----------------------------------------------------------------------


@dataclass(frozen=True)
class LogToClean:
    """Kafka's LogToClean: the cleanable range of one log and how dirty it is."""

    first_dirty_offset: int
    first_uncleanable_offset: int
    clean_bytes: int
    cleanable_bytes: int
    max_compaction_delay_ms: int

    @property
    def cleanable_ratio(self) -> float:
        total = self.clean_bytes + self.cleanable_bytes
        return self.cleanable_bytes / total if total else 0.0

    @property
    def need_compaction_now(self) -> bool:
        return self.max_compaction_delay_ms > 0


def _overlapping(log: PartitionLog, start: int, end: int) -> list[tuple[LogSegment, int]]:
    """(segment, where it ends) of the segments holding offsets in [start, end): segment i
    covers [base_i, base_i+1), the active one [base, high watermark]."""
    segs = log.segments
    out = []
    for i, seg in enumerate(segs):
        upper = segs[i + 1].base_offset if i + 1 < len(segs) else log.high_watermark + 1
        if seg.base_offset < end and upper > start:
            out.append((seg, upper))
    return out


def first_dirty_offset(log: PartitionLog, checkpoint: int | None) -> int:
    """The checkpointed first dirty offset, reset to the log start offset when it is missing or
    outside the log (Kafka's cleanableOffsets)."""
    if checkpoint is None or checkpoint < log.log_start_offset or checkpoint > log.high_watermark:
        return log.log_start_offset
    return checkpoint


def cleanable_offsets(log: PartitionLog, checkpoint: int | None, now_ms: int) -> LogToClean:
    config = log.config
    active = log.segments[-1]
    first_dirty = first_dirty_offset(log, checkpoint)
    first_uncleanable = active.base_offset
    dirty = [s for s, _ in _overlapping(log, first_dirty, active.base_offset) if s is not active]
    if config.min_compaction_lag_ms > 0:
        for seg in dirty:
            if seg.largest_timestamp > now_ms - config.min_compaction_lag_ms:
                first_uncleanable = seg.base_offset
                break
    first_uncleanable = max(first_uncleanable, min(first_dirty, active.base_offset))
    clean_bytes = sum(s.size for s, _ in _overlapping(log, -1, first_dirty))
    cleanable = _overlapping(log, min(first_dirty, first_uncleanable), first_uncleanable)
    cleanable_bytes = sum(s.size for s, _ in cleanable if s is not active)
    first_batch_timestamps = [s.rolling_timestamp for s in dirty if s.rolling_timestamp > 0]
    clean_until = now_ms - config.max_compaction_lag_ms
    earliest = min(first_batch_timestamps, default=None)
    delay = clean_until - earliest if earliest is not None and earliest < clean_until else 0
    return LogToClean(first_dirty, first_uncleanable, clean_bytes, cleanable_bytes, delay)


def needs_cleaning(log: PartitionLog, ltc: LogToClean, delete_horizon: int, now_ms: int) -> bool:
    """Kafka's grabFilthiestCompactedLog test for one log."""
    if ltc.need_compaction_now and ltc.cleanable_bytes > 0:
        return True
    if ltc.cleanable_ratio > log.config.min_cleanable_dirty_ratio:
        return True
    # A quiet log: its tombstones still go once their delete horizon has passed.
    return delete_horizon != NO_TIMESTAMP and delete_horizon <= now_ms


# --- the offset map --------------------------------------------------------------------------


class OffsetMap:
    """Key -> latest offset over the dirty range (Kafka's OffsetMap), bounded in keys."""

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self._offsets: dict[bytes, int] = {}
        self.latest_offset = -1

    def __len__(self) -> int:
        return len(self._offsets)

    @property
    def full(self) -> bool:
        return len(self._offsets) >= self.max_keys

    def put(self, key: bytes, offset: int) -> None:
        self._offsets[key] = offset
        self.latest_offset = max(self.latest_offset, offset)

    def get(self, key: bytes) -> int:
        """The latest offset of ``key``, -1 when absent."""
        return self._offsets.get(key, -1)


def _segment_batches(fd: int, size: int) -> Iterator[tuple[BatchHeader, bytes]]:
    """Every batch of a segment file, CRC-checked, reading it in chunks."""
    pos = 0
    while pos + HEADER_SIZE <= size:
        chunk = os.pread(fd, min(READ_CHUNK, size - pos), pos)
        off = 0
        while off + HEADER_SIZE <= len(chunk):
            header = parse_header(chunk, off)
            if off + header.size > len(chunk):
                break
            validate_batch(chunk, off)
            yield header, chunk[off : off + header.size]
            off += header.size
        if off == 0:  # a batch larger than the chunk
            header = parse_header(os.pread(fd, HEADER_SIZE, pos))
            data = os.pread(fd, header.size, pos)
            validate_batch(data)
            yield header, data
            off = header.size
        pos += off


def _read_segment(seg: LogSegment) -> Generator[tuple[BatchHeader, bytes], None, None]:
    """The batches of an inactive segment; the descriptor closes when the iteration ends or the
    generator is closed."""
    fd = os.open(seg.log_path, os.O_RDONLY)
    try:
        yield from _segment_batches(fd, seg.size)
    finally:
        os.close(fd)


KeyEntry = tuple[int, bytes | None, bool]  # (offset, key, has a value)


def scan_keys(header: BatchHeader, data: bytes) -> list[KeyEntry]:
    """(offset, key, has a value) of every record of a batch, reading nothing else: the
    cleaner's hot loop, with one-byte varints (the usual case) decoded inline."""
    body = data[HEADER_SIZE:]
    if header.compression:
        body = _decompress(header.compression, body)
    base = header.base_offset
    n = len(body)
    out: list[KeyEntry] = []
    p = 0
    try:
        for _ in range(header.records_count):
            b = body[p]
            if b < 0x80:
                length, p = (b >> 1) ^ -(b & 1), p + 1
            else:
                length, p = read_varint(body, p)
            end = p + length
            if length < 0 or end > n:
                raise CorruptRecordError("record length runs past the end of the batch")
            p += 1  # attributes
            if body[p] < 0x80:  # timestampDelta, skipped
                p += 1
            else:
                _, p = read_varint(body, p)
            b = body[p]
            if b < 0x80:
                delta, p = (b >> 1) ^ -(b & 1), p + 1
            else:
                delta, p = read_varint(body, p)
            b = body[p]
            if b < 0x80:
                key_length, p = (b >> 1) ^ -(b & 1), p + 1
            else:
                key_length, p = read_varint(body, p)
            key = None
            if key_length >= 0:
                key = body[p : p + key_length]
                p += key_length
            # A value length of -1 is the zig-zag byte 0x01: a tombstone.
            out.append((base + delta, key, body[p] != 0x01))
            p = end
    except IndexError:
        raise CorruptRecordError("record runs past the end of the batch") from None
    return out


def build_offset_map(dirty: list[tuple[LogSegment, int]], start: int, offset_map: OffsetMap) -> int:
    """Fill ``offset_map`` from whole ``dirty`` segments (at least one, then as many as fit) and
    return the end of the range it covers: where the last segment it read ends (``start`` when
    there is none)."""
    upper = start
    for seg, end in dirty:
        if offset_map.full and upper > start:
            break
        batches = _read_segment(seg)
        try:
            for header, data in batches:
                if header.is_control or header.last_offset < start:
                    continue
                for offset, key, _ in scan_keys(header, data):
                    if key is not None and offset >= start:
                        offset_map.put(key, offset)
        finally:
            batches.close()
        upper = end
    return upper


# --- cleaning --------------------------------------------------------------------------------


@dataclass
class CleanerStats:
    """What one pass did (Kafka's CleanerStats, the parts the tests and logs use)."""

    segments_cleaned: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    records_read: int = 0
    records_retained: int = 0
    # The earliest delete horizon of a tombstone still in the log, NO_TIMESTAMP when none.
    delete_horizon: int = NO_TIMESTAMP

    def tombstone_kept(self, horizon: int) -> None:
        if horizon != NO_TIMESTAMP and (self.delete_horizon == NO_TIMESTAMP or horizon < self.delete_horizon):
            self.delete_horizon = horizon


def group_segments_by_size(segments: list[LogSegment], max_size: int, upper: int) -> list[list[LogSegment]]:
    """Consecutive segments whose sizes add up to at most ``max_size`` and whose offsets stay
    within int32 of the group's base (Kafka's groupSegmentsBySize); ``upper`` is where the
    last one ends."""
    groups: list[list[LogSegment]] = []
    i = 0
    while i < len(segments):
        group = [segments[i]]
        size = segments[i].size
        i += 1
        while i < len(segments):
            end = segments[i + 1].base_offset if i + 1 < len(segments) else upper
            if size + segments[i].size > max_size or end - 1 - group[0].base_offset > INT32_MAX:
                break
            size += segments[i].size
            group.append(segments[i])
            i += 1
        groups.append(group)
    return groups


def _should_retain(entry: KeyEntry, offset_map: OffsetMap, horizon: int, now_ms: int) -> bool:
    """Kafka's Cleaner.shouldRetainRecord for v2 batches."""
    offset, key, has_value = entry
    if key is None:
        return False  # a compacted topic's record needs a key; Kafka drops these too
    if offset < offset_map.get(key):
        return False
    return has_value or horizon == NO_TIMESTAMP or now_ms < horizon


def filter_batch(
    header: BatchHeader, data: bytes, offset_map: OffsetMap, now_ms: int, delete_retention_ms: int,
    retain_empty: bool, stats: CleanerStats,
) -> bytes | None:
    """The batch as it goes into the cleaned segment, or None when it goes away."""
    if header.is_control:
        return data
    entries = scan_keys(header, data)
    stats.records_read += len(entries)
    has_horizon = bool(header.attributes & DELETE_HORIZON_MASK)
    horizon = header.base_timestamp if has_horizon else NO_TIMESTAMP
    kept = [i for i, entry in enumerate(entries) if _should_retain(entry, offset_map, horizon, now_ms)]
    stats.records_retained += len(kept)
    if not kept:
        if not retain_empty:
            return None
        return data if header.records_count == 0 else _empty_batch(header)
    tombstones = any(not entries[i][2] for i in kept)
    if tombstones and not has_horizon:
        horizon = now_ms + delete_retention_ms
    if tombstones:
        stats.tombstone_kept(horizon)
    if len(kept) == len(entries) and (has_horizon or not tombstones):
        return data  # unchanged: copied as it is, compression and CRC included
    records = decode_records(data)
    retained = [records[i] for i in kept]
    return _rebuild_batch(header, retained, horizon if tombstones or has_horizon else NO_TIMESTAMP)


def _rebuild_batch(header: BatchHeader, records: list[Record], horizon: int) -> bytes:
    """A batch of ``records`` keeping the original's base offset, last offset delta, producer
    id/epoch, base sequence, leader epoch, timestamp type and compression codec (Kafka's
    buildRetainedRecordsInto). With a delete horizon, baseTimestamp holds it (KIP-534)."""
    base = header.base_offset
    base_ts = horizon if horizon != NO_TIMESTAMP else records[0].timestamp
    if header.is_log_append_time:
        max_ts = header.max_timestamp
    else:
        max_ts = max(r.timestamp for r in records)
    body = bytearray()
    for record in records:
        _encode_record(body, record.offset - base, record.timestamp - base_ts, record)
    attributes = header.attributes & ~DELETE_HORIZON_MASK
    if horizon != NO_TIMESTAMP:
        attributes |= DELETE_HORIZON_MASK
    return _seal(header, attributes, base_ts, max_ts, len(records), compress(header.compression, bytes(body)))


def _empty_batch(header: BatchHeader) -> bytes:
    """Only the header, kept for the producer's sequence (Kafka's writeEmptyHeader)."""
    attributes = header.attributes & ~COMPRESSION_MASK & ~DELETE_HORIZON_MASK
    return _seal(header, attributes, header.max_timestamp, header.max_timestamp, 0, b"")


def _seal(header: BatchHeader, attributes: int, base_ts: int, max_ts: int, count: int, body: bytes) -> bytes:
    out = bytearray(HEADER.pack(
        header.base_offset, HEADER_SIZE - LOG_OVERHEAD + len(body), header.partition_leader_epoch, 2, 0,
        attributes, header.last_offset_delta, base_ts, max_ts, header.producer_id, header.producer_epoch,
        header.base_sequence, count))
    out += body
    crc = int(google_crc32c.value(bytes(out[ATTRIBUTES_OFFSET:])))
    out[CRC_OFFSET : CRC_OFFSET + 4] = crc.to_bytes(4, "big")
    return bytes(out)


@dataclass
class CleaningTask:
    """One log's pass as planned in the log's own thread: everything the preparation reads,
    so that it may run in another thread (it reads only the files of inactive segments)."""

    log: PartitionLog
    ltc: LogToClean
    now_ms: int
    max_keys: int
    config: TopicConfig
    segments: list[LogSegment]  # the inactive segments when planned
    dirty: list[tuple[LogSegment, int]]  # dirty inactive segments, and where each ends
    last_batches: dict[int, int]  # producer id -> last offset of its last batch


@dataclass
class PreparedCleaning:
    """The cleaned segments of one pass, written and fsynced as ``.cleaned`` files, not yet
    swapped in; or the error that stopped the preparation."""

    task: CleaningTask
    upper: int = -1
    groups: list[tuple[list[LogSegment], LogSegment]] = field(default_factory=list)
    stats: CleanerStats = field(default_factory=lambda: CleanerStats())
    error: BaseException | None = None

    def discard(self) -> None:
        """Remove the cleaned files not swapped in."""
        for _, cleaned in self.groups:
            _remove(cleaned)
        self.groups = []


def plan_cleaning(log: PartitionLog, ltc: LogToClean, now_ms: int, max_keys: int) -> CleaningTask:
    """Capture what one pass over ``log`` needs; call it in the log's thread."""
    segments = list(log.segments[:-1])
    dirty = [(seg, end) for seg, end in _overlapping(log, ltc.first_dirty_offset, ltc.first_uncleanable_offset)
             if seg is not log.segments[-1]]
    # The batch holding each producer's last sequence survives, even emptied.
    last_batches = {pid: entry.batches[-1].last_offset
                    for pid, entry in log.producer_state.producers.items() if entry.batches}
    return CleaningTask(log, ltc, now_ms, max_keys, log.config, segments, dirty, last_batches)


def prepare_cleaning(tasks: list[CleaningTask]) -> list[PreparedCleaning]:
    """``prepare_one`` for each task: the step of LogManager.run_cleaner that may run in a
    worker thread."""
    return [prepare_one(task) for task in tasks]


def prepare_one(task: CleaningTask) -> PreparedCleaning:
    """Build the offset map and write every group's cleaned segment (Kafka's Cleaner.doClean up
    to the swap). Touches no state of the log, so it may run in a worker thread; never raises."""
    prepared = PreparedCleaning(task)
    try:
        offset_map = OffsetMap(task.max_keys)
        upper = build_offset_map(task.dirty, task.ltc.first_dirty_offset, offset_map)
        to_clean = [s for s in task.segments if s.base_offset < upper]
        for group in group_segments_by_size(to_clean, task.config.segment_bytes, upper):
            cleaned = write_cleaned_segment(task, group, offset_map, prepared.stats)
            prepared.groups.append((group, cleaned))
        prepared.upper = upper
    except Exception as exc:  # noqa: BLE001 - handed to commit_cleaning, in the log's thread
        prepared.discard()
        prepared.error = exc
    return prepared


def commit_cleaning(prepared: PreparedCleaning) -> None:
    """Swap the cleaned segments in, group by group, in the log's thread. On an error the
    groups not swapped yet are discarded and the error is raised (the swapped ones stay: each
    swap leaves a consistent log)."""
    if prepared.error is not None:
        raise prepared.error
    log = prepared.task.log
    try:
        while prepared.groups:
            old, cleaned = prepared.groups[0]
            log.replace_segments(cleaned, old)
            prepared.groups.pop(0)
            prepared.stats.segments_cleaned += len(old)
    except Exception:
        prepared.discard()
        raise


def write_cleaned_segment(
    task: CleaningTask, group: list[LogSegment], offset_map: OffsetMap, stats: CleanerStats,
) -> LogSegment:
    """Rewrite ``group`` into one cleaned segment, closed and fsynced under its ``.cleaned`` names."""
    config = task.config
    cleaned = LogSegment.create_cleaned(
        task.log.directory, group[0].base_offset, config.index_interval_bytes, task.now_ms)
    try:
        pieces: list[bytes | memoryview] = []
        meta: list[tuple[int, int, int]] = []
        pending = 0
        for seg in group:
            stats.bytes_read += seg.size
            batches = _read_segment(seg)
            try:
                for header, data in batches:
                    retain_empty = task.last_batches.get(header.producer_id) == header.last_offset
                    out = filter_batch(header, data, offset_map, task.now_ms, config.delete_retention_ms,
                                       retain_empty, stats)
                    if out is None:
                        continue
                    pieces.append(out)
                    meta.append((header.last_offset, parse_header(out).max_timestamp, len(out)))
                    pending += len(out)
                    if pending >= WRITE_CHUNK:
                        cleaned.append(pieces, pending, meta)
                        pieces, meta, pending = [], [], 0
            finally:
                batches.close()
        if pieces:
            cleaned.append(pieces, pending, meta)
        stats.bytes_written += cleaned.size
        cleaned.become_inactive(fsync=True)  # indexes written and everything fsynced
        cleaned.set_last_modified(max(seg.largest_timestamp for seg in group))
    except BaseException:
        _remove(cleaned)
        raise
    return cleaned


def _remove(cleaned: LogSegment) -> None:
    cleaned.close()
    for path in cleaned.file_paths():
        path.unlink(missing_ok=True)


def clean_log(log: PartitionLog, ltc: LogToClean, now_ms: int, max_keys: int) -> tuple[int, CleanerStats]:
    """One whole pass over ``log`` in the caller's thread; returns the new first dirty offset."""
    prepared = prepare_one(plan_cleaning(log, ltc, now_ms, max_keys))
    commit_cleaning(prepared)
    return prepared.upper, prepared.stats


def scan_delete_horizon(log: PartitionLog) -> int:
    """The earliest delete horizon stamped on a batch of ``log`` (from the batch headers only),
    NO_TIMESTAMP when none: after a restart this is what tells a quiet log's tombstones are due."""
    earliest = NO_TIMESTAMP
    for seg in log.segments[:-1]:
        if seg.size == 0:
            continue
        fd = os.open(seg.log_path, os.O_RDONLY)
        try:
            for _, header in iter_headers(fd, 0, seg.size):
                if header.attributes & DELETE_HORIZON_MASK and header.records_count > 0 and (
                        earliest == NO_TIMESTAMP or header.base_timestamp < earliest):
                    earliest = header.base_timestamp
        finally:
            os.close(fd)
    return earliest


class LogCleaner:
    """The cleaner's state across passes: the first dirty offset (the checkpoint) and the
    earliest pending delete horizon of every compacted log, the logs being cleaned, and the
    logs found uncleanable (Kafka's LogCleanerManager).

    ``run`` does whole passes in the caller's thread. To keep the caller's thread free, split
    it: ``plan`` (caller's thread) -> ``prepare`` (any thread: reads inactive segments, writes
    .cleaned files) -> ``commit`` (caller's thread: the swaps). A log stays "in progress" from
    its plan to its commit, so a second plan skips it; every planned task must be committed."""

    def __init__(self, config: CleanerConfig, checkpoints: dict[TopicPartition, int] | None = None) -> None:
        self.config = config
        self.checkpoints: dict[TopicPartition, int] = dict(checkpoints or {})
        self._delete_horizons: dict[TopicPartition, int] = {}
        self.uncleanable: set[TopicPartition] = set()
        self.in_progress: set[TopicPartition] = set()

    def run(self, logs: Iterable[PartitionLog], now_ms: int) -> int:
        """Clean every compacted log that needs it; returns how many were cleaned."""
        return self.commit(self.prepare(self.plan(logs, now_ms)))

    def clean(self, log: PartitionLog, now_ms: int, force: bool = False) -> bool:
        """One pass over ``log`` if it is compacted and dirty enough (or ``force``)."""
        return self.commit(self.prepare(self.plan([log], now_ms, force))) == 1

    def plan(self, logs: Iterable[PartitionLog], now_ms: int, force: bool = False) -> list[CleaningTask]:
        """The passes due now (Kafka's grabFilthiestCompactedLog, for every log at once)."""
        if not self.config.enabled:
            return []
        tasks = []
        for log in logs:
            tp = (log.topic, log.partition)
            if log.closed or not log.config.compact_enabled or tp in self.uncleanable or tp in self.in_progress:
                continue
            ltc = cleanable_offsets(log, self.checkpoints.get(tp), now_ms)
            if tp not in self._delete_horizons:
                self._delete_horizons[tp] = scan_delete_horizon(log)
            if force or needs_cleaning(log, ltc, self._delete_horizons[tp], now_ms):
                tasks.append(plan_cleaning(log, ltc, now_ms, self.config.max_keys))
                self.in_progress.add(tp)
        return tasks

    @staticmethod
    def prepare(tasks: list[CleaningTask]) -> list[PreparedCleaning]:
        """The heavy part of the planned passes; may run in a worker thread."""
        return prepare_cleaning(tasks)

    def commit(self, prepared: list[PreparedCleaning]) -> int:
        """Swap the prepared segments in; returns how many logs were cleaned."""
        cleaned = 0
        for p in prepared:
            log = p.task.log
            tp = (log.topic, log.partition)
            self.in_progress.discard(tp)
            try:
                commit_cleaning(p)
            except Exception as exc:  # noqa: BLE001 - one log's failure must not stop the others
                self._failed(log, p.task, exc)
                continue
            cleaned += 1
            self.checkpoints[tp] = p.upper
            self._delete_horizons[tp] = p.stats.delete_horizon
            stats = p.stats
            logger.info(
                "%s: cleaned %d segment(s) below offset %d: %d -> %d bytes, %d of %d records kept",
                log.name, stats.segments_cleaned, p.upper, stats.bytes_read, stats.bytes_written,
                stats.records_retained, stats.records_read)
        return cleaned

    def _failed(self, log: PartitionLog, task: CleaningTask, exc: Exception) -> None:
        live = log.segments
        changed = log.closed or any(all(seg is not s for s in live) for seg in task.segments)
        if changed:  # retention, DeleteRecords or a deletion got there first: try again later
            logger.info("%s: the log changed during cleaning (%s); it is cleaned at a later pass", log.name, exc)
            return
        logger.error("%s: cleaning failed; the partition is marked uncleanable", log.name, exc_info=exc)
        self.uncleanable.add((log.topic, log.partition))

    def forget(self, topic: str) -> None:
        """Drop the state of a deleted topic."""
        for state in (self.checkpoints, self._delete_horizons):
            for tp in [tp for tp in state if tp[0] == topic]:
                del state[tp]
        self.uncleanable = {tp for tp in self.uncleanable if tp[0] != topic}
        self.in_progress = {tp for tp in self.in_progress if tp[0] != topic}
