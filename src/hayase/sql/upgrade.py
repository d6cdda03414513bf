"""CREATE OR REPLACE: which replacements ksqlDB accepts as in-place upgrades.

Two checks, as ksqlDB makes them:

- the data source (``StructuredDataSource.canUpgradeTo``): the name, kind, topic (name and
  formats) and timestamp column stay; the key columns stay identical; every old column keeps its
  name, type and position, new value columns may only be appended;
- the persistent query of CREATE OR REPLACE ... AS SELECT (``ExecutionStep.validateUpgrade``):
  filters and projections may change, the steps that hold state or decide partitioning may not:
  the sources, a join (no join step supports upgrades), the GROUP BY, the WINDOW, the aggregate
  functions, PARTITION BY and table functions.
"""

from __future__ import annotations

from hayase.sql import ast
from hayase.sql.plan import Column, DataSource, LogicalSchema, Namespace, SourceType


def source_upgrade_error(old: DataSource, new: DataSource) -> str | None:
    """ksqlDB's reason the source cannot become ``new``, or None when it can."""
    issues: list[str] = []
    props: list[tuple[str, str, str]] = [
        ("type", _kind(old), _kind(new)),
        ("topic", _topic(old), _topic(new)),
        ("timestampColumn", _timestamp(old), _timestamp(new)),
    ]
    for prop, a, b in props:
        if a != b:
            issues.append(_compat(old, prop, a, b))
    schema_issue = _schema_issue(old.schema, new.schema)
    if schema_issue is not None:
        issues.append(_compat(old, "schema", _schema_text(old.schema), _schema_text(new.schema))
                      + f". ({schema_issue})")
    return "\n\tAND ".join(issues) if issues else None


def query_upgrade_error(old: ast.Query, new: ast.Query,
                        source_of: dict[str, DataSource]) -> str | None:
    """ksqlDB's reason the running query cannot be replaced by ``new``, or None when it can."""
    old_join, new_join = _join(old.from_), _join(new.from_)
    if old_join is not None:
        return f"Upgrades not yet supported for {_join_step(old_join, source_of)}"
    if new_join is not None:
        return "Query is not upgradeable. Cannot change a non-join source into a join source."
    old_src, new_src = source_of.get(_table(old.from_)), source_of.get(_table(new.from_))
    if old_src is not None and new_src is not None and old_src.topic != new_src.topic:
        step = "StreamSource" if old_src.source_type is SourceType.STREAM else "TableSource"
        return _must_match(step, "topicName", old_src.topic, new_src.topic)
    if (old.group_by is None) != (new.group_by is None):
        added = "aggregation" if new.group_by is not None else "projection"
        return f"Query is not upgradeable. Cannot add an {added} step that is not in the " \
               "original query plan."
    if old.group_by is not None and new.group_by is not None:
        return _aggregate_step_issue(old, new, old_src) or _aggregate_issue(old, new)
    if _exprs(old.partition_by) != _exprs(new.partition_by):
        return _must_match("StreamSelectKey", "keyExpression", _exprs(old.partition_by),
                           _exprs(new.partition_by))
    old_fns, new_fns = _table_functions(old), _table_functions(new)
    if old_fns != new_fns:
        return _must_match("StreamFlatMap", "tableFunctions", old_fns, new_fns)
    return None


# --------------------------------------------------------------------------- data sources


def _compat(old: DataSource, prop: str, a: str, b: str) -> str:
    return f"DataSource '`{old.name}`' has {prop} = {a} which is not upgradeable to {b}"


def _kind(src: DataSource) -> str:
    return "KSTREAM" if src.source_type is SourceType.STREAM else "KTABLE"


def _topic(src: DataSource) -> str:
    return (f"KsqlTopic{{kafkaTopicName='{src.topic}', keyFormat={src.key_format.name}, "
            f"valueFormat={src.value_format.name}}}")


def _timestamp(src: DataSource) -> str:
    if src.timestamp_column is None:
        return "Optional.empty"
    return f"Optional[TimestampColumn{{column=`{src.timestamp_column}`}}]"


def _column_text(c: Column) -> str:
    suffix = {Namespace.KEY: " KEY", Namespace.HEADERS: " HEADERS"}.get(c.namespace, "")
    return f"`{c.name}` {c.type}{suffix}"


def _schema_text(schema: LogicalSchema) -> str:
    return ", ".join(_column_text(c) for c in schema.columns)


def _positioned(columns: tuple[Column, ...]) -> list[tuple[int, Column]]:
    """Columns with their index within their namespace (ksqlDB's Column.index)."""
    seen: dict[Namespace, int] = {}
    out = []
    for c in columns:
        i = seen.get(c.namespace, 0)
        seen[c.namespace] = i + 1
        out.append((i, c))
    return out


