from pathlib import Path

import pytest
from storage_helpers import NOW, batch, open_log, read_all, topic_config

from hayase.broker.storage import InvalidProducerEpochError, OutOfOrderSequenceError

PID = 1000


def produce(log, seq: int, n: int = 2, epoch: int = 0, pid: int = PID):
    return log.append(batch(n, pid=pid, epoch=epoch, seq=seq), NOW)


def test_duplicate_of_each_of_the_last_five_returns_original_offsets(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    results = [produce(log, seq=2 * i) for i in range(8)]
    end = log.high_watermark
    for i in range(3, 8):  # the last 5 batches
        dup = produce(log, seq=2 * i)
        assert dup.duplicate
        assert (dup.base_offset, dup.last_offset) == (results[i].base_offset, results[i].last_offset)
    assert log.high_watermark == end  # nothing written
    # Older than the last five: no longer recognisable, and out of sequence.
    with pytest.raises(OutOfOrderSequenceError) as err:
        produce(log, seq=4)
    assert err.value.error_code == 45
    log.close()


def test_gap_raises_out_of_order(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    produce(log, seq=0)
    with pytest.raises(OutOfOrderSequenceError):
        produce(log, seq=3)
    assert log.high_watermark == 2
    produce(log, seq=2)
    assert log.high_watermark == 4
    log.close()


def test_old_epoch_is_fenced_and_new_epoch_starts_at_zero(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    produce(log, seq=0, epoch=1)
    with pytest.raises(InvalidProducerEpochError) as err:
        produce(log, seq=2, epoch=0)
    assert err.value.error_code == 47
    with pytest.raises(OutOfOrderSequenceError):
        produce(log, seq=5, epoch=2)
    produce(log, seq=0, epoch=2)
    produce(log, seq=2, epoch=2)
    assert log.high_watermark == 6
    log.close()


def test_unknown_producer_may_start_anywhere(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    produce(log, seq=500)
    produce(log, seq=502)
    assert log.high_watermark == 4
    log.close()


def test_producers_are_independent_and_non_idempotent_batches_pass(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    produce(log, seq=0, pid=1)
    produce(log, seq=0, pid=2)
    log.append(batch(1), NOW)
    log.append(batch(1), NOW)
    assert produce(log, seq=0, pid=1).duplicate
    assert log.high_watermark == 6
    log.close()


def test_sequence_wraps_at_int32_max(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    produce(log, seq=2**31 - 2, n=2)  # last sequence = INT32_MAX
    produce(log, seq=0, n=1)
    assert log.high_watermark == 3
    log.close()


@pytest.mark.parametrize("clean", [True, False])
def test_producer_state_survives_restart(tmp_path: Path, clean: bool) -> None:
    config = topic_config(segment_bytes=300)
    log = open_log(tmp_path, config)
    results = [produce(log, seq=2 * i) for i in range(12)]
    assert len(log.segments) > 2
    if clean:
        log.close()
    else:
        log.close(flush=False)  # like a crash: no snapshot at the end, no clean marker
    log = open_log(tmp_path, config, clean_shutdown=clean)
    for i in range(7, 12):
        dup = produce(log, seq=2 * i)
        assert dup.duplicate and dup.base_offset == results[i].base_offset
    with pytest.raises(OutOfOrderSequenceError):
        produce(log, seq=30)
    assert produce(log, seq=24).base_offset == 24
    assert len(read_all(log)) == 26
    log.close()
