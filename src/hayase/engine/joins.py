"""JOIN as operators, following Kafka Streams (what ksqlDB compiles a join to).

A plan's join chain is left-deep: node 0 joins source 0 (left) with source 1 (right), node k
joins the result of node k-1 with source k+1. A node's inputs and outputs are either *streams*
(rows) or *tables* (changes: key, new row or None, old row or None). Node kinds:

- STREAM_STREAM (KStreamKStreamJoin): each side keeps a window store, ``key -> [(ts, row)]``; a
  record probes the other side's store for ``[ts - before, ts + after]`` (from the other side's
  point of view the bounds swap) and emits one joined row per match at ``max(ts, other ts)``.
  Reads only see records newer than the store's observed stream time minus its retention
  (``before + after + grace``; without GRACE PERIOD the deprecated 24-hour default).
  Outer sides without a match: without GRACE PERIOD the row is null-padded at once (the old
  eager semantics); with GRACE PERIOD it waits in the *outer store*, ordered by (timestamp,
  side, key), until stream time passes its window end plus grace, or is dropped when a match
  arrives first. A record whose window already closed is null-padded at once.
- STREAM_TABLE (KStreamKTableJoin): the table side keeps ``key -> row``; table updates emit
  nothing, stream records look the key up (LEFT pads with nulls).
- TABLE_TABLE (KTableKTable*Join): both sides keep ``key -> (row, ts)``; an update on either
  side emits the new joined row (or a tombstone) at the larger timestamp.
- FK_TABLE_TABLE (KIP-213 foreign-key join): the left table row's foreign key selects the right
  table row; the result is keyed by the left key; a right update re-emits every left row that
  references it.

Everything stays in a :class:`~hayase.engine.state.StateStore` per task, so the runtime can
commit it with the input offsets and write its changelog, as aggregations do. A task is Kafka
Streams' (sub-topology, partition): on the Kafka runtime each foreign-key node's right table
and subscription-registration topic form a sub-topology of their own (so the two tables may
have any partition counts); every other topic belongs to sub-topology 0. Tasks are numbered
sub-topology by sub-topology (:meth:`JoinQuery.plan_tasks`): task ``n`` logs to changelog
partition ``n``.
Store keys: ``("W", node, side, key)`` window lists, ``("O", node, ts, side, key)`` outer store
entries, ``("T", node, side, key)`` table rows; the metadata entry holds the offsets and the
clocks (``{"offsets": ..., "clocks": {node: [stream time, left observed, right observed]}}``).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from hayase.engine import repartition, windows
from hayase.engine.aggregate import freeze
from hayase.engine.processing_log import (
    RECORD_PROCESSING_ERROR,
    SERIALIZATION_ERROR,
    ProcessingLog,
    ProcessingLogReporter,
)
from hayase.engine.query import UnsupportedPlan, _row_builder, deserialize
from hayase.engine.record import OutputRecord, Record
from hayase.engine.state import (
    APART,
    META_KEY,
    MemoryStore,
    StateStore,
    TaskStores,
    is_apart,
)
from hayase.engine.timestamps import InvalidTimestamp, make_extractor, throw_on_invalid
from hayase.formats import SerdeError, key_serde, value_serde
from hayase.sql.errors import KsqlRuntimeError, StatementError
from hayase.sql.plan import (
    AggregateStep,
    DataSource,
    FilterStep,
    JoinStep,
    Namespace,
    ProjectStep,
    QueryPlan,
    Row,
    SelectKeyStep,
    SourceType,
)

log = logging.getLogger("hayase.engine.joins")

# JoinWindows.of(): grace defaults to 24 hours minus the window size (deprecated API ksqlDB uses
# when no GRACE PERIOD is given).
DEFAULT_GRACE_BASE_MS = 24 * 3600 * 1000

StoreFactory = Callable[[int], StateStore]

_SEQ = itertools.count()  # tie-breaker in expiry heaps (keys of mixed types never compare)

LEFT, RIGHT = "L", "R"
# Internal-topic roles of a foreign-key node (KIP-213).
SUBSCRIPTION, RESPONSE = "SUB", "RESP"

# A stream item: (row, timestamp, join key of the producing node or None).
StreamItem = tuple[Row, int, Any]
# A table change: (key, row, tombstone, timestamp); a tombstone's row still carries the key
# columns (the sink key is projected from it).
TableChange = tuple[Any, Row, bool, int]


@dataclass
class _Input:
    """One source of the plan: how to turn its records into rows."""

    index: int
    source: DataSource
    is_table: bool
    key_serde: Any
    value_serde: Any
    build_row: Callable[..., tuple[Any, ...]]
    extract_ts: Callable[[Row, int], int] | None
    null_key: tuple[Any, ...]


@dataclass
class _TaskState:
    """A task's store plus the indexes rebuilt from it on open."""

    store: StateStore
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    # node -> [shared stream time, left store observed time, right store observed time]
    clocks: dict[int, list[int]] = field(default_factory=dict)
    # node -> {(ts, side, key): row}: the outer store (also in ``store``)
    outer: dict[int, dict[tuple[int, str, Any], Row]] = field(default_factory=dict)
    # FK nodes: node -> {foreign key: {left key, ...}}
    fk_index: dict[int, dict[Any, set[Any]]] = field(default_factory=dict)
    # FK nodes on subscription topics (right task): node -> {fk: {left key: (hash, partition)}}
    subs: dict[int, dict[Any, dict[Any, tuple[bytes, int]]]] = field(default_factory=dict)
    # (node, side) -> heap of (timestamp, key, seq): window entries by age, for expiry
    expiry: dict[tuple[int, str], list[tuple[int, Any, int]]] = field(default_factory=dict)
    # (repartition topic, source topic, source partition) -> last (offset, seq) applied
    forwarded: dict[tuple[str, str, int], tuple[int, int]] = field(default_factory=dict)
    # This run's numbering of the rows it forwards read-committed, per topic (a stream-stream
    # join's results: to a later node or a GROUP BY; see JoinQuery._sequenced); the last
    # numbers are in the metadata.
    sequencers: dict[str, repartition.Sequencer] = field(default_factory=dict)
    # Receiving side, per sequenced topic: upstream task -> [run, seen, committed] (metadata)
    # and the reader holding the pending rows (repartition.ReadCommitted).
    upstreams: dict[str, dict[int, list[Any]]] = field(default_factory=dict)
    readers: dict[str, repartition.ReadCommitted] = field(default_factory=dict)

    def clock(self, node: int) -> list[int]:
        c = self.clocks.get(node)
        if c is None:
            c = self.clocks[node] = [-1, -1, -1]
        return c

    def meta(self) -> dict[str, Any]:
        meta = {"offsets": dict(self.offsets),
                "clocks": {n: list(c) for n, c in self.clocks.items()},
                "forwarded": dict(self.forwarded)}
        if self.sequencers:
            meta["sequences"] = {t: s.seq for t, s in self.sequencers.items()}
        if self.upstreams:
            meta["upstreams"] = {t: {u: tuple(v) for u, v in ups.items()}
                                 for t, ups in self.upstreams.items()}
        return meta


def _join_key(value: Any) -> Any:
    return freeze(value)


