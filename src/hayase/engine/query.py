"""A stateless persistent query as operators over records: source (deserialize, event time),
filter, select key (PARTITION BY), project, sink (serialize).

Pure and deterministic: ``process(record)`` returns the records to produce and writes failures
to the processing log; it never touches a socket or a clock. The test driver and the Kafka
runtime both drive this same class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hayase.engine import windows
from hayase.engine.processing_log import (
    DESERIALIZATION_ERROR,
    RECORD_PROCESSING_ERROR,
    SERIALIZATION_ERROR,
    ProcessingLog,
    ProcessingLogReporter,
)
from hayase.engine.record import OutputRecord, Record
from hayase.engine.timestamps import InvalidTimestamp, make_extractor, throw_on_invalid
from hayase.formats import SerdeError, key_serde, value_serde
from hayase.sql.errors import KsqlRuntimeError
from hayase.sql.plan import (
    DataSource,
    FilterStep,
    FlatMapStep,
    Namespace,
    ProjectStep,
    QueryPlan,
    Row,
    SelectKeyStep,
    SourceType,
    WindowInfo,
)


class UnsupportedPlan(Exception):
    """The plan needs operators this engine does not have yet (aggregation, joins)."""


def deserialize(reporter: ProcessingLogReporter, rec: Record, window: WindowInfo | None,
                key_serde: Any, value_serde: Any,
                ) -> tuple[Any, Any, tuple[Any, ...]] | None:
    """A source record's (key, value, window bounds: (WINDOWSTART, WINDOWEND) of a windowed
    source, or ()), or None once the failure is in the processing log."""
    key_bytes = rec.key
    bounds: tuple[Any, ...] = ()
    if window is not None:
        try:
            key_bytes, wstart, wend = windows.unwrap(key_bytes, window.type, window.size_ms)
        except ValueError as e:
            reporter._entry(DESERIALIZATION_ERROR, str(e), "key", rec.key)
            return None
        bounds = (wstart, wend)
    try:
        key = key_serde.deserialize(key_bytes)
    except SerdeError as e:
        reporter._entry(DESERIALIZATION_ERROR, e.message, "key", rec.key)
        return None
    try:
        value = value_serde.deserialize(rec.value)
    except SerdeError as e:
        reporter._entry(DESERIALIZATION_ERROR, e.message, "value", rec.value)
        return None
    return key, value, bounds


def _row_builder(source: DataSource) -> Callable[[tuple[Any, ...], tuple[Any, ...] | None,
                                                 tuple[tuple[str, bytes | None], ...]],
                                                tuple[Any, ...]]:
    """fn(key values, value values or None, headers) -> the schema-ordered column values."""
    cols = source.schema.columns
    n_value = len(source.schema.value)
    has_headers = any(c.namespace is Namespace.HEADERS for c in cols)
    nulls = (None,) * n_value
    if not has_headers:
        def simple(key: tuple[Any, ...], value: tuple[Any, ...] | None,
                   headers: tuple[tuple[str, bytes | None], ...]) -> tuple[Any, ...]:
            return key + (nulls if value is None else value)
        return simple

    plan: list[tuple[str, Any]] = []
    k = v = 0
    for c in cols:
        if c.namespace is Namespace.KEY:
            plan.append(("K", k))
            k += 1
        elif c.namespace is Namespace.VALUE:
            plan.append(("V", v))
            v += 1
        else:
            plan.append(("H", c.header_key))

    def general(key: tuple[Any, ...], value: tuple[Any, ...] | None,
                headers: tuple[tuple[str, bytes | None], ...]) -> tuple[Any, ...]:
        vals = nulls if value is None else value
        out: list[Any] = []
        for kind, arg in plan:
            if kind == "K":
                out.append(key[arg])
            elif kind == "V":
                out.append(vals[arg])
            elif arg is None:
                out.append([{"KEY": hk, "VALUE": hv} for hk, hv in headers])
            else:
                last = None
                for hk, hv in headers:
                    if hk == arg:
                        last = hv
                out.append(last)
        return tuple(out)

    return general


class StatelessQuery(ProcessingLogReporter):
    """Runs one QueryPlan (CSAS / CTAS / INSERT INTO ... SELECT without GROUP BY or JOIN)."""

    ALLOWED_STEPS: tuple[type, ...] = (FilterStep, FlatMapStep, SelectKeyStep, ProjectStep)

    def __init__(self, plan: QueryPlan, log: ProcessingLog,
                 properties: Mapping[str, Any] | None = None) -> None:
        if len(plan.sources) != 1:
            raise UnsupportedPlan("joins are not supported by the stateless engine")
        for step in plan.steps:
            if not isinstance(step, self.ALLOWED_STEPS):
                raise UnsupportedPlan(f"{type(step).__name__} is not supported yet")
        self.plan = plan
        self.query_id = plan.query_id
        self.log = log
        self.properties = dict(properties or {})
        src = plan.sources[0]
        self.source = src
        self.source_topic = src.topic
        self.is_table = src.source_type is SourceType.TABLE
        self._key_serde = key_serde(src.key_format, src.schema.key)
        self._null_key: tuple[Any, ...] = (None,) * len(src.schema.key)
        self._value_serde = value_serde(src.value_format, src.schema.value)
        self._build_row = _row_builder(src)
        self._extract_ts = self._timestamp_extractor(plan, src)
        self._throw_on_invalid_ts = throw_on_invalid(self.properties)
        sink = plan.sink.source
        self.sink = sink
        self.sink_topic = sink.topic
        self._sink_key_serde = key_serde(sink.key_format, sink.schema.key)
        self._sink_value_serde = value_serde(sink.value_format, sink.schema.value)
        self._n_sink_key = len(sink.schema.key)
        # Positions of the sink's value columns inside the projected tuple.
        self._value_idx = tuple(i for i, c in enumerate(sink.schema.columns)
                                if c.namespace is Namespace.VALUE)
        self._n_sink_cols = len(sink.schema.columns)
        self._steps = list(plan.steps)
        self._current: Record | None = None
        self._suppress_errors = False
        plan.set_error_handler(self._on_expression_error)

    @staticmethod
    def _timestamp_extractor(plan: QueryPlan,
                             src: DataSource) -> Callable[[Row, int], int] | None:
        """The plan's compiled TIMESTAMP-column function when the SQL layer gives one (the same
        code as STRINGTOTIMESTAMP), else the engine's own reading of the source."""
        compiled = getattr(plan, "source_timestamp", None)
        if compiled is None:
            return make_extractor(src)

        def extract(columns: Row, record_ts: int) -> int:
            # The compiled function reads a full row; pseudo-columns are not used by it.
            value = compiled(columns + (record_ts, 0, 0, None, None))
            if value is None or value < 0:
                raise InvalidTimestamp(
                    f"Invalid timestamp {value} in column {src.timestamp_column}")
            return int(value)

        return extract

    @property
    def source_topics(self) -> tuple[str, ...]:
        return (self.source_topic,)

    # ------------------------------------------------------------------ errors

    # ------------------------------------------------------------------ operators

    def process(self, rec: Record) -> list[OutputRecord]:
        """Run one source record through the query; returns the records for the sink topic."""
        self._current = rec
        try:
            return self._process(rec)
        except (InvalidTimestamp, KsqlRuntimeError):
            raise
        except Exception as e:  # a bug or an unexpected value must not stop the query
            self._entry(RECORD_PROCESSING_ERROR, f"{type(e).__name__}: {e}")
            return []
        finally:
            self._current = None
            self._suppress_errors = False

    def _process(self, rec: Record) -> list[OutputRecord]:
        parts = deserialize(self, rec, self.source.window, self._key_serde, self._value_serde)
        if parts is None:
            return []
        key, value, bounds = parts
        wstart, wend = bounds or (None, None)
        tombstone = value is None
        null_key = key is None
        if null_key and self.is_table and self.source.schema.key:
            # A table row is an upsert by key: Kafka Streams skips records without one.
            self._entry(RECORD_PROCESSING_ERROR, "Skipping table record with a null key")
            return []
        columns = self._build_row(self._null_key if key is None else key, value, rec.headers)
        ts = rec.timestamp
        if self._extract_ts is not None and not tombstone:
            try:
                ts = self._extract_ts(columns, rec.timestamp)
            except InvalidTimestamp as e:
                if self._throw_on_invalid_ts:
                    raise KsqlRuntimeError(
                        "Fatal user code error in TimestampExtractor callback for record "
                        f"{rec.topic}-{rec.partition}@{rec.offset}: {e}") from e
                self._entry(RECORD_PROCESSING_ERROR, str(e))
                return []
        row: Row = columns + (ts, rec.partition, rec.offset) + bounds
        self._suppress_errors = tombstone
        return self._run_steps(rec, row, 0, tombstone, null_key, None, ts, wstart, wend)

    def _run_steps(self, rec: Record, row: Row, start: int, tombstone: bool, null_key: bool,
                   new_key: tuple[Any, ...] | None, ts: int, wstart: int | None,
                   wend: int | None) -> list[OutputRecord]:
        """Apply steps[start:] to one row; a FlatMapStep fans out into one run per row."""
        steps = self._steps
        for i in range(start, len(steps)):
            step = steps[i]
            if isinstance(step, FilterStep):
                if tombstone:
                    if not self.is_table:
                        return []
                    continue
                if step.predicate(row) is not True:
                    if self.is_table:
                        tombstone = True  # a table row that stops matching is deleted
                        self._suppress_errors = True
                        continue
                    return []
            elif isinstance(step, FlatMapStep):
                if tombstone:
                    return []
                outputs: list[OutputRecord] = []
                for expanded in step.fn(row):
                    outputs.extend(self._run_steps(rec, expanded, i + 1, tombstone, null_key,
                                                   new_key, ts, wstart, wend))
                return outputs
            elif isinstance(step, SelectKeyStep):
                new_key = step.key_fn(row)
                null_key = False
            else:
                assert isinstance(step, ProjectStep)
                return self._emit(rec, step.fn(row, new_key), tombstone, null_key, ts, wstart,
                                  wend)
        raise UnsupportedPlan("plan without a projection")

    def _emit(self, rec: Record, out: Row, tombstone: bool, null_key: bool, ts: int,
              wstart: int | None, wend: int | None) -> list[OutputRecord]:
        out_ts = out[self._n_sink_cols] if len(out) > self._n_sink_cols else ts
        if tombstone:
            out_ts = ts
        elif out_ts is None or out_ts < 0:
            self._entry(RECORD_PROCESSING_ERROR,
                        f"Invalid timestamp {out_ts} for the sink's TIMESTAMP column")
            return []
        key_values = tuple(out[: self._n_sink_key])
        try:
            # A null source key stays a null key unless PARTITION BY computed a new one.
            key_bytes = None if null_key else self._sink_key_serde.serialize(key_values)
            value_bytes = None if tombstone else self._sink_value_serde.serialize(
                tuple(out[i] for i in self._value_idx))
        except SerdeError as e:
            self._entry(SERIALIZATION_ERROR, e.message, e.target)
            return []
        if self.sink.window is not None and wstart is not None:
            key_bytes = windows.wrap(key_bytes, self.sink.window.type, wstart,
                                     wend if wend is not None else wstart)
        return [OutputRecord(self.sink_topic, key_bytes, value_bytes, int(out_ts), rec.headers)]
