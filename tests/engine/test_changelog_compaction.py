"""A compacted changelog on the embedded broker, with the log cleaner really running (small
segment.ms, 200 ms cleaner backoff): commits, then a commit cut short by a crash whose entries
are compacted over the values they replaced; restoring a fresh store gives exactly the
committed state, repairs the log, and a second restore after more compaction agrees."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from hayase.client.admin import Admin
from hayase.engine.changelog import CHANGELOG_CONFIGS, CHANGELOG_NEXT, ChangelogWriter, restore
from hayase.engine.state import META_KEY, RocksDBStore, encode
from hayase.testing.brokers import EmbeddedBroker

pytestmark = pytest.mark.integration

KEYS = 8
COMPACTION = {**CHANGELOG_CONFIGS, "segment.ms": "200", "min.cleanable.dirty.ratio": "0.01"}


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(configs={"log.cleaner.backoff.ms": "200"}) as b:
        yield b


def _keys_in_log(bootstrap: str, topic: str) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        keys: list[bytes] = []
        deadline = time.monotonic() + 120
        while True:
            # Not a partial read: a loaded machine only makes this slower, never shorter.
            assert time.monotonic() < deadline, f"no end of {topic} after {len(keys)} records"
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    return keys
                continue
            keys.append(msg.key())
    finally:
        consumer.close()


def _commit(store: RocksDBStore, writer: ChangelogWriter, changes: dict[Any, Any],
            offset: int) -> None:
    for key, value in changes.items():
        if value is None:
            store.delete(key)
        else:
            store.put(key, value)

    def write(entries: list[tuple[Any, Any]]) -> None:
        entries[-1][1][CHANGELOG_NEXT] = writer.write(0, entries, store.committed)

    store.commit({"offsets": {("source", 0): offset}}, write)


def test_restore_from_a_compacted_changelog_with_a_cut_commit(broker: EmbeddedBroker,
                                                              tmp_path: Path) -> None:
    bootstrap = broker.bootstrap_servers
    conf = {"bootstrap.servers": bootstrap}
    topic = f"changelog-{uuid.uuid4().hex[:8]}"
    Admin(conf).create_topic(topic, 1, 1, COMPACTION)
    producer = Producer({**conf, "linger.ms": 5})
    writer = ChangelogWriter(producer, topic)
    store = RocksDBStore(tmp_path / "owner")
    truth: dict[Any, Any] = {}
    for i in range(40):  # every key updated many times, some deleted
        changes = {("A", (i * 3 + j) % KEYS): (None if (i + j) % 7 == 0 else i * 10 + j)
                   for j in range(3)}
        _commit(store, writer, changes, i + 1)
        for key, value in changes.items():
            if value is None:
                truth.pop(key, None)
            else:
                truth[key] = value
        if i % 10 == 9:
            time.sleep(0.25)  # segments roll: older ones can be cleaned
    # The owner dies in the middle of its next commit: two entries reach the changelog,
    # not the marker. (What ChangelogWriter.write sends, cut short.)
    cut = [(("A", 0), 999), (("A", 1), None)]
    for key, value in cut:
        image = store.committed(key)
        producer.produce(topic, None if value is None else encode(value), encode(key),
                         partition=0, headers=[("hayase.before", image)] if image else None)
    assert producer.flush(10) == 0
    time.sleep(0.3)  # roll: the cut entries end up in a closed segment, cleanable too
    producer.produce(topic, encode(999), encode(("A", 0)), partition=0,
                     headers=[("hayase.before", store.committed(("A", 0)))])
    assert producer.flush(10) == 0
    store.close()
    written = 40 * 4 + 3

    # Wait (bounded) for the cleaner: fewer records, and ("A", 1)'s committed value gone
    # (only its cut tombstone left).
    deadline = time.monotonic() + 60
    keys = _keys_in_log(bootstrap, topic)
    while time.monotonic() < deadline and keys.count(encode(("A", 1))) > 1:
        time.sleep(0.5)
        keys = _keys_in_log(bootstrap, topic)
    assert len(keys) < written and keys.count(encode(("A", 1))) == 1, broker.log()[-3000:]
    assert keys.count(encode(META_KEY)) == 1

    fresh = RocksDBStore(tmp_path / "new-owner")
    new_writer = ChangelogWriter(Producer({**conf, "linger.ms": 5}), topic)
    assert restore(conf, topic, 0, fresh, writer=new_writer) > 0
    assert dict(fresh.items()) == truth
    assert fresh.meta["offsets"] == {("source", 0): 40}
    fresh.close()

    # The repair commit put the cut keys' committed values after the cut entries: once
    # compacted again, a third owner restores the same state from scratch.
    time.sleep(0.3)
    new_writer.producer.produce(topic, encode({"offsets": {("source", 0): 40}}),
                                encode(META_KEY), partition=0)  # a marker rolls the segment
    assert new_writer.producer.flush(10) == 0
    def entries() -> list[bytes]:  # the active segment (the last marker) is never cleaned
        return [k for k in _keys_in_log(bootstrap, topic) if k != encode(META_KEY)]

    deadline = time.monotonic() + 60
    keys = entries()
    while time.monotonic() < deadline and len(keys) != len(set(keys)):
        time.sleep(0.5)
        keys = entries()
    assert len(keys) == len(set(keys)), broker.log()[-3000:]  # the cut entries are gone
    third = RocksDBStore(tmp_path / "third-owner")
    restore(conf, topic, 0, third)
    assert dict(third.items()) == truth
    assert third.meta["offsets"] == {("source", 0): 40}
    third.close()
