"""What the analyzer hands to the engine: schemas, source/sink descriptors and query plans.

Rows
----
A *row* is a plain Python ``tuple``. Its layout is given by a :class:`LogicalSchema` plus the
pseudo-columns, always in this order::

    (*key columns, *value columns, *header columns,       # schema.columns, in schema order
     ROWTIME, ROWPARTITION, ROWOFFSET,                    # always present
     [WINDOWSTART, WINDOWEND])                            # only when the source is windowed

``LogicalSchema.columns`` is already ordered key columns first, then value and header columns in
declaration order, so ``row[i]`` is ``schema.columns[i]`` and the pseudo-columns follow at
``len(schema.columns)``.  The engine builds source rows this way: key columns from the
deserialized key, value columns from the deserialized value, header columns from the record
headers (see :class:`Column`), then ``timestamp, partition, offset``.  Values are the Python
carriers documented in :mod:`hayase.sql.types`.

Steps of a stateless persistent query (applied in order to each source row):

- :class:`FilterStep`  ``predicate(row) -> bool``; keep the row only when it returns ``True``.
- :class:`FlatMapStep` (table functions) ``fn(row) -> [row + (tf values...), ...]``.
- :class:`SelectKeyStep` (PARTITION BY) ``key_fn(row) -> tuple`` new key values; the row itself is
  unchanged (later steps still read the source layout); the engine keeps the new key with the row
  and marks the record as re-keyed (a repartition is needed when the sink has >1 partition).
- :class:`ProjectStep` ``fn(row, key) -> out`` where ``key`` is the tuple from the last
  SelectKeyStep (or ``None``); ``out`` is a tuple laid out as the *sink* schema's columns
  followed by the output record's timestamp (ms): ``(*sink key cols, *sink value cols, ts)``.
  The engine serializes ``out[:n_key]`` as the key, ``out[n_key:-1]`` as the value.  ``ts`` is
  ``None`` when the sink's TIMESTAMP column is null: the engine logs and drops the record.

Expression failures inside a step do not raise: like ksqlDB the failing expression yields
``None`` and the plan's error handler (``QueryPlan.set_error_handler``) is called with a
:class:`~hayase.sql.errors.KsqlRuntimeError`, so the engine can write the processing log.
GROUP BY plans are ``[FilterStep] AggregateStep`` (see :class:`AggregateStep`); JOIN plans are
``JoinStep... [FilterStep] ProjectStep`` over the joined row (see :class:`JoinStep`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hayase.sql.delimiter import DEFAULT_DELIMITER, parse_delimiter
from hayase.sql.types import BIGINT, INTEGER, SqlType

Row = tuple[Any, ...]

PSEUDO_COLUMNS: tuple[str, ...] = ("ROWTIME", "ROWPARTITION", "ROWOFFSET")
WINDOW_COLUMNS: tuple[str, ...] = ("WINDOWSTART", "WINDOWEND")
PSEUDO_TYPES: dict[str, SqlType] = {
    "ROWTIME": BIGINT, "ROWPARTITION": INTEGER, "ROWOFFSET": BIGINT,
    "WINDOWSTART": BIGINT, "WINDOWEND": BIGINT,
}


class Namespace(StrEnum):
    KEY = "KEY"
    VALUE = "VALUE"
    HEADERS = "HEADERS"  # populated from record headers, never serialized in key or value


class SourceType(StrEnum):
    STREAM = "STREAM"
    TABLE = "TABLE"


@dataclass(frozen=True)
class Column:
    """One column. For HEADERS columns, ``header_key`` is None for ``HEADERS`` (type
    ARRAY<STRUCT<KEY STRING, VALUE BYTES>>, every header) or the key of ``HEADER('k')``
    (type BYTES, the last header with that key)."""

    name: str
    type: SqlType
    namespace: Namespace = Namespace.VALUE
    header_key: str | None = None

    def __str__(self) -> str:
        from hayase.sql.types import quote_identifier

        text = f"{quote_identifier(self.name)} {self.type}"
        if self.namespace is Namespace.KEY:
            text += " KEY"
        elif self.namespace is Namespace.HEADERS:
            text += " HEADERS" if self.header_key is None else f" HEADER('{self.header_key}')"
        return text


@dataclass(frozen=True)
class LogicalSchema:
    """Columns in row order: key columns first, then value and header columns."""

    columns: tuple[Column, ...]

    @property
    def key(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.namespace is Namespace.KEY)

    @property
    def value(self) -> tuple[Column, ...]:
        """Columns serialized in the record value (excludes key and header columns)."""
        return tuple(c for c in self.columns if c.namespace is Namespace.VALUE)

    @property
    def headers(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.namespace is Namespace.HEADERS)

    def find(self, name: str) -> Column | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None

    def index(self, name: str) -> int:
        for i, c in enumerate(self.columns):
            if c.name == name:
                return i
        raise KeyError(name)

    def __str__(self) -> str:
        """ksqlDB's text form, as in the conformance ``post.sources[].schema``."""
        return ", ".join(str(c) for c in self.columns)


