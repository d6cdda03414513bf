"""Protocol robustness (embedded broker only): more than 10,000 malformed or random frames —
bad and huge size prefixes, truncated headers, unknown API keys, unsupported versions, random
bodies for every API the broker serves, mutated valid requests, frames cut off mid-way — sent
on thousands of connections never stop the broker. Each connection whose frame is certainly bad
is closed by the broker, with a log line naming that connection; a well-behaved confluent-kafka
client on its own connection keeps producing and consuming throughout and afterwards.

The generator is a seeded random generator (HAYASE_FUZZ_SEED reproduces a run); the broker is
treated as a black box (its API versions come from an ApiVersions request)."""

from __future__ import annotations

import contextlib
import os
import random
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from hayase.client.config import quiet_logger
from hayase.testing.brokers import EmbeddedBroker

MIN_FRAMES = 10_000
MAX_REQUEST = 104_857_600  # socket.request.max.bytes default
CLOSE_TIMEOUT = 60.0  # generous: 16 connections at once on a loaded 2-core machine
API_VERSIONS = 18


# --------------------------------------------------------------------------- frames

def frame(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def header(api_key: int, version: int, correlation_id: int, client_id: bytes | None = b"fuzz",
           flexible: bool = False) -> bytes:
    cid = struct.pack(">h", -1) if client_id is None else struct.pack(">h", len(client_id)) + client_id
    return struct.pack(">hhi", api_key, version, correlation_id) + cid + (b"\x00" if flexible else b"")


def api_versions(host: str, port: int) -> dict[int, tuple[int, int]]:
    """The broker's API version ranges, from an ApiVersions v0 request."""
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(frame(header(API_VERSIONS, 0, 1)))
        size = struct.unpack(">i", _recv_exactly(s, 4))[0]
        body = _recv_exactly(s, size)
    corr, err, n = struct.unpack_from(">ihi", body)
    assert (corr, err) == (1, 0)
    ranges = {}
    for i in range(n):
        key, lo, hi = struct.unpack_from(">hhh", body, 10 + 6 * i)
        ranges[key] = (lo, hi)
    return ranges


def _recv_exactly(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        assert chunk, "connection closed"
        buf += chunk
    return buf


@dataclass
class Case:
    """One connection: the bytes to send and whether the broker must close it with a log line."""

    kind: str
    payload: bytes
    frames: int
    must_close: bool
    half_close: bool = False  # shut our write side after sending (EOF mid-frame or after)


def _rand(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


def _metadata_v1(rng: random.Random) -> bytes:
    topics = [f"t{rng.randrange(1000)}".encode() for _ in range(rng.randrange(0, 3))]
    body = struct.pack(">i", len(topics)) + b"".join(struct.pack(">h", len(t)) + t for t in topics)
    return header(3, 1, rng.randrange(1 << 31)) + body


def _metadata_v9(rng: random.Random) -> bytes:
    topics = [f"t{rng.randrange(1000)}".encode() for _ in range(rng.randrange(0, 3))]
    body = bytes([len(topics) + 1]) + b"".join(
        bytes([len(t) + 1]) + t + b"\x00" for t in topics)  # compact array of {name, tags}
    body += b"\x01\x00\x00\x00"  # allow_auto_topic_creation, 2 x include_*_authorized_ops, tags
    return header(3, 9, rng.randrange(1 << 31), flexible=True) + body


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randrange(1, 6)):
        op = rng.randrange(4)
        if op == 0 and b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            del b[rng.randrange(len(b)):]
        elif op == 2:
            pos = rng.randrange(len(b) + 1)
            b[pos:pos] = _rand(rng, rng.randrange(1, 8))
        elif b:
            pos = rng.randrange(len(b))
            b[pos] = rng.choice((0x00, 0x7F, 0x80, 0xFF))
    return bytes(b)


def generate(rng: random.Random, ranges: dict[int, tuple[int, int]]) -> Iterator[Case]:
    """An endless mix of cases."""
    keys = sorted(ranges)
    unknown = [k for k in range(-5, 200) if k not in ranges] + [32767, -32768]
    makers: list[Callable[[], Case]] = [
        lambda: Case("negative-size", struct.pack(">i", -rng.randrange(1, 1 << 31))
                     + _rand(rng, rng.randrange(0, 20)), 1, True),
        lambda: Case("huge-size", struct.pack(">i", rng.randrange(MAX_REQUEST + 1, 1 << 31))
                     + _rand(rng, rng.randrange(0, 64)), 1, True),
        lambda: Case("truncated-header", frame(_rand(rng, rng.randrange(0, 10))), 1, True),
        lambda: Case("unknown-api-key", frame(
            header(rng.choice(unknown), rng.randrange(0, 20), rng.randrange(1 << 31))
            + _rand(rng, rng.randrange(0, 64))), 1, True),
        lambda: _unsupported_version(rng, ranges),
        lambda: _random_bodies(rng, ranges, keys),
        lambda: _mutated(rng),
        lambda: Case("cut-mid-frame", _cut(rng, ranges, keys), 1, False, half_close=True),
        lambda: Case("garbage-stream", _rand(rng, rng.randrange(4, 300)), 1, False,
                     half_close=True),
    ]
    while True:
        yield rng.choice(makers)()


def _unsupported_version(rng: random.Random, ranges: dict[int, tuple[int, int]]) -> Case:
    key = rng.choice([k for k in ranges if k != API_VERSIONS])
    lo, hi = ranges[key]
    version = rng.choice([v for v in (lo - 1, hi + 1, hi + 5, 32767, -1) if not lo <= v <= hi])
    return Case("unsupported-version", frame(header(key, version, rng.randrange(1 << 31))
                                             + _rand(rng, rng.randrange(0, 64))), 1, True)


def _random_bodies(rng: random.Random, ranges: dict[int, tuple[int, int]],
                   keys: list[int]) -> Case:
    """Several pipelined frames for real API keys and versions with random bodies. Any of them
    may happen to decode; the broker answers those and closes at the first that does not."""
    frames = []
    for _ in range(rng.randrange(1, 8)):
        key = rng.choice(keys)
        lo, hi = ranges[key]
        v = rng.randrange(lo, hi + 1)
        client_id = None if rng.random() < 0.1 else _rand(rng, rng.randrange(0, 12))
        body = _rand(rng, rng.choice((0, 1, 2, 4, 8, rng.randrange(0, 300))))
        frames.append(frame(header(key, v, rng.randrange(1 << 31), client_id,
                                   flexible=rng.random() < 0.5) + body))
    return Case("random-body", b"".join(frames), len(frames), False, half_close=True)


def _mutated(rng: random.Random) -> Case:
    frames = [frame(_mutate(rng, rng.choice((_metadata_v1, _metadata_v9))(rng)))
              for _ in range(rng.randrange(1, 6))]
    return Case("mutated-valid", b"".join(frames), len(frames), False, half_close=True)


def _cut(rng: random.Random, ranges: dict[int, tuple[int, int]], keys: list[int]) -> bytes:
    whole = frame(_metadata_v1(rng))
    return whole[: rng.randrange(1, len(whole))]


# --------------------------------------------------------------------------- one connection

@dataclass
class Outcome:
    case: Case
    local_port: int
    closed: bool
    replied: int  # bytes the broker sent back


def send_case(port: int, case: Case) -> Outcome:
    with socket.create_connection(("127.0.0.1", port), timeout=CLOSE_TIMEOUT) as s:
        local_port = s.getsockname()[1]
        replied = 0
        try:
            s.sendall(case.payload)
            if case.half_close:
                s.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + CLOSE_TIMEOUT
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    return Outcome(case, local_port, True, replied)
                replied += len(chunk)
        except (ConnectionResetError, BrokenPipeError):
            return Outcome(case, local_port, True, replied)
        except TimeoutError:
            pass
        return Outcome(case, local_port, False, replied)


# --------------------------------------------------------------------------- the good client

@dataclass
class GoodClient:
    """Produces and consumes one topic on its own connections while the fuzzing runs."""

    bootstrap: str
    topic: str
    produced: int = 0
    acked: int = 0
    consumed: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._produce, daemon=True),
                        threading.Thread(target=self._consume, daemon=True)]
        for t in self.threads:
            t.start()

    def _produce(self) -> None:
        p = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True,
                      "linger.ms": 5, "logger": quiet_logger()})

        def delivered(err: KafkaError | None, _msg: object) -> None:
            if err is not None:
                self.errors.append(f"delivery: {err.str()}")
            else:
                self.acked += 1

        while not self.stop.is_set():
            p.produce(self.topic, value=str(self.produced).encode(), on_delivery=delivered)
            self.produced += 1
            p.poll(0.01)
        if p.flush(60) != 0:
            self.errors.append("producer flush left records undelivered")

    def _consume(self) -> None:
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "fuzz-unused",
                      "enable.auto.commit": False, "logger": quiet_logger()})
        c.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        try:
            while not (self.stop.is_set() and len(self.consumed) >= self.acked > 0):
                m = c.poll(0.2)
                if m is None:
                    continue
                if m.error() is not None:
                    self.errors.append(f"consume: {m.error().str()}")
                    continue
                self.consumed.append(int(m.value() or b"-1"))
                if self.stop.is_set() and len(self.consumed) > self.produced:
                    break
        finally:
            c.close()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(120)


