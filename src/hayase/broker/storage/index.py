"""Sparse offset and time indexes of one segment (Kafka's OffsetIndex and TimeIndex).

Files use Kafka's entry formats: ``.index`` holds (relativeOffset int32, position int32),
``.timeindex`` holds (timestamp int64, relativeOffset int32), big-endian.

Design choice: the entries live in memory (``array``) and are bisected there; the files are only
written, with plain ``os.write``, when the segment is flushed, rolled or closed. No mmap and no
index file descriptor stays open, so deleting a segment can never leave a mapping or a
descriptor behind. An index that was not written before a crash is rebuilt by recovery, which
always rescans the segment holding the recovery point.
"""

from __future__ import annotations

import operator
import os
import struct
import sys
from array import array
from bisect import bisect_right
from pathlib import Path

OFFSET_ENTRY = struct.Struct(">ii")
TIME_ENTRY = struct.Struct(">qi")


def _write_pending(path: Path, data: bytes, persisted_bytes: int, fsync: bool) -> None:
    """Append ``data`` at ``persisted_bytes``; the file is cut there first, dropping stale tails."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, persisted_bytes)
        if data:
            os.pwrite(fd, data, persisted_bytes)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _read_entries(path: Path, entry_size: int) -> bytes | None:
    """The index file's bytes; None when it is missing or ends in a partial entry (a torn
    write: recovery rebuilds the index from the segment)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    return None if len(raw) % entry_size else raw


class OffsetIndex:
    """Maps a relative offset to the file position of a batch at or before it."""

    def __init__(self, path: Path, base_offset: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.relative_offsets = array("i")
        self.positions = array("i")
        self._persisted = 0  # entries already in the file

    def __len__(self) -> int:
        return len(self.positions)

    def append(self, offset: int, position: int) -> None:
        self.relative_offsets.append(offset - self.base_offset)
        self.positions.append(position)

    def lookup(self, offset: int) -> int:
        """Position of the largest indexed offset <= ``offset`` (0 when none)."""
        i = bisect_right(self.relative_offsets, offset - self.base_offset)
        return self.positions[i - 1] if i else 0

    def last_entry(self) -> tuple[int, int]:
        """(absolute offset, position) of the last entry, or (base_offset, 0)."""
        if not self.positions:
            return self.base_offset, 0
        return self.base_offset + self.relative_offsets[-1], self.positions[-1]

    def truncate_to_position(self, position: int) -> None:
        """Drop entries pointing at or after ``position`` (the log was cut there)."""
        keep = bisect_right(self.positions, position - 1)
        del self.relative_offsets[keep:]
        del self.positions[keep:]
        self._persisted = min(self._persisted, keep)

    def reset(self) -> None:
        del self.relative_offsets[:]
        del self.positions[:]
        self._persisted = 0

    def persist(self, fsync: bool) -> None:
        start = self._persisted
        data = _encode(self.relative_offsets[start:], self.positions[start:], "i")
        _write_pending(self.path, data, start * OFFSET_ENTRY.size, fsync)
        self._persisted = len(self.positions)

    def load(self, log_size: int) -> bool:
        """Read the file; False (and empty) when it is missing or fails the sanity check."""
        self.reset()
        raw = _read_entries(self.path, OFFSET_ENTRY.size)
        if raw is None:
            return False
        pairs = _decode_ints(raw, "i")
        rel, pos = pairs[0::2], pairs[1::2]
        # Kafka's sanity check is about the last entry; strict growth is checked too (C-speed).
        if rel and (rel[0] < 0 or pos[0] < 0 or pos[-1] >= log_size or not _increasing(rel)
                    or not _increasing(pos)):
            return False
        self.relative_offsets, self.positions = rel, pos
        self._persisted = len(pos)
        return True


class TimeIndex:
    """Maps a timestamp to the offset where the segment's max timestamp first reached it."""

    def __init__(self, path: Path, base_offset: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.timestamps = array("q")
        self.relative_offsets = array("i")
        self._persisted = 0

    def __len__(self) -> int:
        return len(self.timestamps)

    def maybe_append(self, timestamp: int, offset: int) -> None:
        """Append only when the timestamp grows, as Kafka's TimeIndex.maybeAppend does."""
        if self.timestamps and timestamp <= self.timestamps[-1]:
            return
        self.timestamps.append(timestamp)
        self.relative_offsets.append(offset - self.base_offset)

    def lookup(self, timestamp: int) -> int:
        """Offset of the largest entry with timestamp <= ``timestamp`` (base_offset when none)."""
        i = bisect_right(self.timestamps, timestamp)
        return self.base_offset + self.relative_offsets[i - 1] if i else self.base_offset

    def last_entry(self) -> tuple[int, int] | None:
        if not self.timestamps:
            return None
        return self.timestamps[-1], self.base_offset + self.relative_offsets[-1]

    def reset(self) -> None:
        del self.timestamps[:]
        del self.relative_offsets[:]
        self._persisted = 0

    def persist(self, fsync: bool) -> None:
        start = self._persisted
        data = _encode(self.timestamps[start:], self.relative_offsets[start:], "q")
        _write_pending(self.path, data, start * TIME_ENTRY.size, fsync)
        self._persisted = len(self.timestamps)

    def load(self, max_relative_offset: int) -> bool:
        self.reset()
        raw = _read_entries(self.path, TIME_ENTRY.size)
        if raw is None:
            return False
        n = len(raw) // TIME_ENTRY.size
        values = struct.unpack(f">{'qi' * n}", raw) if n else ()
        stamps, rel = array("q", values[0::2]), array("i", values[1::2])
        if rel and (rel[0] < 0 or rel[-1] > max_relative_offset or not _increasing(stamps)
                    or not _non_decreasing(rel)):
            return False
        self.timestamps, self.relative_offsets = stamps, rel
        self._persisted = n
        return True


def _encode(first: array, second: array, first_code: str) -> bytes:
    """Big-endian (first, second int32) pairs."""
    n = len(first)
    if not n:
        return b""
    pairs = [0] * (2 * n)
    pairs[0::2] = first
    pairs[1::2] = second
    return struct.pack(f">{(first_code + 'i') * n}", *pairs)


def _decode_ints(raw: bytes, code: str) -> array:
    out = array(code)
    out.frombytes(raw)
    if sys.byteorder == "little":
        out.byteswap()
    return out


def _increasing(values: array) -> bool:
    return all(map(operator.lt, values, values[1:]))


def _non_decreasing(values: array) -> bool:
    return all(map(operator.le, values, values[1:]))
