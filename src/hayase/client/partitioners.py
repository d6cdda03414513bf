"""Partitioners that keep batches large (the Yahoo! JAPAN lesson, talk 4).

A producer that sends fewer requests per second than its topic has partitions, and spreads its
records over all of them, sends many one-record batches: the brokers' request handlers drown in
tiny appends. The cures, by configuration of `PartitionedProducer`:

- ``murmur2``: Kafka's keyed default; the same partition as the Java client for every key
  (librdkafka's ``murmur2_random``; keyless records go to a random partition).
- ``sticky``: keyless records stay on one partition until its batch is sent (KIP-480/KIP-794);
  librdkafka implements this natively (``sticky.partitioning.linger.ms``), keyed records use
  murmur2 as the Java client does.
- ``round_robin``: one record per partition in turn; the incident's cause, kept for comparison.
- ``producer_key``: the talk's cure: every record of this producer instance goes to the
  partition of the producer's own key (random per instance unless configured).
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

Strategy = Literal["murmur2", "sticky", "round_robin", "producer_key"]
STRATEGIES: tuple[Strategy, ...] = ("murmur2", "sticky", "round_robin", "producer_key")

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``), as a signed int32."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    end = length - length % 4
    for i in range(0, end, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length % 4
    if rest == 3:
        h ^= data[end + 2] << 16
    if rest >= 2:
        h ^= data[end + 1] << 8
    if rest >= 1:
        h ^= data[end]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def kafka_partition(key: bytes, num_partitions: int) -> int:
    """The partition the Java client's default partitioner picks for a non-null key."""
    return (murmur2(key) & 0x7FFFFFFF) % num_partitions


class Partitioner:
    """Chooses a partition for a record, or None to let librdkafka choose (murmur2/sticky)."""

    def __init__(self, strategy: Strategy, producer_key: bytes | None = None) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown partitioner {strategy!r}; choose one of {', '.join(STRATEGIES)}")
        self.strategy = strategy
        self.producer_key = producer_key or uuid.uuid4().bytes
        self._turn = itertools.count()

    def librdkafka_config(self, linger_ms: float) -> dict[str, Any]:
        """The librdkafka settings that implement this strategy's native part."""
        cfg: dict[str, Any] = {"partitioner": "murmur2_random"}
        if self.strategy == "sticky":
            cfg["sticky.partitioning.linger.ms"] = max(1, int(linger_ms))
        elif self.strategy == "murmur2":
            cfg["sticky.partitioning.linger.ms"] = 0  # keyless records: random per record
        return cfg

    def partition(self, key: bytes | None, num_partitions: int) -> int | None:
        if self.strategy == "round_robin":
            return next(self._turn) % num_partitions
        if self.strategy == "producer_key":
            return kafka_partition(self.producer_key, num_partitions)
        return None


class PartitionedProducer:
    """A confluent-kafka Producer with one of hayase's partitioning strategies.

    ``config`` is any librdkafka producer configuration; ``partitioner`` and ``producer.key`` may
    be given there too (hayase's own keys, removed before librdkafka sees them)."""

    def __init__(
        self,
        config: dict[str, Any],
        partitioner: Strategy | None = None,
        producer_key: bytes | str | None = None,
    ) -> None:
        from confluent_kafka import Producer

        cfg = dict(config)
        # hayase's own keys always leave the config (librdkafka rejects unknown properties), even
        # when the arguments override them
        configured_strategy = cfg.pop("hayase.partitioner", "sticky")
        configured_key = cfg.pop("hayase.producer.key", None)
        strategy = partitioner or configured_strategy
        key = producer_key or configured_key
        if isinstance(key, str):
            key = key.encode()
        self.partitioner = Partitioner(strategy, key)
        cfg.update(self.partitioner.librdkafka_config(float(cfg.get("linger.ms", 5))))
        self._producer = Producer(cfg)
        self._partitions: dict[str, int] = {}

    def _num_partitions(self, topic: str) -> int:
        n = self._partitions.get(topic)
        if n is not None:
            return n
        deadline = time.monotonic() + 30
        while True:  # a topic just created may take a moment to appear in metadata
            md = self._producer.list_topics(topic, timeout=10).topics[topic]
            if md.error is None and md.partitions:
                n = self._partitions[topic] = len(md.partitions)
                return n
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {topic!r} is not available: {md.error}")
            time.sleep(0.1)

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        on_delivery: Callable[..., None] | None = None,
    ) -> None:
        # Looking the topic up first also matters for librdkafka's own strategies: records
        # produced before the topic's metadata arrives are spread one by one when it does.
        part = self.partitioner.partition(key, self._num_partitions(topic))
        kwargs: dict[str, Any] = {"key": key, "headers": headers, "on_delivery": on_delivery}
        if part is not None:
            kwargs["partition"] = part
        while True:
            try:
                self._producer.produce(topic, value, **kwargs)
                return
            except BufferError:  # local queue full: serve delivery reports, then retry
                self._producer.poll(0.1)

    def poll(self, timeout: float = 0) -> int:
        return int(self._producer.poll(timeout))

    def flush(self, timeout: float = 30) -> int:
        return int(self._producer.flush(timeout))

    def refresh_metadata(self) -> None:
        """Forget partition counts (after CreatePartitions)."""
        self._partitions.clear()
