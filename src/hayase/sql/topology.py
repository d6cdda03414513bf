"""ksqlDB's internal topics of a persistent query: names and formats.

ksqlDB names every repartition and changelog topic of a query
``_confluent-ksql-<service id><persistent prefix><query id>-<name>``; the ``<name>`` comes from
the query's execution-step contexts (``Join``, ``KafkaTopic_Right``, ``RightSourceKeyed``,
``Aggregate``, with ``L_`` once more for each JOIN after it in an n-way chain) or, for the two
window stores of a stream-stream join, from Kafka Streams' generated processor names
(``KSTREAM-JOINTHIS-0000000012-store``), whose numbers count every DSL operation built before
the join (Kafka Streams burns one index per operation, named or not).

:func:`internal_topics` derives them from a :class:`~hayase.sql.plan.QueryPlan` so that the
conformance runner can check a case's expected ``post.topics`` and blacklist, and an engine can
name its topics as ksqlDB does. Rules (ksqlDB's, per join node):

- A side is repartitioned when its join expression is not its key (a stream: ``Join-left-
  repartition`` / ``Join-right-repartition``, or ``Join-repartition`` for the stream of a
  stream-table join; a table is re-keyed under ``<side>SourceKeyed``: ``-SelectKey-repartition``
  and the ``-Materialize`` store). When neither side is, but their key formats differ, the right
  side is repartitioned into the left's key format.
- The join's key format is the left's unless the left is repartitioned and the right is not;
  when both are, the first source key format that is not NONE, else the default key format.
- A table source that is not re-keyed is materialized: ``KafkaTopic_<side>-Reduce`` (joins),
  ``KsqlTopic-Reduce`` (single source).
- GROUP BY: ``Aggregate-GroupBy-repartition`` unless a stream is grouped by exactly its key
  columns; the ``Aggregate-Aggregate-Materialize`` store; ``Suppress-store`` for EMIT FINAL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hayase.sql.plan import (
    AggregateStep,
    DataSource,
    FormatInfo,
    JoinStep,
    QueryPlan,
    SourceType,
)

DEFAULT_SERVICE_ID = "default_"
DEFAULT_PERSISTENT_PREFIX = "query_"

# Kafka Streams index burns per ksqlDB operation (see the module doc).
_STREAM_SOURCE_OPS = 2  # KSTREAM-SOURCE, TRANSFORMVALUES (key and pseudo columns)
_TABLE_SOURCE_OPS = 5  # source store name, KSTREAM-SOURCE, KTABLE-SOURCE, 2 x TRANSFORMVALUES
_STREAM_REKEY_OPS = 1  # selectKey (Kafka Streams repartitions inside the join)
_TABLE_REKEY_OPS = 6  # toStream, mapper, repartition filter/sink/source, toTable
_REPARTITION_OPS = 3  # filter, sink, source
_ALIAS_OPS = 1  # PrependAlias<side>


@dataclass(frozen=True)
class InternalTopic:
    """One internal topic: ``name`` after the query's prefix (see :func:`query_prefix`)."""

    name: str
    key_format: FormatInfo
    value_format: FormatInfo

    @property
    def is_repartition(self) -> bool:
        return self.name.endswith("-repartition")


def query_prefix(query_id: str, service_id: str = DEFAULT_SERVICE_ID,
                 persistent_prefix: str = DEFAULT_PERSISTENT_PREFIX) -> str:
    """``_confluent-ksql-<service id><persistent prefix><query id>-``."""
    return f"_confluent-ksql-{service_id}{persistent_prefix}{query_id}-"


