"""Framing: request headers v1/v2, response headers v0/v1, the ApiVersions fallback."""

from __future__ import annotations

import struct

import pytest
from kio.index import load_response_schema
from kio.serial import entity_reader as kio_reader

from hayase.broker.protocol.frames import (
    UnsupportedVersionError,
    api_versions_fallback,
    decode_response,
    encode_request,
    encode_response,
    parse_request,
)
from hayase.broker.protocol.schema_codec import DecodeError
from hayase.broker.protocol.versions import CORE_API_VERSIONS

SUPPORTED = dict(CORE_API_VERSIONS)


def test_request_header_v1_for_non_flexible_request() -> None:
    frame = encode_request(3, 4, 77, "client-a", {"topics": None})[4:]
    req = parse_request(frame, SUPPORTED)
    assert (req.header.api_key, req.header.api_version) == (3, 4)
    assert req.header.correlation_id == 77
    assert req.header.client_id == "client-a"
    assert req.body.topics is None


def test_request_header_v2_keeps_int16_client_id_and_skips_header_tags() -> None:
    frame = bytearray(encode_request(3, 12, 5, "cid", {"topics": []})[4:])
    # header: api_key, version, correlation id, int16-length client id, then the tag section
    tag_pos = 8 + 2 + 3
    assert frame[tag_pos] == 0
    frame[tag_pos:tag_pos + 1] = bytes([1, 7, 3]) + b"abc"  # one unknown header tag
    req = parse_request(bytes(frame), SUPPORTED)
    assert req.header.client_id == "cid"
    assert req.body.topics == ()


def test_null_client_id() -> None:
    req = parse_request(encode_request(18, 0, 1, None, {})[4:], SUPPORTED)
    assert req.header.client_id is None


def test_unsupported_version_carries_the_header() -> None:
    frame = encode_request(18, 3, 9, "x", {})[4:]
    frame = frame[:2] + struct.pack(">h", 99) + frame[4:]
    with pytest.raises(UnsupportedVersionError) as info:
        parse_request(frame, SUPPORTED)
    assert info.value.header.correlation_id == 9
    assert info.value.header.api_version == 99


def test_api_versions_fallback_is_v0_body_with_error_35_and_our_list() -> None:
    frame = api_versions_fallback(42, SUPPORTED)
    (size,) = struct.unpack_from(">i", frame)
    assert size == len(frame) - 4
    body = frame[4:]
    assert struct.unpack_from(">ih", body) == (42, 35)  # header v0, then error_code
    (count,) = struct.unpack_from(">i", body, 6)
    assert count == len(SUPPORTED)
    entries = [struct.unpack_from(">hhh", body, 10 + 6 * i) for i in range(count)]
    assert (18, 0, 3) in entries
    assert (0, 3, 9) in entries
    assert len(body) == 10 + 6 * count  # v0 has no throttle time and no tags


def test_api_versions_v3_response_uses_header_v0() -> None:
    frame = encode_response(18, 3, 7, {"error_code": 0, "api_keys": [
        {"api_key": 18, "min_version": 0, "max_version": 3}]})
    body = frame[8:]  # size + correlation id, no header tag byte
    entity, size = kio_reader(load_response_schema(18, 3))(body, 0)
    assert size == len(body)
    assert entity.api_keys[0].max_version == 3


def test_flexible_response_has_header_v1() -> None:
    frame = encode_response(3, 12, 7, {"brokers": [], "topics": []})
    assert frame[8] == 0  # empty header tag section
    corr, body = decode_response(3, 12, frame[4:])
    assert corr == 7
    assert body.topics == ()


def test_non_flexible_response_has_header_v0() -> None:
    frame = encode_response(3, 8, 7, {"brokers": [], "topics": []})
    corr, body = decode_response(3, 8, frame[4:])
    assert corr == 7
    assert body.brokers == ()


@pytest.mark.parametrize("frame", [b"", b"\x00\x03", b"\x00\x03\x00\x00\x00\x00\x00\x01\x00"])
def test_short_header_is_a_decode_error(frame: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_request(frame, SUPPORTED)


def test_client_id_longer_than_frame_is_a_decode_error() -> None:
    frame = struct.pack(">hhih", 18, 0, 1, 500) + b"abc"
    with pytest.raises(DecodeError):
        parse_request(frame, SUPPORTED)