@dataclass(frozen=True)
class FormatInfo:
    """A serialization format: ``name`` is JSON, DELIMITED, KAFKA, NONE, AVRO, ...

    ``properties`` holds format options (``delimiter`` for DELIMITED).  ``features`` holds
    ksqlDB serde features: ``WRAP_SINGLES`` / ``UNWRAP_SINGLES`` (single-field value wrapping).
    """

    name: str
    properties: tuple[tuple[str, str], ...] = ()
    features: frozenset[str] = frozenset()

    def prop(self, key: str, default: str | None = None) -> str | None:
        for k, v in self.properties:
            if k == key:
                return v
        return default

    @property
    def delimiter(self) -> str:
        """DELIMITED's field delimiter character (the ``delimiter`` property, as written, read
        by :func:`~hayase.sql.delimiter.parse_delimiter`); raises ValueError when invalid."""
        text = self.prop("delimiter")
        return parse_delimiter(DEFAULT_DELIMITER if text is None else text)


@dataclass(frozen=True)
class WindowInfo:
    """Window of a windowed key: ``type`` TUMBLING, HOPPING or SESSION; ``size_ms`` for time
    windows."""

    type: str
    size_ms: int | None = None


@dataclass
class DataSource:
    """A stream or table in the metastore (ksqlDB's DataSource)."""

    name: str
    source_type: SourceType
    schema: LogicalSchema
    topic: str
    key_format: FormatInfo
    value_format: FormatInfo
    timestamp_column: str | None = None
    timestamp_format: str | None = None
    window: WindowInfo | None = None
    partitions: int | None = None
    replicas: int | None = None
    is_source: bool = False  # CREATE SOURCE STREAM/TABLE: read-only
    sql: str = ""
    created_by_query: str | None = None  # query id of the CSAS/CTAS that writes it

    @property
    def is_windowed(self) -> bool:
        return self.window is not None

    @property
    def row_width(self) -> int:
        """Length of a source row: columns + pseudo-columns (+ window bounds)."""
        return len(self.schema.columns) + len(PSEUDO_COLUMNS) + (2 if self.window else 0)


@dataclass
class Topic:
    """A topic the statements need to exist (engine creates it if missing)."""

    name: str
    partitions: int | None = None
    replicas: int | None = None


@dataclass
class SinkDescriptor:
    """Where a persistent query writes. ``source`` is the sink's DataSource (its schema is the
    output schema; for INSERT INTO it is the existing target)."""

    source: DataSource
    partitions: int | None = None  # None: same as the (first) input topic
    replicas: int | None = None

    @property
    def topic(self) -> str:
        return self.source.topic


# --------------------------------------------------------------------------- steps


@dataclass
class Step:
    pass


@dataclass
class FilterStep(Step):
    predicate: Callable[[Row], bool]
    text: str = ""


@dataclass
class FlatMapStep(Step):
    """Table functions (EXPLODE, CUBE_EXPLODE): ``fn(row) -> list of rows``.

    Each output row is the input row with one value per table function appended
    (``row + (v0, v1, ...)``); later steps read that extended row.  An empty list emits nothing.
    Comes after FilterStep (WHERE sees the source row) and before SelectKeyStep/ProjectStep.
    """

    fn: Callable[[Row], list[Row]]
    text: str = ""


@dataclass
class SelectKeyStep(Step):
    """PARTITION BY: compute the new key from the source row."""

    key_fn: Callable[[Row], tuple[Any, ...]]
    key_columns: tuple[Column, ...]
    text: str = ""


@dataclass
class ProjectStep(Step):
    """``fn(row, key)`` -> ``(*sink key cols, *sink value cols, timestamp)``."""

    fn: Callable[[Row, tuple[Any, ...] | None], Row]
    schema: LogicalSchema
    text: str = ""


@dataclass(frozen=True)
class WindowSpec:
    """WINDOW clause of an aggregation. Sizes in ms; ``grace_ms`` None means ksqlDB's default."""

    type: str  # TUMBLING, HOPPING, SESSION
    size_ms: int  # SESSION: the inactivity gap
    advance_ms: int | None = None  # HOPPING only
    grace_ms: int | None = None
    retention_ms: int | None = None


Accumulators = tuple[Any, ...]  # one per aggregate call of a GROUP BY


