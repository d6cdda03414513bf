"""Transient queries (push and pull SELECTs) on top of the engine's persistent operators.

The SQL layer plans only persistent queries, so a transient ``SELECT`` is planned as a
``CREATE STREAM|TABLE ... AS SELECT`` on a scratch copy of the metastore (its sink is never
created: the operator's output records are decoded here, in memory). The internal property
``__hayase.transient`` lets the projection omit the key columns, as a SELECT may.

- push (``EMIT CHANGES``): records from a topic subscription go through the operator as they
  arrive; rows stream until LIMIT or the client goes away.
- pull on a stream: the topic is scanned up to its current end.
- pull on a table: the table's topic is materialized (last record per key; a tombstone deletes)
  and the latest rows go through the operator (WHERE on keys, ranges, WINDOWSTART bounds).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hayase.engine import windows
from hayase.engine.processing_log import ProcessingLog
from hayase.engine.record import OutputRecord, Record
from hayase.formats import SerdeError, key_serde, value_serde
from hayase.sql import ast
from hayase.sql.errors import StatementError
from hayase.sql.metastore import Metastore
from hayase.sql.plan import DataSource, QueryPlan, SourceType
from hayase.sql.types import BIGINT, SqlType

TRANSIENT_PROPERTY = "__hayase.transient"
_counter = itertools.count()


@dataclass
class Row:
    columns: list[Any]
    tombstone: bool = False


@dataclass
class TransientQuery:
    query_id: str
    sql: str
    is_pull: bool
    limit: int | None
    source: DataSource  # the first source in FROM
    plan: QueryPlan
    columns: list[tuple[str, SqlType]]  # the rows' columns, in the client's order
    order: list[int]  # index into the decoded (key + value) sink row per column; -1/-2 = WSTART/END
    result_is_table: bool

    @property
    def schema_text(self) -> str:
        """ksqlDB's header schema: "`K` STRING, `ID` INTEGER"."""
        return ", ".join(f"`{n}` {t}" for n, t in self.columns)

    @property
    def source_topics(self) -> list[str]:
        return [s.topic for s in self.plan.sources]


def _copy_metastore(ms: Metastore) -> Metastore:
    return Metastore(sources=dict(ms.sources), types=dict(ms.types), queries=dict(ms.queries),
                     query_counter=ms.query_counter)


def _projection_names(query: ast.Query) -> list[str | None] | None:
    """Names of the projection in order; None for a generated name (KSQL_COL_n); None overall
    when the projection has a ``*``."""
    names: list[str | None] = []
    for item in query.select:
        if not isinstance(item, ast.SingleColumn):
            return None
        if item.alias:
            names.append(item.alias)
        elif isinstance(item.expression, ast.ColumnRef) and not item.expression.source:
            names.append(item.expression.name)
        else:
            names.append(None)
    return names


def plan_transient(session: Any, statement: ast.QueryStatement,
                   properties: Mapping[str, Any]) -> TransientQuery:
    """Plan a SELECT as a C*AS over a scratch metastore; raises the SQL layer's errors."""
    from hayase.sql import Session  # type: ignore[attr-defined]

    query = statement.query
    is_pull = query.emit is None
    limit = query.limit
    body = ast.Query(query.select, query.from_, query.window, query.where, query.group_by,
                     query.partition_by, query.having, None, None)
    n = next(_counter)
    name = f"__TRANSIENT_{n}"
    props = {k: str(v) for k, v in session.properties.items()}
    props.update({k: str(v) for k, v in properties.items()})
    props[TRANSIENT_PROPERTY] = "true"
    scratch = Session(props, metastore=_copy_metastore(session.metastore))
    last: Exception | None = None
    plan: QueryPlan | None = None
    for kind in ("STREAM", "TABLE"):
        text = (f"CREATE {kind} `{name}` WITH (KAFKA_TOPIC='__hayase_transient_{n}', "
                f"FORMAT='JSON') AS {body.to_sql()};")
        try:
            result = scratch.execute_statement(text)
        except StatementError as e:
            if "Invalid result type" in str(e):
                last = e
                continue
            e.statement = statement.text
            raise
        if isinstance(result, QueryPlan):
            plan = result
            break
    if plan is None:
        raise last or StatementError("Cannot plan the query")
    sink = plan.sink.source
    source = plan.sources[0]
    sink_cols = list(sink.schema.columns)
    cols: list[tuple[str, SqlType]] = [(c.name, c.type) for c in sink_cols]
    order = list(range(len(sink_cols)))
    names = _projection_names(query)
    if names is not None and len(names) == len(sink_cols):
        known = {x for x in names if x is not None}
        rest = iter([i for i, c in enumerate(sink_cols) if c.name not in known])
        index = {c.name: i for i, c in enumerate(sink_cols)}
        try:
            order = [index[x] if x is not None else next(rest) for x in names]
        except (KeyError, StopIteration):
            order = list(range(len(sink_cols)))
        cols = [(sink_cols[i].name, sink_cols[i].type) for i in order]
    elif names is None and sink.window is not None:
        # SELECT * of a windowed source: key columns, WINDOWSTART, WINDOWEND, value columns.
        n_key = len(sink.schema.key)
        order = order[:n_key] + [-1, -2] + order[n_key:]
        cols = cols[:n_key] + [("WINDOWSTART", BIGINT), ("WINDOWEND", BIGINT)] + cols[n_key:]
    qid = (f"transient_{source.name}_{n}" if not is_pull else f"query_{n}")
    return TransientQuery(qid, statement.text, is_pull, limit, source, plan, cols, order,
                          sink.source_type is SourceType.TABLE)


