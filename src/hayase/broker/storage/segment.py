"""One log segment: ``<base offset>.log`` with its ``.index`` and ``.timeindex`` (Kafka's LogSegment).

File handles: only the active segment keeps its ``.log`` descriptor open (for appends and tail
reads). An inactive segment opens a descriptor for the duration of one read and closes it before
returning, so retention and topic deletion can unlink files without anything still holding them,
and the number of open descriptors does not grow with the number of segments.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hayase.broker.storage.batch import (
    HEADER,
    HEADER_SIZE,
    INT32_MAX,
    LOG_OVERHEAD,
    MIN_BATCH_LENGTH,
    NO_TIMESTAMP,
    BatchHeader,
    crc_of,
    decode_records,
)
from hayase.broker.storage.errors import CorruptRecordError, KafkaStorageError, StorageError
from hayase.broker.storage.index import OffsetIndex, TimeIndex

SCAN_CHUNK = 64 * 1024
READ_CHUNK = 32 * 1024
MAX_IOVECS = 1024
RECOVERY_CHUNK = 1024 * 1024
_unpack_header = HEADER.unpack_from
_LENGTH = struct.Struct(">i")
_INT32 = _LENGTH
_PREFIX = struct.Struct(">qi")


CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"


def log_file_name(base_offset: int, suffix: str) -> str:
    return f"{base_offset:020d}{suffix}"


@dataclass(frozen=True)
class Truncation:
    """Where recovery cut a segment, and why."""

    position: int
    offset: int
    reason: str
    bytes_removed: int


class LogSegment:
    """A segment of a partition log. Not thread-safe; the owning PartitionLog serialises access."""

    def __init__(self, directory: Path, base_offset: int, index_interval_bytes: int, created_ms: int) -> None:
        self.base_offset = base_offset
        self.log_path = directory / log_file_name(base_offset, ".log")
        self.offset_index = OffsetIndex(directory / log_file_name(base_offset, ".index"), base_offset)
        self.time_index = TimeIndex(directory / log_file_name(base_offset, ".timeindex"), base_offset)
        self.index_interval_bytes = index_interval_bytes
        self.created_ms = created_ms
        self.size = 0
        self.next_offset = base_offset
        self.max_timestamp = NO_TIMESTAMP
        self.offset_of_max_timestamp = base_offset
        self.rolling_timestamp = NO_TIMESTAMP  # maxTimestamp of the first batch (Kafka's rule)
        self.roll_jitter_ms = 0
        self.fd: int | None = None
        self.fsynced = True  # False once data was written and not yet fsynced
        self._bytes_since_last_index_entry = 0

    @property
    def largest_timestamp(self) -> int:
        """Max timestamp of the segment, or its creation (file modification) time if none."""
        return self.max_timestamp if self.max_timestamp != NO_TIMESTAMP else self.created_ms

    # --- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def create(cls, directory: Path, base_offset: int, index_interval_bytes: int, now_ms: int) -> LogSegment:
        """A new, empty, active segment (an existing file of that name is emptied)."""
        seg = cls(directory, base_offset, index_interval_bytes, now_ms)
        seg.fd = os.open(seg.log_path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o644)
        for path in (seg.offset_index.path, seg.time_index.path):
            path.unlink(missing_ok=True)
        return seg

    @classmethod
    def load(
        cls, directory: Path, base_offset: int, index_interval_bytes: int, now_ms: int
    ) -> tuple[LogSegment, bool]:
        """Open an existing segment trusting its indexes; returns (segment, indexes_sane)."""
        seg = cls(directory, base_offset, index_interval_bytes, now_ms)
        st = os.stat(seg.log_path)
        seg.size = st.st_size
        ok = seg.offset_index.load(seg.size)
        if ok:
            ok = seg.time_index.load(2**31 - 1)
        if not ok:
            return seg, False
        try:
            seg._load_tail(int(st.st_mtime * 1000))
        except CorruptRecordError:
            return seg, False
        return seg, True

    def _load_tail(self, mtime_ms: int) -> None:
        """Find next offset and max timestamp by scanning from the last offset index entry."""
        _, pos = self.offset_index.last_entry()
        last = self.time_index.last_entry()
        if last is not None:
            self.max_timestamp, self.offset_of_max_timestamp = last
        with self._reader() as fd:
            if self.size >= HEADER_SIZE:
                first = BatchHeader._make(_unpack_header(os.pread(fd, HEADER_SIZE, 0), 0))
                self.rolling_timestamp = first.max_timestamp
            expected = None if pos else self.base_offset
            end = pos
            for at, header in iter_headers(fd, pos, self.size):
                # Cheap checks that catch a torn or garbage tail even with a clean marker. Offsets
                # may skip forward (a cleaned segment has gaps) but never leave the segment's range.
                if expected is not None and not self.offset_in_range(expected, header):
                    raise CorruptRecordError(f"{self.log_path}: offset jump at byte {at}")
                if at + header.batch_length + LOG_OVERHEAD > self.size or header.magic != 2:
                    raise CorruptRecordError(f"{self.log_path}: torn batch at byte {at}")
                self.next_offset = expected = header.base_offset + header.last_offset_delta + 1
                end = at + header.batch_length + LOG_OVERHEAD
                if header.max_timestamp > self.max_timestamp:
                    self.max_timestamp = header.max_timestamp
                    self.offset_of_max_timestamp = header.base_offset + header.last_offset_delta
            if end != self.size:
                raise CorruptRecordError(f"{self.log_path}: {self.size - end} stray bytes at the end")
        if self.size and self.next_offset == self.base_offset:
            raise CorruptRecordError(f"{self.log_path} holds no whole batch")
        if self.max_timestamp == NO_TIMESTAMP:
            self.created_ms = mtime_ms

    def offset_in_range(self, next_offset: int, header: BatchHeader, limit: int | None = None) -> bool:
        """A batch may follow at ``next_offset`` or later (compaction leaves gaps), but its offsets
        must stay within the segment: relative offsets fit an int32, below ``limit`` (the next
        segment's base offset) when known."""
        last = header.base_offset + header.last_offset_delta
        if header.base_offset < next_offset or last - self.base_offset > INT32_MAX:
            return False
        return limit is None or last < limit

    @classmethod
    def create_cleaned(cls, directory: Path, base_offset: int, index_interval_bytes: int, created_ms: int) -> LogSegment:
        """A new segment for the log cleaner, written as ``<base>.log.cleaned`` (and
        ``.index.cleaned``, ``.timeindex.cleaned``) until it is swapped in (Kafka's names)."""
        seg = cls(directory, base_offset, index_interval_bytes, created_ms)
        seg.set_paths(CLEANED_SUFFIX)
        for path in seg.file_paths():
            path.unlink(missing_ok=True)
        seg.fd = os.open(seg.log_path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o644)
        return seg

    def file_paths(self) -> tuple[Path, Path, Path]:
        """The .index, .timeindex and .log files, in the order a suffix change renames them."""
        return self.offset_index.path, self.time_index.path, self.log_path

    def set_paths(self, suffix: str) -> None:
        directory = self.log_path.parent
        self.log_path = directory / (log_file_name(self.base_offset, ".log") + suffix)
        self.offset_index.path = directory / (log_file_name(self.base_offset, ".index") + suffix)
        self.time_index.path = directory / (log_file_name(self.base_offset, ".timeindex") + suffix)

    def change_file_suffix(self, suffix: str) -> None:
        """Rename the closed segment's files to the names ending in ``suffix`` ("" = the plain
        names, replacing files of that name). The .log goes last: its name is the commit point."""
        if self.fd is not None:
            raise StorageError(f"segment {self.log_path} is open; close it before renaming")
        directory = self.log_path.parent
        index, timeindex, log = (directory / (log_file_name(self.base_offset, ext) + suffix)
                                 for ext in (".index", ".timeindex", ".log"))
        # Each path follows its own rename, so a failure half-way leaves every path true.
        _replace_or_clear(self.offset_index.path, index)
        self.offset_index.path = index
        _replace_or_clear(self.time_index.path, timeindex)
        self.time_index.path = timeindex
        os.replace(self.log_path, log)
        self.log_path = log

    def set_last_modified(self, ms: int) -> None:
        """Give the .log file this modification time (the cleaner keeps the replaced segments'
        time, as Kafka does, so time-based decisions about an empty segment stay the same)."""
        self.created_ms = ms
        if ms > 0:
            os.utime(self.log_path, ns=(ms * 1_000_000, ms * 1_000_000))

    def open_for_append(self) -> None:
        if self.fd is None:
            self.fd = os.open(self.log_path, os.O_RDWR | os.O_APPEND)

    def become_inactive(self, fsync: bool) -> None:
        """On roll: write the final time index entry (the true max), persist indexes, close."""
        if self.max_timestamp != NO_TIMESTAMP:
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
        self.flush(fsync)
        self.close()

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)

    def delete(self) -> None:
        """Close and remove the three files, at once."""
        self.close()
        for path in (self.log_path, self.offset_index.path, self.time_index.path):
            path.unlink(missing_ok=True)

    def flush(self, fsync: bool = True) -> None:
        """Write pending index entries; fsync data and indexes when ``fsync``."""
        self.offset_index.persist(fsync)
        self.time_index.persist(fsync)
        if fsync and not self.fsynced:
            with self._reader() as fd:
                os.fsync(fd)
            self.fsynced = True

    @contextlib.contextmanager
    def _reader(self) -> Iterator[int]:
        if self.fd is not None:
            yield self.fd
            return
        fd = os.open(self.log_path, os.O_RDONLY)
        try:
            yield fd
        finally:
            os.close(fd)

    # --- append ------------------------------------------------------------------------------

    def append(self, pieces: list[bytes | memoryview], total: int, batches: list[tuple[int, int, int]]) -> None:
        """Write ``pieces`` (``total`` bytes) at the end. ``batches`` = (last offset, max
        timestamp, size) of each batch, in order, for the indexes."""
        fd = self.fd
        if fd is None:
            raise StorageError(f"segment {self.log_path} is not open for append")
        if len(pieces) > MAX_IOVECS:  # writev takes at most IOV_MAX (1024) buffers
            pieces = [b"".join(pieces)]
        try:
            written = os.writev(fd, pieces)
        except OSError as exc:
            self._undo_write(fd)
            raise KafkaStorageError(f"write to {self.log_path} failed: {exc}") from exc
        if written != total:
            self._undo_write(fd)
            raise KafkaStorageError(f"short write to {self.log_path}: {written} of {total} bytes")
        position = self.size
        for last_offset, max_ts, size in batches:
            self._account(position, last_offset, max_ts, size)
            position += size
        self.size = position
        self.fsynced = False

    def _undo_write(self, fd: int) -> None:
        """Cut a failed append back off, so nothing half-written stays in the log."""
        with contextlib.suppress(OSError):
            os.ftruncate(fd, self.size)

    def _account(self, position: int, last_offset: int, max_ts: int, size: int) -> None:
        if self.rolling_timestamp == NO_TIMESTAMP and position == 0:
            self.rolling_timestamp = max_ts
        if max_ts > self.max_timestamp:
            self.max_timestamp = max_ts
            self.offset_of_max_timestamp = last_offset
        if self._bytes_since_last_index_entry > self.index_interval_bytes:
            self.offset_index.append(last_offset, position)
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self._bytes_since_last_index_entry = 0
        self._bytes_since_last_index_entry += size
        self.next_offset = last_offset + 1

    # --- read --------------------------------------------------------------------------------

    def read(self, offset: int, max_bytes: int) -> bytes:
        """Whole batches from the one holding ``offset``: at least one, then up to max_bytes."""
        fd = self.fd
        if fd is not None:
            return self._read(fd, offset, max_bytes)
        fd = os.open(self.log_path, os.O_RDONLY)
        try:
            return self._read(fd, offset, max_bytes)
        finally:
            os.close(fd)

    def _read(self, fd: int, offset: int, max_bytes: int) -> bytes:
        # One pread usually serves a tail read: the chunk that finds the batch also holds it.
        pos = self.offset_index.lookup(offset)
        end = self.size
        while pos + HEADER_SIZE <= end:
            buf = os.pread(fd, min(end - pos, READ_CHUNK), pos)
            blen = len(buf)
            off = 0
            while off + HEADER_SIZE <= blen:
                base, length = _PREFIX.unpack_from(buf, off)
                if length < MIN_BATCH_LENGTH:
                    raise CorruptRecordError(f"bad batchLength {length} at byte {pos + off} of {self.log_path}")
                size = length + LOG_OVERHEAD
                if base + _INT32.unpack_from(buf, off + 23)[0] >= offset:
                    remaining = end - pos - off
                    want = min(remaining, max(max_bytes, size))
                    if off + want <= blen:
                        data = buf[off : off + want] if off or want < blen else buf
                    else:
                        data = os.pread(fd, want, pos + off)
                    if want == remaining:
                        return data  # the segment ends on a batch boundary: nothing to trim
                    return data[: whole_batches_length(data)]
                off += size
            if off == 0:
                break
            pos += off
        return b""

    def find_offset_by_timestamp(self, timestamp: int, start_offset: int) -> tuple[int, int] | None:
        """First (offset, timestamp) at/after ``start_offset`` with timestamp >= ``timestamp``."""
        if self.max_timestamp < timestamp:
            return None
        offset = max(self.time_index.lookup(timestamp), start_offset)
        with self._reader() as fd:
            for pos, header in iter_headers(fd, self.offset_index.lookup(offset), self.size):
                if header.max_timestamp < timestamp or header.last_offset < start_offset:
                    continue
                if header.is_log_append_time:
                    return max(header.base_offset, start_offset), header.max_timestamp
                batch = os.pread(fd, header.size, pos)
                for record in decode_records(batch):
                    if record.timestamp >= timestamp and record.offset >= start_offset:
                        return record.offset, record.timestamp
        return None

    # --- recovery ----------------------------------------------------------------------------

    def recover(self, limit: int | None = None) -> Truncation | None:
        """Validate every batch (CRC, magic, length, increasing offsets within the segment's range,
        below ``limit`` when given), rebuild both indexes, and truncate the file at the first
        invalid byte. Returns where it cut, if it did."""
        self.offset_index.reset()
        self.time_index.reset()
        self.max_timestamp = NO_TIMESTAMP
        self.offset_of_max_timestamp = self.base_offset
        self.rolling_timestamp = NO_TIMESTAMP
        self._bytes_since_last_index_entry = 0
        self.size = 0
        self.next_offset = self.base_offset
        fd = os.open(self.log_path, os.O_RDWR)
        try:
            file_size = os.fstat(fd).st_size
            reason = _scan_valid(self, fd, file_size, limit)
            if reason is None:
                return None
            os.ftruncate(fd, self.size)
            os.fsync(fd)
            return Truncation(self.size, self.next_offset, reason, file_size - self.size)
        finally:
            os.close(fd)


