"""GROUP BY as an operator: aggregation over streams and tables, TUMBLING / HOPPING / SESSION
windows, EMIT CHANGES and EMIT FINAL, following Kafka Streams (what ksqlDB compiles to).

State lives in one :class:`~hayase.engine.state.StateStore` per source partition (a task's
stores). Store keys:

- ``("T", source key)``: the last row of a *table* source that passed WHERE (to retract it when
  the key is updated or deleted: KTable groupBy's old value).
- ``("A", group key)``: ``(accs, timestamp, emitted)`` of an unwindowed group.
- ``("W", group key, window start)``: ``(accs, timestamp, emitted)`` of a time window.
- ``("S", group key)``: the group's sessions, ``[(start, end, accs, timestamp, emitted)]``.
- the metadata entry: ``{"offsets": {(topic, partition): next offset}, "stream_time": ms}``.

``emitted`` says whether the last row sent for that key passed HAVING (a later HAVING miss then
sends a tombstone). Stream time is the largest event time seen by the partition's task; a record
whose window ended at or before ``stream time - grace`` is late: dropped, counted in the
``hayase_late_records_dropped`` metric. Records whose offset is below the offsets stored in the
state were already applied (restored state after a crash): they are skipped, so no effect is
counted twice.

A GROUP BY on other columns than the source key (the Kafka runtime, several partitions) goes
through a repartition topic (:meth:`AggregateQuery.repartition_through`, ksqlDB's
``...-Aggregate-GroupBy-repartition``): a source partition's task runs WHERE, keeps the ``("T",
...)`` rows of a table source and forwards ``(group key, row to add, row to retract, time)``
keyed by the group key (see :mod:`hayase.engine.repartition`); the repartition partition's task
aggregates. A table update whose old and new rows fall in different groups is forwarded as two
records (retract, then add), which may go to different partitions, like KTable groupBy.
A join's table result is broadcast instead, by upstream key, to every repartition partition
(:meth:`AggregateQuery._broadcast`): a restarted join task does not replay it identically.
A stream-stream join's rows are read committed (:attr:`AggregateQuery.sequenced`, see
:mod:`hayase.engine.repartition`): pending entries (a key range of their own) until the join
task's commit marker, so the groups' outputs wait for that commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from prometheus_client import Counter as MetricCounter

from hayase.client.partitioners import kafka_partition
from hayase.engine import repartition, windows
from hayase.engine.processing_log import RECORD_PROCESSING_ERROR, SERIALIZATION_ERROR, ProcessingLog
from hayase.engine.query import StatelessQuery
from hayase.engine.record import OutputRecord, Record
from hayase.engine.state import MemoryStore, StateStore, TaskStores
from hayase.engine.timestamps import InvalidTimestamp
from hayase.formats import SerdeError
from hayase.formats.kafka import KafkaSerde
from hayase.sql.errors import KsqlRuntimeError
from hayase.sql.plan import AggregateStep, FilterStep, Namespace, QueryPlan, Row, WindowSpec
from hayase.sql.types import ArrayType, MapType, StructType

log = logging.getLogger("hayase.engine.aggregate")

LATE_RECORDS = MetricCounter(
    "hayase_late_records_dropped",
    "Records dropped because their window had closed (event time older than stream time - grace)",
    ["query_id"],
)

# Kafka Streams' default grace for windows declared without GRACE PERIOD (the deprecated
# TimeWindows.of / SessionWindows.with that ksqlDB uses): one day minus the window size.
DEFAULT_RETENTION_MS = 24 * 3600 * 1000

StoreFactory = Callable[[int], StateStore]
# fn(messages, start, offsets) -> index of the first message not applied (see batch_path)
BatchPath = Callable[[Sequence[Any], int, dict[tuple[str, int], int]], int]


# Group keys whose sink-key bytes are remembered (EMIT FINAL writes each key once per window).
KEY_CACHE_SIZE = 100_000
_UNWRITABLE = object()  # a group key the sink's key format cannot write
_EXACT_KEY_TYPES = frozenset({"STRING", "INTEGER", "BIGINT", "BOOLEAN", "DATE", "TIME",
                              "TIMESTAMP", "BYTES"})


def _first(entry: tuple[Any, ...]) -> Any:
    return entry[0]


class _Handover(Exception):
    """An expression failed in the batch path: the general path evaluates (and logs) it."""


class HashableList(list):  # type: ignore[type-arg]
    """A group-key ARRAY value usable as a dict key (serdes still see a list)."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self))