class JoinQuery(TaskStores, ProcessingLogReporter):
    """Runs a QueryPlan whose steps are ``JoinStep... [FilterStep] [SelectKeyStep]
    ProjectStep`` (SelectKeyStep: PARTITION BY after the join)."""

    def __init__(self, plan: QueryPlan, log_: ProcessingLog,
                 properties: Mapping[str, Any] | None = None,
                 store_factory: StoreFactory | None = None,
                 repartition_prefix: str | None = None) -> None:
        """``repartition_prefix``: run with repartition topics named after it (the Kafka
        runtime, several partitions); None joins every row where it arrives (one partition:
        the test driver)."""
        self.plan = plan
        self.query_id = plan.query_id
        self.log = log_
        self.properties = dict(properties or {})
        self.joins: list[JoinStep] = [s for s in plan.steps if isinstance(s, JoinStep)]
        rest = [s for s in plan.steps if not isinstance(s, JoinStep)]
        if not self.joins or len(plan.sources) != len(self.joins) + 1:
            raise UnsupportedPlan("a join plan needs one JoinStep per joined source")
        self.filters = [s.predicate for s in rest if isinstance(s, FilterStep)]
        select_keys = [s for s in rest if isinstance(s, SelectKeyStep)]
        self.select_key = select_keys[0].key_fn if select_keys else None
        projects = [s for s in rest if isinstance(s, ProjectStep)]
        self.store_factory: StoreFactory = store_factory or (lambda _p: MemoryStore())
        self.aggregate: Any = None
        if rest and isinstance(rest[-1], AggregateStep):
            self.aggregate = self._aggregate_query(plan, rest)
        elif len(projects) != 1 or len(select_keys) > 1 or \
                len(rest) != len(self.filters) + len(select_keys) + 1:
            raise UnsupportedPlan("steps after a join must be [FilterStep] [SelectKeyStep] "
                                  "ProjectStep, or [FilterStep] AggregateStep")
        self.project = projects[0] if projects else None
        self.inputs = [self._input(i, s) for i, s in enumerate(plan.sources)]
        self.by_topic: dict[str, list[_Input]] = {}
        for inp in self.inputs:
            self.by_topic.setdefault(inp.source.topic, []).append(inp)
        # Whether each node's left input / output is a table.
        self.left_is_table: list[bool] = []
        left_table = self.inputs[0].is_table
        for step in self.joins:
            self.left_is_table.append(left_table)
            left_table = step.kind in ("TABLE_TABLE", "FK_TABLE_TABLE")
        self.result_is_table = left_table
        self.windows = [self._window(step) for step in self.joins]
        self._throw_on_invalid_ts = throw_on_invalid(self.properties)
        sink = plan.sink.source
        self.sink = sink
        self.sink_topic = sink.topic
        self._sink_key_serde = key_serde(sink.key_format, sink.schema.key)
        self._sink_value_serde = value_serde(sink.value_format, sink.schema.value)
        self._n_sink_key = len(sink.schema.key)
        self._value_idx = tuple(i for i, c in enumerate(sink.schema.columns)
                                if c.namespace is Namespace.VALUE)
        self._n_sink_cols = len(sink.schema.columns)
        # (node, side) -> (repartition topic, key serde); topic -> (node, side)
        self.points: dict[tuple[int, str], tuple[str, Any]] = {}
        self.rep_topics: dict[str, tuple[int, str]] = {}
        # FK nodes run through subscription topics: node -> (registration, response)
        self.fk_topics: dict[int, tuple[str, str]] = {}
        self.internal_like: dict[str, str] = {}  # internal topic -> source topic it sizes like
        # Sub-topologies other than 0: topic -> sub-topology (FK right tables, registration)
        self.subtopology: dict[str, int] = {}
        self._task_base: dict[str, int] = {}  # topic -> number of its sub-topology's task 0
        self._task = 0  # the task of the record being processed
        # Registration partitions -> their end offset when their task was opened: below it,
        # a previous owner of the task may have answered (see replay_until).
        self._replay_end: dict[tuple[str, int], int] = {}
        self._rep_seq = 0
        # Topics a task forwards read-committed (hayase.engine.repartition) -> their
        # partition count (set by plan_tasks)
        self._sequenced: dict[str, int] = {}
        # node -> whether its left input's rows depend on the order a task read its inputs
        # (a stream-stream join before it): see _committed_rows
        kinds = [step.kind for step in self.joins]
        self.results_vary = [("STREAM_STREAM" in kinds[:k]) for k in range(len(kinds))]
        if repartition_prefix is not None:
            self._plan_repartitions(repartition_prefix)
            # A later node's left side carrying a stream-stream join's results: read
            # committed (a restarted task re-sends other results for the same positions).
            self._sequenced = {self.points[(k, LEFT)][0]: 1 for k, varies in
                               enumerate(self.results_vary) if varies and (k, LEFT) in self.points}
        self.states: dict[int, _TaskState] = {}
        self._current: Record | None = None
        self._suppress_errors = False
        plan.set_error_handler(self._on_expression_error)

    # ------------------------------------------------------------------ setup

    def _aggregate_query(self, plan: QueryPlan, steps: list[Any]) -> Any:
        """GROUP BY over the joined rows: the aggregation operator, fed by :meth:`_finish`,
        its state kept in this query's store (one atomic commit per task)."""
        from hayase.engine.aggregate import AggregateQuery

        sub = QueryPlan(plan.query_id, [plan.sources[0]], list(steps), plan.sink, plan.sql,
                        plan._runtime)
        return AggregateQuery(sub, self.log, self.properties,
                              store_factory=lambda p: _Namespaced(self.state(p).store, "agg"))

    def _input(self, index: int, src: DataSource) -> _Input:
        return _Input(
            index=index, source=src, is_table=src.source_type is SourceType.TABLE,
            key_serde=key_serde(src.key_format, src.schema.key),
            value_serde=value_serde(src.value_format, src.schema.value),
            build_row=_row_builder(src), extract_ts=self._extractor(index, src),
            null_key=(None,) * len(src.schema.key))

    def _extractor(self, index: int, src: DataSource) -> Callable[[Row, int], int] | None:
        compiled = getattr(self.plan, "source_timestamp", None)
        if compiled is not None and index == 0 and len(self.plan.sources) == 1:
            return None
        return make_extractor(src)

    @staticmethod
    def _window(step: JoinStep) -> tuple[int, int, int, bool]:
        """(before, after, grace, spurious-result fix): the JoinWindows of a STREAM_STREAM
        node (the outer store only exists when GRACE PERIOD is given)."""
        if step.within is None:
            return 0, 0, 0, False
        before, after = step.within
        if step.grace_ms is not None:
            return before, after, step.grace_ms, True
        return before, after, max(DEFAULT_GRACE_BASE_MS - before - after, 0), False

    @property
    def source_topics(self) -> tuple[str, ...]:
        group_by = () if self.aggregate is None or self.aggregate.repartition_topic is None \
            else (self.aggregate.repartition_topic,)
        return tuple(self.by_topic) + tuple(self.rep_topics) + group_by

    def repartition_aggregate(self, prefix: str) -> str:
        """GROUP BY over the joined rows through ksqlDB's ``<prefix>-Aggregate-GroupBy-
        repartition`` topic (returned; also in :meth:`internal_topics`, sized like the left
        source): the join's task forwards each joined row keyed by its group, and the task of
        the group's partition aggregates it (marks in the aggregation's state: exactly one
        effect per joined row, see hayase.engine.repartition). A table result goes to every
        partition by its left key instead, from :meth:`plan_tasks` on (see
        AggregateQuery._broadcast)."""
        assert self.aggregate is not None
        name: str = self.aggregate.repartition_through(prefix)
        self.internal_like[name] = self.inputs[0].source.topic
        # A stream-stream join's results depend on the order its task read its inputs: a
        # restarted task re-sends other rows (other pairs, padded rows) for the same source
        # positions, so the groups read them committed (hayase.engine.repartition).
        self.aggregate.sequenced = not self.result_is_table and any(
            step.kind == "STREAM_STREAM" for step in self.joins)
        if self.aggregate.sequenced:
            self._sequenced[name] = 1
        return name

    def check_copartitioning(self, partitions_of: Callable[[str], int | None]) -> None:
        """Refuse, as ksqlDB does, a join whose sides meet without a repartition but whose
        topics have different partition counts (rows of one key would sit in different
        tasks). ``partitions_of(topic)``: the topic's partition count, None if unknown."""
        left = self.inputs[0]
        counts = {i.source.name: partitions_of(i.source.topic) for i in self.inputs}
        if self.aggregate is not None and self.aggregate.repartition_topic is None and \
                any((n or 1) > 1 for n in counts.values()):
            # The aggregation runs in the join's task, keyed by the join key; a GROUP BY on
            # another key would need one more repartition (by the group key).
            raise StatementError(
                "GROUP BY over a JOIN of topics with more than one partition is not supported "
                f"by hayase run yet (partitions: {counts}).")
        for k, _step in enumerate(self.joins):
            right = self.inputs[k + 1]
            if (k, LEFT) in self.points or (k, RIGHT) in self.points:
                continue
            lp, rp = partitions_of(left.source.topic), partitions_of(right.source.topic)
            if self.joins[k].kind == "FK_TABLE_TABLE":
                self._check_fk_partitions(k, partitions_of)
                continue
            if lp is not None and rp is not None and lp != rp:
                ln, rn = left.source.name, right.source.name
                raise StatementError(
                    f"Can't join `{ln}` with `{rn}` since the number of partitions don't "
                    f"match. `{ln}` partitions = {lp}; `{rn}` partitions = {rp}. Please "
                    "repartition either one so that the number of partitions match.")

    def _check_fk_partitions(self, node: int,
                             partitions_of: Callable[[str], int | None]) -> None:
        """An FK join needs no co-partitioning (ksqlDB allows different counts): its right
        table runs in a sub-topology of its own. Only when that table's topic is also read
        by another input (it cannot be in two sub-topologies) do both sides share tasks,
        which the range assignment keeps on one member only for equal counts (or one side
        with a single partition)."""
        left_topic = self.internal_like.get(self.fk_topics[node][1]) if node in \
            self.fk_topics else self.inputs[0].source.topic
        right = self.inputs[node + 1]
        lp = partitions_of(left_topic or self.inputs[0].source.topic) or 1
        rp = partitions_of(right.source.topic) or 1
        if lp > 1 and rp > 1 and lp != rp and right.source.topic not in self.subtopology:
            raise StatementError(
                f"Foreign-key join with `{right.source.name}`: hayase run needs both sides "
                f"with the same number of partitions, or one side with a single partition "
                f"(left partitions = {lp}; `{right.source.name}` partitions = {rp}).")
        if rp > 1 and len(right.source.schema.key) != 1:
            raise StatementError(
                f"Foreign-key join with `{right.source.name}`: hayase run places "
                "subscriptions by a single key column.")

    def internal_topics(self) -> list[tuple[str, str]]:
        """Internal topics to create: (name, the source topic whose partition count it
        takes). Repartition topics are co-partitioned with the side they join; an FK node's
        registration topic with its right table, its response topic with its left side."""
        return list(self.internal_like.items())

    def subtopologies(self) -> list[tuple[str, ...]]:
        """The topics of each sub-topology (index: its id), in :attr:`source_topics` order."""
        groups: list[list[str]] = [[] for _ in range(1 + max(self.subtopology.values(),
                                                              default=0))]
        for topic in self.source_topics:
            groups[self.subtopology.get(topic, 0)].append(topic)
        return [tuple(g) for g in groups]

    def plan_tasks(self, partitions_of: Callable[[str], int | None]) -> int:
        """Number the tasks (sub-topology, partition) sub-topology by sub-topology, each
        sub-topology having as many tasks as its widest topic; returns how many tasks there
        are (the changelog's partitions). Until it is called every topic's partition ``p``
        is task ``p`` (one process, or one sub-topology)."""
        base = 0
        self._task_base = {}
        for topics in self.subtopologies():
            for topic in topics:
                self._task_base[topic] = base
            base += max((partitions_of(t) or 1) for t in topics)
        agg = self.aggregate
        for topic in self._sequenced:
            self._sequenced[topic] = partitions_of(topic) or 1
        if agg is not None and agg.repartition_topic is not None and self.result_is_table:
            # A table result is not replayed identically after a crash: its rows are
            # broadcast by upstream key (see AggregateQuery._broadcast).
            agg.broadcast_partitions = partitions_of(agg.repartition_topic) or 1
        return base

    def registration_topics(self) -> list[str]:
        """The FK subscription-registration topics (see :meth:`replay_until`)."""
        return [reg for reg, _resp in self.fk_topics.values()]

    def replay_until(self, topic: str, partition: int, end: int) -> None:
        """A registration partition's task was (re)opened when the partition ended at
        ``end``: its subscriptions below it may have been answered by a previous owner that
        never committed, whose answer a left task may have joined and output. They are
        answered even without a right row (a row output then is retracted; at worst a
        tombstone for a key never output)."""
        self._replay_end[(topic, partition)] = end

    def task_of(self, topic: str, partition: int) -> int:
        """The task that processes this partition of one of :attr:`source_topics`."""
        return self._task_base.get(topic, 0) + partition

    @property
    def source_topic(self) -> str:
        return self.inputs[0].source.topic

    @property
    def source(self) -> DataSource:
        """The left-most source (its partition count is the result's)."""
        return self.inputs[0].source

    # ------------------------------------------------------------------ state

    def state(self, partition: int) -> _TaskState:
        st = self.states.get(partition)
        if st is None:
            store = self.store_factory(partition)
            meta = store.meta
            st = _TaskState(store, dict(meta.get("offsets", {})),
                            {int(n): list(c) for n, c in meta.get("clocks", {}).items()})
            st.forwarded = dict(meta.get("forwarded", {}))
            seqs = meta.get("sequences", {})
            st.sequencers = {t: repartition.Sequencer(t, n, partition, int(seqs.get(t, 0)))
                             for t, n in self._sequenced.items()}
            st.upstreams = {t: {u: list(v) for u, v in ups.items()}
                            for t, ups in meta.get("upstreams", {}).items()}
            self._index(st)
            self.states[partition] = st
        return st

    def _index(self, st: _TaskState) -> None:
        """Rebuild the in-memory indexes (outer stores, FK index) from a (restored) store."""
        for key, value in st.store.items():
            if key[0] == "W":
                for ts, _row in value:
                    self._push_expiry(st, key[1], key[2], ts, key[3])
            elif key[0] == "O":
                st.outer.setdefault(key[1], {})[(key[2], key[3], key[4])] = value
            elif key[0] == "S":
                st.subs.setdefault(key[1], {}).setdefault(key[2], {})[key[3]] = value
            elif key[0] == "T" and key[2] == LEFT and \
                    self.joins[key[1]].kind == "FK_TABLE_TABLE":
                fk = self._fk_of(key[1], value[0])
                if fk is not None:
                    st.fk_index.setdefault(key[1], {}).setdefault(fk, set()).add(key[3])

    def commit(self, partition: int,
               before_write: Callable[[list[tuple[Any, Any]]], None] | None = None,
               extra_meta: Mapping[str, Any] | None = None) -> list[tuple[Any, Any]]:
        """Make the task's state durable with the offsets it reflects (``before_write`` gets
        the changed entries first: the changelog)."""
        st = self.states[partition]
        if self.aggregate is not None and partition in self.aggregate.states:
            self.aggregate.commit(partition)  # writes its metadata into this store
        meta = st.meta()
        meta.update(extra_meta or {})
        changes = st.store.commit(meta, before_write)
        for topic, seq in st.sequencers.items():  # durable now (see after_commit)
            seq.committed = meta["sequences"][topic]
        return changes

    def after_commit(self, partition: int) -> list[OutputRecord]:
        """Records to produce once the task's commit is durable (runtime hook): the commit
        markers of the rows it forwarded read-committed (hayase.engine.repartition)."""
        st = self.states.get(partition)
        if st is None:
            return []
        return [m for seq in st.sequencers.values() for m in seq.commit_markers()]

    def after_restore(self, partition: int) -> list[OutputRecord]:
        """Records to produce when the task opens (restore, assignment), before it processes
        anything (runtime hook): the finalize markers voiding what earlier runs forwarded
        after the restored state."""
        st = self.state(partition)
        ts = max([0, *(c[0] for c in st.clocks.values())])
        return [m for seq in st.sequencers.values() if not seq.announced
                for m in seq.finalize_markers(ts)]

    def close_partition(self, partition: int) -> None:
        if self.aggregate is not None:
            self.aggregate.close_partition(partition)
        super().close_partition(partition)

    # ------------------------------------------------------------------ errors

    # ------------------------------------------------------------------ records

    def process(self, rec: Record) -> list[OutputRecord]:
        """Run one source record through the join chain; returns the sink records."""
        self._task = task = self.task_of(rec.topic, rec.partition)
        st = self.states.get(task) or self.state(task)
        if st.sequencers and not all(seq.announced for seq in st.sequencers.values()):
            # A run opened without the runtime's after_restore announces itself first.
            return self.after_restore(task) + self.process(rec)
        tp = (rec.topic, rec.partition)
        applied = st.offsets.get(tp)
        if applied is not None and rec.offset < applied:
            return []  # already reflected in the (restored) state
        self._current = rec
        try:
            self._rep_seq = 0
            if self.aggregate is not None:
                self.aggregate._rep_seq = 0  # its forwards of this record: numbered from 1
                if rec.topic == self.aggregate.repartition_topic:
                    return self._aggregate_forwarded(rec)
            if rec.topic in self.rep_topics:
                return self._from_repartition(st, rec)
            outputs: list[OutputRecord] = []
            for inp in self.by_topic.get(rec.topic, ()):
                outputs += self._process_input(st, inp, rec)
            return outputs
        except (InvalidTimestamp, KsqlRuntimeError):
            raise
        except Exception as e:  # a bug or an unexpected value must not stop the query
            log.debug("join failure", exc_info=True)
            self._entry(RECORD_PROCESSING_ERROR, f"{type(e).__name__}: {e}")
            return []
        finally:
            st.offsets[tp] = rec.offset + 1
            self._current = None
            self._suppress_errors = False

    def _process_input(self, st: _TaskState, inp: _Input, rec: Record) -> list[OutputRecord]:
        parts = deserialize(self, rec, inp.source.window, inp.key_serde, inp.value_serde)
        if parts is None:
            return []
        key, value, bounds = parts
        if key is None and inp.is_table and inp.source.schema.key:
            self._entry(RECORD_PROCESSING_ERROR, "Skipping table record with a null key")
            return []
        columns = inp.build_row(inp.null_key if key is None else key, value, rec.headers)
        ts = rec.timestamp
        if inp.extract_ts is not None and value is not None:
            try:
                ts = inp.extract_ts(columns, rec.timestamp)
            except InvalidTimestamp as e:
                if self._throw_on_invalid_ts:
                    raise KsqlRuntimeError(
                        "Fatal user code error in TimestampExtractor callback for record "
                        f"{rec.topic}-{rec.partition}@{rec.offset}: {e}") from e
                self._entry(RECORD_PROCESSING_ERROR, str(e))
                return []
        row: Row = columns + (ts, rec.partition, rec.offset) + bounds
        node = max(inp.index - 1, 0)
        side = LEFT if inp.index == 0 else RIGHT
        if inp.is_table:
            return self._table_input(st, node, side, row, value is None, ts)
        if value is None:
            return []  # a stream record without a value has nothing to join
        return self._dispatch_stream(st, node, side, (row, ts, None))

    # ------------------------------------------------------------------ routing

    def _table_input(self, st: _TaskState, node: int, side: str, row: Row, tombstone: bool,
                     ts: int) -> list[OutputRecord]:
        """A source table's record: update the node's table (side) and join."""
        step = self.joins[node]
        key_fn = step.left_key if side == LEFT else step.right_key
        assert key_fn is not None
        if side == RIGHT or step.kind != "FK_TABLE_TABLE":
            key = _join_key(key_fn(row))
        else:
            key = _join_key(self._table_pk(row))
        if key is None:
            self._entry(RECORD_PROCESSING_ERROR, "Skipping table record with a null join key")
            return []
        return self._dispatch_table(st, node, side, (key, row, tombstone, ts))

    def _dispatch_table(self, st: _TaskState, node: int, side: str, change: TableChange,
                        repartitioned: bool = False) -> list[OutputRecord]:
        """A table change entering (node, side): to its repartition topic, or joined here."""
        step = self.joins[node]
        if not repartitioned and (node, side) in self.points:
            return self._to_repartition(node, side, change[0], ("T", change))
        key, row, tombstone, ts = change
        if step.kind == "STREAM_TABLE":
            skey = ("T", node, RIGHT, key)
            if tombstone:
                st.store.delete(skey)
            else:
                st.store.put(skey, (row, ts))
            return []
        return self._route_table(st, node, side, change)

    def _table_pk(self, row: Row) -> Any:
        src = self.inputs[0].source
        n_key = len(src.schema.key)
        return row[0] if n_key == 1 else tuple(row[:n_key])

    def _dispatch_stream(self, st: _TaskState, node: int, side: str, item: StreamItem,
                         repartitioned: bool = False) -> list[OutputRecord]:
        """A stream row entering (node, side): to its repartition topic, or joined here."""
        if not repartitioned and (node, side) in self.points:
            step = self.joins[node]
            key_fn = step.left_key if side == LEFT else step.right_key
            assert key_fn is not None
            key = _join_key(key_fn(item[0]))
            if key is not None:  # null keys cannot be placed; joined (or padded) here
                return self._to_repartition(node, side, key, ("S", item))
        return self._stream_input(st, node, side, item)

    # ------------------------------------------------------------------ repartition

    def _plan_repartitions(self, prefix: str) -> None:
        """Where rows must move to the partition of their join key before joining (ksqlDB's
        implicit repartition): a side whose join key is not its key, or whose key bytes
        would not be placed like the other side's (a key format mismatch). A repartition
        topic's key is the join key in the other side's key format, so that the producer's
        murmur2 placement matches the other side's topic. Foreign-key nodes get their
        subscription topics instead (:meth:`_plan_fk_topics`)."""
        partitioning: Any = self._source_key_serde(0)
        left_like = self.inputs[0].source.topic  # the left side's partition count
        for k, step in enumerate(self.joins):
            right_serde = self._source_key_serde(k + 1)
            lrep, rrep = step.left_repartition, step.right_repartition
            if step.kind == "FK_TABLE_TABLE":
                self._plan_fk_topics(prefix, k, left_like)
                continue
            if not lrep and not rrep and \
                    (partitioning is None or right_serde is None or
                     partitioning[0] != right_serde[0]):
                rrep = True
            if lrep and rrep:
                partitioning = ("JSON", self._json_key_serde(step))
            elif lrep:
                partitioning = right_serde
                left_like = self.inputs[k + 1].source.topic
            for side, flag in ((LEFT, lrep), (RIGHT, rrep)):
                if flag:
                    name = f"{prefix}-{self._repartition_name(k, side)}"
                    serde = partitioning if partitioning is not None else \
                        ("JSON", self._json_key_serde(step))
                    self.points[(k, side)] = (name, serde[1])
                    self.rep_topics[name] = (k, side)
                    self.internal_like[name] = \
                        self.inputs[k + 1 if side == LEFT else 0].source.topic

    def _repartition_name(self, node: int, side: str) -> str:
        """ksqlDB's name for a repartition topic (after the query-id prefix): the join's
        query context is ``Join`` for the last JOIN of the chain and ``L_`` once more for
        each one before it; a stream side is repartitioned under the join's context
        (``Join-left-repartition``; ``Join-repartition`` for the stream of a stream-table
        join), a table side is re-keyed under its source's context
        (``RightSourceKeyed-SelectKey-repartition``)."""
        step = self.joins[node]
        outer = "L_" * (len(self.joins) - 1 - node)
        is_table = self.left_is_table[node] if side == LEFT else \
            self.inputs[node + 1].is_table
        if is_table:
            which = "Left" if side == LEFT else "Right"
            return f"{outer}{which}SourceKeyed-SelectKey-repartition"
        if step.kind == "STREAM_TABLE":
            return f"{outer}Join-repartition"
        return f"{outer}Join-{'left' if side == LEFT else 'right'}-repartition"

    def _plan_fk_topics(self, prefix: str, node: int, left_like: str) -> None:
        """KIP-213's two topics for a foreign-key node: subscriptions go to the right
        table's task of the foreign key (registration topic, placed like the right table by
        the foreign key in its key format), answers come back to the left row's task
        (response topic, sent to the left row's partition). Named as Kafka Streams names
        them in ksqlDB's two-table topology (numbers 12 and 20; a later FK node of an n-way
        join takes distinct numbers of its own)."""
        base = 100 * node
        reg = f"{prefix}-KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-{base + 12:010d}-topic"
        resp = f"{prefix}-KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-{base + 20:010d}-topic"
        self.fk_topics[node] = (reg, resp)
        self.rep_topics[reg] = (node, SUBSCRIPTION)
        self.rep_topics[resp] = (node, RESPONSE)
        self.internal_like[reg] = self.inputs[node + 1].source.topic
        self.internal_like[resp] = left_like
        right = self.inputs[node + 1].source.topic
        if len(self.by_topic[right]) == 1 and right not in self.subtopology:
            # Kafka Streams' sub-topology of the right table and the registrations (placed
            # like it); the left side and the responses stay in sub-topology 0.
            sub = 1 + max(self.subtopology.values(), default=0)
            self.subtopology[right] = self.subtopology[reg] = sub

    def _source_key_serde(self, index: int) -> tuple[str, Any] | None:
        """(format identity, serde) of a source's single key column, None when keyless."""
        src = self.inputs[index].source
        if len(src.schema.key) != 1 or src.window is not None:
            return None
        fmt = src.key_format
        ident = f"{fmt.name}/{sorted(fmt.features)}/{sorted(fmt.properties)}"
        return ident, self.inputs[index].key_serde

    @staticmethod
    def _json_key_serde(step: JoinStep) -> Any:
        from hayase.sql.plan import Column, FormatInfo
        from hayase.sql.types import STRING

        return key_serde(FormatInfo("JSON"), (Column("K", STRING, Namespace.KEY),))

    def _to_repartition(self, node: int, side: str, key: Any,
                        payload: tuple[str, Any]) -> list[OutputRecord]:
        rec = self._current
        assert rec is not None
        topic, serde = self.points[(node, side)]
        seq = self.states[self._task].sequencers.get(topic)
        if seq is not None:  # read-committed (see __init__); the source timestamp rides along
            return [seq.forward(_key_bytes(serde, key), (*payload, rec.timestamp),
                                rec.timestamp, rec.headers)]
        return [self._to_internal(topic, _key_bytes(serde, key), payload, rec.timestamp)]

    def _to_internal(self, topic: str, key_bytes: bytes, payload: tuple[str, Any],
                     timestamp: int, partition: int | None = None) -> OutputRecord:
        """A record for one of this query's internal topics, stamped with the position of
        the record being processed (see :mod:`hayase.engine.repartition`)."""
        rec = self._current
        assert rec is not None
        self._rep_seq += 1
        out = repartition.forward(topic, key_bytes, rec, self._rep_seq, payload, timestamp)
        return out if partition is None else replace(out, partition=partition)

    def _from_repartition(self, st: _TaskState, rec: Record) -> list[OutputRecord]:
        node, side = self.rep_topics[rec.topic]
        if rec.topic in st.sequencers:
            return self._committed_rows(st, node, side, rec)
        # Every copy of a subscription or an answer counts. Subscriptions are idempotent, and
        # a left task restarted from its last commit must be answered again (answers read
        # before its rows were replayed are dropped by their hash). A restarted right task
        # may answer in another order than before (its topics interleave differently), so a
        # copy's position says nothing about its content: answers are applied in the order
        # they arrive, guarded by the hash, and the last one reflects the newest right row.
        marks: repartition.Marks = {} if side in (SUBSCRIPTION, RESPONSE) else st.forwarded
        payload = repartition.receive(marks, rec)
        if payload is None:
            return []  # a copy re-sent after the forwarding task restarted
        kind, data = payload
        if kind == "T":
            return self._dispatch_table(st, node, side, data, repartitioned=True)
        if kind == SUBSCRIPTION:
            return self._fk_subscription(st, node, *data)
        if kind == RESPONSE:
            return self._table_changes(st, node, self._fk_response(st, node, *data))
        return self._dispatch_stream(st, node, side, data, repartitioned=True)

    def _committed_rows(self, st: _TaskState, node: int, side: str,
                        rec: Record) -> list[OutputRecord]:
        """A stream-stream join's results, read committed (hayase.engine.repartition): a
        restarted task re-sends other results for the same source positions (another pair,
        a padded row where a pair was), so only those of committed join states are joined
        here, once each, in the forwarding task's order."""
        reader = st.readers.get(rec.topic)
        if reader is None:
            reader = st.readers[rec.topic] = repartition.ReadCommitted(
                _Namespaced(st.store, f"R:{rec.topic}"), st.upstreams.setdefault(rec.topic, {}))
        outputs: list[OutputRecord] = []
        try:
            for (_kind, item, ts), headers in reader.receive(rec):
                self._current = replace(rec, timestamp=ts, headers=headers)
                outputs += self._dispatch_stream(st, node, side, item, repartitioned=True)
        finally:
            self._current = rec
        return outputs

    def _stream_input(self, st: _TaskState, node: int, side: str,
                      item: StreamItem) -> list[OutputRecord]:
        step = self.joins[node]
        if step.kind == "STREAM_STREAM":
            out = self._stream_stream(st, node, side, item)
        elif step.kind == "STREAM_TABLE":
            out = self._stream_table(st, node, item)
        else:
            raise UnsupportedPlan(f"stream input into a {step.kind} join")
        return self._next_stream(st, node, out)

    def _next_stream(self, st: _TaskState, node: int,
                     items: list[StreamItem]) -> list[OutputRecord]:
        outputs: list[OutputRecord] = []
        if node + 1 < len(self.joins):
            for item in items:
                outputs += self._dispatch_stream(st, node + 1, LEFT, item)
            return outputs
        for row, ts, key in items:
            outputs += self._finish(row + (key, ts), ts, tombstone=False)
        return outputs

    def _route_table(self, st: _TaskState, node: int, side: str,
                     change: TableChange) -> list[OutputRecord]:
        step = self.joins[node]
        if step.kind == "FK_TABLE_TABLE":
            if node in self.fk_topics:
                return self._fk_send(st, node, side, change)
            changes = self._fk_join(st, node, side, change)
        else:
            changes = self._table_table(st, node, side, change)
        return self._table_changes(st, node, changes)

    def _table_changes(self, st: _TaskState, node: int,
                       changes: list[TableChange]) -> list[OutputRecord]:
        """A node's result changes: into the next node's left side, or to the sink."""
        outputs: list[OutputRecord] = []
        if node + 1 < len(self.joins):
            nxt = self.joins[node + 1]
            if nxt.kind not in ("TABLE_TABLE", "FK_TABLE_TABLE"):
                raise UnsupportedPlan("a table result joined as a stream")
            for key, row, tombstone, ts in changes:
                if nxt.kind == "TABLE_TABLE":
                    assert nxt.left_key is not None
                    key = _join_key(nxt.left_key(row))
                outputs += self._dispatch_table(st, node + 1, LEFT, (key, row, tombstone, ts))
            return outputs
        for key, row, tombstone, ts in changes:
            outputs += self._finish(row + (key, ts), ts, tombstone)
        return outputs

    # ------------------------------------------------------------------ stream-stream

    def _stream_stream(self, st: _TaskState, node: int, side: str,
                       item: StreamItem) -> list[StreamItem]:
        step = self.joins[node]
        row, ts, _ = item
        key_fn = step.left_key if side == LEFT else step.right_key
        assert key_fn is not None
        key = _join_key(key_fn(row))
        if key is None:
            self._entry(RECORD_PROCESSING_ERROR,
                        "Skipping record due to null join key: " + step.text)
            return []
        before, after, grace, spurious_fix = self.windows[node]
        if side == RIGHT:
            before, after = after, before
        retention = step.within[0] + step.within[1] + grace if step.within else grace
        clock = st.clock(node)
        this_i, other_i = (1, 2) if side == LEFT else (2, 1)
        other = RIGHT if side == LEFT else LEFT
        # KStreamJoinWindow: the record goes into this side's window store first.
        if ts > clock[this_i]:
            clock[this_i] = ts
        bound = clock[this_i] - retention
        if ts > bound:
            store = st.store
            skey = ("W", node, side, key)
            entries = store.get(skey)
            store.put(skey, [(ts, row)] if entries is None else [*entries, (ts, row)])
            queue = st.expiry.get((node, side))
            if queue is None:
                queue = st.expiry[(node, side)] = []
            heapq.heappush(queue, (ts, key, next(_SEQ)))
            if queue[0][0] <= bound:  # the oldest entry can no longer be read
                self._expire(st, node, side, bound)
        if ts > clock[0]:
            clock[0] = ts
        out: list[StreamItem] = []
        if spurious_fix and ts == clock[0]:
            out += self._emit_outer(st, node, clock[0], grace)
        time_from = max(0, ts - before, clock[other_i] - retention + 1)
        time_to = max(0, ts + after)
        matched = False
        for other_ts, other_row in st.store.get(("W", node, other, key)) or ():
            if time_from <= other_ts <= time_to:
                matched = True
                if spurious_fix:
                    self._outer_delete(st, node, (other_ts, other, key))
                joined = row + other_row if side == LEFT else other_row + row
                out.append((joined, max(ts, other_ts), key))
        if matched:
            return out
        outer = step.join_type == "FULL" or (step.join_type == "LEFT" and side == LEFT) or \
            (step.join_type == "RIGHT" and side == RIGHT)
        if not outer:
            return out
        if not spurious_fix or time_to < clock[0]:
            out.append((self._pad(node, side, row), ts, key))
        else:
            okey = (ts, side, key)
            st.outer.setdefault(node, {})[okey] = row
            st.store.put(("O", node) + okey, row)
        return out

    def _expire(self, st: _TaskState, node: int, side: str, bound: int) -> None:
        """Drop window entries that no read can see any more (at or before ``bound``), like
        the segments Kafka Streams' window store drops: oldest first, any key."""
        queue = st.expiry.get((node, side))
        if not queue or queue[0][0] > bound:
            return
        keys = set()
        while queue and queue[0][0] <= bound:
            keys.add(heapq.heappop(queue)[1])
        for key in keys:
            skey = ("W", node, side, key)
            entries = st.store.get(skey) or ()
            kept = [e for e in entries if e[0] > bound]
            if len(kept) == len(entries):
                continue
            if kept:
                st.store.put(skey, kept)
            else:
                st.store.delete(skey)

    @staticmethod
    def _push_expiry(st: _TaskState, node: int, side: str, ts: int, key: Any) -> None:
        heapq.heappush(st.expiry.setdefault((node, side), []), (ts, key, next(_SEQ)))

    def _outer_delete(self, st: _TaskState, node: int, okey: tuple[int, str, Any]) -> None:
        entries = st.outer.get(node)
        if entries and okey in entries:
            del entries[okey]
            st.store.delete(("O", node) + okey)

    def _emit_outer(self, st: _TaskState, node: int, stream_time: int,
                    grace: int) -> list[StreamItem]:
        """Null-padded rows of outer-store records whose window has closed, in store order
        (timestamp, then right side before left, then key)."""
        entries = st.outer.get(node)
        if not entries:
            return []
        before, after = self.windows[node][0], self.windows[node][1]
        closed = []
        for okey in entries:
            ts, side, _key = okey
            look_back = after if side == LEFT else before
            if ts + look_back + grace < stream_time:
                closed.append(okey)
        closed.sort(key=lambda k: (k[0], 0 if k[1] == RIGHT else 1, _sort_key(k[2])))
        out: list[StreamItem] = []
        for okey in closed:
            row = entries.pop(okey)
            st.store.delete(("O", node) + okey)
            out.append((self._pad(node, okey[1], row), okey[0], okey[2]))
        return out

    def _pad(self, node: int, side: str, row: Row) -> Row:
        step = self.joins[node]
        if side == LEFT:
            return row + (None,) * step.right_width
        return (None,) * step.left_width + row

    # ------------------------------------------------------------------ stream-table

    def _stream_table(self, st: _TaskState, node: int, item: StreamItem) -> list[StreamItem]:
        step = self.joins[node]
        row, ts, _ = item
        assert step.left_key is not None
        key = _join_key(step.left_key(row))
        if key is None:
            if step.join_type == "LEFT":
                return [(self._pad(node, LEFT, row), ts, None)]
            self._entry(RECORD_PROCESSING_ERROR,
                        "Skipping record due to null join key: " + step.text)
            return []
        found = st.store.get(("T", node, RIGHT, key))
        if found is None:
            if step.join_type == "LEFT":
                return [(self._pad(node, LEFT, row), ts, key)]
            return []
        return [(row + found[0], ts, key)]

    # ------------------------------------------------------------------ table-table

    def _table_table(self, st: _TaskState, node: int, side: str,
                     change: TableChange) -> list[TableChange]:
        """KTableKTable{Inner,Left,Outer}Join: the new joined row for an update of one side,
        a tombstone when the join no longer has a row for the key."""
        step = self.joins[node]
        key, row, tombstone, ts = change
        old = self._store_table_row(st, node, side, change)
        other = RIGHT if side == LEFT else LEFT
        other_entry = st.store.get(("T", node, other, key))
        other_row = None if other_entry is None else other_entry[0]
        this_outer, other_outer = self._outer_sides(step.join_type, side)
        if other_entry is None:
            if not this_outer or (tombstone and old is None):
                return []
            out_ts = ts
        else:
            out_ts = max(ts, other_entry[1])
        base = self._combine(node, side, old if old is not None else row, other_row)
        if not tombstone:
            return [(key, self._combine(node, side, row, other_row), False, out_ts)]
        if other_row is not None and other_outer:
            return [(key, self._combine(node, side, None, other_row), False, out_ts)]
        return [(key, base, True, out_ts)]

    @staticmethod
    def _store_table_row(st: _TaskState, node: int, side: str, change: TableChange) -> Row | None:
        """Write a table side's change into the node's store; the row it replaces (None:
        none)."""
        key, row, tombstone, ts = change
        skey = ("T", node, side, key)
        old_entry = st.store.get(skey)
        if tombstone:
            if old_entry is not None:
                st.store.delete(skey)
        else:
            st.store.put(skey, (row, ts))
        return None if old_entry is None else old_entry[0]

    @staticmethod
    def _outer_sides(join_type: str, side: str) -> tuple[bool, bool]:
        """(this side is preserved, the other side is preserved) for an input on ``side``."""
        left = join_type in ("LEFT", "FULL")
        right = join_type in ("RIGHT", "FULL")
        return (left, right) if side == LEFT else (right, left)

    def _combine(self, node: int, side: str, this: Row | None, other: Row | None) -> Row:
        step = self.joins[node]
        lw, rw = step.left_width, step.right_width
        if side == LEFT:
            left, right = this, other
        else:
            left, right = other, this
        return (left if left is not None else (None,) * lw) + \
            (right if right is not None else (None,) * rw)

    # ------------------------------------------------------------------ foreign key

    def _fk_of(self, node: int, left_row: Row) -> Any:
        step = self.joins[node]
        assert step.left_key is not None
        try:
            self._suppress_errors = True
            return _join_key(step.left_key(left_row))
        finally:
            self._suppress_errors = False

    def _fk_join(self, st: _TaskState, node: int, side: str,
                 change: TableChange) -> list[TableChange]:
        step = self.joins[node]
        key, row, tombstone, ts = change
        old = self._store_table_row(st, node, side, change)
        left_join = step.join_type == "LEFT"
        if side == RIGHT:
            return self._fk_right(st, node, key, None if tombstone else row, ts, left_join)
        index = st.fk_index.setdefault(node, {})
        old_fk = None if old is None else self._fk_of(node, old)
        new_fk = None if tombstone else self._fk_of(node, row)
        if old_fk is not None and old_fk in index:
            index[old_fk].discard(key)
            if not index[old_fk]:
                del index[old_fk]
        if new_fk is not None:
            index.setdefault(new_fk, set()).add(key)
        if tombstone:
            if old is None:
                return []
            return [(key, self._combine(node, LEFT, old, None), True, ts)]
        right = None if new_fk is None else st.store.get(("T", node, RIGHT, new_fk))
        if right is None:
            if left_join:
                return [(key, self._combine(node, LEFT, row, None), False, ts)]
            if old is None:
                return []
            return [(key, self._combine(node, LEFT, row, None), True, ts)]
        return [(key, self._combine(node, LEFT, row, right[0]), False, max(ts, right[1]))]

    def _fk_right(self, st: _TaskState, node: int, pk: Any, new: Row | None, ts: int,
                  left_join: bool) -> list[TableChange]:
        out: list[TableChange] = []
        for lkey in sorted(st.fk_index.get(node, {}).get(pk, ()), key=_sort_key):
            entry = st.store.get(("T", node, LEFT, lkey))
            if entry is None:
                continue
            left_row, left_ts = entry
            if new is None:
                out.append((lkey, self._combine(node, LEFT, left_row, None), not left_join,
                            max(ts, left_ts)))
            else:
                out.append((lkey, self._combine(node, LEFT, left_row, new), False,
                            max(ts, left_ts)))
        return out

    # ------------------------------------------------------------------ FK over topics

    # KIP-213 as Kafka Streams runs it for ksqlDB. The left task keeps the left rows and
    # sends each row's subscription (foreign key, left key, hash of the left row) to the
    # registration topic, placed like the right table's row of that key. The right task
    # keeps the subscriptions and answers each one, and every subscriber on a right change,
    # with (left key, right row, the subscription's hash) on the response topic, sent to the
    # left row's partition. The left task joins an answer only if the hash is that of its
    # current row: answers to a row since replaced or deleted are dropped.

    def _fk_send(self, st: _TaskState, node: int, side: str,
                 change: TableChange) -> list[OutputRecord]:
        key, row, tombstone, ts = change
        old = self._store_table_row(st, node, side, change)
        if side == RIGHT:
            subscribers = st.subs.get(node, {}).get(key, {})
            return [self._fk_answer(node, lkey, None if tombstone else row, ts, *sub)
                    for lkey, sub in sorted(subscribers.items(),
                                            key=lambda e: _sort_key(e[0]))]
        return self._fk_left(st, node, key, old, None if tombstone else row, ts)

    def _fk_left(self, st: _TaskState, node: int, key: Any, old: Row | None, new: Row | None,
                 ts: int) -> list[OutputRecord]:
        """A left row changed: unsubscribe from the old foreign key, subscribe to the new
        one. Results that need no right row (deleted row, null foreign key) are local."""
        left_join = self.joins[node].join_type == "LEFT"
        old_fk = None if old is None else self._fk_of(node, old)
        new_fk = None if new is None else self._fk_of(node, new)
        out: list[OutputRecord] = []
        if old_fk is not None and old_fk != new_fk:
            out.append(self._fk_subscribe(node, old_fk, key, None, False, ts))
        local: list[TableChange] = []
        if new is None:
            if old is not None:
                local.append((key, self._combine(node, LEFT, old, None), True, ts))
        elif new_fk is None:
            if left_join:
                local.append((key, self._combine(node, LEFT, new, None), False, ts))
            elif old is not None:
                local.append((key, self._combine(node, LEFT, new, None), True, ts))
        else:
            # Kafka Streams' PROPAGATE_NULL_IF_NO_FK_VAL_AVAILABLE when an answer without a
            # right row changes the result (a LEFT join's padded row, or the tombstone
            # replacing an INNER join's previous row); PROPAGATE_ONLY_IF_FK_VAL_AVAILABLE
            # for a new INNER row.
            out.append(self._fk_subscribe(node, new_fk, key, _row_hash(new),
                                          left_join or old is not None, ts))
        return self._table_changes(st, node, local) + out

    def _fk_subscribe(self, node: int, fk: Any, lkey: Any, digest: bytes | None,
                      answer_null: bool, ts: int) -> OutputRecord:
        """A subscription (``digest`` None: unsubscribe) to the foreign key's task."""
        rec = self._current
        assert rec is not None
        key_bytes = _key_bytes(self.inputs[node + 1].key_serde, fk)
        body = (fk, lkey, digest, answer_null, rec.partition, ts)
        return self._to_internal(self.fk_topics[node][0], key_bytes, (SUBSCRIPTION, body), ts)

    def _fk_subscription(self, st: _TaskState, node: int, fk: Any, lkey: Any,
                         digest: bytes | None, answer_null: bool, partition: int,
                         ts: int) -> list[OutputRecord]:
        """Right task: keep (or drop) a subscription and answer it."""
        subs = st.subs.setdefault(node, {})
        skey = ("S", node, fk, lkey)
        if digest is None:
            entries = subs.get(fk)
            if entries is not None and entries.pop(lkey, None) is not None:
                st.store.delete(skey)
                if not entries:
                    del subs[fk]
            return []
        entries = subs.setdefault(fk, {})
        # A copy of a subscription this task holds (the same row hash: the same left record)
        # comes from a left task replaying after a crash, which may have output a joined
        # row before it: it is answered even without a right row, so that row is retracted.
        rec = self._current
        repeat = entries.get(lkey, (None,))[0] == digest or (
            rec is not None and rec.offset < self._replay_end.get((rec.topic, rec.partition), 0))
        entries[lkey] = (digest, partition)
        st.store.put(skey, (digest, partition))
        found = st.store.get(("T", node, RIGHT, fk))
        if found is not None:
            return [self._fk_answer(node, lkey, found[0], found[1], digest, partition)]
        if answer_null or repeat:
            return [self._fk_answer(node, lkey, None, ts, digest, partition)]
        return []

    def _fk_answer(self, node: int, lkey: Any, right: Row | None, ts: int, digest: bytes,
                   partition: int) -> OutputRecord:
        body = (lkey, right, ts, digest)
        return self._to_internal(self.fk_topics[node][1], orjson_key(lkey), (RESPONSE, body),
                                 ts, partition)

    def _fk_response(self, st: _TaskState, node: int, lkey: Any, right: Row | None, ts: int,
                     digest: bytes) -> list[TableChange]:
        """Left task: join an answer to the current left row, if that row asked for it."""
        entry = st.store.get(("T", node, LEFT, lkey))
        if entry is None or _row_hash(entry[0]) != digest:
            return []  # the row was replaced or deleted since: a newer answer follows
        left_row, left_ts = entry
        out_ts = max(ts, left_ts)
        if right is not None:
            return [(lkey, self._combine(node, LEFT, left_row, right), False, out_ts)]
        left_join = self.joins[node].join_type == "LEFT"
        return [(lkey, self._combine(node, LEFT, left_row, None), not left_join, out_ts)]

    # ------------------------------------------------------------------ output

    def _aggregate_forwarded(self, rec: Record) -> list[OutputRecord]:
        """A joined row forwarded by its group key (see :meth:`repartition_aggregate`)."""
        agg = self.aggregate
        agg._st = agg.state(self._task)
        agg._current = rec
        return list(agg._from_repartition(agg._st, rec))

    def _finish(self, row: Row, ts: int, tombstone: bool) -> list[OutputRecord]:
        """WHERE + projection + sink serialisation of one joined row (or table tombstone)."""
        rec = self._current
        assert rec is not None
        if self.aggregate is not None:
            agg = self.aggregate
            agg._st = agg.state(self._task)
            agg._current = rec
            if agg.sequenced:  # read-committed forwarding under this task's sequencer
                agg.sequencer = self.states[self._task].sequencers[agg.repartition_topic]
            return list(agg._run_steps(rec, row, 0, tombstone, False, None, ts, None, None))
        assert self.project is not None
        if not tombstone:
            for pred in self.filters:
                if pred(row) is not True:
                    if not self.result_is_table:
                        return []
                    tombstone = True
                    break
        self._suppress_errors = tombstone
        try:
            new_key = None if self.select_key is None else self.select_key(row)
            out = self.project.fn(row, new_key)
        finally:
            self._suppress_errors = False
        out_ts = out[self._n_sink_cols] if len(out) > self._n_sink_cols else ts
        if tombstone:
            out_ts = ts
        elif out_ts is None or out_ts < 0:
            self._entry(RECORD_PROCESSING_ERROR,
                        f"Invalid timestamp {out_ts} for the sink's TIMESTAMP column")
            return []
        key_values = tuple(out[: self._n_sink_key])
        try:
            key_bytes = self._sink_key_serde.serialize(key_values)
            value_bytes = None if tombstone else self._sink_value_serde.serialize(
                tuple(out[i] for i in self._value_idx))
        except SerdeError as e:
            self._entry(SERIALIZATION_ERROR, e.message, e.target)
            return []
        if self.sink.window is not None and isinstance(row[-2], tuple):
            # Joined windowed sources: the join key is (key, WINDOWSTART, WINDOWEND or None)
            # (see JoinStep); the sink keeps that window, partitioned by the inner key.
            _, ws, we = row[-2]
            inner = key_bytes
            key_bytes = windows.wrap(key_bytes, self.sink.window.type, ws,
                                     we if we is not None else ws)
            return [OutputRecord(self.sink_topic, key_bytes, value_bytes, int(out_ts),
                                 rec.headers, partition_key=inner)]
        return [OutputRecord(self.sink_topic, key_bytes, value_bytes, int(out_ts), rec.headers)]


