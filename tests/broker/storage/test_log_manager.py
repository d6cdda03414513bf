import json
import logging
import os
from pathlib import Path

import pytest
from storage_helpers import NOW, batch, read_all

from hayase.broker.storage import (
    InvalidConfigError,
    InvalidPartitionsError,
    InvalidTopicError,
    LogManager,
    StorageError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)


def test_create_describe_and_reopen(tmp_path: Path) -> None:
    m = LogManager(tmp_path, {"num.partitions": "3"})
    m.create_topic("orders", 2, {"retention.ms": "1000"})
    m.create_topic("auto", -1, {})
    assert m.topics() == {"orders": 2, "auto": 3}
    tid = m.topic_id("orders")
    assert m.topic_config("orders").retention_ms == 1000
    m.log("orders", 1).append(batch(3), NOW)
    m.close()
    assert (tmp_path / ".kafka_cleanshutdown").exists()
    m = LogManager(tmp_path, {"num.partitions": "3"})
    assert not (tmp_path / ".kafka_cleanshutdown").exists()
    assert m.topics() == {"orders": 2, "auto": 3}
    assert m.topic_id("orders") == tid
    assert m.topic_config("orders").retention_ms == 1000
    assert len(read_all(m.log("orders", 1))) == 3
    m.close()


def test_errors(tmp_path: Path) -> None:
    m = LogManager(tmp_path, {})
    m.create_topic("a.b", 1, {})
    with pytest.raises(TopicAlreadyExistsError) as err:
        m.create_topic("a.b", 1, {})
    assert err.value.error_code == 36
    with pytest.raises(InvalidTopicError):
        m.create_topic("a_b", 1, {})  # collides with a.b in metric names, as Kafka refuses
    for bad in ["", ".", "..", "a/b", "x" * 250, "spa ce"]:
        with pytest.raises(InvalidTopicError):
            m.create_topic(bad, 1, {})
    with pytest.raises(InvalidPartitionsError):
        m.create_topic("zero", 0, {})
    with pytest.raises(InvalidConfigError):
        m.create_topic("cfg", 1, {"segment.bytes": "nope"})
    assert "cfg" not in m.topics() and not (tmp_path / "cfg-0").exists()
    with pytest.raises(UnknownTopicOrPartitionError) as err2:
        m.log("a.b", 1)
    assert err2.value.error_code == 3
    with pytest.raises(UnknownTopicOrPartitionError):
        m.delete_topic("missing")
    with pytest.raises(UnknownTopicOrPartitionError):
        m.topic_id("missing")
    m.close()


def test_data_dir_is_locked(tmp_path: Path) -> None:
    m = LogManager(tmp_path, {})
    with pytest.raises(StorageError, match="in use"):
        LogManager(tmp_path, {})
    m.close()
    LogManager(tmp_path, {}).close()


def test_delete_topic_removes_everything(tmp_path: Path) -> None:
    m = LogManager(tmp_path, {})
    m.create_topic("gone", 3, {})
    plog = m.log("gone", 0)
    plog.append(batch(2), NOW)
    m.delete_topic("gone")
    assert plog.closed and plog.open_file_descriptors() == 0
    assert "gone" not in m.topics()
    assert not [n for n in os.listdir(tmp_path) if n.startswith("gone")]
    m.create_topic("gone", 1, {})  # the name is free again, and the log starts empty
    assert m.log("gone", 0).high_watermark == 0
    m.close()


def test_leftover_delete_dirs_are_removed_at_open(tmp_path: Path) -> None:
    m = LogManager(tmp_path, {})
    m.close()
    (tmp_path / "old-0.abc-delete").mkdir()
    (tmp_path / "old-0.abc-delete" / "00000000000000000000.log").write_bytes(b"x")
    LogManager(tmp_path, {}).close()
    assert not (tmp_path / "old-0.abc-delete").exists()


def test_create_partitions(tmp_path: Path) -> None:
    m = LogManager(tmp_path, {})
    m.create_topic("t", 1, {})
    m.create_partitions("t", 4)
    assert m.topics()["t"] == 4
    m.log("t", 3).append(batch(1), NOW)
    with pytest.raises(InvalidPartitionsError):
        m.create_partitions("t", 4)
    m.close()
    m = LogManager(tmp_path, {})
    assert m.log("t", 3).high_watermark == 1
    m.close()


