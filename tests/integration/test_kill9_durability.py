"""kill -9 durability: an idempotent confluent-kafka producer (acks=all) writes to 3 partitions
while the broker is SIGKILLed at random moments and restarted on the same data and port. Every
acknowledged record must be in the log exactly once, in produce order, at the offset its
delivery report gave, and each partition's offsets are contiguous.

SIGKILL kills the process, not the machine: the page cache survives, so with durability `none`
(and Apache Kafka's default, no flush) nothing written before the kill may be lost.

Durability `always` promises more (acks=all answered only after fsync), which SIGKILL alone
cannot show. `test_kill9_always_cut_to_last_fsync` approximates a power loss from outside: after
the kill it cuts each partition's log back to the lowest state the disk could be in — the end of
the batch holding the highest acknowledged offset (an acknowledged batch was fsynced first), or
the recovery point of `recovery-point-offset-checkpoint` if that is higher (fsynced too) —
drops later segments, and appends a torn fragment of the next batch. What this cannot model:
which unacknowledged writes a real power loss keeps or loses in between (it always keeps none),
lost directory entries of fsynced-file renames, and index files (left as they were, stale).
A storage-level test hook ("truncate to last fsync") would model it exactly.
"""

from __future__ import annotations

import os
import random
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)

from hayase.client.admin import Admin
from hayase.client.config import quiet_logger
from hayase.testing.brokers import ApacheBackend, EmbeddedBroker, apache_available

PARTITIONS = 3
DEFAULT_TRIALS = 2
SLOW_TRIALS = 20


# --------------------------------------------------------------------------- brokers

@pytest.fixture(params=["embedded", "apache"])
def crash_broker(request: pytest.FixtureRequest) -> Iterator[EmbeddedBroker | ApacheBackend]:
    """A private broker for this test alone (it gets killed), restartable in place."""
    yield from _broker(request.param)


@pytest.fixture
def always_broker() -> Iterator[EmbeddedBroker | ApacheBackend]:
    yield from _broker("embedded", {"hayase.durability": "always"})


def _broker(kind: str, configs: dict[str, str] | None = None
            ) -> Iterator[EmbeddedBroker | ApacheBackend]:
    broker: EmbeddedBroker | ApacheBackend
    if kind == "embedded":
        broker = EmbeddedBroker(configs=configs)
    else:
        reason = apache_available()
        if reason:
            pytest.skip(reason)
        broker = ApacheBackend(nodes=1)
    try:
        broker.start()
        yield broker
    finally:
        broker.cleanup()


def _seed() -> int:
    return int(os.environ.get("HAYASE_KILL9_SEED", random.randrange(1 << 30)))


# --------------------------------------------------------------------------- producer

@dataclass
class SequencedProducer:
    """Produces `"<partition>:<sequence>"` values round-robin over the partitions (explicit
    partition, so each partition's sequence is the produce order) until stopped."""

    bootstrap: str
    topic: str
    acked: dict[int, dict[int, int]] = field(default_factory=dict)  # partition -> seq -> offset
    failed: list[tuple[int, int, str]] = field(default_factory=list)
    client_errors: list[str] = field(default_factory=list)
    produced: list[int] = field(default_factory=lambda: [0] * PARTITIONS)
    unflushed: int = -1
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    # Set when the client reports every broker down. librdkafka queues that event after the
    # delivery reports of every response it read before the disconnect, and the producer's
    # poll serves that queue in order: once set, `acked` holds every acknowledgment received.
    brokers_down: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.acked = {p: {} for p in range(PARTITIONS)}
        self.thread = threading.Thread(target=self._run, name="kill9-producer", daemon=True)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        part, seq = (int(x) for x in (msg.value() or b"").decode().split(":"))
        with self.lock:
            if err is not None:
                self.failed.append((part, seq, err.str()))
            else:
                self.acked[part][seq] = msg.offset() or 0

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self.brokers_down.set()
        if err.fatal():
            self.client_errors.append(err.str())

    def _run(self) -> None:
        p = Producer({
            "bootstrap.servers": self.bootstrap, "enable.idempotence": True, "acks": "all",
            "linger.ms": 5, "message.timeout.ms": 240_000, "retry.backoff.ms": 100,
            "retry.backoff.max.ms": 500, "reconnect.backoff.max.ms": 500,
            "error_cb": self._on_error, "logger": quiet_logger(),
        })
        n = 0
        while not self.stop.is_set():
            part = n % PARTITIONS
            value = f"{part}:{self.produced[part]}".encode()
            try:
                p.produce(self.topic, value=value, partition=part, on_delivery=self._on_delivery)
            except BufferError:  # queue full while the broker is down
                p.poll(0.05)
                continue
            self.produced[part] += 1
            n += 1
            if n % 50 == 0:
                p.poll(0.005)  # ~5-10k records/s: the kill lands mid-stream
        self.unflushed = p.flush(240)

    def acked_snapshot(self) -> dict[int, int]:
        """partition -> highest acknowledged offset (-1: none)."""
        with self.lock:
            return {p: max(self.acked[p].values(), default=-1) for p in range(PARTITIONS)}


