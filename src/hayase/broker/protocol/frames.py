"""Kafka framing: size-prefixed frames, request headers v1/v2, response headers v0/v1.

Sans-IO: functions over bytes. The server reads a 4-byte big-endian size, then that many bytes,
and hands the frame to `parse_request`; responses come back from `encode_response` with their
size prefix already in place.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache
from typing import Any

from kio.index import load_request_schema, load_response_schema

from hayase.broker.protocol.schema_codec import (
    DecodeError,
    decode,
    encode,
    entity_writer,
    read_uvarint,
)
from hayase.broker.protocol.versions import ApiKey

_HEADER = struct.Struct(">hhi")
_SIZE = struct.Struct(">i")
_CORRELATION = struct.Struct(">i")


class UnsupportedVersionError(Exception):
    """The request names an API key or version this broker does not serve."""

    def __init__(self, header: RequestHeader) -> None:
        super().__init__(f"unsupported api_key={header.api_key} api_version={header.api_version}")
        self.header = header


@dataclass(frozen=True, slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


@dataclass(frozen=True, slots=True)
class Request:
    header: RequestHeader
    body: Any  # the kio request entity of that API and version


@cache
def request_schema(api_key: int, version: int) -> type:
    return load_request_schema(api_key, version)  # type: ignore[return-value]


@cache
def response_schema(api_key: int, version: int) -> type:
    return load_response_schema(api_key, version)  # type: ignore[return-value]


@cache
def response_header_flexible(api_key: int, version: int) -> bool:
    """Response header v1 (with tags) for flexible responses, except ApiVersions (always v0)."""
    if api_key == ApiKey.API_VERSIONS:
        return False
    return bool(response_schema(api_key, version).__flexible__)  # type: ignore[attr-defined]


def parse_header(frame: bytes) -> tuple[RequestHeader, int]:
    """Header v1 fields (v2 tags are handled by parse_request, which knows the version)."""
    if len(frame) < 10:
        raise DecodeError(f"frame of {len(frame)} bytes is shorter than a request header")
    api_key, api_version, correlation_id = _HEADER.unpack_from(frame, 0)
    (n,) = struct.unpack_from(">h", frame, 8)
    pos = 10
    client_id: str | None = None
    if n >= 0:
        if pos + n > len(frame):
            raise DecodeError("client_id runs past the end of the frame")
        try:
            client_id = frame[pos:pos + n].decode()
        except UnicodeDecodeError as e:
            raise DecodeError("client_id is not UTF-8") from e
        pos += n
    elif n != -1:
        raise DecodeError(f"bad client_id length {n}")
    return RequestHeader(api_key, api_version, correlation_id, client_id), pos


def parse_request(frame: bytes, supported: dict[int, tuple[int, int]]) -> Request:
    """Decode one request frame (without its size prefix).

    Raises UnsupportedVersionError (header attached) when the API or version is not served,
    DecodeError when the bytes are malformed.
    """
    header, pos = parse_header(frame)
    rng = supported.get(header.api_key)
    if rng is None or not rng[0] <= header.api_version <= rng[1]:
        raise UnsupportedVersionError(header)
    schema = request_schema(header.api_key, header.api_version)
    if schema.__flexible__:  # type: ignore[attr-defined]
        pos = _skip_tags(frame, pos)
    # Not kio's native reader, although several times faster: it aborts the whole process
    # (Rust allocation failure) on a frame whose array length is huge, found by fuzzing.
    body, _end = decode(schema, frame, pos)
    # Trailing bytes after a complete body are tolerated (Kafka ignores them too).
    return Request(header, body)


def _skip_tags(frame: bytes, pos: int) -> int:
    count, pos = read_uvarint(frame, pos)
    for _ in range(count):
        _tag, pos = read_uvarint(frame, pos)
        size, pos = read_uvarint(frame, pos)
        pos += size
        if pos > len(frame):
            raise DecodeError("request header tagged field runs past the frame")
    return pos


def encode_response(api_key: int, version: int, correlation_id: int, body: Any) -> bytes:
    """Size prefix + response header + body, for a body given as a dict tree or kio entity."""
    out: list[bytes] = [b"", _CORRELATION.pack(correlation_id)]
    if response_header_flexible(api_key, version):
        out.append(b"\x00")
    entity_writer(response_schema(api_key, version))(out, body)
    size = sum(map(len, out))
    out[0] = _SIZE.pack(size)
    return b"".join(out)


def encode_raw_response(api_key: int, version: int, correlation_id: int, body: bytes) -> bytes:
    """Like encode_response for a body already serialised (hand-written hot paths)."""
    head = _CORRELATION.pack(correlation_id)
    if response_header_flexible(api_key, version):
        head += b"\x00"
    return _SIZE.pack(len(head) + len(body)) + head + body


def api_versions_body(supported: dict[int, tuple[int, int]], error_code: int = 0) -> dict[str, Any]:
    return {
        "error_code": error_code,
        "api_keys": [
            {"api_key": k, "min_version": lo, "max_version": hi}
            for k, (lo, hi) in sorted(supported.items())
        ],
        "throttle_time": 0,
    }


def api_versions_fallback(correlation_id: int, supported: dict[int, tuple[int, int]]) -> bytes:
    """The answer to an ApiVersions request of a version we do not serve (KIP-511): error 35
    UNSUPPORTED_VERSION in the v0 body format, with our version list, so that the client can
    retry with a version we both know (librdkafka and kafka-python rely on it)."""
    return encode_response(ApiKey.API_VERSIONS, 0, correlation_id,
                           api_versions_body(supported, error_code=35))


def encode_request(api_key: int, version: int, correlation_id: int, client_id: str | None,
                   body: Any) -> bytes:
    """A size-prefixed request frame: used by tests and by tools that talk to the broker."""
    schema = request_schema(api_key, version)
    head = _HEADER.pack(api_key, version, correlation_id)
    if client_id is None:
        head += struct.pack(">h", -1)
    else:
        raw = client_id.encode()
        head += struct.pack(">h", len(raw)) + raw
    if schema.__flexible__:  # type: ignore[attr-defined]
        head += b"\x00"
    payload = head + encode(schema, body)
    return _SIZE.pack(len(payload)) + payload


def decode_response(api_key: int, version: int, frame: bytes) -> tuple[int, Any]:
    """(correlation_id, kio response entity) from a response frame without its size prefix."""
    (correlation_id,) = _CORRELATION.unpack_from(frame, 0)
    pos = 4
    if response_header_flexible(api_key, version):
        pos = _skip_tags(frame, pos)
    body, _ = decode(response_schema(api_key, version), frame, pos)
    return correlation_id, body