class RowDecoder:
    """The transient operator's output records -> rows in the client's column order."""

    def __init__(self, tq: TransientQuery) -> None:
        sink = tq.plan.sink.source
        self.sink = sink
        self.order = tq.order
        self.key = key_serde(sink.key_format, sink.schema.key)
        self.value = value_serde(sink.value_format, sink.schema.value)
        self.n_value = len(sink.schema.value)

    def decode(self, out: OutputRecord) -> Row | None:
        key_bytes = out.key
        wstart = wend = None
        try:
            if self.sink.window is not None:
                key_bytes, wstart, wend = windows.unwrap(key_bytes, self.sink.window.type,
                                                         self.sink.window.size_ms)
            key = self.key.deserialize(key_bytes) or (None,) * len(self.sink.schema.key)
            value = self.value.deserialize(out.value)
        except (SerdeError, ValueError):
            return None
        tombstone = value is None
        full = tuple(key) + (tuple(value) if value is not None else (None,) * self.n_value)
        row = [wstart if i == -1 else wend if i == -2 else full[i] for i in self.order]
        return Row(row, tombstone)


class TransientRunner:
    """Feeds records through one transient operator and yields rows."""

    def __init__(self, tq: TransientQuery, properties: Mapping[str, Any]) -> None:
        from hayase.engine.joins import make_query

        self.tq = tq
        self.log = ProcessingLog()
        self.operator = make_query(tq.plan, self.log, dict(properties))
        self.decoder = RowDecoder(tq)

    def feed(self, rec: Record) -> list[Row]:
        rows = []
        for out in self.operator.process(rec):
            row = self.decoder.decode(out)
            if row is not None:
                rows.append(row)
        self.log.drain()
        return rows

    def close(self) -> None:
        close = getattr(self.operator, "close", None)
        if close is not None:
            close()


def materialize(records: list[Record], windowed: bool) -> list[Record]:
    """A table's topic -> its current rows: the last record per key (bytes, window included),
    in first-seen key order; a tombstone deletes the key."""
    latest: dict[bytes | None, Record] = {}
    for rec in records:
        if rec.value is None:
            latest.pop(rec.key, None)
        else:
            latest[rec.key] = rec
    return list(latest.values())


def run_pull(tq: TransientQuery, records_by_topic: Mapping[str, list[Record]],
             properties: Mapping[str, Any]) -> tuple[list[Row], bool]:
    """Rows of a pull query; the bool says whether LIMIT cut it short."""
    runner = TransientRunner(tq, properties)
    try:
        source = tq.source
        records = list(records_by_topic.get(source.topic, []))
        if source.source_type is SourceType.TABLE:
            records = materialize(records, source.window is not None)
        rows: list[Row] = []
        for rec in records:
            for row in runner.feed(rec):
                if row.tombstone:
                    continue
                rows.append(row)
                if tq.limit is not None and len(rows) >= tq.limit:
                    return rows, True
        return rows, False
    finally:
        runner.close()
