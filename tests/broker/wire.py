"""The Kafka protocol over a blocking socket, for tests that speak the wire directly."""

from __future__ import annotations

import socket
import struct

from hayase.broker.protocol.frames import encode_request


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        data += chunk
    return data


def read_frame(sock: socket.socket) -> bytes:
    """One response frame, without its size prefix."""
    (size,) = struct.unpack(">i", recv_exactly(sock, 4))
    return recv_exactly(sock, size)


def roundtrip(sock: socket.socket, frame: bytes) -> bytes:
    sock.sendall(frame)
    return read_frame(sock)


def long_poll_fetch(topic: str, max_wait_ms: int, correlation_id: int) -> bytes:
    """Fetch v12 of partition 0 from offset 0 that waits for one byte (an empty topic parks it)."""
    return encode_request(1, 12, correlation_id, "t", {
        "max_wait": max_wait_ms, "min_bytes": 1, "max_bytes": 1000, "topics": [
            {"topic": topic, "partitions": [{"partition": 0, "fetch_offset": 0,
                                             "partition_max_bytes": 1000}]}]})
