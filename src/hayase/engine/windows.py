"""Windowed keys on the wire, as Kafka Streams writes them.

Time windows (TUMBLING, HOPPING): ``key bytes + 8-byte big-endian window start``.
Session windows: ``key bytes + 8-byte end + 8-byte start``.
"""

from __future__ import annotations

import struct

_LONG = struct.Struct(">q")


def wrap(key: bytes | None, window_type: str, start: int, end: int) -> bytes:
    inner = key or b""
    if window_type.upper() == "SESSION":
        return inner + _LONG.pack(end) + _LONG.pack(start)
    return inner + _LONG.pack(start)


def unwrap(data: bytes | None, window_type: str, size_ms: int | None) -> tuple[bytes | None,
                                                                           int | None, int | None]:
    """Split a windowed key into (inner key bytes, window start, window end)."""
    if data is None:
        return None, None, None
    if window_type.upper() == "SESSION":
        if len(data) < 16:
            raise ValueError("session-windowed key shorter than 16 bytes")
        end = _LONG.unpack_from(data, len(data) - 16)[0]
        start = _LONG.unpack_from(data, len(data) - 8)[0]
        return data[:-16] or None, start, end
    if len(data) < 8:
        raise ValueError("time-windowed key shorter than 8 bytes")
    start = _LONG.unpack_from(data, len(data) - 8)[0]
    end = None if size_ms is None else start + size_ms
    return data[:-8] or None, start, end
