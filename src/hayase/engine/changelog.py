"""Changelog topics for state stores: how commits are written and how a store is restored.

Topic name (ksqlDB's naming for an aggregation's store)::

    _confluent-ksql-<service id>query_<query id>-Aggregate-Aggregate-Materialize-changelog

with as many partitions as the source topic; store partition ``p`` logs to partition ``p``.

A commit is a run of records followed by one *commit marker*. Every record carries the header
``hayase.commit`` = ``<run id>:<sequence>`` (unique across restarts); entries have the pickled
store key and value (a null value deletes); the marker has the metadata key and the metadata
(input offsets the state reflects, stream time) as its value. Restoring applies a commit only
when its marker is read, so a commit cut short by a crash is never half-applied, and the
offsets inside a restored state are exactly those of its entries. Because the markers share
one key, these topics are created with ``cleanup.policy=delete`` and ``retention.ms=-1``
(never compacted: compaction could drop a marker and leave its commit unapplied).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from hayase.client.config import quiet_logger
from hayase.engine.state import META_KEY, StateStore, decode, encode

log = logging.getLogger("hayase.engine.changelog")

COMMIT_HEADER = "hayase.commit"
CHANGELOG_CONFIGS = {"cleanup.policy": "delete", "retention.ms": "-1"}
CHANGELOG_NEXT = "changelog_next"  # local-only metadata: next changelog offset to restore


def changelog_topic(service_id: str, query_id: str) -> str:
    return f"_confluent-ksql-{service_id}query_{query_id}-Aggregate-Aggregate-Materialize-changelog"


class ChangelogWriter:
    """Writes one store partition's commits to its changelog partition."""

    def __init__(self, producer: Producer, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self.run_id = uuid.uuid4().hex[:12]
        self.sequence = 0
        self._failure: str | None = None

    def write(self, partition: int, changes: list[tuple[Any, Any]]) -> int:
        """Produce a commit and wait for it; returns the offset after its marker. The metadata
        entry must be last (what ``StateStore.commit`` hands over)."""
        self.sequence += 1
        headers: list[tuple[str, str | bytes | None]] = [
            (COMMIT_HEADER, f"{self.run_id}:{self.sequence}".encode())]
        marker: dict[str, int] = {}

        def on_marker(err: KafkaError | None, msg: Any) -> None:
            if err is not None:
                self._failure = err.str()
            else:
                marker["offset"] = msg.offset()

        def on_entry(err: KafkaError | None, msg: Any) -> None:
            if err is not None:
                self._failure = err.str()

        for i, (key, value) in enumerate(changes):
            last = i == len(changes) - 1
            if last and key != META_KEY:
                raise ValueError("the last change of a commit must be the metadata")
            meta_value = value
            if last:
                meta_value = {k: v for k, v in value.items() if k != CHANGELOG_NEXT}
            self._produce(partition, encode(key),
                          None if meta_value is None else encode(meta_value), headers,
                          on_marker if last else on_entry)
        remaining = self.producer.flush(30)
        if remaining or self._failure or "offset" not in marker:
            raise ChangelogError(self._failure or f"{remaining} changelog records not acknowledged")
        return marker["offset"] + 1

    def _produce(self, partition: int, key: bytes, value: bytes | None,
                 headers: list[tuple[str, str | bytes | None]], cb: Callable[..., None]) -> None:
        while True:
            try:
                self.producer.produce(self.topic, value, key, partition=partition,
                                      headers=headers, on_delivery=cb)
                return
            except BufferError:
                self.producer.poll(0.1)


class ChangelogError(Exception):
    pass


# Answers of a leader that does not know a just-created topic yet (Apache Kafka's metadata
# propagates after CreateTopics returns): retried for a bounded time.
_NOT_YET = frozenset({KafkaError._UNKNOWN_PARTITION, KafkaError._UNKNOWN_TOPIC,
                      KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.LEADER_NOT_AVAILABLE,
                      KafkaError.NOT_LEADER_FOR_PARTITION})


def _watermarks(consumer: Consumer, tp: TopicPartition,
                timeout_s: float = 30.0) -> tuple[int, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout_s)
            return int(low), int(high)
        except KafkaException as e:
            if e.args[0].code() not in _NOT_YET or time.monotonic() >= deadline:
                raise ChangelogError(f"restoring {tp.topic}-{tp.partition}: "
                                     f"{e.args[0].str()}") from None
            log.info("changelog %s-%d not known by its leader yet: retrying", tp.topic,
                     tp.partition)
            time.sleep(0.2)


def restore(client_conf: Mapping[str, object], topic: str, partition: int, store: StateStore,
            progress: Callable[[int, int], None] | None = None, batch: int = 1000) -> int:
    """Bring ``store`` up to the end of its changelog partition, from the offset its metadata
    says it already reflects. Returns the number of changelog records read."""
    start = int(store.meta.get(CHANGELOG_NEXT, 0))
    consumer = Consumer({**client_conf, "group.id": f"hayase-restore-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "logger": quiet_logger()})
    try:
        low, high = _watermarks(consumer, TopicPartition(topic, partition))
        if high <= max(start, low):
            return 0
        consumer.assign([TopicPartition(topic, partition,
                                        start if start > low else OFFSET_BEGINNING)])
        total = high - max(start, low)
        read = 0
        pending: dict[Any, list[tuple[Any, Any]]] = {}
        position = start
        while position < high:
            msgs = consumer.consume(batch, timeout=1.0)
            for msg in msgs:
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        position = high
                        continue
                    raise ChangelogError(f"restoring {topic}-{partition}: {err.str()}")
                position = (msg.offset() or 0) + 1
                read += 1
                commit_id = dict(msg.headers() or []).get(COMMIT_HEADER, b"")
                raw_key: Any = msg.key()
                raw_value: Any = msg.value()
                key = decode(raw_key)
                value = None if raw_value is None else decode(raw_value)
                entries = pending.setdefault(commit_id or b"", [])
                if key == META_KEY:
                    pending.clear()  # other ids before a marker: commits cut short by a crash
                    value = dict(value or {})
                    value[CHANGELOG_NEXT] = position
                    entries.append((key, value))
                    store.apply(entries)
                else:
                    entries.append((key, value))
            if progress is not None and msgs:
                progress(read, total)
        return read
    finally:
        consumer.close()