def test_alter_topic_config(tmp_path: Path) -> None:
    m = LogManager(tmp_path, {})
    m.create_topic("t", 2, {"retention.ms": "5"})
    m.alter_topic_config("t", {"segment.bytes": "100000"})
    assert m.log("t", 1).config.segment_bytes == 100000
    assert m.topic_config("t").overrides == {"segment.bytes": "100000"}
    m.close()
    topics = json.loads((tmp_path / "topics.json").read_text())
    assert topics["t"]["configs"] == {"segment.bytes": "100000"}


def test_unclean_restart_recovers_and_logs(tmp_path: Path, caplog) -> None:
    m = LogManager(tmp_path, {"log.segment.bytes": "500"})
    m.create_topic("t", 1, {})
    for _ in range(20):
        m.log("t", 0).append(batch(2), NOW)
    m.flush_all()
    path = tmp_path / "t-0" / sorted(n for n in os.listdir(tmp_path / "t-0") if n.endswith(".log"))[-1]
    # Simulate a crash: drop the manager without close() (files closed, no marker).
    for plog in m.logs():
        plog.close(flush=False)
    os.close(m._lock_fd)
    with open(path, "ab") as f:
        f.write(b"\x00\x01garbage")
    with caplog.at_level(logging.WARNING, logger="hayase.broker.storage"):
        m = LogManager(tmp_path, {"log.segment.bytes": "500"})
    assert m.log("t", 0).high_watermark == 40
    assert any("t-0" in r.getMessage() and "offset 40" in r.getMessage() for r in caplog.records)
    m.close()


def test_run_retention_and_checkpoints(tmp_path: Path) -> None:
    m = LogManager(tmp_path, {"log.roll.ms": "1000", "log.retention.ms": "5000"})
    m.create_topic("t", 1, {})
    for i in range(10):
        m.log("t", 0).append(batch(1, ts=NOW + 1001 * i), NOW + 1001 * i)
    assert m.run_retention(NOW + 10_000) > 0
    start = m.log("t", 0).log_start_offset
    lines = (tmp_path / "log-start-offset-checkpoint").read_text().splitlines()
    assert lines[:2] == ["0", "1"] and lines[2] == f"t 0 {start}"
    m.close()
    m = LogManager(tmp_path, {"log.roll.ms": "1000", "log.retention.ms": "5000"})
    assert m.log("t", 0).log_start_offset == start
    m.close()


@pytest.mark.parametrize("broker", [{"num.partitions": "x"}, {"num.partitions": "0"}, {"log.retention.ms": "soon"}])
def test_bad_broker_config(tmp_path: Path, broker) -> None:
    with pytest.raises(InvalidConfigError):
        LogManager(tmp_path, broker)


def test_retention_pass_refreshes_the_recovery_point_checkpoint(tmp_path: Path) -> None:
    m = LogManager(tmp_path, {"log.segment.bytes": "300"})
    m.create_topic("t", 1, {})
    for _ in range(10):
        m.log("t", 0).append(batch(2), NOW)
    m.wait_for_background_flushes()
    rp = m.log("t", 0).recovery_point
    assert rp > 0  # rolls fsync the old segment (in the flusher thread) and advance it
    assert m.run_retention(NOW) == 0
    lines = (tmp_path / "recovery-point-offset-checkpoint").read_text().splitlines()
    assert lines[2] == f"t 0 {rp}"
    m.close()
    import threading

    assert not [t for t in threading.enumerate() if t.name.startswith("hayase-log-flusher")]


def test_delete_records_is_checkpointed(tmp_path: Path) -> None:
    m = LogManager(tmp_path, {"log.segment.bytes": "300"})
    m.create_topic("t", 1, {})
    for _ in range(10):
        m.log("t", 0).append(batch(2), NOW)
    assert m.delete_records("t", 0, 11) == 11
    assert (tmp_path / "log-start-offset-checkpoint").read_text().splitlines()[2] == "t 0 11"
    m.close()
    m = LogManager(tmp_path, {"log.segment.bytes": "300"})
    assert m.log("t", 0).log_start_offset == 11
    m.close()
