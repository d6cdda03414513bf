"""The log cleaner (compaction): latest value per key, tombstones, gaps, swaps and crashes."""

from __future__ import annotations

import contextlib
import gzip
import os
import struct
import threading
from pathlib import Path

import cramjam
import google_crc32c
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storage_helpers import NOW, open_log, topic_config

from hayase.broker.storage import (
    InvalidRecordError,
    LogManager,
    OutOfOrderSequenceError,
    PartitionLog,
    Record,
    build_batch,
    decode_records,
    iter_batches,
    prepare_cleaning,
)
from hayase.broker.storage.batch import (
    ATTRIBUTES_OFFSET,
    CRC_OFFSET,
    HEADER_SIZE,
    LOG_OVERHEAD,
    compress,
    parse_header,
)
from hayase.broker.storage.cleaner import (
    CLEANER_CHECKPOINT,
    DELETE_HORIZON_MASK,
    CleanerConfig,
    LogCleaner,
    cleanable_offsets,
    scan_keys,
)
from hayase.broker.storage.segment import LogSegment

RETENTION = 10_000  # delete.retention.ms in these tests


def compact_config(**extra: object):
    configs: dict[str, object] = {"cleanup_policy": "compact", "delete_retention_ms": RETENTION,
                                  "index_interval_bytes": 64}
    configs.update(extra)
    return topic_config(**configs)


def kv(pairs: list[tuple[bytes | None, bytes | None]], *, ts: int = NOW, pid: int = -1, epoch: int = -1,
       seq: int = -1) -> bytes:
    return build_batch([Record(k, v) for k, v in pairs], base_timestamp=ts, producer_id=pid,
                       producer_epoch=epoch, base_sequence=seq)


def compressed(batch: bytes, codec: int) -> bytes:
    """The same batch with its records compressed (1 gzip, 2 snappy, 3 lz4, 4 zstd), as
    clients do (gzip and zstd not through the cleaner's own compressor)."""
    body = batch[HEADER_SIZE:]
    if codec == 1:
        packed = gzip.compress(body)
    elif codec == 4:
        packed = bytes(cramjam.zstd.compress(body))
    else:
        packed = compress(codec, body)
    out = bytearray(batch[:HEADER_SIZE] + packed)
    struct.pack_into(">i", out, 8, len(out) - LOG_OVERHEAD)
    (attributes,) = struct.unpack_from(">h", out, ATTRIBUTES_OFFSET)
    struct.pack_into(">h", out, ATTRIBUTES_OFFSET, attributes | codec)
    struct.pack_into(">I", out, CRC_OFFSET, google_crc32c.value(bytes(out[ATTRIBUTES_OFFSET:])))
    return bytes(out)


def dump(log: PartitionLog, start: int | None = None) -> list[tuple[int, bytes | None, bytes | None]]:
    """Every (offset, key, value) from ``start`` (the log start) to the high watermark."""
    offset = log.log_start_offset if start is None else start
    out = []
    while offset < log.high_watermark:
        data = log.read(offset, 1 << 20).records
        if not data:  # everything from here was cleaned away (a read finds nothing, as in Kafka)
            assert all(s.size == 0 or s.next_offset <= offset for s in log.segments)
            break
        for pos, header in iter_batches(data):
            out += [(r.offset, r.key, r.value) for r in decode_records(data, pos) if r.offset >= offset]
            offset = header.last_offset + 1
    return out


def latest(entries: list[tuple[int, bytes | None, bytes | None]]) -> dict[bytes | None, bytes | None]:
    model: dict[bytes | None, bytes | None] = {}
    for _, key, value in entries:
        model[key] = value
    return model


def fill(log: PartitionLog, rounds: int, keys: int = 5, per_segment: int = 2, now: int = NOW) -> None:
    """``rounds`` values for each of ``keys`` keys, one batch per key and round, rolling every
    ``per_segment`` rounds."""
    for r in range(rounds):
        for k in range(keys):
            log.append(kv([(b"k%d" % k, b"v%d-%d" % (k, r))], ts=now), now)
        if (r + 1) % per_segment == 0:
            log.roll(now)