def _create_topic(bootstrap: str, topic: str, configs: dict[str, str] | None = None) -> None:
    Admin({"bootstrap.servers": bootstrap}, 60).create_topic(topic, PARTITIONS, configs=configs,
                                                             wait_for_leaders=True)


def _read_partition(bootstrap: str, topic: str, partition: int) -> list[tuple[int, bytes]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "kill9-verify",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    out: list[tuple[int, bytes]] = []
    try:
        low, high = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=60)
        assert low == 0, f"partition {partition}: log start offset {low}, expected 0"
        c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        while len(out) < high:
            m = c.poll(60)
            assert m is not None, f"partition {partition}: stuck at {len(out)} of {high}"
            if m.error() is not None:
                assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                continue
            out.append((m.offset() or 0, m.value() or b""))
    finally:
        c.close()
    return out


# --------------------------------------------------------------------------- the check

def _verify(bootstrap: str, topic: str, prod: SequencedProducer, context: str) -> None:
    assert prod.client_errors == [], f"{context}: fatal producer errors {prod.client_errors[:3]}"
    assert prod.failed == [], f"{context}: undelivered records, e.g. {prod.failed[:3]}"
    assert prod.unflushed == 0, f"{context}: {prod.unflushed} records never reported"
    for p in range(PARTITIONS):
        log = _read_partition(bootstrap, topic, p)
        offsets = [o for o, _ in log]
        assert offsets == list(range(len(log))), f"{context}: p{p} offsets not contiguous"
        seqs = [int(v.decode().split(":")[1]) for _, v in log]
        assert all(v.decode().startswith(f"{p}:") for _, v in log)
        dup_or_reorder = next((i for i in range(1, len(seqs)) if seqs[i] <= seqs[i - 1]), None)
        assert dup_or_reorder is None, (
            f"{context}: p{p} duplicate or reordered record at offset {dup_or_reorder}: "
            f"{seqs[max(0, dup_or_reorder - 3):dup_or_reorder + 3]}")
        for seq, offset in prod.acked[p].items():
            assert offset < len(seqs) and seqs[offset] == seq, (
                f"{context}: p{p} acknowledged seq {seq} at offset {offset} is "
                f"{'missing' if offset >= len(seqs) else f'seq {seqs[offset]}'}")
        # No delivery failed, so every produced record is there exactly once.
        assert seqs == list(range(prod.produced[p])), f"{context}: p{p} lost or extra records"


def _run_trials(broker: EmbeddedBroker | ApacheBackend, trials: int,
                cut_to_last_fsync: bool = False) -> None:
    seed = _seed()
    rng = random.Random(seed)
    for trial in range(trials):
        context = f"trial {trial} (HAYASE_KILL9_SEED={seed}, {broker.kind})"
        topic = f"kill9-{trial}-{uuid.uuid4().hex[:8]}"
        # With the cut, small segments so that rolls happen and whole segments get dropped.
        _create_topic(broker.bootstrap_servers, topic,
                      {"segment.bytes": "32768"} if cut_to_last_fsync else None)
        prod = SequencedProducer(broker.bootstrap_servers, topic)
        prod.thread.start()
        try:
            time.sleep(rng.uniform(0.2, 2.0))
            prod.brokers_down.clear()
            broker.kill()
            if cut_to_last_fsync:
                assert isinstance(broker, EmbeddedBroker)
                # Every acknowledgment the client received must be in the snapshot, else the
                # cut removes acknowledged records (a fixed sleep was not enough under load).
                assert prod.brokers_down.wait(120), f"{context}: no 'all brokers down' event"
                cut = _cut_to_last_fsync(broker.data_dir, topic, prod.acked_snapshot(), rng)
                segments = len(list(broker.data_dir.glob(f"{topic}-*/*.log")))
                print(f"{context}: cut {cut} unacknowledged bytes; {segments} segments left")
            time.sleep(rng.uniform(0.0, 0.5))
            broker.start()
            time.sleep(rng.uniform(0.3, 1.5))  # keep producing after the restart
        finally:
            prod.stop.set()
            prod.thread.join(300)
        assert not prod.thread.is_alive(), f"{context}: producer did not finish"
        try:
            _verify(broker.bootstrap_servers, topic, prod, context)
        except AssertionError as e:
            tail = broker.log()[-3000:] if isinstance(broker, EmbeddedBroker) else ""
            raise AssertionError(f"{e}\n--- broker log tail ---\n{tail}") from None


