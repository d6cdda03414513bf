"""`hayase broker doctor` against a real embedded broker: each problem of the Yahoo! JAPAN talk is
provoked on a running broker (with --metrics-port) and the doctor must name it, with its numbers.

- round-robin producers with tiny batches: the doctor names that producer, not the keyed one;
- a busy request handler (idle < 30%): real load cannot reliably drive a shared 2-core machine's
  broker below 30%, so the test checks that the doctor's verdict agrees with the broker's own
  scraped gauge under round-robin load, and the threshold on a real scrape with only the idle
  sample changed (29% is a finding, 30% is not);
- file descriptors above 80% of the limit: a broker started with RLIMIT_NOFILE 256 and a topic
  of 200 partitions;
- deleted files held open: after many topic deletions (with data) the broker's metric stays 0 and
  /proc/<pid>/fd holds no "(deleted)" file; the doctor's rule on a real scrape with the sample set.

Embedded only: Apache Kafka has no /metrics (its idle ratio is read over JMX by
bench/incident_yahoo.py).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from hayase.broker.doctor import IDLE_ALERT, Scrape, diagnose
from hayase.client.partitioners import PartitionedProducer
from hayase.testing.apache_kafka import free_port
from hayase.testing.brokers import EmbeddedBroker

IDLE = "hayase_broker_request_handler_idle_ratio"


def scrape(broker: EmbeddedBroker) -> Scrape:
    url = f"http://127.0.0.1:{broker.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return Scrape.parse(resp.read().decode(), time.monotonic())


def with_sample(s: Scrape, name: str, value: float) -> Scrape:
    """A copy of a real scrape with one unlabelled sample replaced."""
    out = Scrape(s.at, dict(s.samples))
    out.samples[(name, ())] = value
    return out


def admin(broker: EmbeddedBroker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap_servers})


def create_topic(broker: EmbeddedBroker, partitions: int) -> str:
    name = f"doctor-{uuid.uuid4().hex[:8]}"
    client = admin(broker)  # kept alive until the result: destroying it cancels the request
    client.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    return name


def delete_topic(broker: EmbeddedBroker, name: str) -> None:
    client = admin(broker)
    client.delete_topics([name])[name].result(30)


def deleted_fds(pid: int, under: Path) -> list[str]:
    out = []
    prefix = str(under.resolve())
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(entry)
        except OSError:  # closed while listing
            continue
        if target.endswith(" (deleted)") and target.startswith(prefix):
            out.append(target)
    return out


class Paced(threading.Thread):
    """One producer instance writing keyless records at about `rate` records/s until stopped."""

    def __init__(self, broker: EmbeddedBroker, topic: str, client_id: str, strategy: str,
                 rate: float, linger_ms: int = 50) -> None:
        super().__init__(daemon=True)
        self.producer = PartitionedProducer(
            {"bootstrap.servers": broker.bootstrap_servers, "client.id": client_id,
             "linger.ms": linger_ms}, partitioner=strategy)  # type: ignore[arg-type]
        self.topic, self.rate = topic, rate
        self.stopped = threading.Event()
        self.sent = 0

    def run(self) -> None:
        # One record per 1/rate s and no catching up: a thread starved on a loaded machine falls
        # behind rather than sending a burst (a burst puts two records of one partition in a
        # batch, and the round-robin producer's batches are then not one record each).
        while not self.stopped.is_set():
            self.producer.produce(self.topic, b"v" * 100)
            self.sent += 1
            self.producer.poll(0)
            self.stopped.wait(1 / self.rate)
        self.producer.flush(30)

    def stop(self) -> None:
        self.stopped.set()
        self.join(60)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker(data_dir=tmp_path_factory.mktemp("doctor") / "data", metrics_port=free_port())
    b.start()
    try:
        yield b
    finally:
        b.cleanup()


def test_round_robin_tiny_batches_name_the_producer_and_agree_with_the_idle_gauge(broker):
    # 50 records/s over 128 partitions: one-record batches, each its own request, so about
    # 50 requests/s for 128 partitions. The keyed producer: one partition, a batch per linger.
    topic = create_topic(broker, 128)
    rr = Paced(broker, topic, "rr-producer", "round_robin", rate=50)
    keyed = Paced(broker, topic, "keyed-producer", "producer_key", rate=50)
    rr.start()
    keyed.start()
    try:
        deadline = time.monotonic() + 60
        # until round-robin has touched every partition (a condition, not a duration)
        while scrape(broker).value("hayase_broker_client_partitions_active",
                                   client_id="rr-producer") != 128:
            assert time.monotonic() < deadline, "round-robin producer never reached 128 partitions"
            time.sleep(0.5)
        a = scrape(broker)
        b = a
        # A window of at least 3 s in which both producers sent what the scenario means: the
        # round-robin one requests, the keyed one a request per second at least (about 20 at
        # its linger; fewer only if its thread was starved). Waited for, not assumed.
        while not _window_ready(a, b):
            assert time.monotonic() < deadline + 120, "producers never got going"
            time.sleep(0.5)
            b = scrape(broker)
    finally:
        rr.stop()
        keyed.stop()
        delete_topic(broker, topic)
    findings = diagnose(a, b)
    tiny = [f for f in findings if "tiny batches" in f.problem]
    assert [f.problem for f in tiny] == ["producer rr-producer sends tiny batches"], findings
    assert "but writes to 128 partitions" in tiny[0].detail
    assert "1.0 records per batch" in tiny[0].detail
    assert "producer_key" in tiny[0].cure
    # The busy-handler verdict is whatever the broker's own gauge says, with the 30% threshold.
    idle = b.value(IDLE)
    assert idle is not None and 0.0 <= idle <= 1.0
    busy = any(f.problem == "request handler is busy" for f in findings)
    assert busy == (idle < IDLE_ALERT), (idle, findings)


def _window_ready(a: Scrape, b: Scrape) -> bool:
    dt = b.at - a.at
    if dt < 3:
        return False
    name = "hayase_broker_client_produce_requests_total"
    sent = {cid: v - a.by_label(name, "client_id").get(cid, 0.0)
            for cid, v in b.by_label(name, "client_id").items()}
    return sent.get("rr-producer", 0.0) >= 10 and sent.get("keyed-producer", 0.0) >= dt


def test_busy_handler_threshold_on_a_real_scrape(broker):
    real = scrape(broker)
    assert real.value(IDLE) is not None
    below = diagnose(real, with_sample(real, IDLE, 0.29))
    at = diagnose(real, with_sample(real, IDLE, 0.30))
    assert [f.problem for f in below] == ["request handler is busy"]
    assert "idle 29% of the time (alert below 30%)" in below[0].detail
    assert at == []


def test_file_descriptors_above_80_percent_of_a_low_limit(tmp_path):
    class Limited(EmbeddedBroker):
        def command(self) -> list[str]:
            return ["prlimit", "--nofile=256:256", "--", *super().command()]

    if not Path("/usr/bin/prlimit").exists() and not any(
            Path(p, "prlimit").exists() for p in os.environ.get("PATH", "").split(":")):
        pytest.skip("prlimit not installed")
    b = Limited(data_dir=tmp_path / "data", metrics_port=free_port()).start()
    try:
        before = scrape(b)
        assert before.value("hayase_broker_max_fds") == 256
        topic = create_topic(b, 200)
        p = PartitionedProducer({"bootstrap.servers": b.bootstrap_servers, "linger.ms": 5},
                                partitioner="round_robin")
        for _ in range(200):  # one record per partition, so every partition's segment is open
            p.produce(topic, b"v")
        assert p.flush(30) == 0
        after = scrape(b)
    finally:
        b.cleanup()
    fds = after.value("hayase_broker_open_fds")
    assert fds is not None and fds > 0.8 * 256, fds
    findings = diagnose(before, after)
    near = [f for f in findings if f.problem == "file descriptors near the limit"]
    assert len(near) == 1, findings
    assert f"{fds:.0f} open of 256" in near[0].detail


def test_no_deleted_file_is_held_open_after_many_topic_deletions(broker):
    for _ in range(20):
        topic = create_topic(broker, 4)
        p = PartitionedProducer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 5},
                                partitioner="round_robin")
        for i in range(200):
            p.produce(topic, b"x" * 200 + str(i).encode())
        assert p.flush(30) == 0
        delete_topic(broker, topic)
        s = scrape(broker)
        assert s.value("hayase_broker_deleted_open_files") == 0
        assert deleted_fds(broker.pid, broker.data_dir) == []
        assert not [f for f in diagnose(s, s) if f.problem == "deleted files still held open"]
    # Deleted topics' partitions no longer count as active (nor as a producer's partitions).
    total, active = s.value("hayase_broker_partitions"), s.value("hayase_broker_partitions_active")
    assert total is not None and active is not None and active <= total, (active, total)
    # The doctor's rule, on a real scrape with only the deleted-files sample set.
    held = diagnose(s, with_sample(s, "hayase_broker_deleted_open_files", 2))
    assert [f.problem for f in held] == ["deleted files still held open"]
    assert "2 descriptors point at deleted files" in held[0].detail


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
