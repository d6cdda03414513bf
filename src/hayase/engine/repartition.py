"""Repartition topics: rows moved to the partition of a new key before a stateful operator
(Kafka Streams' repartition topics, which ksqlDB creates for a GROUP BY or a JOIN on other
columns than the source key).

A forwarded record's key is the new key's bytes (the producer places it with murmur2, like the
Java client); its value is an *envelope*: the source position (topic, partition, offset), a
sequence number among the records forwarded for that source record, and the operator's payload.
Forwarding is at-least-once (after a crash the forwarding task re-sends what followed its last
commit); the receiving task keeps, in its state and atomically with it, the last
``(offset, sequence)`` applied per (repartition topic, source topic, source partition) and skips
anything not after it, so each source record has exactly one effect on the receiving state.
Records of one source partition reach a repartition partition in order (one forwarding task,
an idempotent producer), which is what makes one mark per source partition enough.
Marks also assume a restarted forwarding task re-sends the same content for a source position:
true of source rows, not of a stream-stream join's results (they depend on the order its task
read its inputs), which a later join node and a GROUP BY read *committed* instead.

Such results are read committed (what a Kafka Streams exactly_once
task's downstream sees; with no broker transactions, done in the envelope). The forwarding task
tags each record (task, run, seq): seq counts in its state (committed with its offsets), run is
random per opening. After each durable commit it sends a *commit marker* (task, run, seq) to the
partitions it forwarded to; when it opens, before anything else, a *finalize marker* (task, new
run, restored seq) to all. The receiver keeps, in its own state, per upstream task (run, seen,
committed) and the uncommitted records: a commit marker applies those up to its seq, in order;
a finalize marker applies those up to its seq (a commit whose marker never went out), drops the
rest (rolled back) and admits only the new run (a dead run's late records are void). So groups
apply exactly the outputs of committed join states, in order: one uninterrupted run's outputs
over the committed input order, whatever the join (inner, outer, GRACE: any order-dependence),
whichever side crashes, in whatever process a task resumes. It needs per-partition order from
one (idempotent) producer; a zombie committing after its successor restored is out of scope,
as for every store here. Cost: the groups' outputs wait for the join task's commit.

The pending records are a key range of their own in the receiver's store
(:data:`hayase.engine.state.APART`), so opening a receiver reads only them, not the join
store around them. A store written before that layout (pending records under ``("P", ...)``
keys, no :data:`LAYOUT_KEY`) is migrated when its receiver opens: the one scan it takes.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections import deque
from typing import Any

from hayase.client.partitioners import kafka_partition
from hayase.engine.record import OutputRecord, Record
from hayase.engine.state import APART, StateStore

log = logging.getLogger("hayase.engine.repartition")

# (repartition topic, source topic, source partition) -> last (offset, sequence) applied
Marks = dict[tuple[str, str, int], tuple[int, int]]


def forward(topic: str, key: bytes, source: Record, sequence: int, payload: Any,
            timestamp: int | None = None) -> OutputRecord:
    """The repartition record carrying ``payload`` for ``source`` (its ``sequence``-th)."""
    body = (source.topic, source.partition, source.offset, sequence, payload)
    data = pickle.dumps(body, protocol=5)
    ts = source.timestamp if timestamp is None else timestamp
    return OutputRecord(topic, key, data, int(ts), source.headers)


def receive(marks: Marks, rec: Record) -> Any:
    """The payload of a repartition record, or None when it was already applied (a copy
    re-sent after the forwarding task restarted) or carries nothing."""
    if rec.value is None:
        return None
    src_topic, src_partition, src_offset, seq, payload = \
        pickle.loads(rec.value)  # noqa: S301 - our own internal topic, like the changelog
    mark = (rec.topic, src_topic, src_partition)
    last = marks.get(mark)
    if last is not None and (src_offset, seq) <= tuple(last):
        return None
    marks[mark] = (src_offset, seq)
    return payload


# ---------------------------------------------------------------- read-committed forwarding

DATA, COMMIT, FINALIZE = "D", "C", "F"
# A receiving store's pending records: (APART, PENDING, upstream task, seq) -> (payload,
# headers), a key range of their own; LAYOUT_KEY says the store uses it.
PENDING = "pending"
LAYOUT_KEY = ("read-committed-layout",)
LAYOUT = 2
_OLD_PENDING = "P"  # layout 1: (_OLD_PENDING, upstream task, seq), among the other keys


def _pending_key(upstream: int, seq: int) -> tuple[str, str, int, int]:
    return (APART, PENDING, upstream, seq)


class Sequencer:
    """One run of a forwarding task: numbers its records and writes its markers (see the
    module docstring). ``seq``: the last number the task's restored state reflects."""

    def __init__(self, topic: str, partitions: int, task: int, seq: int) -> None:
        self.topic = topic
        self.partitions = partitions
        self.task = task
        self.run = os.urandom(8)
        self.seq = seq  # the last number given (in the task's state metadata)
        self.committed = seq  # the last number a durable commit reflects
        self.announced = False  # the finalize markers were produced
        self._touched: dict[int, int] = {}  # partition -> latest timestamp since a marker

    def forward(self, key: bytes, payload: Any, timestamp: int,
                headers: Any = ()) -> OutputRecord:
        assert self.announced, "a run forwards after its finalize markers"
        self.seq += 1
        partition = kafka_partition(key, self.partitions)
        self._touched[partition] = max(timestamp, self._touched.get(partition, timestamp))
        body = (DATA, self.task, self.run, self.seq, payload)
        return OutputRecord(self.topic, key, pickle.dumps(body, protocol=5), int(timestamp),
                            headers, partition=partition)

    def commit_markers(self) -> list[OutputRecord]:
        """After a durable commit (``committed`` set): tell each partition forwarded to since
        the last marker that the records numbered up to ``committed`` count."""
        touched, self._touched = self._touched, {}
        return [self._marker(COMMIT, p, self.committed, ts) for p, ts in sorted(touched.items())]

    def finalize_markers(self, timestamp: int = 0) -> list[OutputRecord]:
        """When the task opens, before it forwards anything: everything numbered after
        ``committed`` by earlier runs is void; this run's records follow."""
        assert self.seq == self.committed, "finalize before forwarding"
        self.announced = True
        return [self._marker(FINALIZE, p, self.committed, timestamp)
                for p in range(self.partitions)]

    def _marker(self, kind: str, partition: int, seq: int, timestamp: int) -> OutputRecord:
        body = (kind, self.task, self.run, seq, None)
        return OutputRecord(self.topic, str(self.task).encode(),
                            pickle.dumps(body, protocol=5), int(timestamp), (),
                            partition=partition)


