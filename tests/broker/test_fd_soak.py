"""The file-descriptor lesson of the Yahoo! JAPAN talk: brokers died of descriptors held by
deleted segment files. The embedded broker runs with 1 MiB segments and 10-second retention
(checked every second) while a steady topic is written continuously and short-lived topics are
created, written and deleted in a loop. Every second the broker's /proc/<pid>/fd and
/proc/<pid>/maps are sampled:

- no descriptor and no mapping points at a deleted file, at any sample;
- the number of open descriptors stays bounded (by a fixed allowance over the count before the
  load: it must not grow with the segments rolled and deleted);
- once the load stops, disk use under the data folder returns under the retention bound (each
  live partition keeps at most its active segment and one rolled one).

`test_fd_soak_short` (about 40 s) runs in the default suite; `test_fd_soak_10_minutes` is the
soak itself: `pytest -m slow tests/broker/test_fd_soak.py`.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from hayase.testing.brokers import EmbeddedBroker

SEGMENT_BYTES = 1024 * 1024
RETENTION_MS = 10_000
CHECK_MS = 1_000
STEADY_PARTITIONS = 4
CHURN_PARTITIONS = 3
FD_ALLOWANCE = 128  # connections, the churn topics' active segments, transient read descriptors


@dataclass
class Samples:
    fds: list[int] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    disk: list[int] = field(default_factory=list)
    churned: int = 0
    churned_records: int = 0
    written: int = 0


def fd_targets(pid: int) -> list[str]:
    out = []
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            out.append(os.readlink(entry))
        except OSError:  # closed while listing
            continue
    return out


def deleted_entries(pid: int) -> list[str]:
    """Descriptors and mappings of deleted files (anonymous memfd/O_TMPFILE aside: no leak)."""
    found = [f"fd -> {t}" for t in fd_targets(pid) if t.endswith(" (deleted)") and "/memfd:" not in t]
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            if line.rstrip().endswith("(deleted)") and "/memfd:" not in line and "/dev/shm" not in line:
                found.append("map " + line.split(maxsplit=5)[-1].strip())
    return found


def disk_bytes(root: Path) -> int:
    """Bytes actually allocated under root (sparse index files count for what they use)."""
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            try:
                total += os.stat(os.path.join(dirpath, name)).st_blocks * 512
            except FileNotFoundError:  # deleted while walking
                continue
    return total


def soak(tmp_path: Path, seconds: float) -> tuple[Samples, int, int]:
    broker = EmbeddedBroker(data_dir=tmp_path / "data", configs={
        "log.segment.bytes": str(SEGMENT_BYTES),
        "log.retention.ms": str(RETENTION_MS),
        "log.retention.check.interval.ms": str(CHECK_MS),
    }).start()
    samples = Samples()
    stop = threading.Event()
    errors: list[BaseException] = []
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        steady = f"steady-{uuid.uuid4().hex[:6]}"
        admin.create_topics([NewTopic(steady, STEADY_PARTITIONS, 1)])[steady].result(30)
        baseline = len(fd_targets(broker.pid))

        def write_steady() -> None:
            # about 1 MB/s: each partition rolls a 1 MiB segment every few seconds
            p = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 20})
            value = b"s" * 1000
            t0 = time.monotonic()
            while not stop.is_set():
                due = int(1000 * (time.monotonic() - t0)) - samples.written
                for _ in range(max(due, 0)):
                    try:
                        p.produce(steady, value)
                    except BufferError:
                        p.poll(0.05)
                        break
                    samples.written += 1
                p.poll(0)
                time.sleep(0.01)
            p.flush(30)

        def churn() -> None:
            p = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 5})
            failed: list[object] = []

            def delivered(err: object, _msg: object) -> None:
                if err is not None:
                    failed.append(err)

            while not stop.is_set():
                name = f"churn-{uuid.uuid4().hex[:8]}"
                admin.create_topics([NewTopic(name, CHURN_PARTITIONS, 1)])[name].result(30)
                for i in range(300):
                    p.produce(name, b"c" * 500, partition=i % CHURN_PARTITIONS, on_delivery=delivered)
                if p.flush(30) != 0 or failed:
                    raise AssertionError(f"records to {name} not delivered: {failed[:3]}")
                samples.churned_records += 300
                admin.delete_topics([name])[name].result(30)
                samples.churned += 1

        def guarded(fn: object) -> threading.Thread:
            def run() -> None:
                try:
                    fn()  # type: ignore[operator]
                except BaseException as e:  # noqa: BLE001 - re-raised by the test
                    errors.append(e)
                    stop.set()
            t = threading.Thread(target=run, daemon=True)
            t.start()
            return t

        workers = [guarded(write_steady), guarded(churn)]
        # The load runs for ``seconds``, and on (bounded) until it went through what the checks
        # need: a loaded machine writes less per second, and must not make them fail.
        deadline = time.monotonic() + seconds
        cap = deadline + 300
        while not stop.is_set() and (time.monotonic() < deadline or (
                not enough_load(samples) and time.monotonic() < cap)):
            samples.fds.append(len(fd_targets(broker.pid)))
            samples.deleted += deleted_entries(broker.pid)
            samples.disk.append(disk_bytes(broker.data_dir))
            time.sleep(1)
        stop.set()
        for t in workers:
            t.join(60)
        if errors:
            raise errors[0]
        # Load stopped: retention must bring the disk under its bound. The steady topic keeps at
        # most an active segment and one rolled (not yet expired) segment per partition, plus
        # small index and checkpoint files.
        bound = STEADY_PARTITIONS * 2 * SEGMENT_BYTES + 1024 * 1024
        settle = time.monotonic() + (RETENTION_MS + 10 * CHECK_MS) / 1000 + 120
        while disk_bytes(broker.data_dir) > bound and time.monotonic() < settle:
            samples.deleted += deleted_entries(broker.pid)
            time.sleep(1)
        samples.disk.append(disk_bytes(broker.data_dir))
        samples.deleted += deleted_entries(broker.pid)
        return samples, baseline, bound
    finally:
        stop.set()
        broker.cleanup()


def enough_load(samples: Samples) -> bool:
    """Topics churned, and so much written that retention had to delete steady segments."""
    return samples.churned > 0 and \
        samples.written * 1000 > 2 * STEADY_PARTITIONS * SEGMENT_BYTES


def check(samples: Samples, baseline: int, bound: int) -> None:
    report = (f"fds baseline {baseline}, max {max(samples.fds)}; disk max {max(samples.disk)} "
              f"final {samples.disk[-1]} (bound {bound}); {samples.churned} topics created, written "
              f"({samples.churned_records} records) and deleted, "
              f"{samples.written} steady records")
    print(report)
    # enough data went through that retention had to delete segments, not just keep them
    assert enough_load(samples), report
    assert samples.deleted == [], f"deleted files held open: {sorted(set(samples.deleted))[:10]}"
    assert max(samples.fds) <= baseline + FD_ALLOWANCE, report
    assert samples.disk[-1] <= bound, report


def test_fd_soak_short(tmp_path: Path) -> None:
    check(*soak(tmp_path, 40))


@pytest.mark.slow
@pytest.mark.timeout(1200)  # the suite's default is 600 s; the soak alone takes 600
def test_fd_soak_10_minutes(tmp_path: Path) -> None:
    check(*soak(tmp_path, 600))
