import os
from pathlib import Path

import pytest
from storage_helpers import NOW, batch, open_log, read_all, topic_config

from hayase.broker.storage import OffsetOutOfRangeError

HOUR = 3_600_000


def fill_by_hour(log, hours: int, per_hour: int = 5) -> None:
    for h in range(hours):
        for i in range(per_hour):
            ts = NOW + h * HOUR + i
            log.append(batch(2, ts=ts), ts)


def test_retention_by_time_deletes_whole_old_segments(tmp_path: Path) -> None:
    log = open_log(tmp_path, topic_config(segment_ms=HOUR - 1000, retention_ms=3 * HOUR))
    fill_by_hour(log, 6)
    assert len(log.segments) == 6  # one segment per hour (segment.ms)
    now = NOW + 6 * HOUR
    # Segments whose newest record is older than 3 hours: hours 0, 1 and 2.
    assert log.delete_old_segments(now) == 3
    assert log.log_start_offset == 30 == log.segments[0].base_offset
    assert [o for o, _ in read_all(log)] == list(range(30, 60))
    with pytest.raises(OffsetOutOfRangeError):  # below the log start offset
        log.read(0, 100)
    assert not (tmp_path / f"{0:020d}.log").exists()
    assert log.delete_old_segments(now) == 0  # idempotent
    log.close()


def test_retention_never_deletes_the_active_segment(tmp_path: Path) -> None:
    log = open_log(tmp_path, topic_config(retention_ms=HOUR))
    fill_by_hour(log, 1)
    assert len(log.segments) == 1
    assert log.delete_old_segments(NOW + 10 * HOUR) == 1
    # Kafka's rule: roll first, so the expired data goes and an empty active segment stays.
    assert len(log.segments) == 1 and log.segments[0].size == 0
    assert log.log_start_offset == log.high_watermark == 10
    assert log.read(10, 100).records == b""
    assert log.append(batch(1), NOW + 10 * HOUR).base_offset == 10
    log.close()


def test_retention_by_size(tmp_path: Path) -> None:
    one = len(batch(2))
    log = open_log(tmp_path, topic_config(segment_bytes=one * 4, retention_bytes=one * 10))
    for _ in range(30):
        log.append(batch(2), NOW)
    assert [s.size for s in log.segments[:-1]] == [one * 4] * 7
    deleted = log.delete_old_segments(NOW)
    # 30 batches, keep at most 10 batches' worth: delete 5 full segments (20 batches) exactly.
    assert deleted == 5
    assert log.size_bytes() <= one * 10
    assert log.log_start_offset == 40
    assert [o for o, _ in read_all(log)] == list(range(40, 60))
    log.close()


def test_retention_minus_one_keeps_everything(tmp_path: Path) -> None:
    log = open_log(tmp_path, topic_config(segment_ms=HOUR - 1000, retention_ms=-1, retention_bytes=-1))
    fill_by_hour(log, 4)
    assert log.delete_old_segments(NOW + 1000 * HOUR) == 0
    log.close()


def test_compact_only_topic_is_not_deleted_by_retention(tmp_path: Path) -> None:
    log = open_log(tmp_path, topic_config(segment_ms=HOUR - 1000, retention_ms=1, cleanup_policy="compact"))
    fill_by_hour(log, 3)
    assert log.delete_old_segments(NOW + 100 * HOUR) == 0
    log.close()


def test_log_start_offset_persists_across_restart(tmp_path: Path) -> None:
    config = topic_config(segment_ms=HOUR - 1000, retention_ms=2 * HOUR)
    log = open_log(tmp_path, config)
    fill_by_hour(log, 5)
    log.delete_old_segments(NOW + 5 * HOUR)
    start = log.log_start_offset
    assert start > 0
    log.close()
    log = open_log(tmp_path, config, clean_shutdown=True, log_start_offset=start)
    assert log.log_start_offset == start
    assert read_all(log)[0][0] == start
    log.close()
    # Even without a checkpointed value the first segment bounds it.
    log = open_log(tmp_path, config, clean_shutdown=False)
    assert log.log_start_offset == start
    log.close()


def test_snapshots_below_log_start_are_removed(tmp_path: Path) -> None:
    log = open_log(tmp_path, topic_config(segment_ms=HOUR - 1000, retention_ms=2 * HOUR))
    fill_by_hour(log, 6)
    log.delete_old_segments(NOW + 6 * HOUR)
    offsets = [int(n.split(".")[0]) for n in os.listdir(tmp_path) if n.endswith(".snapshot")]
    assert offsets and min(offsets) >= log.log_start_offset
    log.close()


def test_delete_records_raises_the_log_start_offset(tmp_path: Path) -> None:
    one = len(batch(2))
    log = open_log(tmp_path, topic_config(segment_bytes=one * 3))
    for _ in range(10):
        log.append(batch(2), NOW)
    assert log.delete_records(7) == 7
    assert [s.base_offset for s in log.segments][0] == 6  # the segment holding 7 stays
    assert [o for o, _ in read_all(log)] == list(range(7, 20))
    with pytest.raises(OffsetOutOfRangeError):  # offset 6 is below the log start offset now
        log.read(6, 100)
    assert log.delete_records(3) == 7  # never goes back
    log.close()
    log = open_log(tmp_path, topic_config(segment_bytes=one * 3), clean_shutdown=True, log_start_offset=7)
    assert log.log_start_offset == 7 and read_all(log)[0][0] == 7
    assert log.delete_records(-1) == 20 and log.read(20, 10).records == b""
    log.close()