def manager_with_topic_c(directory: Path,
                         configs: dict[str, str]) -> tuple[LogManager, PartitionLog]:
    """A LogManager over `directory` holding topic "c" (one partition, `configs`), and its log."""
    m = LogManager(directory, {}, now_ms=NOW)
    m.create_topic("c", 1, configs)
    return m, m.log("c", 0)


def cleaner(**kwargs: object) -> LogCleaner:
    return LogCleaner(CleanerConfig(**kwargs))  # type: ignore[arg-type]


def segment_bytes(log: PartitionLog, seg: LogSegment) -> bytes:
    return seg.log_path.read_bytes()


# --- what survives ---------------------------------------------------------------------------


def test_only_the_latest_value_per_key_survives_with_offsets_unchanged(tmp_path: Path) -> None:
    log = open_log(tmp_path, compact_config())
    fill(log, rounds=6)
    log.append(kv([(b"k0", b"active-0")]), NOW)  # in the active segment: never cleaned
    before = dump(log)
    active_before = segment_bytes(log, log.segments[-1])
    hw = log.high_watermark
    assert cleaner().clean(log, NOW)
    after = dump(log)
    assert set(after) <= set(before)  # survivors keep their offsets (and keys and values)
    assert latest(after) == latest(before)
    cleaned_part = [e for e in after if e[0] < log.segments[-1].base_offset]
    keys = [key for _, key, _ in cleaned_part]
    assert sorted(keys) == [b"k%d" % k for k in range(5)]  # one record per key below the active segment
    assert {value for _, _, value in cleaned_part} == {b"v%d-5" % k for k in range(5)}
    assert segment_bytes(log, log.segments[-1]) == active_before
    assert log.high_watermark == hw and log.log_start_offset == 0
    assert log.append(kv([(b"k9", b"x")]), NOW).base_offset == hw
    log.close()
    for clean in (True, False):  # trusted indexes, and a full rescan with gaps
        log = open_log(tmp_path, compact_config(), clean_shutdown=clean)
        assert dump(log) == after + [(hw, b"k9", b"x")]
        log.close(flush=clean)


def test_read_at_a_cleaned_away_offset_returns_the_next_batch(tmp_path: Path) -> None:
    log = open_log(tmp_path, compact_config())
    fill(log, rounds=4)
    cleaner().clean(log, NOW)
    survivors = [offset for offset, _, _ in dump(log)]
    gaps = [o for o in range(log.high_watermark) if o not in survivors]
    assert gaps and gaps[0] == 0  # the first records went too: log start stays 0
    for offset in gaps:
        data = log.read(offset, 1).records
        first = parse_header(data)
        assert first.base_offset > offset or first.last_offset >= offset
        nxt = min(o for o in survivors if o > offset)
        assert [r.offset for r in decode_records(data)][0] == nxt
    log.close()


@pytest.mark.parametrize("codec", [0, 1])
def test_a_compacted_topic_refuses_records_without_a_key(tmp_path: Path, codec: int) -> None:
    log = open_log(tmp_path, compact_config())
    keyless = kv([(b"a", b"1"), (None, b"no key")])
    with pytest.raises(InvalidRecordError) as err:
        log.append(compressed(keyless, codec) if codec else keyless, NOW)
    assert err.value.error_code == 87 and log.high_watermark == 0
    log.append(kv([(b"a", b"1"), (b"", b"empty key")]), NOW)  # an empty key is a key
    assert log.high_watermark == 2
    log.close()
    plain = open_log(tmp_path / "delete")
    assert plain.append(keyless, NOW).last_offset == 1  # other topics take them
    plain.close()


def test_delete_records_into_a_cleaned_away_tail_keeps_the_requested_log_start(tmp_path: Path) -> None:
    log = open_log(tmp_path, compact_config(segment_bytes=150))  # two one-record batches a segment
    for key in (b"a", b"b", b"b", b"c", b"c"):
        log.append(kv([(key, b"v")]), NOW)
    assert [s.base_offset for s in log.segments] == [0, 2, 4]
    cleaner().clean(log, NOW)
    assert [(s.base_offset, s.next_offset) for s in log.segments[:2]] == [(0, 1), (2, 4)]  # b@1 went
    assert log.delete_records(1) == 1  # Kafka's rule: not the next segment's base offset
    assert [s.base_offset for s in log.segments] == [0, 2, 4]
    assert dump(log) == [(2, b"b", b"v"), (3, b"c", b"v"), (4, b"c", b"v")]
    assert log.delete_records(2) == 2 and [s.base_offset for s in log.segments] == [2, 4]
    log.close()


