"""Planning of GROUP BY queries: group keys, aggregate calls, HAVING, WINDOW, output schema.

The aggregated row ("agg row") the HAVING clause and the final projection read is laid out as
``(*group key values, *aggregate results, WINDOWSTART, WINDOWEND)``; select expressions that
match a GROUP BY expression read the key slot, aggregate calls read their result slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hayase.sql import ast
from hayase.sql.compiler import (
    ExpressionCompiler,
    Scope,
    ScopeColumn,
    Typed,
    build_function,
    guarded,
)
from hayase.sql.errors import StatementError
from hayase.sql.errors import statement_error as _err
from hayase.sql.functions import FunctionArgError, lookup
from hayase.sql.naming import RESERVED, implicit_name, name_columns
from hayase.sql.plan import (
    PSEUDO_TYPES,
    AggregateStep,
    LogicalSchema,
    Namespace,
    SourceType,
    WindowInfo,
    WindowSpec,
)
from hayase.sql.planner import duplicate_key_message, missing_key_message, projection_schema
from hayase.sql.types import SqlType

if TYPE_CHECKING:
    from hayase.sql.planner import QueryPlanner


# Aggregates whose intermediate state is an ARRAY, MAP or STRUCT.
_COMPLEX_INTERMEDIATE = {"AVG", "STDDEV_SAMP", "STDDEV_SAMPLE", "CORRELATION", "TOPK",
                         "TOPKDISTINCT", "COLLECT_LIST", "COLLECT_SET", "HISTOGRAM",
                         "EARLIEST_BY_OFFSET", "LATEST_BY_OFFSET", "COUNT_DISTINCT", "ATTR"}


@dataclass
class _AggCall:
    node: ast.FunctionCall
    sql: str
    bound: Any  # BoundAggregate
    args: list[Typed]


@dataclass
class _OutColumn:
    name: str
    typed: Typed
    expr: ast.Expression
    key_index: int | None = None
    deref_name: str | None = None


class AggregatePlanner:
    """Builds an AggregateStep for a planner whose query has GROUP BY."""

    def __init__(self, planner: QueryPlanner) -> None:
        self.p = planner
        self.q = planner.query
        self.source = planner.source
        self.ns = planner.ns

    # ------------------------------------------------------------------ analysis
    def analyze(self) -> None:
        q, src = self.q, self.source
        assert q.group_by is not None
        if q.partition_by is not None:
            raise _err("PARTITION BY and GROUP BY cannot be used in the same query.", q)
        if src.value_format.name == "KAFKA":
            raise _err(f"Source(s) {src.name} are using the 'KAFKA' value format. This format does "
                       "not yet support GROUP BY.", q)
        if not q.group_by:
            raise _err("GROUP BY requires at least one expression.", q)
        if q.emit == "FINAL" and q.window is None:
            raise _err("EMIT FINAL is only supported for windowed aggregations.", q)
        comp = self.p._compiler("GROUP BY")
        self.groups: list[tuple[ast.Expression, Typed, str]] = []
        seen: set[str] = set()
        for e in q.group_by:
            if self.normal(e) in seen:
                from hayase.sql.planner import _qualified

                raise _err(f"Duplicate GROUP BY expression: {_qualified(e, src.name)}", e)
            seen.add(self.normal(e))
            for node in e.walk():
                if isinstance(node, ast.FunctionCall):
                    udf = lookup(node.name)
                    if udf is not None and udf.aggregate:
                        raise _err(f"GROUP BY does not support aggregate functions: {node.name} is "
                                   "an aggregate function.", node)
            self.groups.append((e, comp.compile(e), self.normal(e)))
        self.window = self._window()
        self._aggregate_calls()
        self._projection()

    def normal(self, e: ast.Expression) -> str:
        text = e.to_sql()
        for qual in self.p.scope.sources:
            text = text.replace(f"{ast.ident(qual)}.", "")
        return text

    def _window(self) -> WindowSpec | None:
        w = self.q.window
        if w is None:
            return None
        if self.source.window is not None:
            raise _err("Can not aggregate windowed sources with a WINDOW clause.", w)
        return WindowSpec(w.window_type, w.size.millis, w.advance.millis if w.advance else None,
                          w.grace.millis if w.grace else None,
                          w.retention.millis if w.retention else None)

    def _aggregate_calls(self) -> None:
        comp = self.p._compiler("SELECT")
        self.calls: list[_AggCall] = []
        exprs: list[ast.Expression] = [i.expression for i in self.q.select
                                       if isinstance(i, ast.SingleColumn)]
        if self.q.having is not None:
            exprs.append(self.q.having)
        for e in exprs:
            self._collect(e, comp, inside=None)
        if self.source.value_format.name == "DELIMITED" and any(
                c.node.name in _COMPLEX_INTERMEDIATE for c in self.calls):
            # The aggregate state is kept in the source's value format, which cannot hold it.
            raise _err("One of the functions used in the statement has an intermediate type that "
                       "the value format can not handle. Please remove the function or change the "
                       "format.", self.q)
        if self.source.source_type is SourceType.TABLE:
            bad = [c.node.name for c in self.calls if c.bound.undo is None]
            if bad:
                raise _err(f"The aggregation functions {', '.join(dict.fromkeys(bad))} cannot be "
                           "applied to a table source, only to a stream source.", self.q)

    def _collect(self, e: ast.Expression, comp: ExpressionCompiler,
                 inside: ast.FunctionCall | None) -> None:
        if isinstance(e, ast.FunctionCall):
            udf = lookup(e.name)
            if udf is not None and udf.aggregate:
                if inside is not None:
                    raise _err(f"Aggregate functions can not be nested: {inside.name}({e.to_sql()})",
                               e)
                for a in e.args:
                    self._collect(a, comp, e)
                self._bind(e, udf, comp)
                return
        for child in e.children():
            if isinstance(child, ast.Expression):
                self._collect(child, comp, inside)

    def _bind(self, e: ast.FunctionCall, udf: Any, comp: ExpressionCompiler) -> None:
        sql = self.normal(e)
        for c in self.calls:
            if c.sql == sql:
                comp.table_slots[id(e)] = comp.table_slots[id(c.node)]
                self.slot_of[id(e)] = self.slot_of[id(c.node)]
                return
        call_args = [] if e.star else list(e.args)
        literal_params = {i if i >= 0 else len(call_args) + i
                          for i in getattr(udf, "literal_params", ())}
        # Only trailing literal parameters are optional: a non-literal there is an error only
        # when it is in a literal-only position.
        args: list[Typed] = []
        literals: list[Any] = []
        # COUNT(1) counts rows like COUNT(*).
        if e.name == "COUNT" and len(call_args) == 1 and isinstance(call_args[0], ast.Literal) \
                and call_args[0].value is not None:
            call_args = []
        for i, a in enumerate(call_args):
            if i in literal_params:
                if not isinstance(a, ast.Literal):
                    raise _err(f"Parameter {i + 1} passed to function {e.name} must be a literal "
                               f"constant, but was expression: '{a.to_sql()}'", a)
                literals.append(a.value)
            else:
                args.append(comp.compile(a))
        from hayase.sql.functions import aggregates

        aggregates.CONFIG = dict(self.p.analyzer.properties)
        try:
            bound = udf.bind_aggregate([a.type for a in args], literals)
        except FunctionArgError as err:
            raise _err(str(err), e) from None
        index = len(self.groups) + len(self.calls)
        comp.table_slots[id(e)] = (index, bound.return_type)
        self.slot_of[id(e)] = index
        self.calls.append(_AggCall(e, sql, bound, args))

    @property
    def slot_of(self) -> dict[int, int]:
        if not hasattr(self, "_slot_of"):
            self._slot_of: dict[int, int] = {}
        return self._slot_of

    def _agg_compiler(self, clause: str) -> ExpressionCompiler:
        """A compiler over the agg row: group expressions, aggregate results, window bounds."""
        cols: list[ScopeColumn] = []
        base = len(self.groups) + len(self.calls)
        # ksqlDB does not resolve WINDOWSTART / WINDOWEND in the projection of a windowed
        # aggregation over a JOIN ("SELECT column 'WINDOWSTART' cannot be resolved.").
        windowed = self.window is not None and getattr(self.p, "join", None) is None
        if windowed or self.source.window is not None:
            quals = self.p.scope.sources
            cols.append(ScopeColumn("WINDOWSTART", PSEUDO_TYPES["WINDOWSTART"], base, quals))
            cols.append(ScopeColumn("WINDOWEND", PSEUDO_TYPES["WINDOWEND"], base + 1, quals))
        scope = Scope(cols, self.p.scope.sources, clause)
        comp = ExpressionCompiler(scope, self.ns, self.p.types)
        comp.expr_slots = {g_sql: (i, g_t.type) for i, (_, g_t, g_sql) in enumerate(self.groups)}
        comp.normalize = self.normal
        for c in self.calls:
            comp.table_slots[id(c.node)] = (self.slot_of[id(c.node)], c.bound.return_type)
        for node_id, index in self.slot_of.items():
            comp.table_slots[node_id] = (index, self._type_at(index))
        return comp

    def _type_at(self, index: int) -> SqlType:
        return self.calls[index - len(self.groups)].bound.return_type

    def _projection(self) -> None:
        comp = self._agg_compiler("SELECT")
        items: list[_OutColumn] = []
        offenders: list[str] = []
        for item in self.q.select:
            if isinstance(item, ast.AllColumns):
                raise _err("SELECT * is not supported with GROUP BY.", item)
            assert isinstance(item, ast.SingleColumn)
            try:
                typed = comp.compile(item.expression)
            except StatementError as e:
                if "cannot be resolved" in e.message:
                    offenders.append(self.normal(item.expression))
                    continue
                raise
            name = item.alias
            out = _OutColumn(name or "", typed, item.expression)
            if name is None:
                implicit = implicit_name(item.expression)
                if isinstance(item.expression, ast.Dereference):
                    out.deref_name = implicit
                elif implicit is not None:
                    if implicit in RESERVED and implicit not in ("WINDOWSTART", "WINDOWEND"):
                        raise _err(f"Reserved column name in select: `{implicit}`. Please remove "
                                   "or alias the column.", item)
                    out.name = implicit
            items.append(out)
        if offenders:
            raise _err("Non-aggregate SELECT expression(s) not part of GROUP BY: "
                       + ", ".join(offenders)
                       + "\nEither add the column(s) to the GROUP BY or remove them from the "
                       "SELECT.", self.q)
        name_columns(items, {c.name for c in self.source.schema.columns})
        self.items = items
        self.having: Typed | None = None
        if self.q.having is not None:
            hc = self._agg_compiler("HAVING")
            hc.coerce_string_literals = False
            try:
                self.having = hc.compile_predicate(self.q.having, "HAVING")
            except StatementError as e:
                if "cannot be resolved" in e.message:
                    raise _err("Non-aggregate HAVING expression not part of GROUP BY: "
                               + self.normal(self.q.having), self.q.having) from None
                raise StatementError("Error in HAVING expression: " + e.message, e.line,
                                     e.column) from None

    # ------------------------------------------------------------------ schema
    def sink_columns(self, sink_name: str, node: ast.Node) -> tuple[list[int], list[int]]:
        """Indices (into items) of the key columns in GROUP BY order and of the value columns."""
        key_idx: list[int] = []
        missing: list[str] = []
        for g, (g_expr, _, g_sql) in enumerate(self.groups):
            hits = [i for i, it in enumerate(self.items) if self.normal(it.expr) == g_sql]
            if not hits:
                missing.append(g_expr.to_sql())
                continue
            if len(hits) > 1:
                raise _err(duplicate_key_message(self.items[hits[0]].name,
                                                 [self.items[h].name for h in hits]), node)
            key_idx.append(hits[0])
            self.items[hits[0]].key_index = g
        if missing:
            raise _err(missing_key_message(sink_name, missing, "grouping expression"), node)
        value_idx = [i for i in range(len(self.items)) if i not in key_idx]
        return key_idx, value_idx

    def schema(self, key_idx: list[int], value_idx: list[int]) -> LogicalSchema:
        return projection_schema(self.items, key_idx, value_idx, refuse_null=True)

    def window_info(self) -> WindowInfo | None:
        if self.window is None:
            return self.source.window
        size = None if self.window.type == "SESSION" else self.window.size_ms
        return WindowInfo(self.window.type, size)

    # ------------------------------------------------------------------ code
    def build(self, schema: LogicalSchema, key_idx: list[int], value_idx: list[int],
              ) -> AggregateStep:
        ns = self.ns
        # group key
        lines: list[str] = []
        names = []
        for i, (e, typed, _) in enumerate(self.groups):
            lines += guarded(typed.code, f"_g{i}", e.to_sql())
            names.append(f"_g{i}")
        lines.append(f"if {' or '.join(n + ' is None' for n in names)}:")
        lines.append("    return None")
        lines.append("return (" + "".join(n + ", " for n in names) + ")")
        key_fn = build_function("_agg_key", "row", lines, ns)
        aggs = [ns.const(c.bound, "agg") for c in self.calls]
        init = build_function("_agg_init", "", [
            "return (" + "".join(f"{a}.init(), " for a in aggs) + ")"], ns)
        add = build_function("_agg_add", "accs, row", self._fold_lines(aggs, "add"), ns)
        undo = None
        if all(c.bound.undo is not None for c in self.calls):
            undo = build_function("_agg_undo", "accs, row", self._fold_lines(aggs, "undo"), ns)
        merge_parts = []
        for j, a in enumerate(aggs):
            if self.calls[j].bound.merge is None:
                merge_parts.append(f"b[{j}]")
            else:
                merge_parts.append(f"{a}.merge(a[{j}], b[{j}])")
        merge = build_function("_agg_merge", "a, b",
                               ["return (" + "".join(p + ", " for p in merge_parts) + ")"], ns)
        # result: agg row, HAVING, projection
        lines = [f"row = key + ({''.join(f'{a}.result(accs[{j}]), ' for j, a in enumerate(aggs))}"
                 "wstart, wend)"]
        if self.having is not None:
            lines += guarded(self.having.code, "_h", "HAVING")
            lines += ["if _h is not True:", "    return None"]
        outs = []
        for pos, i in enumerate(key_idx + value_idx):
            it = self.items[i]
            lines += guarded(it.typed.code, f"_c{pos}", it.expr.to_sql())
            outs.append(f"_c{pos}")
        lines.append("return (" + "".join(o + ", " for o in outs) + ")")
        result = build_function("_agg_result", "key, accs, wstart, wend", lines, ns)
        key_columns = tuple(c for c in schema.columns if c.namespace is Namespace.KEY)
        return AggregateStep(key_fn, key_columns, init, add, undo, merge, result, schema,
                             self.window, self.q.emit == "FINAL",
                             tuple(c.node.name for c in self.calls),
                             ", ".join(e.to_sql() for e, _, _ in self.groups))

    def _fold_lines(self, aggs: list[str], op: str) -> list[str]:
        lines: list[str] = []
        parts = []
        for j, (c, a) in enumerate(zip(self.calls, aggs, strict=True)):
            arg_names = []
            for k, typed in enumerate(c.args):
                lines += guarded(typed.code, f"_x{j}_{k}", c.node.to_sql())
                arg_names.append(f"_x{j}_{k}")
            tup = "(" + "".join(n + ", " for n in arg_names) + ")"
            if c.node.name == "COUNT" and not c.args and op in ("add", "undo"):
                # COUNT(*): its add / undo inlined (one call less per record)
                parts.append(f"accs[{j}] {'+' if op == 'add' else '-'} 1")
                continue
            parts.append(f"{a}.{op}(accs[{j}], {tup})")
        lines.append("return (" + "".join(p + ", " for p in parts) + ")")
        return lines
