"""The log cleaner runs inside the broker: a compacted topic keeps the latest record per key."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from hayase.testing.brokers import EmbeddedBroker


@pytest.fixture(scope="module")
def broker():
    with EmbeddedBroker(configs={"log.cleaner.backoff.ms": "200"}) as b:
        yield b


def _read_all(bootstrap: str, topic: str) -> list[tuple[int, bytes, bytes | None]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False})
    try:
        low, high = c.get_watermark_offsets(TopicPartition(topic, 0), 30)
        c.assign([TopicPartition(topic, 0, low)])
        out: list[tuple[int, bytes, bytes | None]] = []
        deadline = time.monotonic() + 120
        while True:
            # Read to the end: a partial read on a slow machine would be judged as the log.
            assert time.monotonic() < deadline, f"{len(out)} of the records up to {high}"
            m = c.poll(0.5)
            if m is not None and not m.error():
                out.append((m.offset(), m.key(), m.value()))
                if m.offset() == high - 1:
                    break
        return out
    finally:
        c.close()


def test_broker_compacts_a_compacted_topic(broker):
    topic = "compacted-latest"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic(topic, 1, 1, config={
        "cleanup.policy": "compact", "segment.bytes": "2048", "segment.ms": "200",
        "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "0"})])[topic].result(10)
    p = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 0})
    for round_ in range(20):
        for k in range(10):
            p.produce(topic, f"v{round_}".encode(), f"k{k}".encode())
        p.flush(10)
    p.produce(topic, None, b"k0")  # a tombstone for k0
    assert p.flush(10) == 0
    # Only closed segments are cleaned: after segment.ms, the next append rolls the segment, so
    # everything above ends up below the active segment, which holds the tail record alone.
    time.sleep(0.5)
    p.produce(topic, b"tail", b"k-tail")
    assert p.flush(10) == 0

    # The cleaner runs every 200 ms; wait (bounded) until one record per key is left.
    deadline = time.monotonic() + 60
    while True:
        records = _read_all(broker.bootstrap_servers, topic)
        keys = [k for _, k, _ in records]
        if len(keys) == len(set(keys)) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(keys) == len(set(keys)), f"{len(records)} records for {len(set(keys))} keys\n{broker.log()[-3000:]}"
    latest = {k: v for _, k, v in records}
    assert latest.get(b"k0") is None  # the tombstone, or nothing once delete.retention.ms passed
    assert latest[b"k-tail"] == b"tail"
    for k in range(1, 10):
        assert latest[f"k{k}".encode()] == b"v19"
    offsets = [o for o, _, _ in records]
    assert offsets == sorted(offsets) and offsets[-1] == 201  # offsets are kept, with gaps
    assert "log cleaner compacted" in broker.log()