def test_records_without_a_key_are_dropped_as_kafka_does(tmp_path: Path) -> None:
    log = open_log(tmp_path)  # written while the topic was not compacted
    log.append(kv([(None, b"no key"), (b"a", b"1")]), NOW)
    log.roll(NOW)
    log.config = compact_config()
    cleaner().clean(log, NOW)
    assert dump(log) == [(1, b"a", b"1")]
    log.close()


def test_unchanged_batches_are_copied_byte_for_byte(tmp_path: Path) -> None:
    log = open_log(tmp_path, compact_config())
    keep = kv([(b"a", b"1"), (b"b", b"2")])
    log.append(keep, NOW)
    log.append(kv([(b"c", b"1")]), NOW)
    log.append(kv([(b"c", b"2")]), NOW)
    log.roll(NOW)
    cleaner().clean(log, NOW)
    data = log.read(0, 1 << 20).records
    assert data[LOG_OVERHEAD + 4 :].startswith(keep[LOG_OVERHEAD + 4 :])  # same bytes after the epoch
    assert [r.offset for r in decode_records(data)] == [0, 1]
    log.close()


# --- tombstones ------------------------------------------------------------------------------


def test_tombstones_are_kept_for_delete_retention_ms_then_removed(tmp_path: Path) -> None:
    log = open_log(tmp_path, compact_config())
    log.append(kv([(b"a", b"1"), (b"b", b"1")]), NOW)
    log.append(kv([(b"a", None)]), NOW)
    log.roll(NOW)
    c = cleaner()
    assert c.clean(log, NOW)
    assert dump(log) == [(1, b"b", b"1"), (2, b"a", None)]
    stamped = parse_header(log.read(2, 1).records)
    assert stamped.attributes & DELETE_HORIZON_MASK and stamped.base_timestamp == NOW + RETENTION
    assert [r.timestamp for r in decode_records(log.read(2, 1).records)] == [NOW]  # deltas follow
    # Before the horizon: nothing is due, and a forced pass keeps the tombstone.
    assert not c.clean(log, NOW + RETENTION - 1)
    assert c.clean(log, NOW + RETENTION - 1, force=True)
    assert dump(log)[-1] == (2, b"a", None)
    # At the horizon the quiet log is picked up although it is not dirty, and the tombstone goes.
    assert c.clean(log, NOW + RETENTION)
    assert dump(log) == [(1, b"b", b"1")]
    assert not c.clean(log, NOW + 10 * RETENTION)
    log.close()


def test_tombstone_horizon_is_found_again_after_a_restart(tmp_path: Path) -> None:
    m, log = manager_with_topic_c(tmp_path, {"cleanup.policy": "compact",
                                             "delete.retention.ms": str(RETENTION)})
    log.append(kv([(b"a", b"1")]), NOW)
    log.append(kv([(b"a", None)]), NOW)
    log.roll(NOW)
    assert m.run_cleaner(NOW) == 1
    m.close()
    m = LogManager(tmp_path, {}, now_ms=NOW)
    assert m.run_cleaner(NOW + RETENTION - 1) == 0  # the checkpoint says it is clean
    assert m.run_cleaner(NOW + RETENTION) == 1  # the stamped horizon, read back from the batches
    assert dump(m.log("c", 0)) == []
    m.close()


# --- when to clean ---------------------------------------------------------------------------


