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
from hayase.server.pull_where import check_pull_where, column_refs
from hayase.sql import ast
from hayase.sql.errors import StatementError
from hayase.sql.metastore import Metastore
from hayase.sql.plan import DataSource, Namespace, QueryPlan, SourceType
from hayase.sql.types import BIGINT, INTEGER, SqlType

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
    key_flags: list[bool]  # pull queries on tables mark key columns (and window bounds) KEY
    scalable: bool = False  # a scalable push query (ksql.query.push.v2.enabled)
    # The header schema when it is not the rows' columns in order (see _header_schema).
    header_schema: str | None = None

    @property
    def schema_text(self) -> str:
        """ksqlDB's header schema: "`K` STRING KEY, `ID` INTEGER"."""
        if self.header_schema is not None:
            return self.header_schema
        return ", ".join(f"`{n}` {t}" + (" KEY" if k else "")
                         for (n, t), k in zip(self.columns, self.key_flags, strict=True))

    @property
    def source_topics(self) -> list[str]:
        return [s.topic for s in self.plan.sources]


def _copy_metastore(ms: Metastore) -> Metastore:
    return Metastore(sources=dict(ms.sources), types=dict(ms.types), queries=dict(ms.queries),
                     query_counter=ms.query_counter)


PSEUDO_COLUMNS = ("ROWTIME", "ROWPARTITION", "ROWOFFSET", "WINDOWSTART", "WINDOWEND")
_HIDDEN = "__HAYASE_GROUP_"
_ALIAS = "__HAYASE_"
_MORE = ("See https://cnfl.io/queries for more info.\nAdd EMIT CHANGES if you intended to issue "
         "a push query.")


def _projection_names(select: list[ast.SelectItem],
                      star: list[str] | None) -> list[str | None] | None:
    """Names of the projection in order; None for a generated name (KSQL_COL_n); None overall
    when the projection has a ``*`` that cannot be expanded here (``star``: the single source's
    columns)."""
    names: list[str | None] = []
    for item in select:
        if not isinstance(item, ast.SingleColumn):
            if star is None:
                return None
            names.extend(star)
            continue
        if item.alias:
            names.append(item.alias)
        elif isinstance(item.expression, ast.ColumnRef):
            ref = item.expression
            names.append(f"{ref.source}_{ref.name}" if ref.source and ref.name in PSEUDO_COLUMNS
                         else ref.name)
        else:
            names.append(None)
    return names


def _relations(rel: ast.Relation) -> list[ast.Table]:
    if isinstance(rel, ast.Join):
        return _relations(rel.left) + [rel.right]
    return [rel] if isinstance(rel, ast.Table) else []


def _refuse_offset_columns(clause: str, exprs: list[ast.Expression]) -> None:
    """Pull queries read a table's state, which has no ROWPARTITION or ROWOFFSET."""
    bad: list[str] = []
    for e in exprs:
        for ref in column_refs(e):
            if ref.name in ("ROWPARTITION", "ROWOFFSET") and ref.name not in bad:
                bad.append(ref.name)
    if bad:
        raise StatementError(f"Pull queries don't support the following columns in {clause} "
                             "clauses: " + ", ".join(f"`{b}`" for b in bad))


def _check_pull(query: ast.Query, session: Any, props: Mapping[str, Any]) -> None:
    """ksqlDB's restrictions on pull queries (PullQueryValidator), in its rules' order."""
    if isinstance(query.from_, ast.Join):
        raise StatementError(f"Pull queries don't support JOIN clauses. {_MORE}")
    if query.window is not None:
        raise StatementError(f"Pull queries don't support WINDOW clauses. {_MORE}")
    if query.group_by is not None:
        raise StatementError(f"Pull queries don't support GROUP BY clauses. {_MORE}")
    if query.partition_by is not None:
        raise StatementError(f"Pull queries don't support PARTITION BY clauses. {_MORE}")
    if query.having is not None:
        raise StatementError(f"Pull queries don't support HAVING clauses. {_MORE}")
    _refuse_offset_columns("SELECT", [item.expression for item in query.select
                                      if isinstance(item, ast.SingleColumn)])
    if query.where is not None:
        _refuse_offset_columns("WHERE", [query.where])
    tables = _relations(query.from_)
    if tables:
        src = session.metastore.get(tables[0].name)
        if src is not None and src.source_type is SourceType.TABLE:
            check_pull_where(query.where, src, props)


