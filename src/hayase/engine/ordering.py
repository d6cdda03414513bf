"""Record choice inside a task that reads several topics (joins), as Kafka Streams does it.

A join task owns partition ``p`` of each of its input topics. Kafka Streams processes the
buffered record with the smallest timestamp among them next, and while one of the task's
partitions has nothing buffered but the broker still has records for it, the task waits for
them instead of running ahead (KIP-695; ``max.task.idle.ms``). Without this a live run could
read one topic far ahead of the other, and the window stores' retention (which follows the
largest timestamp seen) would hide rows that should have joined.

The merger is plain code: the worker feeds it what the consumer returned and asks which
records may be processed now; ``lag(topic, partition)`` says whether the broker has more
(True), nothing more (False) or cannot tell yet (None).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

# How long a task waits for a partition whose lag is unknown (no fetch response for it yet,
# or a partition the task does not have), and at most for a partition the broker has records
# of; then it processes what it has (Kafka Streams' "enforced processing"). Kafka Streams
# (max.task.idle.ms = 0, ksqlDB's setting) never gives up on records already on the broker:
# running ahead of them makes the window stores' retention hide rows that should join, so
# the bound for that case is only a safety net (e.g. a transaction marker at a partition's
# end, which the consumer never returns), far above any fetch delay on a loaded machine.
UNKNOWN_LAG_WAIT_S = 5.0
MAX_IDLE_S = 60.0


class TimestampMerger:
    def __init__(self, topics: Iterable[str], lag: Callable[[str, int], bool | None],
                 timestamp: Callable[[Any], int], topic_of: Callable[[Any], str],
                 partition_of: Callable[[Any], int]) -> None:
        self.topics = tuple(topics)
        self.lag = lag
        self.timestamp = timestamp
        self.topic_of = topic_of
        self.partition_of = partition_of
        # task (partition) -> topic -> (timestamp, record) in arrival (offset) order
        self.buffers: dict[int, dict[str, deque[tuple[int, Any]]]] = {}
        self.waiting_since: dict[int, float] = {}

    def add(self, records: Iterable[Any]) -> None:
        buffers, timestamp = self.buffers, self.timestamp
        for rec in records:
            task = buffers.get(self.partition_of(rec))
            if task is None:
                task = buffers[self.partition_of(rec)] = {}
            queue = task.get(self.topic_of(rec))
            if queue is None:
                queue = task[self.topic_of(rec)] = deque()
            queue.append((timestamp(rec), rec))

    def forget(self, partitions: Iterable[int]) -> None:
        """A revoked task's buffered records are dropped (its next owner re-reads them)."""
        for p in partitions:
            self.buffers.pop(p, None)
            self.waiting_since.pop(p, None)

    def buffered(self) -> int:
        return sum(len(q) for task in self.buffers.values() for q in task.values())

    def ready(self, now: float) -> list[Any]:
        """The records that can be processed now, in each task's timestamp order."""
        out: list[Any] = []
        n_topics = len(self.topics)
        for partition, task in self.buffers.items():
            while True:
                queues = [q for q in task.values() if q]
                if not queues:
                    break
                if len(queues) < n_topics:
                    if self._must_wait(partition, task, now):
                        break
                else:
                    self.waiting_since.pop(partition, None)
                if len(queues) == 1:  # nothing to merge with (and no reason to wait)
                    out.extend(rec for _ts, rec in queues[0])
                    queues[0].clear()
                    continue
                # Smallest timestamp first (the first topic on ties) until a queue empties.
                while True:
                    best = queues[0]
                    for q in queues:
                        if q[0][0] < best[0][0]:
                            best = q
                    out.append(best.popleft()[1])
                    if not best:
                        break
        return out

    def _must_wait(self, partition: int, task: dict[str, deque[tuple[int, Any]]],
                   now: float) -> bool:
        unknown = False
        for topic in self.topics:
            if task.get(topic):
                continue
            more = self.lag(topic, partition)
            if more is None:
                unknown = True
            elif more:
                return self._still_waiting(partition, now, MAX_IDLE_S)
        if unknown:
            return self._still_waiting(partition, now, UNKNOWN_LAG_WAIT_S)
        self.waiting_since.pop(partition, None)
        return False

    def _still_waiting(self, partition: int, now: float, limit: float) -> bool:
        """Wait up to ``limit`` seconds; past it the task processes what it has (enforced
        processing) until it has no reason to wait any more."""
        since = self.waiting_since.setdefault(partition, now)
        return now - since < limit
