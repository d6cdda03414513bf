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
read its inputs), which the join reads without marks and dedups by row (engine/joins.py).
"""

from __future__ import annotations

import pickle
from typing import Any

from hayase.engine.record import OutputRecord, Record

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