class HashableDict(dict):  # type: ignore[type-arg]
    """A group-key MAP / STRUCT value usable as a dict key (serdes still see a dict)."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=repr)))


def freeze(value: Any) -> Any:
    """``value`` made hashable: lists and dicts (ARRAY, MAP, STRUCT values) at any depth, inside
    tuples too (a windowed join key is ``(key, WINDOWSTART, WINDOWEND)``)."""
    if isinstance(value, tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, list):
        return HashableList(freeze(v) for v in value)
    if isinstance(value, dict):
        return HashableDict((k, freeze(v)) for k, v in value.items())
    return value


def _hashable_key_fn(key_fn: Callable[[Row], tuple[Any, ...] | None],
                     columns: tuple[Any, ...]) -> Callable[[Row], tuple[Any, ...] | None]:
    """Group keys with ARRAY / MAP / STRUCT values become hashable (store and index keys)."""
    if not any(isinstance(c.type, (ArrayType, MapType, StructType)) for c in columns):
        return key_fn

    def fn(row: Row) -> tuple[Any, ...] | None:
        gk = key_fn(row)
        return None if gk is None else tuple(freeze(v) for v in gk)

    return fn


class PartitionState:
    """The state of one task (source partition): its store, offsets and stream time."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        meta = store.meta
        self.offsets: dict[tuple[str, int], int] = dict(meta.get("offsets", {}))
        self.stream_time: int = int(meta.get("stream_time", -1))
        # The window store's own clock: the largest window start (time windows) or session
        # end (sessions) written; entries older than it minus retention are expired.
        self.store_time: int = int(meta.get("store_time", -1))
        # Open windows by end time (EMIT FINAL: to emit; EMIT CHANGES: to expire).
        self.open_windows: dict[int, dict[tuple[Any, ...], int]] = {}
        self.first_end: int | None = None  # min(open_windows): the next window to close
        # Repartition records applied: see hayase.engine.repartition.
        self.forwarded: repartition.Marks = dict(meta.get("forwarded", {}))
        # Sequenced upstream tasks (a stream-stream join's results, read committed): upstream
        # -> [run, seen, committed]; their pending records: repartition.ReadCommitted.
        self.upstreams: dict[int, list[Any]] = {
            u: list(v) for u, v in meta.get("upstreams", {}).items()}
        self.reader: repartition.ReadCommitted | None = None  # opened at the first record

    def meta(self) -> dict[str, Any]:
        meta = {"offsets": dict(self.offsets), "stream_time": self.stream_time,
                "store_time": self.store_time, "forwarded": dict(self.forwarded)}
        if self.upstreams:
            meta["upstreams"] = {u: tuple(v) for u, v in self.upstreams.items()}
        return meta