def test_dirty_ratio_threshold_is_respected(tmp_path: Path) -> None:
    log = open_log(tmp_path, compact_config(min_cleanable_dirty_ratio=0.6))
    fill(log, rounds=10, per_segment=1)
    c = cleaner()
    assert c.clean(log, NOW)  # all dirty: ratio 1.0
    assert not c.clean(log, NOW)  # nothing dirty
    # One dirty segment as large as the clean part: ratio 0.5 <= 0.6.
    for k in range(5):
        log.append(kv([(b"k%d" % k, b"w%d" % k)]), NOW)
    log.roll(NOW)
    ltc = cleanable_offsets(log, c.checkpoints[("t", 0)], NOW)
    assert 0.4 < ltc.cleanable_ratio <= 0.6
    before = dump(log)
    assert not c.clean(log, NOW)
    assert dump(log) == before
    for k in range(5):
        log.append(kv([(b"k%d" % k, b"x%d" % k)]), NOW)
    log.roll(NOW)
    assert cleanable_offsets(log, c.checkpoints[("t", 0)], NOW).cleanable_ratio > 0.6
    assert c.clean(log, NOW)
    assert latest(dump(log)) == {b"k%d" % k: b"x%d" % k for k in range(5)}
    log.close()


def test_max_compaction_lag_forces_cleaning_and_min_lag_holds_it_back(tmp_path: Path) -> None:
    log = open_log(tmp_path, compact_config(min_cleanable_dirty_ratio=0.99, max_compaction_lag_ms=5000))
    fill(log, rounds=4, per_segment=1)
    c = cleaner()
    assert c.clean(log, NOW)
    log.append(kv([(b"k0", b"late")]), NOW)
    log.roll(NOW)
    assert not c.clean(log, NOW + 5000)  # ratio below 0.99 and not yet late
    assert c.clean(log, NOW + 5001)
    log.close()
    log = open_log(tmp_path / "min", compact_config(min_compaction_lag_ms=5000))
    fill(log, rounds=4, per_segment=1)
    assert not cleaner().clean(log, NOW + 4999)  # every segment is too young
    assert cleaner().clean(log, NOW + 5000)
    log.close()


def test_max_compaction_lag_rolls_the_active_segment(tmp_path: Path) -> None:
    log = open_log(tmp_path, compact_config(max_compaction_lag_ms=5000))
    log.append(kv([(b"a", b"1")], ts=NOW), NOW)
    log.append(kv([(b"a", b"2")], ts=NOW + 5001), NOW + 5001)
    assert len(log.segments) == 2
    log.close()


def test_only_compacted_topics_are_cleaned(tmp_path: Path) -> None:
    m = LogManager(tmp_path, {}, now_ms=NOW)
    m.create_topic("d", 1, {})
    m.create_topic("c", 1, {"cleanup.policy": "compact,delete"})
    for name in ("d", "c"):
        fill(m.log(name, 0), rounds=4)
    before = dump(m.log("d", 0))
    assert m.run_cleaner(NOW) == 1
    assert dump(m.log("d", 0)) == before
    assert len(dump(m.log("c", 0))) < len(before)
    assert (tmp_path / CLEANER_CHECKPOINT).read_text().split("\n")[2] == f"c 0 {m.log('c', 0).segments[-1].base_offset}"
    m.close()
    m = LogManager(tmp_path, {"log.cleaner.enable": "false"}, now_ms=NOW)
    fill(m.log("c", 0), rounds=4)
    assert m.run_cleaner(NOW) == 0
    m.close()


def test_a_small_offset_map_cleans_in_several_passes(tmp_path: Path) -> None:
    log = open_log(tmp_path, compact_config(min_cleanable_dirty_ratio=0.0))
    for s in range(5):  # 20 new keys in each segment, and one shared key
        for i in range(20):
            log.append(kv([(b"s%d-%d" % (s, i), b"v"), (b"shared", b"%d-%d" % (s, i))]), NOW)
        log.roll(NOW)
    before = dump(log)
    c = cleaner(dedupe_buffer_size=24 * 30, io_buffer_load_factor=1.0)  # 30 keys: 2 segments fit
    assert c.clean(log, NOW)
    first = c.checkpoints[("t", 0)]
    assert first == log.segments[1].base_offset < log.segments[-1].base_offset
    while c.clean(log, NOW):
        pass
    assert latest(dump(log)) == latest(before)
    assert c.checkpoints[("t", 0)] == log.segments[-1].base_offset
    log.close()