# --------------------------------------------------------------------------- cutting files

_BATCH_HEAD = struct.Struct(">qi")  # baseOffset, batchLength
_LAST_OFFSET_DELTA = struct.Struct(">i")  # at byte 23 of a batch


def _batches(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(start position, end position, last offset) of each complete batch."""
    pos = 0
    while pos + 27 <= len(data):
        base, length = _BATCH_HEAD.unpack_from(data, pos)
        end = pos + 12 + length
        if length < 49 or end > len(data):
            return
        yield pos, end, base + _LAST_OFFSET_DELTA.unpack_from(data, pos + 23)[0]
        pos = end


def _recovery_point(data_dir: Path, topic: str, partition: int) -> int:
    try:
        lines = (data_dir / "recovery-point-offset-checkpoint").read_text().splitlines()
    except FileNotFoundError:
        return 0
    for line in lines[2:]:
        t, p, offset = line.split()
        if t == topic and int(p) == partition:
            return int(offset)
    return 0


def _cut_to_last_fsync(data_dir: Path, topic: str, acked: dict[int, int],
                       rng: random.Random) -> int:
    """Cut every partition back to its highest durable offset; returns the bytes removed."""
    removed = 0
    for p in range(PARTITIONS):
        pdir = data_dir / f"{topic}-{p}"
        assert pdir.is_dir(), f"expected Kafka's layout {pdir}"
        keep = max(acked[p], _recovery_point(data_dir, topic, p) - 1)  # highest durable offset
        segments = sorted(pdir.glob("*.log"), key=lambda f: int(f.stem))
        for i, seg in enumerate(segments):
            data = seg.read_bytes()
            if i > 0 and int(seg.stem) > keep:
                removed += len(data)
                seg.unlink()  # a segment rolled after the last durable offset: never synced
                continue
            cut = next((end for _, end, last in _batches(data) if last >= keep), None)
            if keep < int(seg.stem):
                cut = 0
            if cut is None:
                continue  # every batch in this segment is durable
            lost = data[cut:]
            # What the disk may hold past the cut: a torn prefix of the first lost batch, or
            # zeros where the file had grown but its data never reached the disk.
            torn = lost[: rng.randrange(1, 40)] if lost else bytes(rng.randrange(1, 40))
            removed += len(data) - cut
            with open(seg, "r+b") as f:
                f.truncate(cut)
                f.seek(cut)
                f.write(torn)
    return removed


# --------------------------------------------------------------------------- tests

def test_kill9_acknowledged_records_survive(crash_broker: EmbeddedBroker | ApacheBackend) -> None:
    _run_trials(crash_broker, DEFAULT_TRIALS)


def test_kill9_always_cut_to_last_fsync(always_broker: EmbeddedBroker | ApacheBackend) -> None:
    _run_trials(always_broker, DEFAULT_TRIALS, cut_to_last_fsync=True)


@pytest.mark.slow
def test_kill9_acknowledged_records_survive_many(
        crash_broker: EmbeddedBroker | ApacheBackend) -> None:
    _run_trials(crash_broker, SLOW_TRIALS)


@pytest.mark.slow
def test_kill9_always_cut_to_last_fsync_many(
        always_broker: EmbeddedBroker | ApacheBackend) -> None:
    _run_trials(always_broker, SLOW_TRIALS, cut_to_last_fsync=True)
