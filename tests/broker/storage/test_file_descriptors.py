"""Deleted segments and topics must release their files at once (the Yahoo! JAPAN incident)."""

import contextlib
import os
from pathlib import Path

import pytest
from storage_helpers import NOW, batch

from hayase.broker.storage import LogManager

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")


def fd_targets() -> list[str]:
    out = []
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the descriptor listdir itself used is gone
            out.append(os.readlink(f"/proc/self/fd/{name}"))
    return out


def deleted_mappings(root: Path) -> list[str]:
    with open("/proc/self/maps") as f:
        return [line for line in f if str(root) in line and "(deleted)" in line]


def test_no_deleted_files_held_after_rolls_retention_and_topic_deletion(tmp_path: Path) -> None:
    before = len(fd_targets())
    # The default configuration: rolls are fsynced by the manager's flusher thread.
    m = LogManager(tmp_path, {"log.segment.bytes": "400", "log.retention.bytes": "2000"})
    partitions = 0
    for round_ in range(6):
        for t in range(3):
            name = f"topic{round_}-{t}"
            m.create_topic(name, 2, {})
            partitions += 2
            for p in range(2):
                for i in range(40):  # ~40 rolls per partition
                    m.log(name, p).append(batch(2, ts=NOW + i), NOW + i)
                m.log(name, p).read(0, 1 << 20)  # reads of inactive segments open and close
        assert m.run_retention(NOW + 100) > 0
        for t in range(2):  # delete most topics, keep one per round
            m.delete_topic(f"topic{round_}-{t}")
        m.wait_for_background_flushes()  # its fsyncs hold a descriptor only while they run
        targets = fd_targets()
        # Only our data dir counts: pytest's own capture files are unlinked temp files.
        assert not [t for t in targets if t.startswith(str(tmp_path)) and "(deleted)" in t]
        open_logs = len(m.logs())
        # One descriptor per live partition (its active segment) plus the data dir lock.
        assert len(targets) - before <= open_logs + 1
        assert sum(plog.open_file_descriptors() for plog in m.logs()) == open_logs
    assert not deleted_mappings(tmp_path)
    live_files = sum(len(os.listdir(tmp_path / d)) for d in os.listdir(tmp_path) if (tmp_path / d).is_dir())
    assert live_files < 6 * 2 * 30  # retention really deleted segment files
    m.close()
    assert len(fd_targets()) == before