# --- compressed input ------------------------------------------------------------------------


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_compressed_batches_are_filtered(tmp_path: Path, codec: int) -> None:
    log = open_log(tmp_path, compact_config())
    untouched = compressed(kv([(b"x", b"1"), (b"y", b"1")]), codec)
    log.append(untouched, NOW)
    log.append(compressed(kv([(b"a", b"1"), (b"b", b"1"), (b"a", b"2")]), codec), NOW)
    log.append(compressed(kv([(b"b", b"2"), (b"c", b"1")]), codec), NOW)
    log.roll(NOW)
    cleaner().clean(log, NOW)
    assert dump(log) == [(0, b"x", b"1"), (1, b"y", b"1"), (4, b"a", b"2"), (5, b"b", b"2"), (6, b"c", b"1")]
    data = log.read(0, 1 << 20).records
    headers = [h for _, h in iter_batches(data)]  # CRCs check out
    assert headers[0].compression == codec  # kept as it was
    assert data[LOG_OVERHEAD + 4 : headers[0].size] == untouched[LOG_OVERHEAD + 4 :]
    assert headers[1].compression == codec and headers[1].records_count == 1  # rewritten, same codec
    assert (headers[1].base_offset, headers[1].last_offset) == (2, 4)  # offsets of the original
    log.close()


# --- producer state --------------------------------------------------------------------------


def test_idempotent_producer_state_is_rebuilt_after_cleaning_and_restart(tmp_path: Path) -> None:
    pid = 4242
    log = open_log(tmp_path, compact_config())
    results = [log.append(kv([(b"p%d" % (i % 2), b"v%d" % i), (b"q", b"v%d" % i)], pid=pid, epoch=3, seq=2 * i), NOW)
               for i in range(6)]
    # A plain producer overwrites every key of the idempotent producer's last batch.
    log.append(kv([(b"p1", b"plain"), (b"q", b"plain")]), NOW)
    log.roll(NOW)
    cleaner().clean(log, NOW)
    last = log.read(results[-1].base_offset, 1).records
    kept = parse_header(last)
    # Emptied, but kept: it holds the producer's last sequence.
    assert (kept.base_offset, kept.records_count, kept.producer_id, kept.base_sequence) == (
        results[-1].base_offset, 0, pid, 10)
    log.close()
    for snapshot in tmp_path.glob("*.snapshot"):
        snapshot.unlink()  # rebuilt from the cleaned log alone
    log = open_log(tmp_path, compact_config(), clean_shutdown=False)
    entry = log.producer_state.producers[pid]
    assert (entry.producer_epoch, entry.last_seq) == (3, 11)
    retry = log.append(kv([(b"p1", b"v5"), (b"q", b"v5")], pid=pid, epoch=3, seq=10), NOW)
    assert retry.duplicate and (retry.base_offset, retry.last_offset) == (results[-1].base_offset, results[-1].last_offset)
    with pytest.raises(OutOfOrderSequenceError):
        log.append(kv([(b"q", b"gap")], pid=pid, epoch=3, seq=13), NOW)
    assert not log.append(kv([(b"q", b"next")], pid=pid, epoch=3, seq=12), NOW).duplicate
    log.close()


# --- crashes and swaps -----------------------------------------------------------------------


class Crash(BaseException):
    """A simulated process crash: nothing catches it, so no clean-up runs."""


def grouped_log(directory: Path) -> PartitionLog:
    """Six small segments that the cleaner groups (segment.bytes is large; rolls are explicit)."""
    log = open_log(directory, compact_config())
    fill(log, rounds=6, keys=3, per_segment=1)
    return log


def leftovers(directory: Path) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.endswith((".cleaned", ".swap")))


def crash_on_call(monkeypatch: pytest.MonkeyPatch, owner: object, name: str, crash_at: int) -> None:
    """Patch ``owner.name`` to raise Crash at its call number ``crash_at`` (0-based)."""
    calls = [0]
    real = getattr(owner, name)

    def crashing(*args):
        if calls[0] == crash_at:
            raise Crash
        calls[0] += 1
        return real(*args)

    monkeypatch.setattr(owner, name, crashing)


