import logging
import os
from pathlib import Path

import pytest
from storage_helpers import NOW, batch, open_log, read_all, topic_config

from hayase.broker.storage.batch import HEADER_SIZE

CONFIG = topic_config(segment_bytes=800, index_interval_bytes=64)


def fill(directory: Path, batches: int = 30, config=CONFIG):
    """A crashed log (no clean close) and what it held: [(offset, value)]."""
    log = open_log(directory, config)
    for i in range(batches):
        log.append(batch([b"v%d-%d" % (i, j) for j in range(3)], ts=NOW + i), NOW + i)
    expected = read_all(log)
    positions = batch_positions(log)
    log.close(flush=False)
    return expected, positions


def batch_positions(log) -> list[tuple[int, int, int]]:
    """(segment base, byte position, base offset) of every batch."""
    out = []
    for seg in log.segments:
        data = log.read(seg.base_offset, 1 << 30).records if seg.size else b""
        from hayase.broker.storage import iter_batches

        out += [(seg.base_offset, pos, h.base_offset) for pos, h in iter_batches(data)]
    return out


def segment_file(directory: Path, base: int) -> Path:
    return directory / f"{base:020d}.log"


def reopen(directory: Path, clean: bool = False):
    return open_log(directory, CONFIG, clean_shutdown=clean)


def thirty_batches(directory: Path):
    """An open log of 30 batches of 3 records, one per millisecond, over several segments."""
    log = open_log(directory, CONFIG)
    for i in range(30):
        log.append(batch(3, ts=NOW + i), NOW + i)
    return log


def test_restart_with_clean_marker_keeps_data_and_indexes(tmp_path: Path) -> None:
    log = thirty_batches(tmp_path)
    expected = read_all(log)
    index_sizes = [len(s.offset_index) for s in log.segments]
    log.close()
    log = reopen(tmp_path, clean=True)
    assert [len(s.offset_index) for s in log.segments] == index_sizes
    assert read_all(log) == expected and log.high_watermark == 90
    assert log.recovery_point == 90
    log.append(batch(1), NOW)
    assert log.high_watermark == 91
    log.close()


def test_restart_without_marker_keeps_data(tmp_path: Path, caplog) -> None:
    expected, _ = fill(tmp_path)
    with caplog.at_level(logging.WARNING, logger="hayase.broker.storage"):
        log = reopen(tmp_path)
    assert read_all(log) == expected
    assert not [r for r in caplog.records if "truncating" in r.getMessage()]
    assert log.append(batch(1), NOW).base_offset == len(expected)
    log.close()


def test_torn_tail_is_truncated(tmp_path: Path, caplog) -> None:
    expected, positions = fill(tmp_path)
    last_base, last_pos, last_offset = positions[-1]
    path = segment_file(tmp_path, last_base)
    os.truncate(path, path.stat().st_size - 7)  # cut into the last batch
    with caplog.at_level(logging.WARNING, logger="hayase.broker.storage"):
        log = reopen(tmp_path)
    assert log.high_watermark == last_offset
    assert read_all(log) == expected[:last_offset]
    assert path.stat().st_size == last_pos
    assert any("t-0" in r.getMessage() and f"offset {last_offset}" in r.getMessage() for r in caplog.records)
    assert log.append(batch(2), NOW).base_offset == last_offset
    log.close()


def test_torn_header_is_truncated(tmp_path: Path) -> None:
    expected, positions = fill(tmp_path)
    last_base, last_pos, last_offset = positions[-1]
    os.truncate(segment_file(tmp_path, last_base), last_pos + 20)
    log = reopen(tmp_path)
    assert read_all(log) == expected[:last_offset]
    log.close()


def test_appended_garbage_is_truncated(tmp_path: Path, caplog) -> None:
    expected, positions = fill(tmp_path)
    path = segment_file(tmp_path, positions[-1][0])
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(os.urandom(300))
    with caplog.at_level(logging.WARNING, logger="hayase.broker.storage"):
        log = reopen(tmp_path)
    assert read_all(log) == expected
    assert path.stat().st_size == size
    assert any(f"offset {len(expected)}" in r.getMessage() for r in caplog.records)
    log.close()