class _Namespaced(StateStore):
    """A view of another store under a key prefix; its commit only stages the metadata (the
    owner commits the underlying store, so both states become durable together). A key range
    of the view (``(APART, name, ...)``) is the range ``namespace/name`` of the store."""

    def __init__(self, inner: StateStore, namespace: str) -> None:
        self.inner = inner
        self.namespace = namespace
        self._ranges = namespace + "/"

    def _key(self, key: Any) -> Any:
        if is_apart(key):
            return (APART, self._ranges + key[1], *key[2:])
        return (self.namespace, key)

    def get(self, key: Any, default: Any = None) -> Any:
        return self.inner.get(self._key(key), default)

    def put(self, key: Any, value: Any) -> None:
        self.inner.put(self._key(key), value)

    def delete(self, key: Any) -> None:
        self.inner.delete(self._key(key))

    def items(self) -> Iterator[tuple[Any, Any]]:
        ns, ranges = self.namespace, self._ranges
        for key, value in self.inner.items():
            if isinstance(key, tuple) and len(key) == 2 and key[0] == ns and \
                    key[1] != META_KEY:
                yield key[1], value
            elif is_apart(key) and key[1].startswith(ranges):
                yield (APART, key[1][len(ranges):], *key[2:]), value

    def range_items(self, name: str) -> Iterator[tuple[Any, Any]]:
        for key, value in self.inner.range_items(self._ranges + name):
            yield (APART, name, *key[2:]), value

    def commit(self, meta: dict[str, Any],
               before_write: Callable[[list[tuple[Any, Any]]], None] | None = None,
               ) -> list[tuple[Any, Any]]:
        self.put(META_KEY, meta)
        return []