class AggregateQuery(TaskStores, StatelessQuery):
    """Runs a QueryPlan whose steps are ``[FilterStep...] AggregateStep``."""

    ALLOWED_STEPS = (FilterStep, AggregateStep)

    def __init__(self, plan: QueryPlan, log_: ProcessingLog,
                 properties: Mapping[str, Any] | None = None,
                 store_factory: StoreFactory | None = None) -> None:
        super().__init__(plan, log_, properties)
        agg = plan.steps[-1]
        assert isinstance(agg, AggregateStep)
        self.agg = agg
        self.key_fn = _hashable_key_fn(agg.key_fn, agg.key_columns)
        self.filters = [s.predicate for s in plan.steps[:-1] if isinstance(s, FilterStep)]
        self.store_factory: StoreFactory = store_factory or (lambda _p: MemoryStore())
        self.states: dict[int, PartitionState] = {}
        # Set by repartition_through: source records are forwarded there, by group key.
        self.repartition_topic: str | None = None
        self._rep_seq = 0
        # Set by a join whose results depend on the order its task read its inputs (a
        # stream-stream join): its rows go through the repartition topic read-committed, each
        # forwarded under the forwarding task's sequencer (see hayase.engine.repartition).
        self.sequenced = False
        self.sequencer: repartition.Sequencer | None = None  # the forwarding task's, if any
        # Set by a join whose result is a table (its partition count): the rows are
        # broadcast to every repartition partition by upstream key (see _broadcast).
        self.broadcast_partitions: int | None = None
        spec = agg.window
        self.window_type = spec.type.upper() if spec else None
        self.size = spec.size_ms if spec else 0
        self.advance = (spec.advance_ms or spec.size_ms) if spec else 0
        self.emit_final = bool(agg.emit_final and spec is not None)
        self.grace, self.retention = self._grace_and_retention(spec)
        self.late_dropped = 0
        self._late_metric = LATE_RECORDS.labels(query_id=plan.query_id)
        # Stream rows into TUMBLING / HOPPING windows take the fused path (_process).
        self._fused = (not self.is_table and self.source.window is None
                       and self.window_type in ("TUMBLING", "HOPPING")
                       and not any(c.namespace is Namespace.HEADERS
                                   for c in self.source.schema.columns))
        self._tumbling = self.size == self.advance
        self._batch_mode = False  # inside _plain_batch: expression errors hand over
        self._key_is_group = self.groups_by_source_key() and self.key_fn is agg.key_fn
        self._key_cache: dict[tuple[Any, ...], bytes | None] | None = {} if all(
            c.type.base in _EXACT_KEY_TYPES for c in agg.key_columns) else None

    def _grace_and_retention(self, spec: WindowSpec | None) -> tuple[int, int]:
        """Kafka Streams' defaults as ksqlDB configures them: without GRACE PERIOD the
        deprecated one-day default (24h - size) for EMIT CHANGES, none for EMIT FINAL; the
        window store keeps windows for RETENTION, else size + grace when GRACE PERIOD is
        given, else one day."""
        if spec is None:
            return 0, 0
        size = spec.size_ms
        if spec.grace_ms is not None:
            grace = spec.grace_ms
        elif self.emit_final and spec.type.upper() != "SESSION":
            grace = 0
        else:
            grace = max(DEFAULT_RETENTION_MS - size, 0)
        if spec.retention_ms is not None:
            retention = spec.retention_ms
        elif spec.grace_ms is not None:
            retention = size + grace
        else:
            retention = max(DEFAULT_RETENTION_MS, size + grace)
        return grace, retention

    # ------------------------------------------------------------------ state

    def repartition_through(self, prefix: str) -> str:
        """Aggregate through ksqlDB's repartition topic ``<prefix>-Aggregate-GroupBy-
        repartition`` (returned; the caller creates it with the source's partition count):
        needed when the group key is not the source key and the source has several
        partitions. Task ``p`` then forwards source partition ``p`` and aggregates
        repartition partition ``p``."""
        self.repartition_topic = f"{prefix}-Aggregate-GroupBy-repartition"
        return self.repartition_topic

    @property
    def source_topics(self) -> tuple[str, ...]:
        if self.repartition_topic is None:
            return (self.source_topic,)
        return (self.source_topic, self.repartition_topic)

    def groups_by_source_key(self) -> bool:
        """True when the group key is the source's key columns (co-partitioned)."""
        names = [c.name for c in self.source.schema.key]
        text = self.agg.text.replace("`", "").replace(" ", "").upper()
        return bool(names) and text == ",".join(n.upper() for n in names)

    def state(self, partition: int) -> PartitionState:
        st = self.states.get(partition)
        if st is None:
            st = PartitionState(self.store_factory(partition))
            self._index_windows(st)
            self.states[partition] = st
        return st

    def _index_windows(self, st: PartitionState) -> None:
        """Rebuild the open-window index from the store (after a restore)."""
        if self.window_type in ("TUMBLING", "HOPPING"):
            for key, _value in st.store.items():
                if key[0] == "W":
                    st.open_windows.setdefault(key[2] + self.size, {})[key[1]] = key[2]
            st.first_end = min(st.open_windows) if st.open_windows else None

    def commit(self, partition: int,
               before_write: Callable[[list[tuple[Any, Any]]], None] | None = None,
               extra_meta: Mapping[str, Any] | None = None) -> list[tuple[Any, Any]]:
        """Make the partition's state durable with the offsets it reflects; returns the
        changed entries (``before_write`` gets them first: the changelog)."""
        st = self.states[partition]
        meta = st.meta()
        meta.update(extra_meta or {})
        return st.store.commit(meta, before_write)

    def after_commit(self, partition: int) -> list[OutputRecord]:
        """Records to produce once the task's commit is durable (runtime hook; a join's)."""
        return []

    def after_restore(self, partition: int) -> list[OutputRecord]:
        """Records to produce when the task opens, before it processes anything."""
        return []

    # ------------------------------------------------------------------ records

    def process(self, rec: Record) -> list[OutputRecord]:
        st = self.states.get(rec.partition) or self.state(rec.partition)
        tp = (rec.topic, rec.partition)
        applied = st.offsets.get(tp)
        if applied is not None and rec.offset < applied:
            return []  # already reflected in the (restored) state
        self._st = st
        st.offsets[tp] = rec.offset + 1
        self._current = rec
        try:  # StatelessQuery.process, inlined (one call less per record)
            if rec.topic == self.repartition_topic:
                return self._from_repartition(st, rec)
            self._rep_seq = 0
            return self._process(rec)
        except (InvalidTimestamp, KsqlRuntimeError):
            raise
        except Exception as e:  # a bug or an unexpected value must not stop the query
            self._entry(RECORD_PROCESSING_ERROR, f"{type(e).__name__}: {e}")
            return []
        finally:
            self._current = None
            self._suppress_errors = False

    def _run_steps(self, rec: Record, row: Row, start: int, tombstone: bool, null_key: bool,
                   new_key: tuple[Any, ...] | None, ts: int, wstart: int | None,
                   wend: int | None) -> list[OutputRecord]:
        st = self._st
        if self.is_table:
            return self._table_update(st, rec, row, tombstone)
        if tombstone:
            return []  # KStream aggregations skip null values
        gk = self._group_of(row)
        if gk is None:
            return []
        if self.repartition_topic is not None:
            return [self._forward(rec, gk, row, None, ts)]
        return self._aggregate_row(st, rec, gk, row, ts)

    def _group_of(self, row: Row) -> tuple[Any, ...] | None:
        """WHERE, then the GROUP BY key of a stream row; None when WHERE drops the row or the
        key is null (logged, as ksqlDB does)."""
        for pred in self.filters:
            if pred(row) is not True:
                return None
        gk = self.key_fn(row)
        if gk is None:
            self._entry(RECORD_PROCESSING_ERROR,
                        "Skipping record with a null GROUP BY value: " + self.agg.text)
        return gk

    def _aggregate_row(self, st: PartitionState, rec: Record, gk: tuple[Any, ...], row: Row,
                       ts: int) -> list[OutputRecord]:
        """A stream row into its group (or windows)."""
        if ts > st.stream_time:
            st.stream_time = ts
        if self.window_type is None:
            return self._update_group(st, rec, gk, row, None, ts)
        if self.window_type == "SESSION":
            return self._session(st, rec, gk, row, ts)
        return self._time_windows(st, rec, gk, row, ts)

    # ------------------------------------------------------------------ batch path

    def batch_path(self) -> BatchPath | None:
        """The Kafka runtime's loop over a consumed batch for the common case, when this query
        has one (stream rows into TUMBLING windows, EMIT FINAL): see :meth:`_plain_batch`."""
        if self._fused and self._tumbling and self.emit_final:
            return self._plain_batch
        return None

    def _on_expression_error(self, error: Exception) -> None:
        if self._batch_mode:
            raise _Handover from error
        super()._on_expression_error(error)

    def _plain_batch(self, messages: Sequence[Any], start: int,
                     offsets: dict[tuple[str, int], int]) -> int:
        """Apply ``messages[start:]`` (confluent-kafka Messages) while each is a plain record,
        and return the index of the first one that is not (``len(messages)`` when all were);
        the caller runs that one through :meth:`process`, then may call again after it.
        ``offsets[(topic, partition)]`` gets the next offset of the records applied.

        Plain: no consumer error, a key and a value that deserialize, a valid event time,
        WHERE and the GROUP BY key evaluated without error and non-null, the window neither
        late nor closing another (those emit or log: the general path). The state changes are
        those :meth:`process` makes for such a record, without a Record object and the calls
        of the general path per record; nothing is changed before a record is known plain."""
        if self.repartition_topic is not None:
            return start
        topic = self.source_topic
        kdes, vdes = self._key_serde.deserialize, self._value_serde.deserialize
        extract, filters, key_fn = self._extract_ts, self.filters, self.key_fn
        add, init = self.agg.add, self.agg.init
        size, grace = self.size, self.grace
        # A KAFKA STRING key is decoded here (a null or bad key raises: the general path),
        # and a GROUP BY of exactly the key columns takes the key as the group key.
        string_key = getattr(kdes, "__func__", None) is KafkaSerde._deserialize_string
        key_is_group = self._key_is_group
        # JSON values of the usual shape read in one call (None for others: general path).
        vread = getattr(self._value_serde, "bytes_reader", None)
        vread = vread() if vread is not None else None
        n = len(messages)
        i = start
        part = -1
        last = applied = -1
        st: PartitionState | None = None
        self._batch_mode = True
        try:
            while i < n:
                msg = messages[i]
                if msg.error() is not None:
                    break
                p = msg.partition()
                if p != part or st is None:
                    if st is not None and last >= 0:
                        self._applied(st, (topic, part), last, applied, offsets)
                    st = self.states.get(p) or self.state(p)
                    maps = st.store.hot_maps()
                    if maps is None:
                        st = None
                        break
                    cache, dirty = maps
                    cget, sget = cache.get, st.store.get
                    open_windows = st.open_windows
                    part, last = p, -1
                    applied = st.offsets.get((topic, p), -1)
                off = msg.offset()
                if off < applied:  # already reflected in the (restored) state
                    last = off
                    i += 1
                    continue
                try:
                    key = (msg.key().decode(),) if string_key else kdes(msg.key())
                    value = vdes(msg.value()) if vread is None else vread(msg.value())
                    if key is None or value is None:
                        break
                    columns = key + value
                    ts = msg.timestamp()[1]
                    if extract is not None:
                        ts = extract(columns, ts)
                    row = columns + (ts, p, off)
                    passed = True
                    for pred in filters:
                        if pred(row) is not True:
                            passed = False
                            break
                    gk: tuple[Any, ...] | None
                    if not passed:
                        gk = ()
                    elif key_is_group and None not in key:
                        gk = key
                    else:
                        gk = key_fn(row)
                except Exception:  # noqa: BLE001 - the general path reports it
                    break
                if gk is None or ts < 0:
                    break
                if passed:
                    stream_time = st.stream_time
                    if ts > stream_time:
                        stream_time = ts
                    ws = ts - ts % size
                    we = ws + size
                    close = stream_time - grace
                    first = st.first_end
                    if we <= close or (first is not None and first <= close):
                        break  # late (counted, logged) or closing windows (emits)
                    skey = ("W", gk, ws)
                    old = cget(skey)
                    if old is None:
                        old = sget(skey)
                    try:  # before any change: a failing aggregate is the general path's
                        accs = add(init() if old is None else old[0], row)
                    except Exception:  # noqa: BLE001 - the general path reports it
                        break
                    st.stream_time = stream_time
                    if ws > st.store_time:
                        st.store_time = ws
                    if old is None:
                        new = (accs, ts, False)
                        group = open_windows.get(we)
                        if group is None:
                            group = open_windows[we] = {}
                        group[gk] = ws
                        if first is None or we < first:
                            st.first_end = we
                    else:
                        agg_ts = old[1]
                        new = (accs, ts if ts > agg_ts else agg_ts, old[2])
                    cache[skey] = dirty[skey] = new
                last = off
                i += 1
        finally:
            self._batch_mode = False
            if st is not None and last >= 0:
                self._applied(st, (topic, part), last, applied, offsets)
        return i

    @staticmethod
    def _applied(st: PartitionState, tp: tuple[str, int], last: int, applied: int,
                 offsets: dict[tuple[str, int], int]) -> None:
        """Positions after a run of records of one partition up to offset ``last``."""
        offsets[tp] = last + 1
        if last >= applied:  # some were applied now (not only skipped)
            st.offsets[tp] = last + 1

    # ------------------------------------------------------------------ unwindowed

    def _update_group(self, st: PartitionState, rec: Record, gk: tuple[Any, ...],
                      add_row: Row | None, undo_row: Row | None, ts: int) -> list[OutputRecord]:
        agg = self.agg
        skey = ("A", gk)
        old = st.store.get(skey)
        if old is None:
            accs, agg_ts, emitted = agg.init(), ts, False
        else:
            accs, agg_ts, emitted = old
            agg_ts = max(agg_ts, ts)
        if undo_row is not None and agg.undo is not None:
            accs = agg.undo(accs, undo_row)
        if add_row is not None:
            accs = agg.add(accs, add_row)
        out = agg.result(gk, accs, None, None)
        st.store.put(skey, (accs, agg_ts, out is not None))
        return self._emit_agg(rec, gk, out, emitted, agg_ts, None, None)

    def _table_update(self, st: PartitionState, rec: Record, row: Row,
                      tombstone: bool) -> list[OutputRecord]:
        """KTable groupBy + aggregate: retract the key's old row, add the new one."""
        n_key = len(self.source.schema.key)
        skey = ("T", row[:n_key])
        old = st.store.get(skey)
        new: Row | None = None if tombstone else row
        if new is not None:
            for pred in self.filters:
                if pred(new) is not True:
                    new = None
                    break
        if self.broadcast_partitions is not None and self.repartition_topic is not None:
            return self._broadcast_update(st, rec, row, new)
        if old is None and new is None:
            return []
        if new is None:
            st.store.delete(skey)
        else:
            st.store.put(skey, new)
        ts = row[len(self.source.schema.columns)]
        if ts > st.stream_time:
            st.stream_time = ts
        old_gk = None if old is None else self.key_fn(old)
        new_gk = None if new is None else self.key_fn(new)
        if new is not None and new_gk is None:
            self._entry(RECORD_PROCESSING_ERROR,
                        "Skipping record with a null GROUP BY value: " + self.agg.text)
        # (group, row to add, row to retract): one change when both rows are in one group
        changes: list[tuple[tuple[Any, ...], Row | None, Row | None]] = []
        if old_gk is not None and old_gk == new_gk:
            changes.append((old_gk, new, old))
        else:
            if old_gk is not None:
                changes.append((old_gk, None, old))
            if new_gk is not None:
                changes.append((new_gk, new, None))
        outputs: list[OutputRecord] = []
        for gk, add_row, undo_row in changes:
            if self.repartition_topic is not None:
                outputs.append(self._forward(rec, gk, add_row, undo_row, ts))
            else:
                outputs += self._update_group(st, rec, gk, add_row, undo_row, ts)
        return outputs

    def _broadcast_update(self, st: PartitionState, rec: Record, row: Row,
                          new: Row | None) -> list[OutputRecord]:
        """A join's table change, broadcast (see _broadcast); sent even when nothing is known
        of the key here: a rolled-back task cannot tell what it sent before its crash."""
        ts = row[len(self.source.schema.columns)]
        if ts > st.stream_time:
            st.stream_time = ts
        new_gk = None if new is None else self.key_fn(new)
        if new is not None and new_gk is None:
            self._entry(RECORD_PROCESSING_ERROR,
                        "Skipping record with a null GROUP BY value: " + self.agg.text)
        ukey = freeze(row[:len(self.source.schema.key)])
        return self._broadcast(rec, ukey, new_gk, None if new_gk is None else new, ts)

    # ------------------------------------------------------------------ repartition

    def _forward(self, rec: Record, gk: tuple[Any, ...], add_row: Row | None,
                 undo_row: Row | None, ts: int) -> OutputRecord:
        """A change for group ``gk`` to the repartition topic, keyed (placed) by the group key
        in the sink's key format (the aggregation's key, as in ksqlDB)."""
        assert self.repartition_topic is not None
        key = self._placement_key(gk)
        if self.sequencer is not None:
            return self.sequencer.forward(key, (gk, add_row, undo_row, ts), ts, rec.headers)
        self._rep_seq += 1
        return repartition.forward(self.repartition_topic, key, rec, self._rep_seq,
                                   (gk, add_row, undo_row, ts), timestamp=ts)

    def _placement_key(self, gk: tuple[Any, ...]) -> bytes:
        """The group key in the sink's key format (the aggregation's key, as in ksqlDB), or a
        stable stand-in when that format cannot write it."""
        try:
            key = self._sink_key_serde.serialize(tuple(gk))
        except SerdeError:
            key = None
        return repr(tuple(gk)).encode() if key is None else key

    def _from_repartition(self, st: PartitionState, rec: Record) -> list[OutputRecord]:
        if self.sequenced:
            return self._committed_rows(st, rec)
        by_key = self.broadcast_partitions is not None and self.is_table
        # Broadcast rows are applied on every copy (see _contribute); others once per
        # source position.
        change = repartition.receive({} if by_key else st.forwarded, rec)
        if change is None:
            return []  # already applied (re-sent after the forwarding task restarted)
        if by_key:
            return self._contribute(st, rec, *change)
        gk, add_row, undo_row, ts = change
        if self.is_table:
            if ts > st.stream_time:
                st.stream_time = ts
            return self._update_group(st, rec, gk, add_row, undo_row, ts)
        return self._aggregate_row(st, rec, gk, add_row, ts)

    def _committed_rows(self, st: PartitionState, rec: Record) -> list[OutputRecord]:
        """A sequenced record (see hayase.engine.repartition, read-committed): the rows it
        makes committed go into their groups, in the forwarding task's order. The group's
        outputs therefore wait for that task's commit (commit.interval.ms)."""
        reader = st.reader
        if reader is None:
            reader = st.reader = repartition.ReadCommitted(st.store, st.upstreams)
        outputs: list[OutputRecord] = []
        for (gk, add_row, _undo_row, ts), headers in reader.receive(rec):
            source = rec if headers == rec.headers else replace(rec, headers=headers)
            outputs += self._aggregate_row(st, source, gk, add_row, ts)
        return outputs

    # A join's table result (an FK join above all) is not replayed identically after a crash:
    # a restarted left task may join FK answers in another order, or miss an intermediate row
    # (its answer dropped by the row hash), so neither the source position nor the retraction
    # it sends (its rolled-back previous row) identifies what the groups already applied. Each
    # row change is therefore sent to *every* repartition partition as "upstream key ``k``
    # now contributes ``row`` to group ``gk``" (None: nothing), the partition owning ``gk``
    # marked. Each partition keeps what it applied per upstream key (``("K", k)``: (group
    # key, row), in the task's store and changelog) and retracts it when a change moves ``k``
    # elsewhere: its state is that of the last change of ``k``, like the join's own sink.

    def _broadcast(self, rec: Record, ukey: tuple[Any, ...], gk: tuple[Any, ...] | None,
                   row: Row | None, ts: int) -> list[OutputRecord]:
        """``row`` (None: none) as the contribution of upstream key ``ukey`` to group
        ``gk``, sent to every repartition partition."""
        assert self.repartition_topic is not None and self.broadcast_partitions is not None
        n = self.broadcast_partitions
        key = repr(ukey).encode() if gk is None else self._placement_key(gk)
        owner = -1 if gk is None else kafka_partition(key, n)
        outputs = []
        for p in range(n):
            self._rep_seq += 1
            out = repartition.forward(self.repartition_topic, key, rec, self._rep_seq,
                                      (ukey, gk, row, ts, p == owner), timestamp=ts)
            outputs.append(replace(out, partition=p))
        return outputs

    def _contribute(self, st: PartitionState, rec: Record, ukey: tuple[Any, ...],
                    gk: tuple[Any, ...] | None, row: Row | None, ts: int,
                    owner: bool) -> list[OutputRecord]:
        """A broadcast change (see _broadcast): retract what ``ukey`` contributed here if it
        moved, and add ``row`` to ``gk`` if this partition owns that group."""
        if ts > st.stream_time:
            st.stream_time = ts
        ckey = ("K", ukey)
        held = st.store.get(ckey)
        outputs: list[OutputRecord] = []
        undo = None
        if held is not None:
            if owner and held[0] == gk:
                undo = held[1]  # the same group: one update, as KTable groupBy sends it
            else:
                outputs += self._update_group(st, rec, held[0], None, held[1], ts)
        if owner:
            assert gk is not None and row is not None
            st.store.put(ckey, (gk, row))
            outputs += self._update_group(st, rec, gk, row, undo, ts)
        elif held is not None:
            st.store.delete(ckey)
        return outputs

    # ------------------------------------------------------------------ time windows

    def _windows_for(self, ts: int) -> list[int]:
        """Starts of the windows containing ``ts`` (Kafka Streams' TimeWindows.windowsFor)."""
        size, advance = self.size, self.advance
        if size == advance and ts >= 0:  # TUMBLING: one window
            return [ts - ts % size]
        start = max(0, ts - size + advance) // advance * advance
        starts = []
        while start <= ts:
            starts.append(start)
            start += advance
        return starts

    def _process(self, rec: Record) -> list[OutputRecord]:
        """A stream record into time windows, fused: the source record's work of
        StatelessQuery._process and _run_steps in one call. Anything unusual (a value or key
        that does not deserialize, a tombstone, a null key, a bad timestamp) takes the general
        path, which logs it: nothing is changed before that decision."""
        if not self._fused or self.repartition_topic is not None:
            return StatelessQuery._process(self, rec)
        try:
            key = self._key_serde.deserialize(rec.key)
            value = self._value_serde.deserialize(rec.value)
            if key is None or value is None:
                raise ValueError("a null key or value: the general rules")
            columns = key + value
            ts = rec.timestamp
            if self._extract_ts is not None:
                ts = self._extract_ts(columns, ts)
        except Exception:
            return StatelessQuery._process(self, rec)
        row = columns + (ts, rec.partition, rec.offset)
        gk = self._group_of(row)
        if gk is None:
            return []
        return self._aggregate_row(self._st, rec, gk, row, ts)

    def _time_windows(self, st: PartitionState, rec: Record, gk: tuple[Any, ...], row: Row,
                      ts: int) -> list[OutputRecord]:
        agg, store, size = self.agg, st.store, self.size
        close_time = st.stream_time - self.grace
        outputs: list[OutputRecord] = []
        starts = (ts - ts % size,) if self._tumbling and ts >= 0 else self._windows_for(ts)
        for ws in starts:
            we = ws + size
            if we <= close_time:
                self._late(rec, ts, ws, we)
                continue
            skey = ("W", gk, ws)
            old = store.get(skey)
            if ws > st.store_time:
                st.store_time = ws
            if old is None:
                accs, agg_ts, emitted = agg.add(agg.init(), row), ts, False
                st.open_windows.setdefault(we, {})[gk] = ws
                if st.first_end is None or we < st.first_end:
                    st.first_end = we
            else:
                accs, agg_ts, emitted = old
                accs = agg.add(accs, row)
                if ts > agg_ts:
                    agg_ts = ts
            if self.emit_final:
                store.put(skey, (accs, agg_ts, emitted))
                continue
            out = agg.result(gk, accs, ws, we)
            store.put(skey, (accs, agg_ts, out is not None))
            outputs += self._emit_agg(rec, gk, out, emitted, agg_ts, ws, we)
        if st.first_end is not None and st.first_end <= close_time:
            outputs += self._close_windows(st, rec, close_time)
        return outputs

    def _close_windows(self, st: PartitionState, rec: Record,
                       close_time: int) -> list[OutputRecord]:
        """Windows that ended at or before ``close_time`` can never change again: EMIT FINAL
        sends them now (in window-start, then key order, like the window store's fetchAll);
        both modes drop them from the state."""
        if st.first_end is None or st.first_end > close_time:
            return []
        closed = [we for we in st.open_windows if we <= close_time]
        remaining = [we for we in st.open_windows if we > close_time]
        st.first_end = min(remaining) if remaining else None
        outputs: list[OutputRecord] = []
        expired_before = st.store_time - self.retention - 1
        for we in sorted(closed):
            groups = st.open_windows.pop(we)
            ws = we - self.size
            entries = []
            if ws <= expired_before:
                # Expired from the window store before it closed: Kafka Streams never emits
                # it (retention shorter than size + grace + the store's clock lead).
                for gk in groups:
                    st.store.delete(("W", gk, ws))
                continue
            if not self.emit_final:
                for gk in groups:
                    st.store.delete(("W", gk, ws))
                continue
            get, delete, key_bytes = st.store.get, st.store.delete, self._key_bytes
            for gk in groups:
                skey = ("W", gk, ws)
                value = get(skey)
                delete(skey)
                if value is not None:
                    kb = key_bytes(gk)
                    entries.append((b"" if kb is None or kb is _UNWRITABLE else kb, gk, kb,
                                    value))
            entries.sort(key=_first)  # stable: unwritable keys first, in group order
            outputs += self._emit_window(rec, entries, ws, we)
        return outputs

    def _key_bytes(self, gk: tuple[Any, ...]) -> Any:
        """The group key in the sink's key format (the sort key of EMIT FINAL and, when the
        projected key is the group key, the sink key), ``_UNWRITABLE`` when it cannot be
        written. Remembered for keys of types whose equal values are written alike (not
        DOUBLE: 0.0 == -0.0): the same keys come back window after window."""
        cache = self._key_cache
        kb = cache.get(gk, _UNWRITABLE) if cache is not None else _UNWRITABLE
        if kb is not _UNWRITABLE:
            return kb
        try:
            kb = self._sink_key_serde.serialize(gk)
        except SerdeError:
            return _UNWRITABLE
        if cache is not None:
            if len(cache) >= KEY_CACHE_SIZE:
                cache.clear()
            cache[gk] = kb
        return kb

    def _emit_window(self, rec: Record, entries: list[tuple[Any, ...]],
                     ws: int, we: int) -> list[OutputRecord]:
        """EMIT FINAL of one closed time window: ``(sort key, group key, key bytes, entry)``
        in sink-key order. The key bytes are reused when the projected key is the group key;
        anything else (an unwritable key, another projected key) goes through _emit_agg."""
        result, n_key = self.agg.result, self._n_sink_key
        ser_value = self._sink_value_serde.serialize
        window, topic, headers = self.sink.window, self.sink_topic, rec.headers
        outputs: list[OutputRecord] = []
        for _, gk, kb, (accs, agg_ts, _emitted) in entries:
            out = result(gk, accs, ws, we)
            if out is None:
                continue
            if kb is _UNWRITABLE or out[:n_key] != gk:
                outputs += self._emit_agg(rec, gk, out, False, agg_ts, ws, we)
                continue
            try:
                value_bytes = ser_value(out[n_key:])
            except SerdeError as e:
                self._entry(SERIALIZATION_ERROR, e.message, e.target)
                continue
            inner: Any = kb
            if window is None:
                outputs.append(OutputRecord(topic, inner, value_bytes, int(agg_ts), headers))
            else:
                outputs.append(OutputRecord(topic, windows.wrap(inner, window.type, ws, we),
                                            value_bytes, int(agg_ts), headers,
                                            partition_key=inner))
        return outputs

    def _late(self, rec: Record, ts: int, ws: int, we: int) -> None:
        self.late_dropped += 1
        self._late_metric.inc()
        log.debug("%s: skipping record for expired window [%d,%d) at %s-%d@%d (ts %d)",
                  self.query_id, ws, we, rec.topic, rec.partition, rec.offset, ts)

    # ------------------------------------------------------------------ session windows

    def _session(self, st: PartitionState, rec: Record, gk: tuple[Any, ...], row: Row,
                 ts: int) -> list[OutputRecord]:
        agg, gap = self.agg, self.size
        close_time = st.stream_time - self.grace - gap
        skey = ("S", gk)
        sessions: list[tuple[int, int, tuple[Any, ...], int, bool]] = list(
            st.store.get(skey) or [])
        expired_before = st.store_time - self.retention - 1
        sessions = [s for s in sessions if s[1] > expired_before]
        overlapping = [s for s in sessions if s[1] >= ts - gap and s[0] <= ts + gap]
        start = min([ts] + [s[0] for s in overlapping])
        end = max([ts] + [s[1] for s in overlapping])
        if end < close_time:
            self._late(rec, ts, start, end)
            return self._close_sessions(st, rec, close_time) if self.emit_final else []
        if end > st.store_time:
            st.store_time = end
        outputs: list[OutputRecord] = []
        accs = agg.init()
        agg_ts = ts
        for s in overlapping:
            accs = agg.merge(accs, s[2])
            sessions.remove(s)
            if not self.emit_final and s[4]:
                outputs += self._emit_agg(rec, gk, None, True, s[1], s[0], s[1])
        accs = agg.add(accs, row)
        agg_ts = end
        if self.emit_final:
            sessions.append((start, end, accs, agg_ts, False))
        else:
            out = agg.result(gk, accs, start, end)
            sessions.append((start, end, accs, agg_ts, out is not None))
            outputs += self._emit_agg(rec, gk, out, False, agg_ts, start, end)
        sessions.sort(key=lambda s: (s[0], s[1]))
        st.store.put(skey, sessions)
        if self.emit_final:
            outputs += self._close_sessions(st, rec, close_time)
        return outputs

    def _close_sessions(self, st: PartitionState, rec: Record,
                        close_time: int) -> list[OutputRecord]:
        outputs: list[OutputRecord] = []
        for key, sessions in list(st.store.items()):
            if key[0] != "S":
                continue
            keep = []
            for s in sessions:
                if s[1] < close_time:
                    out = self.agg.result(key[1], s[2], s[0], s[1])
                    if out is not None:
                        outputs += self._emit_agg(rec, key[1], out, False, s[3], s[0], s[1])
                else:
                    keep.append(s)
            if len(keep) != len(sessions):
                if keep:
                    st.store.put(key, keep)
                else:
                    st.store.delete(key)
        return outputs

    # ------------------------------------------------------------------ output

    def _emit_agg(self, rec: Record, gk: tuple[Any, ...], out: tuple[Any, ...] | None,
                  emitted_before: bool, ts: int, ws: int | None,
                  we: int | None) -> list[OutputRecord]:
        """The sink record for an aggregate update; None (HAVING not true) is a tombstone when
        the key's previous row was sent, else nothing."""
        if out is None and not emitted_before:
            return []
        n_key = self._n_sink_key
        try:
            if out is None:
                key_bytes = self._sink_key_serde.serialize(tuple(gk[:n_key]))
                value_bytes = None
            else:
                key_bytes = self._sink_key_serde.serialize(tuple(out[:n_key]))
                value_bytes = self._sink_value_serde.serialize(tuple(out[n_key:]))
        except SerdeError as e:
            self._entry(SERIALIZATION_ERROR, e.message, e.target)
            return []
        if ws is not None and self.sink.window is not None:
            inner = key_bytes
            key_bytes = windows.wrap(key_bytes, self.sink.window.type, ws,
                                     we if we is not None else ws)
            return [OutputRecord(self.sink_topic, key_bytes, value_bytes, int(ts), rec.headers,
                                 partition_key=inner)]
        return [OutputRecord(self.sink_topic, key_bytes, value_bytes, int(ts), rec.headers)]


def make_query(plan: QueryPlan, log_: ProcessingLog, properties: Mapping[str, Any] | None = None,
               store_factory: StoreFactory | None = None) -> StatelessQuery:
    """The operator for a plan: stateless, or aggregation when it ends with AggregateStep."""
    if plan.steps and isinstance(plan.steps[-1], AggregateStep):
        return AggregateQuery(plan, log_, properties, store_factory)
    return StatelessQuery(plan, log_, properties)
