import os
import struct
from pathlib import Path

import pytest
from storage_helpers import NOW, batch, open_log, read_all, topic_config

from hayase.broker.storage import (
    CorruptRecordError,
    InvalidRecordError,
    InvalidTimestampError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    decode_records,
    iter_batches,
)
from hayase.broker.storage.batch import HEADER_SIZE


def test_append_assigns_contiguous_offsets(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    r1 = log.append(batch(3), NOW)
    r2 = log.append(batch(1), NOW)
    assert (r1.base_offset, r1.last_offset, r1.duplicate) == (0, 2, False)
    assert (r2.base_offset, r2.last_offset) == (3, 3)
    assert r1.log_append_time == -1 and r1.log_start_offset == 0
    assert log.high_watermark == 4
    assert [o for o, _ in read_all(log)] == [0, 1, 2, 3]
    log.close()


def test_multiple_batches_in_one_append(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    r = log.append(batch(2) + batch(3) + batch(1), NOW)
    assert (r.base_offset, r.last_offset) == (0, 5)
    data = log.read(0, 1 << 20).records
    assert [h.base_offset for _, h in iter_batches(data)] == [0, 2, 5]
    log.close()


def test_read_returns_whole_batches_stored_bytes(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    sent = batch([b"hello", b"world"])
    log.append(sent, NOW)
    log.append(batch(1), NOW)
    data = log.read(1, 1 << 20).records  # offset 1 lives in the first batch
    first = data[: len(sent)]
    # Only baseOffset and partitionLeaderEpoch differ from what the producer sent.
    assert first[16:] == sent[16:] and struct.unpack_from(">q", first)[0] == 0
    assert [r.value for r in decode_records(first)] == [b"hello", b"world"]
    log.close()


def test_max_bytes_semantics(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    sizes = []
    for i in range(10):
        b = batch(1, size=100 + i)
        sizes.append(len(b))
        log.append(b, NOW)
    # Smaller than one batch: still exactly one whole batch.
    one = log.read(0, 1).records
    assert len(one) == sizes[0] and len(list(iter_batches(one))) == 1
    # Room for two and a half batches: two whole batches.
    two = log.read(0, sizes[0] + sizes[1] + sizes[2] // 2).records
    assert len(two) == sizes[0] + sizes[1]
    # Exactly three batches fit.
    three = log.read(0, sum(sizes[:3])).records
    assert len(three) == sum(sizes[:3])
    # The end of the log ends the read.
    assert len(log.read(5, 1 << 20).records) == sum(sizes[5:])
    log.close()


def test_read_bounds(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append(batch(2), NOW)
    at_end = log.read(2, 100)
    assert (at_end.records, at_end.high_watermark, at_end.last_stable_offset) == (b"", 2, 2)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(3, 100)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(-1, 100)
    log.close()


def test_corrupt_append_is_rejected_and_nothing_written(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append(batch(1), NOW)
    good = batch(2)
    bad = bytearray(good)
    bad[HEADER_SIZE + 3] ^= 0xFF
    with pytest.raises(CorruptRecordError) as err:
        log.append(batch(1) + bytes(bad), NOW)
    assert err.value.error_code == 2
    with pytest.raises(CorruptRecordError):
        log.append(good[:-1], NOW)
    with pytest.raises(CorruptRecordError):
        log.append(good + b"xx", NOW)
    assert log.high_watermark == 1 and log.size_bytes() == len(batch(1))
    log.close()


def test_count_mismatch_is_invalid_record(tmp_path: Path) -> None:
    import google_crc32c

    data = bytearray(batch(2))
    struct.pack_into(">i", data, 57, 5)  # recordsCount
    struct.pack_into(">I", data, 17, google_crc32c.value(bytes(data[21:])))
    log = open_log(tmp_path)
    with pytest.raises(InvalidRecordError):
        log.append(bytes(data), NOW)
    log.close()


def test_max_message_bytes(tmp_path: Path) -> None:
    log = open_log(tmp_path, topic_config(max_message_bytes=200))
    log.append(batch(1, size=50), NOW)
    with pytest.raises(RecordTooLargeError) as err:
        log.append(batch(1, size=300), NOW)
    assert err.value.error_code == 10
    log.close()


def test_timestamp_after_max_ms(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append(batch(1, ts=NOW + 3_000_000), NOW)
    with pytest.raises(InvalidTimestampError):
        log.append(batch(1, ts=NOW + 3_700_000), NOW)
    log.close()


def test_log_append_time(tmp_path: Path) -> None:
    log = open_log(tmp_path, topic_config(message_timestamp_type="LogAppendTime"))
    r = log.append(batch(2, ts=5), NOW + 7)
    assert r.log_append_time == NOW + 7
    data = log.read(0, 1000).records
    (_, h), = list(iter_batches(data))  # validates the recomputed CRC
    assert h.is_log_append_time and h.max_timestamp == NOW + 7
    assert {rec.timestamp for rec in decode_records(data)} == {NOW + 7}
    assert log.offset_for_timestamp(NOW) == (0, NOW + 7)
    log.close()


def test_roll_by_size_and_lookup_after_many_rolls(tmp_path: Path) -> None:
    log = open_log(tmp_path, topic_config(segment_bytes=1000, index_interval_bytes=100), flush_on_roll=False)
    expected = []
    for i in range(400):
        n = 1 + i % 4
        values = [b"%d-%d" % (i, j) for j in range(n)]
        r = log.append(batch(values, ts=NOW + i), NOW + i)
        expected += list(zip(range(r.base_offset, r.last_offset + 1), values, strict=True))
    assert len(log.segments) > 30
    assert all(seg.size <= 1000 for seg in log.segments)
    assert sum(len(s.offset_index) for s in log.segments) > len(log.segments)  # sparse, but present
    assert read_all(log) == expected
    for offset in range(0, log.high_watermark, 7):  # every lookup lands on the batch holding it
        data = log.read(offset, 1).records
        (_, h), = list(iter_batches(data))
        assert h.base_offset <= offset <= h.last_offset
    names = sorted(os.listdir(tmp_path))
    assert "00000000000000000000.log" in names and "00000000000000000000.index" in names
    log.close()


def test_roll_by_segment_ms(tmp_path: Path) -> None:
    log = open_log(tmp_path, topic_config(segment_ms=1000))
    log.append(batch(1, ts=NOW), NOW)
    log.append(batch(1, ts=NOW + 1000), NOW + 1000)  # waited exactly segment.ms: no roll
    assert len(log.segments) == 1
    log.append(batch(1, ts=NOW + 1001), NOW + 1001)
    assert [s.base_offset for s in log.segments] == [0, 2]
    log.close()


def test_offset_for_timestamp(tmp_path: Path) -> None:
    log = open_log(tmp_path, topic_config(segment_bytes=600, index_interval_bytes=50))
    for i in range(60):
        log.append(batch([b"a", b"b"], ts=NOW + 10 * i), NOW + 10 * i)
    assert len(log.segments) > 3
    assert log.offset_for_timestamp(0) == (0, NOW)
    assert log.offset_for_timestamp(NOW + 10 * 17) == (34, NOW + 170)
    assert log.offset_for_timestamp(NOW + 10 * 17 - 3) == (34, NOW + 170)
    assert log.offset_for_timestamp(NOW + 10 * 59) == (118, NOW + 590)
    assert log.offset_for_timestamp(NOW + 10 * 59 + 1) is None
    assert log.max_timestamp_and_offset() == (NOW + 590, 119)
    log.close()


def test_offset_for_timestamp_inside_batch(tmp_path: Path) -> None:
    from hayase.broker.storage import Record, build_batch

    log = open_log(tmp_path)
    log.append(build_batch([Record(None, b"x", [], NOW + d) for d in (0, 5, 3, 9)]), NOW)
    assert log.offset_for_timestamp(NOW + 4) == (1, NOW + 5)
    assert log.offset_for_timestamp(NOW + 6) == (3, NOW + 9)
    log.close()


def test_leader_epoch_is_stamped(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append(batch(1), NOW)
    data = log.read(0, 100).records
    (_, h), = list(iter_batches(data))
    assert h.partition_leader_epoch == 0
    log.close()


def test_many_batches_in_one_append(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    r = log.append(b"".join(batch(1) for _ in range(700)), NOW)  # 1400 buffers > IOV_MAX
    assert (r.base_offset, r.last_offset) == (0, 699)
    assert len(read_all(log)) == 700
    log.close()


def test_failed_write_leaves_nothing_behind(tmp_path: Path, monkeypatch) -> None:
    from hayase.broker.storage import KafkaStorageError

    log = open_log(tmp_path)
    log.append(batch(1), NOW)
    size = log.size_bytes()
    real_writev = os.writev

    def half_writev(fd: int, pieces) -> int:
        data = b"".join(bytes(p) for p in pieces)
        return real_writev(fd, [data[: len(data) // 2]])

    monkeypatch.setattr(os, "writev", half_writev)
    with pytest.raises(KafkaStorageError) as err:
        log.append(batch(3), NOW)
    assert err.value.error_code == 56
    monkeypatch.undo()
    assert (tmp_path / f"{0:020d}.log").stat().st_size == size
    assert log.append(batch(2), NOW).base_offset == 1
    assert [o for o, _ in read_all(log)] == [0, 1, 2]
    log.close()


def test_closed_log_answers_unknown_partition(tmp_path: Path) -> None:
    from hayase.broker.storage import UnknownTopicOrPartitionError

    log = open_log(tmp_path)
    log.append(batch(1), NOW)
    log.close()
    with pytest.raises(UnknownTopicOrPartitionError):
        log.append(batch(1), NOW)
    with pytest.raises(UnknownTopicOrPartitionError):
        log.read(0, 100)
    log.flush()  # a no-op, so a group commit racing a topic deletion is harmless