def _missing(old: tuple[Column, ...], new: tuple[Column, ...]) -> list[Column]:
    have = {(i, c.name, str(c.type), c.namespace) for i, c in _positioned(new)}
    return [c for i, c in _positioned(old) if (i, c.name, str(c.type), c.namespace) not in have]


def _schema_issue(old: LogicalSchema, new: LogicalSchema) -> str | None:
    gone = _missing(old.key, new.key) or ([] if len(old.key) == len(new.key) else
                                           list(new.key[len(old.key):]))
    if gone:
        return ("Key columns must be identical. The following key columns are changed, missing "
                "or reordered: [" + ", ".join(_column_text(c) for c in gone) + "]")
    gone = _missing(old.columns, new.columns)
    if gone:
        return ("The following columns are changed, missing or reordered: ["
                + ", ".join(_column_text(c) for c in gone) + "]")
    return None


# --------------------------------------------------------------------------- queries


def _must_match(step: str, prop: str, a: object, b: object) -> str:
    return (f"Query is not upgradeable. Plan step of type {step} must have matching {prop}. "
            f"Values differ: {_java(a)} vs. {_java(b)}")


def _java(v: object) -> str:
    """A value as Java prints it (lists as ``[a, b]``, absent as ``Optional.empty``)."""
    if isinstance(v, list):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return "Optional.empty" if v is None else str(v)


def _join(rel: ast.Relation) -> ast.Join | None:
    return rel if isinstance(rel, ast.Join) else None


def _table(rel: ast.Relation) -> str:
    return rel.name if isinstance(rel, ast.Table) else ""


def _join_step(join: ast.Join, source_of: dict[str, DataSource]) -> str:
    left = join.left
    while isinstance(left, ast.Join):
        left = left.left
    kinds = [source_of[n].source_type if n in source_of else SourceType.STREAM
             for n in (_table(left), join.right.name)]
    if kinds == [SourceType.STREAM, SourceType.STREAM]:
        return "StreamStreamJoin"
    if kinds[0] is SourceType.STREAM:
        return "StreamTableJoin"
    return "TableTableJoin"


def _exprs(exprs: list[ast.Expression] | None) -> list[str]:
    return [e.to_sql() for e in exprs or []]


def _aggregate_calls(q: ast.Query) -> list[str]:
    from hayase.sql.functions import lookup

    calls: list[str] = []
    roots: list[ast.Expression] = [i.expression for i in q.select
                                   if isinstance(i, ast.SingleColumn)]
    if q.having is not None:
        roots.append(q.having)
    for root in roots:
        for node in root.walk():
            if isinstance(node, ast.FunctionCall):
                udf = lookup(node.name)
                if udf is not None and udf.aggregate and node.to_sql() not in calls:
                    calls.append(node.to_sql())
    return calls


_PLAN_PACKAGE = "io.confluent.ksql.execution.plan."


def _aggregate_step_issue(old: ast.Query, new: ast.Query,
                          source: DataSource | None) -> str | None:
    """The aggregate step itself, which ksqlDB reaches before the GROUP BY step under it.
    TableAggregate (an aggregation of a TABLE) implements no upgrade check at all. The plans'
    passive steps (projections, filters) are skipped alternately in the old and the new plan, so
    a HAVING filter added right above a StreamAggregate is compared with the old aggregate step,
    and their classes differ; a HAVING removed or changed passes."""
    if source is not None and source.source_type is SourceType.TABLE:
        return "Upgrades not yet supported for TableAggregate"
    if old.having is None and new.having is not None:
        step = "StreamWindowedAggregate" if old.window else "StreamAggregate"
        return _must_match(step, "class", f"class {_PLAN_PACKAGE}{step}",
                           f"class {_PLAN_PACKAGE}TableFilter")
    return None


def _aggregate_issue(old: ast.Query, new: ast.Query) -> str | None:
    if _exprs(old.group_by) != _exprs(new.group_by):
        return _must_match("StreamGroupBy", "groupByExpressions", _exprs(old.group_by),
                           _exprs(new.group_by))
    old_w = old.window.to_sql() if old.window else None
    new_w = new.window.to_sql() if new.window else None
    if old_w != new_w:
        step = "StreamWindowedAggregate" if old_w else "StreamAggregate"
        return _must_match(step, "class", old_w, new_w)
    old_calls, new_calls = _aggregate_calls(old), _aggregate_calls(new)
    if old_calls != new_calls:
        step = "StreamWindowedAggregate" if old_w else "StreamAggregate"
        return _must_match(step, "aggregate functions", old_calls, new_calls)
    return None


def _table_functions(q: ast.Query) -> list[str]:
    from hayase.sql.functions import lookup

    out: list[str] = []
    for item in q.select:
        if isinstance(item, ast.SingleColumn):
            for node in item.expression.walk():
                if isinstance(node, ast.FunctionCall):
                    udf = lookup(node.name)
                    if udf is not None and getattr(udf, "table", False):
                        out.append(node.to_sql())
    return out
