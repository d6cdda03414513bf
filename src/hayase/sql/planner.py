"""Planning of one persistent query's SELECT: scope, WHERE, PARTITION BY, projection, the sink's
schema and formats, and the generated code of its steps.

Joins and GROUP BY hand parts of this work to :mod:`hayase.sql.joins` and
:mod:`hayase.sql.aggregation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from hayase.sql import ast
from hayase.sql.compiler import (
    CodeNamespace,
    ExpressionCompiler,
    Scope,
    ScopeColumn,
    Typed,
    build_function,
    guarded,
)
from hayase.sql.errors import StatementError
from hayase.sql.errors import statement_error as _err
from hayase.sql.naming import RESERVED, implicit_name, name_columns, synthetic_name
from hayase.sql.plan import (
    PSEUDO_COLUMNS,
    PSEUDO_TYPES,
    WINDOW_COLUMNS,
    Column,
    DataSource,
    FilterStep,
    FlatMapStep,
    LogicalSchema,
    Namespace,
    ProjectStep,
    QueryPlan,
    SelectKeyStep,
    SinkDescriptor,
    SourceType,
    Step,
)
from hayase.sql.properties import (
    columns_text,
    delimiter,
    identifier_value,
    prop_int,
    prop_str,
    validate_format,
)
from hayase.sql.types import SqlType, StructType

if TYPE_CHECKING:
    from hayase.sql.analyzer import Analyzer


@dataclass
class _SelectColumn:
    name: str
    typed: Typed
    expr: ast.Expression | None  # None for columns produced by * expansion
    key_index: int | None = None  # index into the PARTITION BY key tuple
    deref_name: str | None = None  # implicit name of an unaliased a->b, resolved after the rest



@dataclass
class _PlanParts:
    result_type: str


class QueryPlanner:
    """Plans one SELECT: scope, WHERE, PARTITION BY, projection, sink schema, generated code."""

    def __init__(self, analyzer: Analyzer, query: ast.Query, sink_name: str) -> None:
        self.analyzer = analyzer
        self.query = query
        self.sink_name = sink_name
        self.ns = CodeNamespace()
        self.source_names: list[str] = []
        self.agg: Any = None
        self.join: Any = None
        self.partition: list[tuple[ast.Expression, Typed, str]] | None = None
        self.table_functions: list[tuple[ast.FunctionCall, list[Typed], Any, SqlType]] = []

    # ------------------------------------------------------------------ analysis
    def plan(self) -> _PlanParts:
        q = self.query
        if isinstance(q.from_, ast.Join):
            return self._plan_join()
        assert isinstance(q.from_, ast.Table)
        ms = self.analyzer.metastore
        src = ms.get(q.from_.name)
        if src is None:
            raise _err(f"{q.from_.name} does not exist.", q.from_)
        self.source = src
        self.source_names = [src.name]
        self._check_group_by_clauses()
        if q.emit == "FINAL" and q.group_by is None:
            raise _err("EMIT FINAL is only supported for windowed aggregations.", q)
        if q.partition_by is not None and src.window is not None:
            raise _err("Implicit repartitioning of windowed sources is not supported. See "
                       "https://github.com/confluentinc/ksql/issues/4385.", q)
        if q.partition_by is not None and src.source_type is SourceType.TABLE:
            raise _err("Unsupported operation: PARTITION BY on a table. Use GROUP BY instead.", q)
        qualifiers = (src.name,) + ((q.from_.alias,) if q.from_.alias else ())
        cols = [ScopeColumn(c.name, c.type, i, qualifiers) for i, c in enumerate(src.schema.columns)]
        base = len(src.schema.columns)
        extra = list(PSEUDO_COLUMNS) + (list(WINDOW_COLUMNS) if src.window else [])
        for j, name in enumerate(extra):
            cols.append(ScopeColumn(name, PSEUDO_TYPES[name], base + j, qualifiers))
        self.rowtime_index = base
        self.scope = Scope(cols, qualifiers)
        self.types = ms.types
        self._plan_where()
        if q.group_by is not None:
            return self._plan_aggregation()
        self._plan_partition_by()
        self._plan_select()
        return _PlanParts(src.source_type.value)

    def _plan_join(self) -> _PlanParts:
        from hayase.sql.joins import JoinPlanner

        self._check_group_by_clauses()
        self.types = self.analyzer.metastore.types
        self.join = JoinPlanner(self)
        result = self.join.analyze()
        self.source = self.join.sides[0].source
        self.source_names = [s.source.name for s in self.join.sides]
        self.scope = self.join.scope
        self.rowtime_index = self.join.total_width + 1  # JOINTIME
        self._where_render = lambda e: self.join.qualified(e, "_")
        self._plan_where()
        if self.query.group_by is not None:
            # GROUP BY over the joined rows: the join chain, then the aggregation.
            return self._plan_aggregation()
        return _PlanParts(result)

    def _check_group_by_clauses(self) -> None:
        q = self.query
        if q.window is not None and q.group_by is None:
            raise _err("WINDOW clause requires a GROUP BY clause.", q.window)
        if q.having is not None and q.group_by is None:
            raise _err("HAVING clause requires a GROUP BY clause.", q.having)

    def _plan_aggregation(self) -> _PlanParts:
        """GROUP BY: the aggregation planner plans the projection; the result is a table."""
        from hayase.sql.aggregation import AggregatePlanner

        self.agg = AggregatePlanner(self)
        self.agg.analyze()
        self.partition = None
        self.table_functions = []
        return _PlanParts("TABLE")

    def _compiler(self, clause: str) -> ExpressionCompiler:
        self.scope.clause = clause
        return ExpressionCompiler(self.scope, self.ns, self.types)

    def _plan_where(self) -> None:
        self.where: Typed | None = None
        if self.query.where is not None:
            comp = self._compiler("WHERE")
            render = getattr(self, "_where_render", None)
            if render is not None:
                comp.render = render
            self._window_bounds_in_where()
            try:
                self.where = comp.compile_predicate(self.query.where, "WHERE")
                self.where_conjuncts = [comp.compile(c) for c in _conjuncts(self.query.where)]
            except StatementError as e:
                if "cannot be resolved" in e.message or "is not a valid stream" in e.message:
                    raise
                prefix = ("Error in WHERE expression: " if e.message.startswith("Cannot compare")
                          else "Invalid Predicate: ")
                raise StatementError(prefix + e.message, e.line, e.column) from None

    def _window_bounds_in_where(self) -> None:
        """ksqlDB's analyzer accepts WINDOWSTART/WINDOWEND in any query with a WINDOW clause;
        the WHERE clause runs before the aggregation, whose type check then does not know them
        (other unknown columns are reported first, by the analyzer)."""
        where = self.query.where
        if self.query.window is None or where is None:
            return
        bounds: list[ast.ColumnRef] = []
        params = {p for n in where.walk() if isinstance(n, ast.Lambda) for p in n.params}
        for node in where.walk():
            if isinstance(node, ast.ColumnRef) and node.name not in params:
                if node.name in WINDOW_COLUMNS:
                    bounds.append(node)
                else:
                    self.scope.resolve(node)
        for node in bounds:
            if not any(c.name == node.name for c in self.scope.columns):
                raise StatementError(f"Error in WHERE expression: Unknown column {node.name}.",
                                     node.line, node.column)

    def _plan_partition_by(self) -> None:
        self.partition = None
        exprs = self.query.partition_by
        if exprs is None:
            return
        comp = self._compiler("PARTITION BY")
        out: list[tuple[ast.Expression, Typed, str]] = []
        if len(exprs) == 1 and isinstance(exprs[0], ast.Literal) and exprs[0].value is None:
            self.partition = []
            return
        if any(isinstance(e, ast.Literal) and e.value is None for e in exprs):
            raise _err("Cannot PARTITION BY multiple columns including NULL", exprs[0])
        taken = {c.name for c in self.source.schema.columns}
        for e in exprs:
            typed = comp.compile(e)
            name = implicit_name(e)
            if name is None:
                name = synthetic_name(taken)
            taken.add(name)
            out.append((e, typed, name))
        self.partition = out

    def _plan_table_functions(self, comp: ExpressionCompiler) -> None:
        """Find EXPLODE-like calls in the projection; each becomes a column after the row."""
        from hayase.sql.functions import FunctionArgError, lookup

        self.table_functions = []
        width = self.source.row_width
        for item in self.query.select:
            if not isinstance(item, ast.SingleColumn):
                continue
            for node in item.expression.walk():
                if not isinstance(node, ast.FunctionCall):
                    continue
                udf = lookup(node.name)
                if udf is None or not udf.table:
                    continue
                if self.source.source_type is SourceType.TABLE:
                    raise _err("Table source is not supported with table functions", node)
                args = [comp.compile(a) for a in node.args]
                try:
                    bound = udf.bind([a.type for a in args], [None] * len(args))
                except FunctionArgError as err:
                    raise _err(str(err), node) from None
                comp.table_slots[id(node)] = (width + len(self.table_functions),
                                              bound.return_type)
                self.table_functions.append((node, args, bound.impl, bound.return_type))

    def _plan_select(self) -> None:
        comp = self._compiler("SELECT")
        self._plan_table_functions(comp)
        src = self.source
        items: list[_SelectColumn] = []
        pending: list[tuple[ast.SingleColumn, Typed]] = []
        for item in self.query.select:
            if isinstance(item, ast.AllColumns):
                if item.source is not None and item.source not in self.scope.sources:
                    raise _err(f"'{item.source}' is not a valid stream/table name or alias.", item)
                items.extend(self._star())
                continue
            assert isinstance(item, ast.SingleColumn)
            if isinstance(item.expression, ast.DereferenceAll):
                base = comp.compile(item.expression.base)
                if not isinstance(base.type, StructType):
                    raise _err("Can't dereference non-struct type with ->*", item)
                for fname, ftype in base.type.fields:
                    code = f"(None if ({(t := self.ns.temp())} := {base.code}) is None else {t}.get({fname!r}))"
                    items.append(_SelectColumn(fname, Typed(code, ftype), None))
                continue
            typed = comp.compile(item.expression)
            if item.alias is not None and item.alias in RESERVED:
                raise _err(f"`{item.alias}` is a reserved column name. You cannot use it as an "
                           "alias for a column.", item)
            name = item.alias or implicit_name(item.expression)
            if name is None:
                pending.append((item, typed))
                items.append(_SelectColumn("", typed, item.expression))
                continue
            if item.alias is None and isinstance(item.expression, ast.Dereference):
                # Struct field names yield to real columns: clashing ones get _1, _2, ...
                items.append(_SelectColumn("", typed, item.expression))
                items[-1].deref_name = name
                continue
            if item.alias is None and name in RESERVED:
                raise _err(f"Reserved column name in select: `{name}`. Please remove or alias the "
                           "column.", item)
            items.append(_SelectColumn(name, typed, item.expression))
        name_columns(items, {c.name for c in src.schema.columns})
        self.items = items

    def _star(self) -> list[_SelectColumn]:
        src = self.source
        cols = src.schema.columns
        if self.partition is None:
            ordered = list(cols)
            return [_SelectColumn(c.name, Typed(f"row[{src.schema.index(c.name)}]", c.type),
                                  ast.ColumnRef(c.name)) for c in ordered]
        # After PARTITION BY: new key columns, source value columns, then the old key columns.
        out: list[_SelectColumn] = []
        key_names = set()
        for i, (e, typed, name) in enumerate(self.partition):
            out.append(_SelectColumn(name, typed, e, key_index=i))
            key_names.add(name)
        rest = [c for c in cols if c.namespace is not Namespace.KEY] + \
            [c for c in cols if c.namespace is Namespace.KEY]
        for c in rest:
            if c.name in key_names:
                continue
            out.append(_SelectColumn(c.name, Typed(f"row[{src.schema.index(c.name)}]", c.type),
                                     ast.ColumnRef(c.name)))
        return out

    # ------------------------------------------------------------------ sink schema
    def sink_source(self, name: str, kind: str, props: dict[str, ast.Literal], node: ast.Node,
                    existing: DataSource | None = None) -> DataSource:
        src = self.source
        if self.join is not None and self.agg is None:
            key_idx, value_idx = self.join.sink_columns(name, node)
            schema = self.join.schema(key_idx, value_idx)
            self.join_columns = (key_idx, value_idx)
            return self._sink_formats(name, kind, props, node, existing, schema, list(schema.key),
                                      list(schema.value), self.join.window)
        if self.agg is not None:
            key_idx, value_idx = self.agg.sink_columns(name, node)
            schema = self.agg.schema(key_idx, value_idx)
            self.agg_columns = (key_idx, value_idx)
            key_cols = list(schema.key)
            value_cols = list(schema.value)
            return self._sink_formats(name, kind, props, node, existing, schema, key_cols,
                                      value_cols, self.agg.window_info())
        items = self.items
        ts_raw = prop_str(props, "TIMESTAMP")
        if ts_raw is not None and existing is None and \
                identifier_value(ts_raw) not in {it.name for it in items}:
            raise _err("The TIMESTAMP column set in the WITH clause does not exist in the schema: "
                       f"'{identifier_value(ts_raw)}'", node)
        key_cols = []
        key_sources: list[int] = []  # index into items for each key column
        if self.partition is None:
            # The source's key columns must appear in the projection.
            missing = []
            for kc in src.schema.key:
                hits = [i for i, it in enumerate(items) if _refers_to(it, kc.name, self.scope)]
                if not hits:
                    missing.append(kc.name)
                    continue
                if len(hits) > 1:
                    raise _err(duplicate_key_message(kc.name, [items[i].name for i in hits]), node)
                key_sources.append(hits[0])
            new_planner = self.analyzer.properties.get(
                "ksql.new.query.planner.enabled", "false").lower() == "true"
            # hayase's server plans transient SELECTs as C*AS with this internal property: a
            # push/pull query's projection need not contain the key columns.
            transient = self.analyzer.properties.get("__hayase.transient") == "true"
            if transient or (new_planner and src.source_type is SourceType.STREAM):
                # The new planner drops unselected stream keys and orders keys as projected.
                if missing:
                    key_sources = []
                key_sources = sorted(key_sources)
            elif missing:
                every = [kc.name for kc in src.schema.key]
                raise _err(missing_key_message(name, every, "key column"), node)
        else:
            missing = []
            for i, (e, _typed, _) in enumerate(self.partition):
                hits = [j for j, it in enumerate(items) if it.key_index == i
                        or (it.expr is not None and _same_expression(it.expr, e, self.scope))]
                if not hits:
                    missing.append(_qualified(e, src.name))
                    continue
                if len(hits) > 1:
                    raise _err(duplicate_key_message(items[hits[0]].name,
                                                     [items[h].name for h in hits]), node)
                key_sources.append(hits[0])
                items[hits[0]].key_index = i
            if missing:
                raise _err(missing_key_message(name, missing, "partitioning expression"), node)
        for j in key_sources:
            it = items[j]
            key_cols.append(Column(it.name, it.typed.type, Namespace.KEY))
        key_set = set(key_sources)
        value_cols = [Column(it.name, it.typed.type, Namespace.VALUE)
                      for j, it in enumerate(items) if j not in key_set]
        _no_duplicate_names([(it.name, it.typed.type) for it in items], node)
        for c in key_cols + value_cols:
            if c.type.base == "NULL":
                raise _err(f"Can't infer a type of null. Please explicitly cast it to a required "
                           f"type, e.g. CAST(null AS VARCHAR). Column: {c.name}", node)
        self.key_sources = key_sources
        self.value_sources = [j for j in range(len(items)) if j not in key_set]
        schema = LogicalSchema(tuple(key_cols + value_cols))
        return self._sink_formats(name, kind, props, node, existing, schema, key_cols, value_cols,
                                  src.window)

    def _sink_formats(self, name: str, kind: str, props: dict[str, ast.Literal], node: ast.Node,
                      existing: DataSource | None, schema: LogicalSchema, key_cols: list[Column],
                      value_cols: list[Column], window: Any) -> DataSource:
        src = self.source
        if existing is not None:
            self.sink_schema = existing.schema
            self.sink_timestamp = (existing.timestamp_column, existing.timestamp_format)
            return DataSource(name, existing.source_type, schema, existing.topic,
                              existing.key_format, existing.value_format)
        # Formats: the WITH clause wins, otherwise inherit from the source.
        an = self.analyzer
        an._check_properties(props, node)
        key_fmt, value_fmt = an._formats(props, node, None, None)
        if key_fmt is None:
            if not key_cols:
                key_fmt = "NONE"
            elif src.key_format.name == "NONE":
                key_fmt = an._default_key_format()
            else:
                key_fmt = src.key_format.name
        elif not key_cols:
            key_fmt = "NONE" if key_fmt != "NONE" and not key_cols else key_fmt
        if value_fmt is None:
            value_fmt = src.value_format.name
        key_delim = delimiter(props, "KEY_DELIMITER")
        if key_delim is None and key_fmt == src.key_format.name:
            key_delim = src.key_format.prop("delimiter")
        value_delim = delimiter(props, "VALUE_DELIMITER")
        if value_delim is None and value_fmt == src.value_format.name:
            value_delim = src.value_format.prop("delimiter")
        key_format = an._format_info(key_fmt, key_delim, an._key_features(key_fmt, len(key_cols)))
        value_format = an._format_info(value_fmt, value_delim,
                                       an._value_features(props, value_fmt, len(value_cols)))
        try:
            validate_format(key_format, tuple(key_cols), True)
        except StatementError as e:
            if e.message.startswith("Map keys") or key_fmt == "DELIMITED":
                raise
            cols = columns_text(key_cols)  # key columns: each shows KEY
            feats = ", ".join(sorted(key_format.features))
            raise _err(f"Key format does not support schema.\nformat: {key_fmt}\nschema: "
                       f"Persistence{{columns=[{cols}], features=[{feats}]}}\nreason: {e.message}",
                       node) from None
        validate_format(value_format, tuple(value_cols), False)
        topic = prop_str(props, "KAFKA_TOPIC")
        if topic is None:
            topic = an.properties.get("ksql.output.topic.name.prefix", "") + name
        partitions = prop_int(props, "PARTITIONS")
        replicas = prop_int(props, "REPLICAS")
        ts_col, ts_fmt = an._timestamp(props, schema, node)
        self.sink_schema = schema
        self.sink_timestamp = (ts_col, ts_fmt)
        # A windowed source keeps its windowed key in the sink (no PARTITION BY is allowed).
        return DataSource(name=name, source_type=SourceType(kind), schema=schema, topic=topic,
                          key_format=key_format, value_format=value_format,
                          timestamp_column=ts_col, timestamp_format=ts_fmt,
                          partitions=partitions, replicas=replicas, window=window)

    # ------------------------------------------------------------------ code
    def build(self, query_id: str, sink: DataSource, sql: str) -> QueryPlan:
        steps: list[Step] = []
        ns = self.ns
        if self.join is not None:
            steps.extend(self.join.steps())
        if self.join is not None and self.agg is None:
            key_idx, value_idx = self.join_columns
            self.items = self.join.items  # type: ignore[assignment]
            self.key_sources, self.value_sources = key_idx, value_idx
            self.partition = self.join.partition
        if self.where is not None:
            fn = build_function("_where", "row", [
                "try:",
                f"    return {self._where_test()}",
                "except Exception as _e:",
                _WHERE_ERROR,
                "    return False"], ns)
            steps.append(FilterStep(fn, self.query.where.to_sql() if self.query.where else ""))
        if self.agg is not None:
            key_idx, value_idx = self.agg_columns
            steps.append(self.agg.build(sink.schema if sink.name == self.sink_name
                                        else self.sink_schema, key_idx, value_idx))
            return self._query_plan(query_id, sink, steps, sql)
        if self.table_functions:
            lines_tf: list[str] = []
            names_tf = []
            for j, (node, args, impl, _) in enumerate(self.table_functions):
                fn_name = ns.const(impl, "tf")
                call = f"{fn_name}({', '.join(a.code for a in args)})"
                lines_tf += guarded(call, f"_l{j}", node.to_sql())
                lines_tf.append(f"_l{j} = _l{j} or []")
                names_tf.append(f"_l{j}")
            lines_tf.append(f"_n = max({', '.join('len(' + n + ')' for n in names_tf)}, 0)")
            cells = ", ".join(f"({n}[_i] if _i < len({n}) else None)" for n in names_tf)
            lines_tf.append(f"return [row + ({cells},) for _i in range(_n)]")
            steps.append(FlatMapStep(build_function("_flat_map", "row", lines_tf, ns),
                                     ", ".join(n.to_sql() for n, _, _, _ in self.table_functions)))
        key_lines: list[str] = ["key = None"]
        if self.partition is not None:
            lines: list[str] = []
            names = []
            for i, (e, typed, _) in enumerate(self.partition):
                lines += guarded(typed.code, f"_k{i}", e.to_sql())
                names.append(f"_k{i}")
            tup = "(" + "".join(n + ", " for n in names) + ")"
            key_lines = lines + [f"key = {tup}"]
            key_fn = build_function("_partition_by", "row", lines + [f"return {tup}"], ns)
            key_columns = tuple(Column(n, t.type, Namespace.KEY) for _, t, n in self.partition)
            steps.append(SelectKeyStep(key_fn, key_columns,
                                       ", ".join(e.to_sql() for e, _, _ in self.partition)))
        lines = []
        outs: list[str] = []
        order = self.key_sources + self.value_sources
        for pos, j in enumerate(order):
            it = self.items[j]
            var = f"_c{pos}"
            if it.key_index is not None and self.partition is not None:
                lines.append(f"{var} = key[{it.key_index}] if key is not None else None")
            else:
                label = it.expr.to_sql() if it.expr is not None else it.name
                lines += guarded(it.typed.code, var, label)
            outs.append(var)
        ts_col, ts_fmt = self.sink_timestamp
        if ts_col is not None:
            idx = [c.name for c in self.sink_schema.columns].index(ts_col)
            ts_type = self.sink_schema.columns[idx].type
            if ts_type.base == "STRING":
                fmt_fn = ns.const(_timestamp_parser(ts_fmt or ""), "tsp")
                lines += guarded(f"None if _c{idx} is None else {fmt_fn}(_c{idx})", "_ts",
                                 "TIMESTAMP")
            else:
                lines.append(f"_ts = _c{idx}")
        else:
            lines.append(f"_ts = row[{self.rowtime_index}]")
        out_tuple = "(" + "".join(o + ", " for o in outs) + "_ts,)"
        project = build_function("_project", "row, key", lines + [f"return {out_tuple}"], ns)
        steps.append(ProjectStep(project, self.sink_schema,
                                 ", ".join(s.to_sql() for s in self.query.select)))
        fused = None
        if not self.table_functions:
            # The whole stateless pipeline as one function: row -> (key, out) or None.
            where_lines: list[str] = []
            if self.where is not None:
                where_lines = ["try:", f"    _ok = {self._where_test()}", "except Exception as _e:",
                               _WHERE_ERROR, "    return None", "if not _ok:", "    return None"]
            fused = build_function("_fused", "row", where_lines + key_lines + lines
                                   + [f"return key, {out_tuple}"], ns)
        plan = self._query_plan(query_id, sink, steps, sql)
        plan.fused = fused if self.join is None else None
        return plan

    def _where_test(self) -> str:
        """WHERE as one condition: each top-level conjunct must be True (the 3-valued AND)."""
        return " and ".join(f"({c.code}) is True" for c in self.where_conjuncts)

    def _query_plan(self, query_id: str, sink: DataSource, steps: list[Step],
                    sql: str) -> QueryPlan:
        sources = [s.source for s in self.join.sides] if self.join is not None else [self.source]
        plan = QueryPlan(query_id, sources, steps,
                         SinkDescriptor(sink, sink.partitions or self.source.partitions,
                                        sink.replicas), sql, self.ns.values)
        plan.source_timestamp = self._source_timestamp()
        return plan

    def _source_timestamp(self) -> Any:
        src = self.source
        if src.timestamp_column is None:
            return None
        idx = src.schema.index(src.timestamp_column)
        t = src.schema.columns[idx].type
        if t.base == "STRING":
            parser = _timestamp_parser(src.timestamp_format or "")

            def extract(row: tuple[Any, ...]) -> int | None:
                v = row[idx]
                return None if v is None else parser(v)
            return extract

        def extract_int(row: tuple[Any, ...]) -> int | None:
            v = row[idx]
            return None if v is None else int(v)
        return extract_int


_WHERE_ERROR = "    on_error(_KsqlRuntimeError('Error computing WHERE: ' + str(_e)))"


def _timestamp_parser(fmt: str) -> Any:
    from hayase.sql.functions.datetime_fns import make_timestamp_parser

    return make_timestamp_parser(fmt)


def _qualified(e: ast.Expression, source: str) -> str:
    """ksqlDB prints column references qualified with their source in these messages."""
    if isinstance(e, ast.ColumnRef):
        return f"{ast.ident(e.source or source)}.{ast.ident(e.name)}"
    return e.to_sql()


def _conjuncts(e: ast.Expression) -> list[ast.Expression]:
    if isinstance(e, ast.BinaryOp) and e.op == "AND":
        return _conjuncts(e.left) + _conjuncts(e.right)
    return [e]


def _refers_to(it: _SelectColumn, name: str, scope: Scope) -> bool:
    e = it.expr
    if not isinstance(e, ast.ColumnRef) or e.name != name:
        return False
    try:
        col = scope.resolve(e)
    except StatementError:
        return False
    return col.name == name


def _same_expression(a: ast.Expression, b: ast.Expression, scope: Scope) -> bool:
    if isinstance(a, ast.ColumnRef) and isinstance(b, ast.ColumnRef):
        try:
            return scope.resolve(a).index == scope.resolve(b).index
        except StatementError:
            return False
    return _normal_sql(a, scope) == _normal_sql(b, scope)


def _normal_sql(e: ast.Expression, scope: Scope) -> str:
    text = e.to_sql()
    for q in scope.sources:
        text = text.replace(f"{q}.", "")
    return text


def missing_key_message(sink: str, missing: list[str], what: str) -> str:
    """ksqlDB's error when the projection lacks key columns; ``what`` is a singular noun."""
    names = missing[0] if len(missing) == 1 else ", ".join(missing[:-1]) + " and " + missing[-1]
    what = what if len(missing) == 1 else what + "s"
    return key_missing_text(sink, what, names, ", ".join(missing))