def _check_queryable(query: ast.Query, session: Any) -> None:
    """ksqlDB finds a table's materialization when building the physical plan: after the
    logical plan's checks (WHERE clause, projection schema)."""
    tables = _relations(query.from_)
    src = session.metastore.get(tables[0].name) if tables else None
    if src is not None and src.source_type is SourceType.TABLE and not src.is_source \
            and src.created_by_query is None:
        raise StatementError(
            f"The `{src.name}` table isn't queryable. To derive a queryable table, you can "
            f"do 'CREATE TABLE QUERYABLE_{src.name} AS SELECT * FROM {src.name}'. See "
            "https://cnfl.io/queries for more info.")


def _rewrite_select(query: ast.Query) -> tuple[list[ast.SelectItem], dict[str, str]]:
    """The projection with pseudo-columns aliased (a C*AS refuses them bare) and missing GROUP
    BY expressions appended as hidden columns; returns it and {internal name: shown name}."""
    renames: dict[str, str] = {}
    items: list[ast.SelectItem] = []
    for item in query.select:
        if isinstance(item, ast.SingleColumn) and item.alias is None and isinstance(
                item.expression, ast.ColumnRef) and item.expression.name in PSEUDO_COLUMNS:
            ref = item.expression
            shown = f"{ref.source}_{ref.name}" if ref.source else ref.name
            alias = _ALIAS + shown
            renames[alias] = shown
            items.append(ast.SingleColumn(item.expression, alias))
        elif isinstance(item, ast.SingleColumn) and item.alias in PSEUDO_COLUMNS:
            alias = _ALIAS + str(item.alias)
            renames[alias] = str(item.alias)
            items.append(ast.SingleColumn(item.expression, alias))
        else:
            items.append(item)
    if query.group_by is not None:
        present = {i.expression.to_sql() for i in items if isinstance(i, ast.SingleColumn)}
        for g, expr in enumerate(query.group_by):
            if expr.to_sql() not in present:
                items.append(ast.SingleColumn(expr, f"{_HIDDEN}{g}"))
    return items, renames