def _replace_or_clear(src: Path, dst: Path) -> None:
    """Rename an index file; when it was never written, remove a stale file of the new name."""
    if src == dst:
        return
    try:
        os.replace(src, dst)
    except FileNotFoundError:
        dst.unlink(missing_ok=True)


def _scan_valid(seg: LogSegment, fd: int, file_size: int, limit: int | None) -> str | None:
    """Advance seg.size/next_offset over valid batches; return why it stopped early, or None."""
    buf = b""
    buf_pos = 0
    pos = 0
    while pos < file_size:
        if file_size - pos < HEADER_SIZE:
            return f"torn batch header ({file_size - pos} bytes at the end)"
        if pos - buf_pos + HEADER_SIZE > len(buf):
            buf, buf_pos = os.pread(fd, RECOVERY_CHUNK, pos), pos
        header = BatchHeader._make(_unpack_header(buf, pos - buf_pos))
        if header.magic != 2:
            return f"magic {header.magic}"
        if header.batch_length < MIN_BATCH_LENGTH:
            return f"batchLength {header.batch_length}"
        size = header.batch_length + LOG_OVERHEAD
        if pos + size > file_size:
            return f"torn batch ({size} bytes declared, {file_size - pos} present)"
        if pos - buf_pos + size > len(buf):
            if size > RECOVERY_CHUNK:
                buf, buf_pos = os.pread(fd, size, pos), pos
            else:
                buf, buf_pos = os.pread(fd, RECOVERY_CHUNK, pos), pos
        if crc_of(buf, pos - buf_pos, size) != header.crc:
            return "CRC-32C mismatch"
        if not seg.offset_in_range(seg.next_offset, header, limit):
            return f"base offset {header.base_offset}, expected {seg.next_offset} or a later one in the segment"
        if header.last_offset_delta < 0 or header.partition_leader_epoch < -1:
            return "invalid offset delta or leader epoch"
        seg._account(pos, header.base_offset + header.last_offset_delta, header.max_timestamp, size)
        pos += size
        seg.size = pos
    return None


def iter_headers(fd: int, start: int, end: int) -> Iterator[tuple[int, BatchHeader]]:
    """Batch headers from ``start`` to ``end``, reading the file in chunks; skips batch bodies."""
    pos = start
    buf = b""
    buf_pos = start
    while pos + HEADER_SIZE <= end:
        off = pos - buf_pos
        if off + HEADER_SIZE > len(buf):
            buf = os.pread(fd, min(SCAN_CHUNK, end - pos), pos)
            buf_pos, off = pos, 0
            if len(buf) < HEADER_SIZE:
                return
        header = BatchHeader._make(_unpack_header(buf, off))
        if header.batch_length < MIN_BATCH_LENGTH:
            raise CorruptRecordError(f"bad batchLength {header.batch_length} at byte {pos}")
        yield pos, header
        pos += header.batch_length + LOG_OVERHEAD


def whole_batches_length(data: bytes) -> int:
    """Length of the prefix of ``data`` made of whole batches."""
    pos = 0
    n = len(data)
    while pos + LOG_OVERHEAD <= n:
        (length,) = _LENGTH.unpack_from(data, pos + 8)
        if pos + LOG_OVERHEAD + length > n:
            break
        pos += LOG_OVERHEAD + length
    return pos
