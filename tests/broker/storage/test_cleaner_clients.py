"""A cleaned log as clients and Kafka's own tools see it: offset gaps, a batch emptied but kept
for its producer sequence, a rewritten gzip batch and a batch with a delete horizon (KIP-534).

Embedded only: the data directory is written and cleaned by a LogManager before the broker
starts on it."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cleaner import compressed, dump, kv

from hayase.broker.storage import LogManager
from hayase.testing.apache_kafka import default_libs
from hayase.testing.brokers import EmbeddedBroker

pytestmark = pytest.mark.integration

Entry = tuple[int, bytes | None, bytes | None]


def write_cleaned(data_dir: Path) -> list[Entry]:
    now = int(time.time() * 1000)
    m = LogManager(data_dir, {}, now_ms=now)
    m.create_topic("compacted", 1, {"cleanup.policy": "compact", "index.interval.bytes": "50"})
    log = m.log("compacted", 0)
    for i in range(12):
        log.append(kv([(b"k%d" % (i % 4), b"v%d" % i)], ts=now + i), now)
    log.append(kv([(b"a", b"1"), (b"b", b"1")], ts=now), now)
    for codec in (2, 3, 4):  # partly superseded below: rewritten by the cleaner with their codec
        log.append(compressed(kv([(b"z%d" % codec, b"old"), (b"y%d" % codec, b"kept" * 40)], ts=now), codec), now)
    log.append(compressed(kv([(b"a", b"2"), (b"c", b"1"), (b"d", b"1")], ts=now), 1), now)
    log.append(kv([(b"z%d" % codec, b"new") for codec in (2, 3, 4)], ts=now), now)
    log.append(kv([(b"e", b"1"), (b"f", b"1")], ts=now, pid=77, epoch=0, seq=0), now)  # emptied, kept
    log.append(kv([(b"e", b"2"), (b"f", b"2"), (b"c", None)], ts=now), now)  # a tombstone for c
    log.roll(now)
    log.append(kv([(b"g", b"1")], ts=now), now)
    assert m.run_cleaner(now) == 1
    entries = dump(log)
    m.close()
    return entries


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Entry]]:
    data_dir = tmp_path_factory.mktemp("cleaned") / "data"
    return data_dir, write_cleaned(data_dir)


@pytest.fixture(scope="module")
def broker(cleaned: tuple[Path, list[Entry]]) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(data_dir=cleaned[0]) as b:
        yield b


def test_expected_shape(cleaned: tuple[Path, list[Entry]]) -> None:
    offsets = [offset for offset, _, _ in cleaned[1]]
    assert offsets != list(range(offsets[0], offsets[0] + len(offsets)))  # there are gaps
    assert cleaned[1][-2:] == [(offsets[-2], b"c", None), (offsets[-1], b"g", b"1")]


def test_confluent_kafka_consumer_reads_the_cleaned_log(broker: EmbeddedBroker, cleaned) -> None:
    from confluent_kafka import Consumer

    expected = cleaned[1]
    c = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "cleaned-ck",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe(["compacted"])
    got: list[Entry] = []
    try:
        for _ in range(120):  # bounded polls, not a timing assertion
            msg = c.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append((msg.offset(), msg.key(), msg.value()))
            if len(got) >= len(expected):
                break
    finally:
        c.close()
    assert got == expected


def test_kafka_python_consumer_reads_the_cleaned_log(broker: EmbeddedBroker, cleaned) -> None:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer("compacted", bootstrap_servers=broker.bootstrap_servers,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=5000)
    try:
        got = [(r.offset, r.key, r.value) for r in consumer]
    finally:
        consumer.close()
    assert got == cleaned[1]


@pytest.mark.skipif(shutil.which("java") is None or not list(default_libs().glob("kafka_2*.jar")),
                    reason="needs java and the Kafka jars")
def test_kafka_dump_log_segments_accepts_the_cleaned_segment(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    write_cleaned(data_dir)
    segment = data_dir / "compacted-0" / f"{0:020d}"
    run = subprocess.run(
        ["java", "-cp", f"{default_libs()}/*", "kafka.tools.DumpLogSegments", "--deep-iteration", "--print-data-log",
         "--files", f"{segment}.log,{segment}.index,{segment}.timeindex"],
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    batches = [line for line in run.stdout.splitlines() if line.startswith("baseOffset:")]
    assert batches and all("isvalid: true" in line for line in batches)
    assert any("count: 0" in line and "producerId: 77" in line and "lastSequence: 1" in line for line in batches)
    assert any("deleteHorizonMs: OptionalLong[" in line for line in batches)
    for codec, count in (("snappy", 1), ("lz4", 1), ("zstd", 1), ("gzip", 2)):  # rewritten, same codec
        assert any(f"compresscodec: {codec}" in line and f"count: {count} " in line for line in batches), codec
    kept = [line for line in run.stdout.splitlines() if line.startswith("| offset:") and " key: y" in line]
    assert len(kept) == 3 and all("payload: " + "kept" * 40 in line for line in kept)
    assert "mismatch" not in run.stdout.lower() and "corrupt" not in run.stdout.lower()