def key_missing_text(sink: str, what: str, names: str, example: str) -> str:
    """ksqlDB's "Key missing from projection" error, naming what the projection must include."""
    return ("Key missing from projection (ie, SELECT). See https://cnfl.io/2LV7ouS.\n"
            f"The query used to build `{sink}` must include the {what} {names} in its projection "
            f"(eg, SELECT {example}...).")


class _ProjectedColumn(Protocol):
    name: str
    typed: Typed


def _no_duplicate_names(columns: Sequence[tuple[str, SqlType]], node: ast.Node | None = None
                        ) -> None:
    """ksqlDB builds the projection's schema with every selected expression as a value column
    (LogicalSchema.Builder): a repeated name is refused there, named with its second type."""
    seen: set[str] = set()
    for name, type_ in columns:
        if name in seen:
            raise _err(f"Duplicate value columns found in schema: `{name}` {type_}", node)
        seen.add(name)


def projection_schema(items: Sequence[_ProjectedColumn], key_idx: list[int], value_idx: list[int],
                      refuse_null: bool) -> LogicalSchema:
    """The sink schema of a GROUP BY or join projection: the items at ``key_idx`` as key
    columns, those at ``value_idx`` as value columns; names must not clash."""
    cols = [Column(items[i].name, items[i].typed.type, Namespace.KEY) for i in key_idx]
    cols += [Column(items[i].name, items[i].typed.type, Namespace.VALUE) for i in value_idx]
    _no_duplicate_names([(items[i].name, items[i].typed.type)
                         for i in sorted(key_idx + value_idx)])
    for c in cols:
        if refuse_null and c.type.base == "NULL":
            raise _err("Can't infer a type of null. Please explicitly cast it to a required "
                       f"type, e.g. CAST(null AS VARCHAR). Column: {c.name}")
    return LogicalSchema(tuple(cols))


def duplicate_key_message(column: str, aliases: list[str]) -> str:
    return (f"The projection contains a key column (`{column}`) more than once, aliased as: "
            f"{' and '.join(aliases)}.")