def orjson_key(value: Any) -> bytes:
    """Key bytes for a join key the side's key format cannot write (placement only)."""
    return repr(value).encode()


def _key_bytes(serde: Any, key: Any) -> bytes:
    """A join key in a side's key format (its placement), or a stand-in when the format
    cannot write it."""
    try:
        data = serde.serialize((key,))
    except SerdeError:
        return orjson_key(key)
    return data if data is not None else orjson_key(key)


def _row_hash(row: Row) -> bytes:
    """The hash a subscription carries: of the row's text, the same for equal rows
    whatever their objects' identity (restored rows included)."""
    return hashlib.blake2b(repr(row).encode(), digest_size=16).digest()


def _sort_key(value: Any) -> tuple[int, Any]:
    """A total order over join keys of mixed types (store iteration order stand-in)."""
    if value is None:
        return (0, "")
    if isinstance(value, (int, float)):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, repr(value))


def is_join_plan(plan: QueryPlan) -> bool:
    return any(isinstance(s, JoinStep) for s in plan.steps)


def make_query(plan: QueryPlan, log_: ProcessingLog, properties: Mapping[str, Any] | None = None,
               store_factory: StoreFactory | None = None,
               repartition_prefix: str | None = None) -> Any:
    """The operator for any plan: joins here, the rest from :func:`aggregate.make_query`.
    ``repartition_prefix`` (joins only): see :class:`JoinQuery`."""
    if is_join_plan(plan):
        return JoinQuery(plan, log_, properties, store_factory, repartition_prefix)
    from hayase.engine.aggregate import make_query as make_other

    return make_other(plan, log_, properties, store_factory)
