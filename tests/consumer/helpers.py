"""Helpers for the parallel consumer tests: topics, keyed records, committed offsets."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from hayase.testing.apache_kafka import free_port  # noqa: F401 - the tests import it from here


def create_topic(bootstrap: str, name: str, partitions: int = 3) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=30)
    for f in fs.values():
        f.result(30)
    # Wait until metadata shows every partition with a leader.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = admin.list_topics(name, timeout=5).topics.get(name)
        if md and md.error is None and len(md.partitions) == partitions and all(
                p.leader >= 0 for p in md.partitions.values()):
            return
        time.sleep(0.1)
    raise TimeoutError(f"topic {name} not ready")


def produce_keyed(bootstrap: str, topic: str, n: int, keys: int, partitions: int = 3,
                  start: int = 0) -> dict[int, list[int]]:
    """n records, value = its sequence number, key = f"k{seq % keys}", partition chosen from the
    key (so a key lives in one partition). Returns {partition: [seq, ...]} in produce order."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all",
                  "enable.idempotence": True})
    by_partition: dict[int, list[int]] = {i: [] for i in range(partitions)}
    for seq in range(start, start + n):
        k = seq % keys
        part = k % partitions
        by_partition[part].append(seq)
        while True:
            try:
                p.produce(topic, str(seq).encode(), f"k{k}".encode(), partition=part)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(60) == 0
    return by_partition


def committed(bootstrap: str, group: str, topic: str, partitions: int = 3) -> list[int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        for attempt in range(50):
            try:
                tps = c.committed([TopicPartition(topic, i) for i in range(partitions)],
                                  timeout=30)
                return [tp.offset for tp in tps]
            except KafkaException:  # coordinator loading or moving: ask again
                if attempt == 49:
                    raise
                time.sleep(0.2)
        raise AssertionError("unreachable")
    finally:
        c.close()


def end_offsets(bootstrap: str, topic: str, partitions: int = 3) -> list[int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "hayase-end-offsets"})
    try:
        return [c.get_watermark_offsets(TopicPartition(topic, i), timeout=30)[1]
                for i in range(partitions)]
    finally:
        c.close()


def wait_for(cond: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def consumer_config(bootstrap: str, group: str, **extra: object) -> dict[str, object]:
    cfg: dict[str, object] = {"bootstrap.servers": bootstrap, "group.id": group,
                              "auto.offset.reset": "earliest",
                              "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
    cfg.update(extra)
    return cfg


def read_all(bs: str, topic: str, n: int, timeout: float = 30) -> list[Any]:
    c = Consumer({"bootstrap.servers": bs, "group.id": f"reader-{topic}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    out: list[Any] = []
    try:
        wait_for(lambda: len(out.extend(c.consume(100, 0.2)) or out) >= n, timeout,
                 f"{n} records on {topic}")
        return out
    finally:
        c.close()