class ReadCommitted:
    """A receiving task's view of its sequenced upstream tasks. ``upstreams`` (in the task's
    metadata): upstream task -> [run, highest seq seen, committed seq]; the records not yet
    committed are ``(PENDING, upstream, seq)`` entries of ``store`` (both committed with the
    task's state, so a restarted receiver resumes exactly)."""

    def __init__(self, store: StateStore, upstreams: dict[int, list[Any]]) -> None:
        self.store = store
        self.upstreams = upstreams
        self._pending: dict[int, deque[int]] = {}
        if store.get(LAYOUT_KEY) != LAYOUT:
            if upstreams:  # state of a version before the pending key range
                self._migrate()
            store.put(LAYOUT_KEY, LAYOUT)  # committed with the task's next commit
        found: dict[int, list[int]] = {}
        for key, _value in store.range_items(PENDING):
            found.setdefault(key[2], []).append(key[3])
        for upstream, seqs in found.items():
            self._pending[upstream] = deque(sorted(seqs))

    def _migrate(self) -> None:
        """Move layout 1's pending records into their key range (written with the task's
        next commit; a crash before it migrates again)."""
        old = [(k, v) for k, v in self.store.items()
               if k.__class__ is tuple and len(k) == 3 and k[0] == _OLD_PENDING]
        for key, value in old:
            self.store.delete(key)
            self.store.put(_pending_key(key[1], key[2]), value)
        log.info("read-committed state of an earlier layout: %d pending records moved to "
                 "their own key range", len(old))

    def receive(self, rec: Record) -> list[tuple[Any, Any]]:
        """The ``(payload, headers)`` a record makes committed, in the order to apply them
        (usually none: a data record waits for its commit)."""
        if rec.value is None:
            return []
        kind, upstream, run, seq, payload = \
            pickle.loads(rec.value)  # noqa: S301 - our own internal topic, like the changelog
        entry = self.upstreams.get(upstream)
        if kind == FINALIZE:
            if entry is not None and entry[0] == run:
                return []  # a copy
            applied = [] if entry is None else self._apply(upstream, entry, seq)
            self._drop(upstream)
            self.upstreams[upstream] = [run, seq, seq]
            return applied
        if entry is None:  # never announced here (only a run without its finalize): admit it
            entry = self.upstreams[upstream] = [run, 0, 0]
        if entry[0] != run:
            return []  # a dead run's record, after its successor's finalize: void
        if kind == COMMIT:
            return self._apply(upstream, entry, seq)
        if seq <= entry[1]:
            return []  # a copy
        entry[1] = seq
        self.store.put(_pending_key(upstream, seq), (payload, rec.headers))
        self._pending.setdefault(upstream, deque()).append(seq)
        return []

    def _apply(self, upstream: int, entry: list[Any], seq: int) -> list[tuple[Any, Any]]:
        seqs = self._pending.get(upstream)
        applied = []
        while seqs and seqs[0] <= seq:
            key = _pending_key(upstream, seqs.popleft())
            applied.append(self.store.get(key))
            self.store.delete(key)
        if seq > entry[2]:
            entry[2] = seq
        return applied

    def _drop(self, upstream: int) -> None:
        for s in self._pending.pop(upstream, ()):
            self.store.delete(_pending_key(upstream, s))