def clean_until_crash(log: PartitionLog, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the cleaner into the patched crash, drop the log unflushed and restore the patches."""
    with pytest.raises(Crash):
        cleaner().clean(log, NOW)
    log.close(flush=False)
    monkeypatch.undo()


def test_crash_after_writing_cleaned_files_recovers_the_original_log(tmp_path: Path, monkeypatch) -> None:
    log = grouped_log(tmp_path)
    before = dump(log)

    def crash(self, cleaned, old):
        raise Crash

    monkeypatch.setattr(PartitionLog, "replace_segments", crash)
    with pytest.raises(Crash):
        cleaner().clean(log, NOW)
    assert any(n.endswith(".log.cleaned") for n in leftovers(tmp_path))
    log.close(flush=False)
    monkeypatch.undo()
    log = open_log(tmp_path, compact_config())
    assert leftovers(tmp_path) == []
    assert dump(log) == before
    assert cleaner().clean(log, NOW)
    assert latest(dump(log)) == latest(before)
    log.close()


@pytest.mark.parametrize("renames_before_crash", [0, 1, 2, 3, 4, 5])
def test_crash_in_the_middle_of_a_swap_recovers_to_a_consistent_log(
    tmp_path: Path, monkeypatch, renames_before_crash: int
) -> None:
    """os.replace calls of replace_segments: 3 to .swap (indexes, then the .log: the commit
    point), then 3 to the plain names; old segments are deleted in between."""
    log = grouped_log(tmp_path)
    before = dump(log)
    expected_log = grouped_log(tmp_path / "reference")
    cleaner().clean(expected_log, NOW)
    expected = dump(expected_log)
    expected_log.close()
    crash_on_call(monkeypatch, os, "replace", renames_before_crash)
    clean_until_crash(log, monkeypatch)
    log = open_log(tmp_path, compact_config())
    assert leftovers(tmp_path) == []
    after = dump(log)
    committed = renames_before_crash >= 3
    assert after == (expected if committed else before)
    assert latest(after) == latest(before)
    log.append(kv([(b"new", b"1")]), NOW)
    log.close()
    log = open_log(tmp_path, compact_config(), clean_shutdown=True)
    assert dump(log) == after + [(log.high_watermark - 1, b"new", b"1")]
    log.close()


def test_crash_after_deleting_replaced_segments_completes_the_swap(tmp_path: Path, monkeypatch) -> None:
    log = grouped_log(tmp_path)
    before = dump(log)
    crash_on_call(monkeypatch, LogSegment, "delete", 2)
    clean_until_crash(log, monkeypatch)
    log = open_log(tmp_path, compact_config())
    assert leftovers(tmp_path) == []
    after = dump(log)
    assert latest(after) == latest(before)
    assert len(after) == len({key for _, key, _ in after})  # one record per key: the swap completed
    log.close()


@pytest.mark.parametrize("renames_before_crash", [3, 6 + 3])
def test_crash_after_committing_an_emptied_segment_keeps_the_others(
    tmp_path: Path, monkeypatch, renames_before_crash: int
) -> None:
    log = open_log(tmp_path, compact_config(segment_bytes=150))  # one group per segment
    for key in (b"a", b"b", b"a", b"b", b"c"):
        log.append(kv([(key, b"v")]), NOW)
    assert [s.base_offset for s in log.segments] == [0, 2, 4]
    crash_on_call(monkeypatch, os, "replace", renames_before_crash)
    clean_until_crash(log, monkeypatch)
    log = open_log(tmp_path, compact_config(segment_bytes=150))
    assert leftovers(tmp_path) == []
    assert [s.base_offset for s in log.segments] == [0, 2, 4]
    assert log.segments[0].size == 0  # the emptied segment stays, as in Kafka
    assert dump(log) == [(2, b"a", b"v"), (3, b"b", b"v"), (4, b"c", b"v")]
    assert [r.offset for r in decode_records(log.read(0, 1).records)] == [2]
    log.close()


# --- cleaning off the log's thread ----------------------------------------------------------


def test_prepared_in_a_worker_thread_while_the_log_takes_appends_and_reads(tmp_path: Path) -> None:
    m, log = manager_with_topic_c(tmp_path, {"cleanup.policy": "compact"})
    fill(log, rounds=20, keys=10, per_segment=2)
    tasks = m.plan_cleaning(NOW)
    assert len(tasks) == 1 and m.plan_cleaning(NOW) == []  # in progress: not planned twice
    box: list = []
    worker = threading.Thread(target=lambda: box.append(prepare_cleaning(tasks)))
    worker.start()
    for i in range(200):  # the log's own thread goes on meanwhile
        log.append(kv([(b"k%d" % (i % 10), b"during-%d" % i)]), NOW)
        if i % 50 == 49:
            log.roll(NOW)
        assert log.read(0, 1 << 10).records
    worker.join()
    assert box[0][0].error is None
    assert any(n.endswith(".log.cleaned") for n in leftovers(tmp_path / "c-0"))  # not swapped in yet
    assert m.commit_cleaning(box[0]) == 1
    assert leftovers(tmp_path / "c-0") == []
    entries = dump(log)
    assert latest(entries) == {b"k%d" % k: b"during-%d" % (190 + k) for k in range(10)}
    below = [e for e in entries if e[0] < tasks[0].ltc.first_uncleanable_offset]
    assert len(below) == len({k for _, k, _ in below})  # the planned range was cleaned
    m.close()


def test_a_log_changed_during_preparation_is_cleaned_at_a_later_pass(tmp_path: Path) -> None:
    m, log = manager_with_topic_c(tmp_path, {"cleanup.policy": "compact,delete"})
    fill(log, rounds=6, keys=3, per_segment=1)
    prepared = prepare_cleaning(m.plan_cleaning(NOW))
    assert any(n.endswith(".log.cleaned") for n in leftovers(tmp_path / "c-0"))
    m.delete_records("c", 0, 3)  # the first segment goes meanwhile
    before = dump(log)
    assert m.commit_cleaning(prepared) == 0
    assert leftovers(tmp_path / "c-0") == []
    assert dump(log) == before  # untouched
    assert m.run_cleaner(NOW) == 1  # not marked uncleanable
    assert latest(dump(log)) == latest(before)
    m.close()


# --- file descriptors ------------------------------------------------------------------------


def fd_targets() -> list[str]:
    out = []
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            out.append(os.readlink(f"/proc/self/fd/{name}"))
    return out


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_cleaning_leaves_no_descriptor_to_a_deleted_file(tmp_path: Path) -> None:
    before = len(fd_targets())
    m = LogManager(tmp_path, {"log.segment.bytes": "600"}, now_ms=NOW)
    m.create_topic("__consumer_offsets", 2, {"cleanup.policy": "compact"})
    for round_ in range(5):
        for p in range(2):
            log = m.log("__consumer_offsets", p)
            for i in range(60):
                log.append(kv([(b"group-%d" % (i % 7), b"offset-%d-%d" % (round_, i))]), NOW)
            log.read(0, 1 << 20)
        assert m.run_cleaner(NOW) == 2
        m.wait_for_background_flushes()
        targets = fd_targets()
        assert not [t for t in targets if t.startswith(str(tmp_path)) and "(deleted)" in t]
        assert len(targets) - before <= 2 + 1  # the two active segments and the lock
    sizes = [m.log("__consumer_offsets", p).size_bytes() for p in range(2)]
    assert all(size < 60 * 5 * 70 / 2 for size in sizes)  # it does not grow without limit
    m.close()
    assert len(fd_targets()) == before


# --- model -----------------------------------------------------------------------------------

KEYS = [b"a", b"b", b"c", b"d", b"e", b"f"]
op = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(KEYS), st.one_of(st.none(), st.binary(max_size=6))),
    st.tuples(st.just("roll"), st.none(), st.none()),
    st.tuples(st.just("clean"), st.none(), st.none()),
    st.tuples(st.just("later"), st.none(), st.none()),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, max_size=40), batch_size=st.integers(1, 3))
def test_cleaned_log_matches_a_dict_of_the_latest_value_per_key(tmp_path_factory, ops, batch_size) -> None:
    directory = tmp_path_factory.mktemp("model")
    log = open_log(directory, compact_config(min_cleanable_dirty_ratio=0.0))
    c = cleaner()
    now = NOW
    written: dict[int, tuple[bytes, bytes | None]] = {}
    model: dict[bytes, bytes | None] = {}
    pending: list[tuple[bytes, bytes | None]] = []

    def flush_pending() -> None:
        if pending:
            first = log.append(kv(list(pending), ts=now), now).base_offset  # type: ignore[arg-type]
            for i, (k, v) in enumerate(pending):
                written[first + i] = (k, v)
                model[k] = v
            pending.clear()

    for kind, key, value in ops:
        if kind == "put":
            pending.append((key, value))
            if len(pending) >= batch_size:
                flush_pending()
            continue
        flush_pending()
        if kind == "roll":
            log.roll(now)
        elif kind == "clean":
            c.clean(log, now, force=True)
        else:
            now += RETENTION  # tombstones stamped before this may go at the next pass
    flush_pending()
    c.clean(log, now, force=True)
    entries = dump(log)
    for offset, k, v in entries:
        assert written[offset] == (k, v)  # survivors keep their offsets and contents
    seen = latest(entries)
    for k in KEYS:
        if model.get(k) is not None:
            assert seen.get(k) == model[k]
        else:
            assert seen.get(k) is None  # deleted: a tombstone, or nothing at all
    cleaned = [e for e in entries if e[0] < log.segments[-1].base_offset]
    assert len(cleaned) == len({k for _, k, _ in cleaned})  # at most one record per key there
    log.close()
    log = open_log(directory, compact_config(), clean_shutdown=False)
    assert dump(log) == entries
    log.close()


@settings(max_examples=80, deadline=None)
@given(
    records=st.lists(st.tuples(st.one_of(st.none(), st.binary(max_size=200)),
                               st.one_of(st.none(), st.binary(max_size=200)),
                               st.integers(-(2**40), 2**40)), min_size=1, max_size=8),
    codec=st.sampled_from([0, 1, 4]),
)
def test_the_key_scanner_agrees_with_the_record_decoder(records, codec) -> None:
    batch = build_batch([Record(k, v, [("h", b"x" * 130)], timestamp=NOW + ts) for k, v, ts in records],
                        base_offset=1000)
    if codec:
        batch = compressed(batch, codec)
    header = parse_header(batch)
    expected = [(r.offset, r.key, r.value is not None) for r in decode_records(batch)]
    assert scan_keys(header, batch) == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(st.tuples(st.sampled_from(KEYS), st.binary(max_size=4), st.booleans()), min_size=1, max_size=30),
    segment_bytes=st.sampled_from([150, 300, 100_000]),
    crash_at=st.integers(0, 40),
    crash_in=st.sampled_from(["replace", "delete"]),
)
def test_a_crash_at_any_step_of_a_cleaning_recovers_a_consistent_log(
    tmp_path_factory, values, segment_bytes, crash_at, crash_in
) -> None:
    directory = tmp_path_factory.mktemp("crash")
    config = compact_config(segment_bytes=segment_bytes)
    log = open_log(directory, config)
    for key, value, roll in values:
        log.append(kv([(key, value)]), NOW)
        if roll:
            log.roll(NOW)
    log.roll(NOW)
    before = dump(log)
    hw = log.high_watermark
    with pytest.MonkeyPatch.context() as mp:
        if crash_in == "replace":
            crash_on_call(mp, os, "replace", crash_at)
        else:
            crash_on_call(mp, LogSegment, "delete", crash_at)
        with contextlib.suppress(Crash):
            cleaner().clean(log, NOW)
    log.close(flush=False)
    log = open_log(directory, config)
    assert leftovers(directory) == []
    after = dump(log)
    assert set(after) <= set(before)  # offsets and contents kept
    assert latest(after) == latest(before)
    assert log.high_watermark == hw and log.append(kv([(b"z", b"1")]), NOW).base_offset == hw
    log.close()