@pytest.mark.parametrize("where", ["payload", "base_offset", "leader_epoch"])
def test_flipped_byte_in_middle_batch_truncates_there(tmp_path: Path, where: str, caplog) -> None:
    expected, positions = fill(tmp_path)
    bases = sorted({b for b, _, _ in positions})
    assert len(bases) >= 3
    middle_segment = bases[len(bases) // 2]
    in_segment = [p for p in positions if p[0] == middle_segment]
    seg_base, pos, offset = in_segment[len(in_segment) // 2]
    delta = {"payload": HEADER_SIZE + 4, "base_offset": 3, "leader_epoch": 12}[where]
    path = segment_file(tmp_path, seg_base)
    with open(path, "r+b") as f:
        f.seek(pos + delta)
        byte = f.read(1)
        f.seek(pos + delta)
        f.write(bytes([byte[0] ^ 0x80]))
    with caplog.at_level(logging.WARNING, logger="hayase.broker.storage"):
        log = reopen(tmp_path)
    assert log.high_watermark == offset
    assert read_all(log) == expected[:offset]
    assert [s.base_offset for s in log.segments] == [b for b in bases if b <= middle_segment]
    assert not segment_file(tmp_path, bases[-1]).exists()
    assert any("t-0" in r.getMessage() and f"offset {offset}" in r.getMessage() for r in caplog.records)
    assert log.append(batch(1), NOW).base_offset == offset
    log.close()
    log = reopen(tmp_path, clean=True)
    assert read_all(log)[-1][0] == offset
    log.close()


def test_recovery_starts_at_the_recovery_point(tmp_path: Path) -> None:
    """Segments wholly below the recovery point are trusted, as in Kafka (flushed data)."""
    expected, positions = fill(tmp_path)
    first_seg = [p for p in positions if p[0] == 0]
    _, pos, _ = first_seg[1]
    with open(segment_file(tmp_path, 0), "r+b") as f:
        f.seek(pos + HEADER_SIZE + 2)
        f.write(b"\xff")
    second_base = sorted({b for b, _, _ in positions})[1]
    log = open_log(tmp_path, CONFIG, recovery_point=second_base)
    assert log.high_watermark == len(expected)  # the first segment was not rescanned
    log.close(flush=False)
    log = open_log(tmp_path, CONFIG, recovery_point=0)
    assert log.high_watermark == first_seg[1][2]  # a full scan catches it
    log.close()


def test_bad_index_with_clean_marker_is_rebuilt(tmp_path: Path) -> None:
    log = thirty_batches(tmp_path)
    expected = read_all(log)
    log.close()
    (tmp_path / f"{0:020d}.index").write_bytes(b"\x00\x00\x00\x05\x7f\xff\xff\xff")
    (tmp_path / f"{0:020d}.timeindex").write_bytes(b"junk")
    log = reopen(tmp_path, clean=True)
    assert read_all(log) == expected
    assert len(log.segments[0].offset_index) > 0
    log.close()


def test_missing_snapshots_rebuild_producer_state_by_scan(tmp_path: Path) -> None:
    log = open_log(tmp_path, CONFIG)
    for i in range(10):
        log.append(batch(2, pid=9, epoch=0, seq=2 * i), NOW)
    log.close()
    for name in os.listdir(tmp_path):
        if name.endswith(".snapshot"):
            os.unlink(tmp_path / name)
    log = reopen(tmp_path, clean=True)
    assert log.append(batch(2, pid=9, epoch=0, seq=18), NOW).duplicate
    assert log.append(batch(2, pid=9, epoch=0, seq=20), NOW).base_offset == 20
    log.close()


def test_garbage_tail_is_caught_even_with_a_clean_marker(tmp_path: Path) -> None:
    log = thirty_batches(tmp_path)
    expected = read_all(log)
    active = log.segments[-1].log_path
    log.close()
    with open(active, "ab") as f:
        f.write(batch(2)[:40])  # a torn batch after a "clean" shutdown
    log = reopen(tmp_path, clean=True)
    assert read_all(log) == expected
    assert log.append(batch(1), NOW).base_offset == len(expected)
    log.close()