# --------------------------------------------------------------------------- the test

@pytest.fixture
def fuzz_broker() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker()
    try:
        yield broker.start()
    finally:
        broker.cleanup()


def _fd_count(pid: int) -> int:
    """Open sockets (mutated Metadata requests auto-create topics, whose segment files are
    rightly open: only connections count here)."""
    return sum(1 for t in _fd_targets(pid) if t.startswith("socket:"))


def _fd_targets(pid: int) -> list[str]:
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):  # closed while listing
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return sorted(out)


def test_malformed_frames_never_stop_the_broker(fuzz_broker: EmbeddedBroker) -> None:
    seed = int(os.environ.get("HAYASE_FUZZ_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    context = f"HAYASE_FUZZ_SEED={seed}"
    bootstrap = fuzz_broker.bootstrap_servers
    topic = f"fuzz-good-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    ranges = api_versions("127.0.0.1", fuzz_broker.port)
    assert len(ranges) >= 10

    good = GoodClient(bootstrap, topic)
    good.start()
    deadline = time.monotonic() + 120
    while good.acked < 10 or len(good.consumed) < 10:  # the good client is connected
        assert time.monotonic() < deadline, f"good client not working: {good.errors[:3]}"
        time.sleep(0.1)
    fds_before = _fd_count(fuzz_broker.pid)
    cases: list[Case] = []
    gen = generate(rng, ranges)
    while sum(c.frames for c in cases) < MIN_FRAMES:
        cases.append(next(gen))
    acked_before = good.acked
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(lambda c: send_case(fuzz_broker.port, c), cases))
        # The storm goes on until the good client had an acknowledgment in it (bounded), so
        # that "kept working during the storm" never depends on how fast the storm went.
        storm_end = time.monotonic() + 120
        while good.acked == acked_before and time.monotonic() < storm_end:
            more = [next(gen) for _ in range(16)]
            cases += more
            outcomes += pool.map(lambda c: send_case(fuzz_broker.port, c), more)
    acked_during = good.acked - acked_before

    assert fuzz_broker.proc is not None and fuzz_broker.proc.poll() is None, (
        f"{context}: the broker exited\n{fuzz_broker.log()[-3000:]}")
    frames = sum(c.frames for c in cases)
    assert frames >= MIN_FRAMES

    # Every certainly-bad connection was closed by the broker, with a line naming it.
    log_text = fuzz_broker.log()
    logged = {int(p) for p in re.findall(r"closing connection from 127\.0\.0\.1:(\d+)", log_text)}
    bad = [o for o in outcomes if o.case.must_close]
    not_closed = [o for o in bad if not o.closed]
    assert not not_closed, f"{context}: {len(not_closed)} bad connections left open, e.g. " \
                           f"{not_closed[0].case.kind} {not_closed[0].case.payload[:40]!r}"
    unlogged = [o for o in bad if o.local_port not in logged]
    assert not unlogged, f"{context}: {len(unlogged)} closes without a log line, e.g. " \
                         f"{unlogged[0].case.kind} {unlogged[0].case.payload[:40]!r}"
    lingering = [o for o in outcomes if not o.closed]
    assert not lingering, (f"{context}: {len(lingering)} half-closed connections not closed "
                           f"within {CLOSE_TIMEOUT}s, e.g. {lingering[0].case.kind} "
                           f"{lingering[0].case.payload[:60]!r}")
    # Garbage is rejected by decoding, never by a handler crashing on it.
    crashes = [line for line in log_text.splitlines()
               if "failed unexpectedly" in line or "handler for API" in line]
    assert not crashes, f"{context}: {len(crashes)} handler/decoder crashes, e.g. {crashes[:3]}"

    # The well-behaved client kept working during the storm and still works afterwards.
    assert acked_during > 0, f"{context}: no record acknowledged while fuzzing"
    time.sleep(0.5)
    good.finish()
    assert good.errors == [], f"{context}: {good.errors[:5]}"
    assert good.acked == good.produced
    assert good.consumed == list(range(good.produced)), f"{context}: consumer lost records"

    # Every fuzz connection's socket is released.
    deadline = time.monotonic() + 60
    while _fd_count(fuzz_broker.pid) > fds_before + 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _fd_count(fuzz_broker.pid) <= fds_before + 2, (
        f"{context}: {_fd_count(fuzz_broker.pid) - fds_before} sockets leaked")
    kinds = {k: sum(1 for c in cases if c.kind == k) for k in sorted({c.kind for c in cases})}
    print(f"{context}: {frames} frames on {len(cases)} connections: {kinds}")
