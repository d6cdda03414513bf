"""Changelog topics for state stores: how commits are written and how a store is restored.

Topic name (ksqlDB's naming for an aggregation's store)::

    _confluent-ksql-<service id>query_<query id>-Aggregate-Aggregate-Materialize-changelog

with as many partitions as the query has tasks; store partition ``p`` logs to partition ``p``.
The topics are compacted (``cleanup.policy=compact``, as Kafka Streams' changelogs).

A commit is the store's changed entries, each under its own pickled store key (a delete is a
tombstone), followed by the *commit marker*: the metadata (input offsets the state reflects,
stream time, ...) under the one fixed metadata key. Compaction keeps the latest record of every
key: the latest marker and the latest value of every entry.

A commit cut short by a crash leaves entries after the last marker: the *tail*. They must not
count, and once compaction has run, the committed value a tail entry replaced may be gone from
the log. So every entry carries its *before image* (header ``hayase.before``: the pickled value
as of the previous commit; no header: absent). Restoring applies every record up to the last
marker, then puts the tail's keys back to their before images; the new owner at once writes
those values again as a *repair commit*, before it processes anything. Hence the invariant that
makes restoring simple: every entry before the last marker is committed, or followed by a
committed entry of the same key (a repair), so applying the records in order up to the last
marker yields exactly the committed state, whatever compaction removed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from hayase.client.config import quiet_logger
from hayase.engine.state import META_KEY, StateStore, decode, encode

log = logging.getLogger("hayase.engine.changelog")

BEFORE_HEADER = "hayase.before"
CHANGELOG_CONFIGS = {"cleanup.policy": "compact"}
CHANGELOG_NEXT = "changelog_next"  # local-only metadata: next changelog offset to restore

# fn(store key) -> the pickled value as of the last commit, None when absent
BeforeImage = Callable[[Any], bytes | None]


def changelog_topic(service_id: str, query_id: str) -> str:
    return f"_confluent-ksql-{service_id}query_{query_id}-Aggregate-Aggregate-Materialize-changelog"


class ChangelogError(Exception):
    pass


class ChangelogWriter:
    """Writes one store partition's commits to its changelog partition."""

    def __init__(self, producer: Producer, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self._failure: str | None = None

    def write(self, partition: int, changes: list[tuple[Any, Any]],
              before: BeforeImage) -> int:
        """Produce a commit and wait for it; returns the offset after its marker. The metadata
        entry must be last (what ``StateStore.commit`` hands over); ``before(key)`` gives an
        entry's before image (``StateStore.committed``: read before the store writes)."""
        marker: dict[str, int] = {}

        def on_marker(err: KafkaError | None, msg: Any) -> None:
            if err is not None:
                self._failure = err.str()
            else:
                marker["offset"] = msg.offset()

        def on_entry(err: KafkaError | None, msg: Any) -> None:
            if err is not None:
                self._failure = err.str()

        if not changes or changes[-1][0] != META_KEY:
            raise ValueError("the last change of a commit must be the metadata")
        # The store's own encodings and before images when it attached them (Changes).
        encoded = getattr(changes, "encoded", None)
        images = getattr(changes, "before", None)
        topic, produce = self.topic, self.producer.produce
        for i, (key, value) in enumerate(changes[:-1]):
            if encoded is None:
                raw_key, raw_value = encode(key), None if value is None else encode(value)
            else:
                raw_key, raw_value = encoded[i]
            image = before(key) if images is None else images[i]
            try:  # the common case inline; a full queue waits in _produce
                if image is None:
                    produce(topic, raw_value, raw_key, partition=partition,
                            on_delivery=on_entry)
                else:
                    produce(topic, raw_value, raw_key, partition=partition,
                            headers=[(BEFORE_HEADER, image)], on_delivery=on_entry)
            except BufferError:
                headers: list[tuple[str, str | bytes | None]] | None = \
                    [(BEFORE_HEADER, image)] if image is not None else None
                self._produce(partition, raw_key, raw_value, headers, on_entry)
        meta = {k: v for k, v in changes[-1][1].items() if k != CHANGELOG_NEXT}
        self._produce(partition, encode(META_KEY), encode(meta), None, on_marker)
        remaining = self.producer.flush(30)
        if remaining or self._failure or "offset" not in marker:
            raise ChangelogError(self._failure or f"{remaining} changelog records not acknowledged")
        return marker["offset"] + 1

    def _produce(self, partition: int, key: bytes, value: bytes | None,
                 headers: list[tuple[str, str | bytes | None]] | None,
                 cb: Callable[..., None]) -> None:
        while True:
            try:
                if headers:
                    self.producer.produce(self.topic, value, key, partition=partition,
                                          headers=headers, on_delivery=cb)
                else:
                    self.producer.produce(self.topic, value, key, partition=partition,
                                          on_delivery=cb)
                return
            except BufferError:
                self.producer.poll(0.1)


# ---------------------------------------------------------------------- restore (pure part)

# A changelog record as restore sees it: (offset, key bytes, value bytes or None, before image)
ChangelogRecord = tuple[int, bytes, bytes | None, bytes | None]


class RestoreFold:
    """Folds a changelog partition's records, in offset order, into a store (no I/O).

    Records are applied as they come (the store is committed locally every ``flush_every``
    records with its metadata unchanged, and at every marker with the marker's metadata), so
    memory stays bounded however much compaction merged; a crash mid-restore only makes the
    next restore start again from the last marker applied. :meth:`tail_start` tells where the
    records after the last marker begin; :meth:`revert` puts their keys back."""

    def __init__(self, store: StateStore, flush_every: int = 1000) -> None:
        self.store = store
        self.flush_every = flush_every
        self.read = 0
        self._unflushed = 0
        self._tail_start: int | None = None  # offset of the first record after the last marker

    def add(self, record: ChangelogRecord) -> None:
        offset, raw_key, raw_value, _before = record
        self.read += 1
        key = decode(raw_key)
        store = self.store
        if key == META_KEY:
            meta = dict(decode(raw_value)) if raw_value is not None else {}
            meta[CHANGELOG_NEXT] = offset + 1
            store.commit(meta)
            self._tail_start = None
            self._unflushed = 0
            return
        if self._tail_start is None:
            self._tail_start = offset
        if raw_value is None:
            store.delete(key)
        else:
            store.put(key, decode(raw_value))
        self._unflushed += 1
        if self._unflushed >= self.flush_every:
            store.commit(store.meta)  # not a marker: CHANGELOG_NEXT stays where it was
            self._unflushed = 0

    @property
    def tail_start(self) -> int | None:
        """Offset of the first entry after the last marker read, None when there is none."""
        return self._tail_start

    def revert(self, tail: Iterable[ChangelogRecord]) -> list[tuple[Any, Any]]:
        """Put the tail's keys back to their before images (the committed values) and return
        them, ``(key, value or None)``, for the repair commit."""
        committed: dict[Any, Any] = {}
        for _offset, raw_key, _value, before in tail:
            key = decode(raw_key)
            if key != META_KEY and key not in committed:
                committed[key] = None if before is None else decode(before)
        for key, value in committed.items():
            if value is None:
                self.store.delete(key)
            else:
                self.store.put(key, value)
        self.store.commit(self.store.meta)
        self._tail_start = None
        return list(committed.items())


def repair(writer: ChangelogWriter, partition: int, store: StateStore,
           committed: list[tuple[Any, Any]]) -> None:
    """Write the tail's keys again with their committed values, and a marker, so that the
    aborted entries are followed by committed ones (see the module docstring)."""
    meta = store.meta
    changes = list(committed) + [(META_KEY, meta)]
    next_offset = writer.write(partition, changes, store.committed)
    meta[CHANGELOG_NEXT] = next_offset
    store.commit(meta)


# fn(offset) -> the partition's records from that offset to the end, in batches
Reader = Callable[[int], Iterable[list[ChangelogRecord]]]


def replay(store: StateStore, read: Reader, writer: ChangelogWriter | None = None,
           partition: int = 0, progress: Callable[[int], None] | None = None,
           flush_every: int = 1000) -> int:
    """Restore's logic without the consumer: bring ``store`` to the end of ``read``'s records
    from the offset its metadata says it reflects; undo a commit cut short at the end and,
    with ``writer``, write the repair commit. Returns the number of records read."""
    fold = RestoreFold(store, flush_every)
    for records in read(int(store.meta.get(CHANGELOG_NEXT, 0))):
        for record in records:
            fold.add(record)
        if progress is not None and records:
            progress(fold.read)
    tail_start = fold.tail_start
    if tail_start is not None:
        committed = fold.revert([r for rs in read(tail_start) for r in rs])
        log.info("changelog partition %d: %d entries of a commit cut short undone", partition,
                 len(committed))
        if writer is not None:
            repair(writer, partition, store, committed)
    return fold.read


# ---------------------------------------------------------------------- restore (I/O shell)

# Answers retried for a bounded time: a leader that does not know a just-created topic yet
# (Apache Kafka's metadata propagates after CreateTopics returns), and a leadership move (a
# broker of the cluster stopped: the new leader answers OFFSET_NOT_AVAILABLE until its high
# watermark has caught up, or the client still asks the old one).
_NOT_YET = frozenset({KafkaError._UNKNOWN_PARTITION, KafkaError._UNKNOWN_TOPIC,
                      KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.LEADER_NOT_AVAILABLE,
                      KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.OFFSET_NOT_AVAILABLE,
                      KafkaError.FENCED_LEADER_EPOCH, KafkaError.UNKNOWN_LEADER_EPOCH,
                      KafkaError._TRANSPORT})


def _watermarks(consumer: Consumer, tp: TopicPartition,
                timeout_s: float = 60.0) -> tuple[int, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout_s)
            return int(low), int(high)
        except KafkaException as e:
            if e.args[0].code() not in _NOT_YET or time.monotonic() >= deadline:
                raise ChangelogError(f"restoring {tp.topic}-{tp.partition}: "
                                     f"{e.args[0].str()}") from None
            log.info("changelog %s-%d: %s: retrying", tp.topic, tp.partition,
                     e.args[0].str())
            time.sleep(0.2)


def _before(msg: Message) -> bytes | None:
    raw: Any = msg.headers()
    if raw:
        for name, value in raw:
            if name == BEFORE_HEADER:
                return bytes(value) if value is not None else None
    return None


def _read(consumer: Consumer, topic: str, partition: int, start: int, high: int,
          batch: int) -> Iterable[list[ChangelogRecord]]:
    """The partition's records from ``start`` (or its beginning) up to ``high``, in batches.
    Compaction leaves gaps, and may remove the last offsets: the end of the partition also
    ends the read."""
    consumer.assign([TopicPartition(topic, partition, start if start > 0 else OFFSET_BEGINNING)])
    position = start
    while position < high:
        out: list[ChangelogRecord] = []
        for msg in consumer.consume(batch, timeout=1.0):
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    position = high
                    continue
                raise ChangelogError(f"restoring {topic}-{partition}: {err.str()}")
            offset = msg.offset() or 0
            if offset >= high:
                position = high
                continue
            position = offset + 1
            raw_key: Any = msg.key()
            raw_value: Any = msg.value()
            out.append((offset, raw_key, raw_value, _before(msg)))
        yield out
    consumer.unassign()


def restore(client_conf: Mapping[str, object], topic: str, partition: int, store: StateStore,
            progress: Callable[[int, int], None] | None = None, batch: int = 1000,
            writer: ChangelogWriter | None = None) -> int:
    """Bring ``store`` up to the end of its changelog partition, from the offset its metadata
    says it already reflects. A commit cut short at the end is undone, and written again as a
    repair commit when ``writer`` is given (the task's new owner). Returns the number of
    changelog records read."""
    start = int(store.meta.get(CHANGELOG_NEXT, 0))
    consumer = Consumer({**client_conf, "group.id": f"hayase-restore-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "logger": quiet_logger()})
    try:
        low, high = _watermarks(consumer, TopicPartition(topic, partition))
        if high <= max(start, low):
            return 0
        total = high - max(start, low)

        def read(offset: int) -> Iterable[list[ChangelogRecord]]:
            return _read(consumer, topic, partition, max(offset, low), high, batch)

        def report(done: int) -> None:
            if progress is not None:
                progress(done, total)

        return replay(store, read, writer, partition, report, batch)
    finally:
        consumer.close()