def internal_topics(plan: QueryPlan, default_key_format: str = "KAFKA") -> list[InternalTopic]:
    """The internal topics ksqlDB creates for ``plan``, in topology order."""
    joins = [s for s in plan.steps if isinstance(s, JoinStep)]
    aggregate = next((s for s in plan.steps if isinstance(s, AggregateStep)), None)
    out: list[InternalTopic] = []
    if joins:
        out.extend(_JoinTopology(plan.sources, joins, default_key_format).topics)
    elif plan.sources:
        source = plan.sources[0]
        if source.source_type is SourceType.TABLE:
            out.append(InternalTopic("KsqlTopic-Reduce-changelog", source.key_format,
                                     source.value_format))
    if aggregate is not None and plan.sources:
        rekey = _regroups_join(joins[-1], aggregate) if joins else \
            not _groups_by_stream_key(plan.sources[0], aggregate)
        out.extend(_aggregate_topics(plan, aggregate, rekey))
    return out


def _aggregate_topics(plan: QueryPlan, agg: AggregateStep, rekey: bool) -> list[InternalTopic]:
    source = plan.sources[0]
    key = plan.sink.source.key_format
    value = source.value_format
    out: list[InternalTopic] = []
    if rekey:
        out.append(InternalTopic("Aggregate-GroupBy-repartition", key, value))
    out.append(InternalTopic("Aggregate-Aggregate-Materialize-changelog", key, value))
    if agg.emit_final:
        out.append(InternalTopic("Suppress-store-changelog", key, value))
    return out


def _groups_by_stream_key(source: DataSource, agg: AggregateStep) -> bool:
    """A stream grouped by exactly its key columns, in order, needs no repartition (a table's
    groupBy always repartitions in Kafka Streams)."""
    if source.source_type is not SourceType.STREAM or not source.schema.key:
        return False
    grouped = [_unqualified(e) for e in agg.text.split(",")]
    return grouped == [c.name.upper() for c in source.schema.key]


def _regroups_join(last: JoinStep, agg: AggregateStep) -> bool:
    """The result of a join is keyed by the last JOIN's left expression (a synthetic ROWKEY
    after FULL OUTER): grouping by exactly that column needs no repartition."""
    left = last.text.strip().strip("()").split(" = ")[0]
    return last.join_type.upper() == "FULL" or \
        agg.text.replace("`", "").strip().upper() != left.replace("`", "").strip().upper()


def _unqualified(expression: str) -> str:
    """``SRC.COL`` or ``COL`` as ``COL`` (upper-case, unquoted); other text unchanged."""
    text = expression.replace("`", "").strip().upper()
    head, dot, tail = text.rpartition(".")
    return tail if dot and head.isidentifier() and tail.isidentifier() else text


@dataclass
class _Input:
    """The left input of a join node: the first source, or the previous node's result."""

    is_table: bool
    key_format: FormatInfo
    value_format: FormatInfo
    windowed: bool


