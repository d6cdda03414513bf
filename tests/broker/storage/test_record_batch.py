import struct

import pytest
from storage_helpers import batch

from hayase.broker.storage import (
    CorruptRecordError,
    Record,
    build_batch,
    decode_records,
    iter_batches,
)
from hayase.broker.storage.batch import (
    HEADER_SIZE,
    increment_sequence,
    max_timestamp,
    parse_header,
    patch_base_offset,
    read_varint,
    validate_batch,
    write_varint,
)


def test_build_and_parse_header() -> None:
    data = build_batch(
        [Record(b"a", b"1", [("h", b"x")], 1000), Record(None, None, [], 1005)],
        producer_id=7, producer_epoch=2, base_sequence=40,
    )
    h = validate_batch(data)
    assert (h.magic, h.records_count, h.last_offset_delta) == (2, 2, 1)
    assert (h.base_timestamp, h.max_timestamp) == (1000, 1005)
    assert (h.producer_id, h.producer_epoch, h.base_sequence, h.last_sequence) == (7, 2, 40, 41)
    assert h.size == len(data)
    records = decode_records(data)
    assert [(r.key, r.value, r.headers, r.timestamp, r.offset) for r in records] == [
        (b"a", b"1", [("h", b"x")], 1000, 0),
        (None, None, [], 1005, 1),
    ]


def test_base_offset_patch_keeps_crc_valid() -> None:
    data = bytearray(batch(3))
    patch_base_offset(data, 0, 123456)
    h = validate_batch(bytes(data))
    assert h.base_offset == 123456 and h.last_offset == 123458
    assert [r.offset for r in decode_records(bytes(data))] == [123456, 123457, 123458]


def test_flipped_byte_fails_crc() -> None:
    data = bytearray(batch(3))
    data[HEADER_SIZE + 5] ^= 0x01
    with pytest.raises(CorruptRecordError, match="CRC"):
        validate_batch(bytes(data))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.__setitem__(16, 1), "magic"),
        (lambda d: struct.pack_into(">i", d, 8, 10), "batchLength"),
        (lambda d: struct.pack_into(">i", d, 8, len(d)), "needs"),
    ],
)
def test_bad_framing_rejected(mutate, message) -> None:
    data = bytearray(batch(2))
    mutate(data)
    with pytest.raises(CorruptRecordError, match=message):
        validate_batch(bytes(data))


def test_truncated_header_rejected() -> None:
    with pytest.raises(CorruptRecordError):
        parse_header(batch(1)[:30])


def test_iter_batches_and_max_timestamp() -> None:
    data = batch(2, ts=50) + batch(1, ts=90) + batch(3, ts=70)
    positions = [pos for pos, _ in iter_batches(data)]
    assert positions[0] == 0 and len(positions) == 3
    assert max_timestamp(data) == 90
    with pytest.raises(CorruptRecordError):
        list(iter_batches(data[:-1]))


@pytest.mark.parametrize("value", [0, 1, -1, 63, -64, 64, 300, -300, 2**31 - 1, -(2**31), 2**62, -(2**63)])
def test_varint_round_trip(value: int) -> None:
    out = bytearray()
    write_varint(out, value)
    assert read_varint(bytes(out), 0) == (value, len(out))


def test_sequence_wraps_like_kafka() -> None:
    assert increment_sequence(5, 3) == 8
    assert increment_sequence(2**31 - 1, 1) == 0
    assert increment_sequence(2**31 - 2, 3) == 1
    assert increment_sequence(-1, 3) == -1


def _compress(codec: int, body: bytes) -> bytes:
    import gzip

    import cramjam

    if codec == 1:
        return gzip.compress(body)
    if codec == 2:
        return bytes(cramjam.snappy.compress_raw(body))
    if codec == 3:
        return bytes(cramjam.lz4.compress(body))
    if codec == 4:
        return bytes(cramjam.zstd.compress(body))
    # xerial-framed snappy, as the Java client writes it (attributes still say snappy)
    raw = bytes(cramjam.snappy.compress_raw(body))
    return b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1) + struct.pack(">i", len(raw)) + raw


@pytest.mark.parametrize("codec", [1, 2, 3, 4, 5])
def test_compressed_batch_decodes(codec: int) -> None:
    import google_crc32c

    plain = build_batch([Record(b"k", b"v" * 20, [], 5), Record(b"k2", b"w", [], 9)])
    body = _compress(codec, plain[HEADER_SIZE:])
    header = bytearray(plain[:HEADER_SIZE])
    attribute = 2 if codec == 5 else codec  # 5 = snappy in xerial framing
    struct.pack_into(">h", header, 21, attribute)
    struct.pack_into(">i", header, 8, HEADER_SIZE - 12 + len(body))
    data = bytearray(header + body)
    struct.pack_into(">I", data, 17, google_crc32c.value(bytes(data[21:])))
    h = validate_batch(bytes(data))
    assert h.compression == attribute
    assert [(r.value, r.timestamp) for r in decode_records(bytes(data))] == [(b"v" * 20, 5), (b"w", 9)]