def plan_transient(session: Any, statement: ast.QueryStatement,
                   properties: Mapping[str, Any]) -> TransientQuery:
    """Plan a SELECT as a C*AS over a scratch metastore; raises the SQL layer's errors."""
    from hayase.sql import Session  # type: ignore[attr-defined]

    query = statement.query
    is_pull = query.emit is None
    props = {k: str(v) for k, v in session.properties.items()}
    props.update({k: str(v) for k, v in properties.items()})
    if is_pull:
        _check_pull(query, session, props)
    elif str(query.emit).upper() == "FINAL" and (query.window is None or not query.group_by):
        # The scratch C*AS below is planned without its EMIT: the SQL layer's check here.
        raise StatementError("EMIT FINAL is only supported for windowed aggregations.")
    limit = query.limit
    star: list[str] | None = None
    tables = _relations(query.from_)
    if len(tables) == 1:
        src0 = session.metastore.get(tables[0].name)
        if src0 is not None:
            star = [c.name for c in src0.schema.columns if c.namespace is not Namespace.HEADERS]
            if src0.window is not None:
                n_key = len(src0.schema.key)
                star = star[:n_key] + ["WINDOWSTART", "WINDOWEND"] + star[n_key:]
    names = _projection_names(query.select, star)
    select, renames = _rewrite_select(query)
    # EMIT FINAL (a windowed aggregation's) is planned too: the engine suppresses the updates.
    final = "FINAL" if str(query.emit).upper() == "FINAL" else None
    body = ast.Query(select, query.from_, query.window, query.where, query.group_by,
                     query.partition_by, query.having, final, None)
    n = next(_counter)
    name = f"__TRANSIENT_{n}"
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
            msg = e.message
            if "Invalid result type" in msg:
                last = e
                continue
            if "without a GROUP BY clause" in msg and query.group_by is None and not is_pull:
                # ksqlDB aggregates a push query without GROUP BY under one constant key.
                grouped = ast.Query(query.select, query.from_, query.window, query.where,
                                    [ast.Literal(1, INTEGER)], query.partition_by,
                                    query.having, query.emit, query.limit)
                return plan_transient(session, ast.QueryStatement(grouped, text=statement.text),
                                      properties)
            e.statement = statement.text
            raise
        if isinstance(result, QueryPlan):
            plan = result
            break
    if plan is None:
        raise last or StatementError("Cannot plan the query")
    if is_pull:
        _check_queryable(query, session)
    sink = plan.sink.source
    source = plan.sources[0]
    sink_cols = list(sink.schema.columns)
    shown = [renames.get(c.name, c.name) for c in sink_cols]
    visible = [i for i, c in enumerate(sink_cols) if not c.name.startswith(_HIDDEN)]
    order = list(visible)
    window_index = {"WINDOWSTART": -1, "WINDOWEND": -2} if sink.window is not None else {}
    if names is not None:
        known = {x for x in names if x is not None}
        rest = iter([i for i in visible if shown[i] not in known
                     and shown[i] not in window_index])
        index = {shown[i]: i for i in visible}
        # Window bounds read from the windowed key (also right for tombstones).
        index.update(window_index)
        try:
            order = [index[x] if x is not None else next(rest) for x in names]
        except (KeyError, StopIteration):
            order = list(visible)
        replaced = {i for i in visible if shown[i] in window_index}
        if sorted(i for i in order if i >= 0) != sorted(set(visible) - replaced):
            order = list(visible)
    elif names is None and sink.window is not None:
        # SELECT * of a windowed source: key columns, WINDOWSTART, WINDOWEND, value columns.
        n_key = len(sink.schema.key)
        order = order[:n_key] + [-1, -2] + order[n_key:]
    is_table_pull = is_pull and source.source_type is SourceType.TABLE
    header_schema = None
    select_star = len(query.select) == 1 and not isinstance(query.select[0], ast.SingleColumn)
    if is_table_pull and select_star and source.schema.headers and len(plan.sources) == 1:
        header_schema = _header_schema(source)
    key_names = {c.name for c in sink.schema.key}
    cols: list[tuple[str, SqlType]] = []
    for i in order:
        if i < 0:
            cols.append(("WINDOWSTART" if i == -1 else "WINDOWEND", BIGINT))
        else:
            cols.append((shown[i], sink_cols[i].type))
    key_flags = [is_table_pull and ((i >= 0 and sink_cols[i].name in key_names) or i < 0)
                 for i in order]
    # Scalable push queries (ksqlDB 0.22+): enabled by the property, from the latest offset,
    # on a persistent query's sink, without GROUP BY / JOIN / WINDOW.
    v2 = (str(props.get("ksql.query.push.v2.enabled", "false")).lower() == "true"
          and str(props.get("auto.offset.reset", "latest")).lower() == "latest"
          and source.created_by_query is not None and query.group_by is None
          and query.window is None and len(plan.sources) == 1)
    if is_pull:
        qid = f"query_{n}"
    elif v2:
        qid = f"SCALABLE_PUSH_QUERY_{n}"
    else:
        qid = f"transient_{source.name}_{n}"
    return TransientQuery(qid, statement.text, is_pull, limit, source, plan, cols, order,
                          sink.source_type is SourceType.TABLE, key_flags, scalable=v2,
                          header_schema=header_schema)


def _header_schema(source: DataSource) -> str | None:
    """The header schema of SELECT * in a pull query on a table with header columns, as ksqlDB
    gives it: key columns, then header columns (HEADER('k') / HEADERS), then value columns,
    while its rows keep the value columns before the header columns."""
    if source.window is not None:
        return None
    rank = {Namespace.KEY: 0, Namespace.HEADERS: 1, Namespace.VALUE: 2}
    parts = []
    for c in sorted(source.schema.columns, key=lambda c: rank[c.namespace]):
        note = " KEY" if c.namespace is Namespace.KEY else ""
        if c.namespace is Namespace.HEADERS:
            note = f" HEADER('{c.header_key}')" if c.header_key is not None else " HEADERS"
        parts.append(f"`{c.name}` {c.type}{note}")
    return ", ".join(parts)


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
        if self.tq.scalable and (rec.value is None or (
                rec.key is None and self.tq.source.schema.key)):
            # A scalable push query reads the persistent query's output rows and passes on
            # none without a value, nor without a key when the source has key columns
            # (ksqlDB's ScalablePushRegistry: "We don't currently handle null in either field").
            return []
        rows = []
        for out in self.operator.process(rec):
            row = self.decoder.decode(out)
            # A table row that does not pass WHERE becomes a tombstone in the operator; a
            # transient query shows only tombstones that came from the source.
            if row is not None and not (row.tombstone and rec.value is not None):
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
    # Rows come out of the state store in key-bytes order (RocksDB), as in ksqlDB.
    return sorted(latest.values(), key=lambda r: r.key or b"")


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
