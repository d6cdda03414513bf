"""A join query's tasks over topics simulated in memory, for the hypothesis tests of crash
exactness (test_joins_fk, test_joins_fk_group_by, test_joins_nway_replay): records placed by
murmur2 like the runtime's producer, one consumer position per (topic, partition), one store
per task as the runtime numbers them (JoinQuery.plan_tasks), delivery in random order across
partitions, commits, and crashes that drop a task's uncommitted state and resume it from its
last commit (what it produced meanwhile stays in the topics: produced again, a duplicate).
Tasks call the runtime's hooks: ``after_restore`` when opened (at the start and after each
crash), ``after_commit`` after each commit. ``history[task]``: the source records (topic,
partition, offset) the task's committed state reflects, in the order it processed them, then
those it processed since (dropped at a crash)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from hayase.client.partitioners import kafka_partition
from hayase.engine.joins import JoinQuery, make_query
from hayase.engine.processing_log import ProcessingLog
from hayase.engine.record import OutputRecord, Record
from hayase.engine.state import META_KEY, MemoryStore
from hayase.sql import Session  # type: ignore[attr-defined]
from hayase.sql.plan import QueryPlan


class SnapshotStore(MemoryStore):
    """A memory store whose committed contents survive a simulated crash."""

    def __init__(self, committed: dict[Any, Any]) -> None:
        super().__init__()
        self.committed = committed
        self.data = dict(committed)

    def commit(self, meta: dict[str, Any], before_write: Any = None) -> list[tuple[Any, Any]]:
        changes = super().commit(meta, before_write)
        self.committed.clear()
        self.committed.update(self.data)
        return changes


class SimulatedTasks:
    """The tasks of the persistent query of ``sql`` (a GROUP BY over the join goes through
    its GroupBy repartition topic, as launch.build_query does). A source topic has
    ``partitions[topic]`` partitions, else ``default``; an internal topic as many as the
    topic it is sized like. ``commit_every``: a random task commits after that many records."""

    def __init__(self, sql: str, rng: random.Random, prefix: str, default: int,
                 partitions: Mapping[str, int] | None = None, commit_every: int = 7) -> None:
        self.rng = rng
        self.commit_every = commit_every
        plan = [r for r in Session({}).execute(sql) if isinstance(r, QueryPlan)][0]
        q = make_query(plan, ProcessingLog(), store_factory=self._store,
                       repartition_prefix=prefix)
        assert isinstance(q, JoinQuery)
        if q.aggregate is not None:
            q.repartition_aggregate(prefix)
        self.q = q
        given = partitions or {}
        self.counts = {t: given.get(t, default) for t in q.source_topics}
        self.counts.update({t: self.counts.get(src, given.get(src, default))
                            for t, src in q.internal_topics()})
        self.tasks = q.plan_tasks(self.counts.get)
        self.snapshots: dict[int, dict[Any, Any]] = {t: {} for t in range(self.tasks)}
        self.logs: dict[tuple[str, int], list[OutputRecord]] = {}
        self.pos: dict[tuple[str, int], int] = {}
        self.sink: list[OutputRecord] = []
        self.history: dict[int, list[tuple[str, int, int]]] = {t: [] for t in range(self.tasks)}
        self._committed_steps: dict[int, int] = dict.fromkeys(range(self.tasks), 0)
        for task in range(self.tasks):  # as the runtime's _on_assign does
            self._open(task)

    def _open(self, task: int) -> None:
        for out in self.q.after_restore(task):
            self.produce(out)

    def _store(self, task: int) -> SnapshotStore:
        return SnapshotStore(self.snapshots[task])

    def produce(self, out: OutputRecord) -> None:
        if out.topic == self.q.sink_topic:
            self.sink.append(out)
            return
        assert out.key is not None
        n = self.counts[out.topic]
        p = out.partition if out.partition is not None else kafka_partition(out.key, n)
        assert p < n
        self.logs.setdefault((out.topic, p), []).append(out)

    def pending(self, topics: set[str] | None = None) -> list[tuple[str, int]]:
        return [tp for tp, log in self.logs.items() if self.pos.get(tp, 0) < len(log)
                and (topics is None or tp[0] in topics)]

    def step(self, tp: tuple[str, int]) -> None:
        off = self.pos.get(tp, 0)
        r = self.logs[tp][off]
        self.pos[tp] = off + 1
        if tp[0] in self.q.by_topic:
            self.history[self.q.task_of(*tp)].append((tp[0], tp[1], off))
        for out in self.q.process(Record(tp[0], tp[1], off, r.timestamp, r.key, r.value, ())):
            self.produce(out)

    def commit(self, task: int) -> None:
        if task in self.q.states:
            self.q.commit(task)
            self._committed_steps[task] = len(self.history[task])
            for out in self.q.after_commit(task):
                self.produce(out)

    def crash(self, task: int) -> None:
        """The task loses what it did since its last commit and resumes from there."""
        self.q.states.pop(task, None)
        if self.q.aggregate is not None:  # its view of the task's store goes too
            self.q.aggregate.states.pop(task, None)
        offsets = self.snapshots[task].get(META_KEY, {}).get("offsets", {})
        for topic, p in list(self.pos):
            if self.q.task_of(topic, p) == task:
                self.pos[(topic, p)] = offsets.get((topic, p), 0)
        for reg in self.q.registration_topics():  # as the runtime's _on_assign does
            for p in range(self.counts[reg]):
                if self.q.task_of(reg, p) == task:
                    self.q.replay_until(reg, p, len(self.logs.get((reg, p), [])))
        del self.history[task][self._committed_steps[task]:]
        self._open(task)

    def drain(self, crash_every: int = 0, topics: set[str] | None = None,
              crashes: int | None = None) -> None:
        """Deliver every pending record (of ``topics``), one random partition at a time;
        ``crashes``: at most that many crashes (a restarted task sends markers: unbounded
        crashes could keep a drain going for ever)."""
        n = 0
        while todo := self.pending(topics):
            self.step(self.rng.choice(todo))
            n += 1
            if n % self.commit_every == 0:
                self.commit(self.rng.randrange(self.tasks))
            if crash_every and n % crash_every == 0 and crashes != 0:
                self.crash(self.rng.randrange(self.tasks))
                crashes = None if crashes is None else crashes - 1