@dataclass
class _JoinTopology:
    sources: list[DataSource]
    joins: list[JoinStep]
    default_key_format: str
    topics: list[InternalTopic] = field(default_factory=list)
    ops: int = 0  # Kafka Streams processor-name indices used so far

    def __post_init__(self) -> None:
        first = self.sources[0]
        left = _Input(first.source_type is SourceType.TABLE, first.key_format,
                      first.value_format, first.window is not None)
        for k, step in enumerate(self.joins):
            left = self._node(k, step, left)

    def _add(self, name: str, key: FormatInfo, value: FormatInfo) -> None:
        self.topics.append(InternalTopic(name, key, value))

    def _node(self, k: int, step: JoinStep, left: _Input) -> _Input:
        outer = "L_" * (len(self.joins) - 1 - k)
        right = step.right
        right_in = _Input(right.source_type is SourceType.TABLE, right.key_format,
                          right.value_format, right.window is not None)
        lrep, rrep = step.left_repartition, step.right_repartition
        fk = step.kind == "FK_TABLE_TABLE"
        if fk:
            lrep = rrep = False
        elif not lrep and not rrep and not left.windowed and \
                left.key_format.name.upper() != right.key_format.name.upper():
            rrep = True  # key format mismatch: the right side moves into the left's format
        key = self._key_format(k, left, right_in, lrep, rrep)
        if k == 0:
            self._source(outer + "Left", self.sources[0], lrep, key)
        elif lrep and left.is_table:
            self._table_rekey(outer + "Left", left.value_format, key)
        elif lrep:
            self.ops += _STREAM_REKEY_OPS
        self._source(outer + "Right", right, rrep, key)
        self._join(outer, step, left, right_in, lrep, rrep, key)
        return _Input(step.kind in ("TABLE_TABLE", "FK_TABLE_TABLE"), key,
                      self.sources[0].value_format, left.windowed)

    def _key_format(self, k: int, left: _Input, right: _Input, lrep: bool,
                    rrep: bool) -> FormatInfo:
        if not lrep:
            return left.key_format
        if not rrep:
            return right.key_format
        for src in self.sources[: k + 2]:
            if src.key_format.name.upper() != "NONE":
                return src.key_format
        return FormatInfo(self.default_key_format.upper())

    def _source(self, side: str, src: DataSource, rekeyed: bool, key: FormatInfo) -> None:
        if src.source_type is SourceType.TABLE:
            self.ops += _TABLE_SOURCE_OPS
            if rekeyed:
                self._table_rekey(side, src.value_format, key)
            else:
                self._add(f"KafkaTopic_{side}-Reduce-changelog", src.key_format,
                          src.value_format)
        else:
            self.ops += _STREAM_SOURCE_OPS + (_STREAM_REKEY_OPS if rekeyed else 0)
        self.ops += _ALIAS_OPS

    def _table_rekey(self, side: str, value: FormatInfo, key: FormatInfo) -> None:
        self._add(f"{side}SourceKeyed-SelectKey-repartition", key, value)
        self._add(f"{side}SourceKeyed-Materialize-changelog", key, value)
        self.ops += _TABLE_REKEY_OPS

    def _join(self, outer: str, step: JoinStep, left: _Input, right: _Input, lrep: bool,
              rrep: bool, key: FormatInfo) -> None:
        if step.kind == "STREAM_STREAM":
            # Kafka Streams names the repartition of the joining ("this") stream ``-left``:
            # for a RIGHT join (run as the right stream's LEFT join) that is the right side.
            names = ("right", "left") if step.join_type.upper() == "RIGHT" else ("left", "right")
            for flag, name, side in ((lrep, names[0], left), (rrep, names[1], right)):
                if flag:
                    self._add(f"{outer}Join-{name}-repartition", key, side.value_format)
                    self.ops += _REPARTITION_OPS
            self._window_stores(step, left, right, key)
        elif step.kind == "STREAM_TABLE":
            if lrep:
                self._add(f"{outer}Join-repartition", key, left.value_format)
                self.ops += _REPARTITION_OPS
            self.ops += 1  # the join processor
        elif step.kind == "TABLE_TABLE":
            self.ops += 3  # merge, join-this, join-other

    def _window_stores(self, step: JoinStep, left: _Input, right: _Input,
                       key: FormatInfo) -> None:
        """KStreamImplJoin: two windowed processors, then THIS and OTHER (their stores take
        the processors' generated names), then the merge. ksqlDB runs RIGHT as the right
        stream's LEFT join; the outer store of a left/outer join with GRACE PERIOD reuses
        THIS's index."""
        self.ops += 2
        this, other = left, right
        kind = step.join_type.upper()
        if kind == "RIGHT":
            this, other = right, left
        this_name = "OUTERTHIS" if kind == "FULL" else "JOINTHIS"
        other_name = "JOINOTHER" if kind == "INNER" else "OUTEROTHER"
        index = self.ops
        self._add(f"KSTREAM-{this_name}-{index:010d}-store-changelog", key, this.value_format)
        self._add(f"KSTREAM-{other_name}-{index + 1:010d}-store-changelog", key,
                  other.value_format)
        if step.grace_ms is not None and kind != "INNER":
            self._add(f"KSTREAM-OUTERSHARED-{index:010d}-store-changelog", key,
                      this.value_format)
        self.ops += 3


__all__ = ["InternalTopic", "internal_topics", "query_prefix"]