@dataclass
class AggregateStep(Step):
    """GROUP BY (after an optional FilterStep). All callables are generated per query:

    - ``key_fn(row) -> tuple | None``: group key values; None when a key value is null (ksqlDB
      drops such rows; log them).
    - ``init() -> accs``: fresh accumulators (a tuple, one per aggregate call: a tuple of
      plain values is untracked by Python's cyclic GC, which matters for large states).
    - ``add(accs, row) -> accs`` / ``undo(accs, row) -> accs`` (table sources: retract the old
      row before adding the new one; None for stream sources) / ``merge(a, b) -> accs``
      (session windows).  Accumulators are plain values, never mutated in place.
    - ``result(key, accs, window_start, window_end) -> tuple | None``: the sink row
      ``(*sink key values, *sink value values)``, or None when HAVING is not true (ksqlDB then
      emits a tombstone for the key).  Window bounds are None for unwindowed aggregations.
    """

    key_fn: Callable[[Row], tuple[Any, ...] | None]
    key_columns: tuple[Column, ...]
    init: Callable[[], Accumulators]
    add: Callable[[Accumulators, Row], Accumulators]
    undo: Callable[[Accumulators, Row], Accumulators] | None
    merge: Callable[[Accumulators, Accumulators], Accumulators]
    result: Callable[[tuple[Any, ...], Accumulators, int | None, int | None],
                     tuple[Any, ...] | None]
    schema: LogicalSchema
    window: WindowSpec | None = None
    emit_final: bool = False
    aggregate_names: tuple[str, ...] = ()
    text: str = ""


@dataclass
class JoinStep(Step):
    """One JOIN of a (left-deep) join chain; see :mod:`hayase.sql.joins` for the row layout.

    The left row is the source row of the first source, or the joined row of the previous
    JoinStep (``left_width`` elements); the right row is ``right``'s source row
    (``right_width``).  The joined row is ``left_row + right_row``, a missing side padded with
    None.  ``left_key(left_row)`` / ``right_key(right_row)`` compute the join key (rows whose key
    is null never match).  ``kind``: STREAM_STREAM (``within`` = (before_ms, after_ms), optional
    ``grace_ms``), STREAM_TABLE, TABLE_TABLE or FK_TABLE_TABLE (foreign key: ``left_key`` is the
    foreign key, the right key is the right table's primary key).  ``*_repartition`` is True when
    that side's key is not its source key (a repartition is needed).  After the last JoinStep the
    engine appends ``(join key, result timestamp)`` to the row; then [FilterStep] ProjectStep.
    Windowed sources (all or none are): source rows carry WINDOWSTART/WINDOWEND, and the key
    functions return ``(key, WINDOWSTART, WINDOWEND or None)`` (None for hopping/tumbling: only
    the start is in ksqlDB's serialized key) so records match only within the same window; the
    sink then has the left source's window and the engine wraps the sink key with that window.
    """

    join_type: str  # INNER, LEFT, RIGHT, FULL
    right: DataSource
    within: tuple[int, int] | None = None
    left_key: Callable[[Row], Any] | None = None
    right_key: Callable[[Row], Any] | None = None
    kind: str = "STREAM_STREAM"
    left_width: int = 0
    right_width: int = 0
    grace_ms: int | None = None
    left_repartition: bool = False
    right_repartition: bool = False
    text: str = ""


# --------------------------------------------------------------------------- plans


@dataclass
class QueryPlan:
    """A persistent query (CSAS, CTAS, INSERT INTO ... SELECT)."""

    query_id: str
    sources: list[DataSource]
    steps: list[Step]
    sink: SinkDescriptor
    sql: str = ""
    # Namespace the generated code reads its error handler from (see set_error_handler).
    _runtime: dict[str, Any] = field(default_factory=dict, repr=False)
    # When the source has a TIMESTAMP column: row -> event time (ms) or None (record is logged
    # and skipped, as ksqlDB does). The engine writes it into the row's ROWTIME slot first.
    source_timestamp: Callable[[Row], int | None] | None = None
    # Stateless plans without table functions: every step fused into one generated function,
    # ``fused(row) -> (new_key_or_None, out) | None`` (None: WHERE did not keep the row; for a
    # table source the engine still has to emit the tombstone).  ``new_key`` is the PARTITION BY
    # key (None without PARTITION BY); ``out`` is what ProjectStep.fn returns.  Same semantics
    # as running ``steps`` one by one, just fewer Python calls per record.
    fused: Callable[[Row], tuple[tuple[Any, ...] | None, Row] | None] | None = None

    def set_error_handler(self, handler: Callable[[Exception], None]) -> None:
        """Called with a KsqlRuntimeError whenever an expression fails on a record."""
        self._runtime["on_error"] = handler


@dataclass
class InsertValues:
    """INSERT INTO ... VALUES: one record to produce.  ``key``/``value`` hold the sink's key
    and value column values in schema order; ``headers`` the header column values."""

    target: DataSource
    key: tuple[Any, ...]
    value: tuple[Any, ...]
    timestamp: int | None  # None: the engine's current time
    headers: tuple[Any, ...] = ()


@dataclass
class DdlResult:
    """Effect of a statement that only changed or read the metastore / session."""

    message: str
    source: DataSource | None = None
    topics_to_create: list[Topic] = field(default_factory=list)
    topics_to_delete: list[str] = field(default_factory=list)
    queries_to_terminate: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # SHOW / DESCRIBE / EXPLAIN output
