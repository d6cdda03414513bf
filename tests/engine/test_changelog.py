"""Changelogs under compaction, without a broker: commits written by the real
ChangelogWriter into an in-memory log, crashes in the middle of a commit, of a restore and
of a repair, compaction (latest record per key) at any point, and restores (from scratch or
from the local store) that must give exactly the committed state every time."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hayase.engine.changelog import (
    BEFORE_HEADER,
    CHANGELOG_NEXT,
    ChangelogRecord,
    ChangelogWriter,
    replay,
)
from hayase.engine.state import META_KEY, MemoryStore, RocksDBStore, encode


class Crash(Exception):
    """The process died (SIGKILL): nothing after this point happens."""


class FakeLog:
    """One changelog partition: records with offsets that never change (gaps after
    compaction)."""

    def __init__(self) -> None:
        self.records: list[ChangelogRecord] = []
        self.next_offset = 0

    def append(self, key: bytes, value: bytes | None, before: bytes | None) -> int:
        offset = self.next_offset
        self.records.append((offset, key, value, before))
        self.next_offset += 1
        return offset

    def compact(self, drop_tombstones: bool = False) -> None:
        """Kafka's cleaner at its most thorough: only the latest record of each key stays
        (and no tombstone once delete.retention.ms has passed)."""
        latest = {key: offset for offset, key, _v, _b in self.records}
        self.records = [r for r in self.records if latest[r[1]] == r[0] and
                        not (drop_tombstones and r[2] is None)]

    def reader(self, crash_after: int | None = None) -> Any:
        count = [0]

        def read(start: int) -> Iterable[list[ChangelogRecord]]:
            batch: list[ChangelogRecord] = []
            for r in self.records:
                if r[0] < start:
                    continue
                if crash_after is not None and count[0] >= crash_after:
                    raise Crash
                count[0] += 1
                batch.append(r)
                if len(batch) == 2:
                    yield batch
                    batch = []
            yield batch

        return read


class FakeMessage:
    def __init__(self, offset: int) -> None:
        self._offset = offset

    def offset(self) -> int:
        return self._offset


class FakeProducer:
    """Appends to the log at once; dies before its ``crash_after``-th record."""

    def __init__(self, log: FakeLog, crash_after: int | None = None) -> None:
        self.log = log
        self.crash_after = crash_after
        self.count = 0
        self.pending: list[tuple[Any, int]] = []

    def produce(self, topic: str, value: bytes | None, key: bytes, partition: int,
                on_delivery: Any, headers: list[tuple[str, bytes]] | None = None) -> None:
        if self.crash_after is not None and self.count >= self.crash_after:
            raise Crash
        self.count += 1
        before = dict(headers or []).get(BEFORE_HEADER)
        self.pending.append((on_delivery, self.log.append(key, value, before)))

    def flush(self, timeout: float) -> int:
        for cb, offset in self.pending:
            cb(None, FakeMessage(offset))
        self.pending = []
        return 0

    def poll(self, timeout: float) -> int:
        return 0


def _commit(store: MemoryStore, writer: ChangelogWriter, changes: list[tuple[int, Any]],
            meta: dict[str, Any]) -> None:
    for k, v in changes:
        if v is None:
            store.delete(("A", k))
        else:
            store.put(("A", k), v)

    def write(entries: list[tuple[Any, Any]]) -> None:
        entries[-1][1][CHANGELOG_NEXT] = writer.write(0, entries, store.committed)

    store.commit(dict(meta), write)


changes_st = st.lists(st.tuples(st.integers(0, 5), st.one_of(st.none(), st.integers(0, 99))),
                      min_size=1, max_size=5)
op_st = st.one_of(
    st.tuples(st.just("commit"), changes_st),
    # a crash after `cut` records of the commit, then a restart: from scratch or from the
    # local store, itself perhaps dying while it restores (fold) or repairs
    st.tuples(st.just("crash"), changes_st, st.integers(0, 5), st.booleans(),
              st.one_of(st.none(), st.integers(0, 6)), st.one_of(st.none(), st.integers(0, 3))),
    st.tuples(st.just("compact")),
    st.tuples(st.just("restart"), st.booleans()),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(op_st, max_size=25))
def test_restore_gives_the_committed_state_whatever_compaction_and_crashes_did(ops) -> None:
    log = FakeLog()
    truth: dict[Any, Any] = {}
    n = 0  # the commit number the committed metadata holds
    store = MemoryStore()
    local = copy.deepcopy(store)  # what the local database holds (its last local commit)
    writer = ChangelogWriter(FakeProducer(log), "changelog")  # type: ignore[arg-type]

    def restart(from_scratch: bool, fold_crash: int | None = None,
                repair_crash: int | None = None) -> tuple[MemoryStore, ChangelogWriter]:
        """A new owner: restores until it is done, whatever crashes on the way."""
        nonlocal local
        while True:
            s = MemoryStore() if from_scratch else copy.deepcopy(local)
            w = ChangelogWriter(FakeProducer(log, repair_crash), "changelog")  # type: ignore[arg-type]
            try:
                replay(s, log.reader(fold_crash), w, flush_every=2)
            except Crash:
                local = s  # the local database keeps what the restore committed so far
                from_scratch, fold_crash, repair_crash = False, None, None
                continue
            assert dict(s.items()) == truth
            assert s.meta.get("n", 0) == n
            local = copy.deepcopy(s)
            w.producer = FakeProducer(log)  # type: ignore[assignment]
            return s, w

    for op in ops:
        if op[0] == "commit":
            _commit(store, writer, op[1], {"n": n + 1})
            n += 1
            for k, v in op[1]:
                if v is None:
                    truth.pop(("A", k), None)
                else:
                    truth[("A", k)] = v
            local = copy.deepcopy(store)
        elif op[0] == "crash":
            _, changes, cut, from_scratch, fold_crash, repair_crash = op
            writer.producer = FakeProducer(log, cut)  # type: ignore[assignment]
            try:
                _commit(store, writer, changes, {"n": n + 1})
            except Crash:
                store, writer = restart(from_scratch, fold_crash, repair_crash)
                continue
            n += 1  # the cut fell after the marker: committed
            for k, v in changes:
                if v is None:
                    truth.pop(("A", k), None)
                else:
                    truth[("A", k)] = v
            writer.producer = FakeProducer(log)  # type: ignore[assignment]
            local = copy.deepcopy(store)
        elif op[0] == "compact":
            log.compact()
        else:
            store, writer = restart(op[1])
    # However much is compacted (tombstones too, past delete.retention.ms), a fresh store
    # restores the committed state.
    log.compact(drop_tombstones=True)
    restart(True)


def test_a_cut_commit_is_undone_after_compaction_removed_the_value_it_replaced() -> None:
    log = FakeLog()
    store = MemoryStore()
    writer = ChangelogWriter(FakeProducer(log), "changelog")  # type: ignore[arg-type]
    _commit(store, writer, [(1, 10), (2, 20)], {"n": 1})
    writer.producer = FakeProducer(log, crash_after=1)  # type: ignore[assignment]
    with pytest.raises(Crash):
        _commit(store, writer, [(1, 11), (2, 21)], {"n": 2})
    log.compact()
    assert [r[0] for r in log.records] == [1, 2, 3]  # 1=10 is gone, its successor 1=11 cut
    assert log.records[-1][3] == encode(10)  # ... but it carries the value it replaced
    restored = MemoryStore()
    writer = ChangelogWriter(FakeProducer(log), "changelog")  # type: ignore[arg-type]
    assert replay(restored, log.reader(), writer) == 3
    assert dict(restored.items()) == {("A", 1): 10, ("A", 2): 20}
    # The repair commit wrote 1=10 again, after the cut entry, then a marker.
    assert [(r[1], r[2]) for r in log.records[-2:]] == [
        (encode(("A", 1)), encode(10)), (encode(META_KEY), encode({"n": 1}))]
    log.compact()
    again = MemoryStore()
    replay(again, log.reader())
    assert dict(again.items()) == {("A", 1): 10, ("A", 2): 20} and again.meta["n"] == 1


def test_rocksdb_committed_is_the_last_commit(tmp_path) -> None:
    s = RocksDBStore(tmp_path / "db")
    s.put(("A", 1), 5)
    assert s.committed(("A", 1)) is None
    s.commit({})
    s.put(("A", 1), 6)
    assert s.committed(("A", 1)) == encode(5)
    s.delete(("A", 1))
    s.commit({})
    assert s.committed(("A", 1)) is None
    s.close()


class _MovingLeader:
    """A consumer whose watermark lookups first meet a leadership move, then an answer."""

    def __init__(self, errors: list[int]) -> None:
        self.errors = errors
        self.calls = 0

    def get_watermark_offsets(self, tp: Any, timeout: float) -> tuple[int, int]:
        from confluent_kafka import KafkaError, KafkaException

        self.calls += 1
        if self.errors:
            raise KafkaException(KafkaError(self.errors.pop(0)))
        return 3, 17


def test_restore_waits_out_a_leadership_move() -> None:
    """A broker of the cluster stopped: the new leader answers OFFSET_NOT_AVAILABLE until its
    high watermark caught up (the three-node test met it); the restore asks again."""
    from confluent_kafka import KafkaError, TopicPartition

    from hayase.engine.changelog import _watermarks

    consumer = _MovingLeader([KafkaError.OFFSET_NOT_AVAILABLE, KafkaError.NOT_LEADER_FOR_PARTITION,
                              KafkaError.FENCED_LEADER_EPOCH])
    assert _watermarks(consumer, TopicPartition("c", 0)) == (3, 17)  # type: ignore[arg-type]
    assert consumer.calls == 4


def test_restore_fails_clearly_on_a_lasting_error() -> None:
    from confluent_kafka import KafkaError, TopicPartition

    from hayase.engine.changelog import ChangelogError, _watermarks

    consumer = _MovingLeader([KafkaError.TOPIC_AUTHORIZATION_FAILED])
    with pytest.raises(ChangelogError, match="restoring c-0"):
        _watermarks(consumer, TopicPartition("c", 0))  # type: ignore[arg-type]
    assert consumer.calls == 1
