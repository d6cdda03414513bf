"""Planning of JOIN queries: sources, join criteria, result key, column names, validations.

The combined row the WHERE clause and the projection read is laid out as::

    (*row of source 0, *row of source 1, ..., *row of source n, ROWKEY, JOINTIME)

where each source row is laid out as in :mod:`hayase.sql.plan` (columns, ROWTIME, ROWPARTITION,
ROWOFFSET[, WINDOWSTART, WINDOWEND]); a side without a match (outer joins) is all None.
``ROWKEY`` is the join key value and ``JOINTIME`` the result's timestamp; the engine appends
both after the last :class:`~hayase.sql.plan.JoinStep`.
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
from hayase.sql.naming import name_columns
from hayase.sql.plan import (
    PSEUDO_COLUMNS,
    PSEUDO_TYPES,
    WINDOW_COLUMNS,
    Column,
    DataSource,
    JoinStep,
    LogicalSchema,
    Namespace,
    SourceType,
)
from hayase.sql.planner import duplicate_key_message, key_missing_text, projection_schema
from hayase.sql.types import SqlType

if TYPE_CHECKING:
    from hayase.sql.planner import QueryPlanner


_TYPE_TEXT = {"INNER": "[INNER]", "LEFT": "LEFT [OUTER]", "RIGHT": "RIGHT [OUTER]",
              "FULL": "[FULL] OUTER"}


@dataclass
class _Side:
    source: DataSource
    alias: str
    offset: int
    node: ast.Table

    @property
    def width(self) -> int:
        return self.source.row_width

    @property
    def is_stream(self) -> bool:
        return self.source.source_type is SourceType.STREAM


@dataclass
class _Criteria:
    join: ast.Join
    left: ast.Expression  # over the sides before the right one
    right: ast.Expression  # over the right side only
    left_typed: Typed
    right_typed: Typed
    kind: str  # STREAM_STREAM, STREAM_TABLE, TABLE_TABLE, FK_TABLE_TABLE


@dataclass
class _Item:
    name: str
    typed: Typed
    expr: ast.Expression | None
    column_index: int | None = None  # resolved source column, for plain column references
    star: bool = False
    key_index: int | None = None  # (shared with the single-source planner's items)
    deref_name: str | None = None  # (unused: a join names ``a->b`` by its field directly)


class JoinPlanner:
    def __init__(self, planner: QueryPlanner) -> None:
        self.p = planner
        self.q = planner.query
        self.ns = planner.ns

    # ------------------------------------------------------------------ sources and scope
    def analyze(self) -> str:
        """Resolve sources, criteria and projection; returns the result type (STREAM/TABLE)."""
        q = self.q
        joins: list[ast.Join] = []
        rel: ast.Relation = q.from_
        while isinstance(rel, ast.Join):
            joins.append(rel)
            rel = rel.left
        joins.reverse()
        assert isinstance(rel, ast.Table)
        tables = [rel] + [j.right for j in joins]
        self.sides: list[_Side] = []
        offset = 0
        seen: set[str] = set()
        for t in tables:
            src = self.p.analyzer.metastore.get(t.name)
            if src is None:
                raise _err(f"{t.name} does not exist.", t)
            if src.name in seen:
                raise _err("N-way joins do not support multiple occurrences of the same source. "
                           f"Source: '{src.name}'", t)
            seen.add(src.name)
            self.sides.append(_Side(src, t.alias or t.name, offset, t))
            offset += src.row_width
        self.total_width = offset
        kafka = [s.source.name for s in self.sides if s.source.value_format.name == "KAFKA"]
        if kafka:
            raise _err(f"Source(s) {', '.join(kafka)} are using the 'KAFKA' value format. This "
                       "format does not yet support JOIN.", q)
        self.joins = joins
        self._build_scope()
        self.criteria = [self._criteria(i + 1, j) for i, j in enumerate(joins)]
        self._check_windows()
        # Sources are all windowed or none; the result keeps the left source's window.
        self.window = self.sides[0].source.window
        self.windowed = self.window is not None
        # The join key the engine appends after the sources' rows (a tuple when windowed).
        self.rowkey = f"row[{self.total_width}]" + ("[0]" if self.windowed else "")
        self.result_type = "STREAM" if any(s.is_stream for s in self.sides) else "TABLE"
        self._key()
        self.partition: list[tuple[ast.Expression, Typed, str]] | None = None
        if q.partition_by is not None and self.windowed and self._repartitions(q.partition_by):
            raise _err("Implicit repartitioning of windowed sources is not supported. See "
                       "https://github.com/confluentinc/ksql/issues/4385.", q)
        if q.partition_by is not None:
            if self.result_type == "TABLE":
                raise _err("Unsupported operation: PARTITION BY on a table. Use GROUP BY "
                           "instead.", q)
            comp = ExpressionCompiler(self.scope, self.ns, self.p.types)
            self.scope.clause = "PARTITION BY"
            self.partition = []
            for i, e in enumerate(q.partition_by):
                typed = comp.compile(e)
                name = self._name_of_key_expr(e) if isinstance(e, ast.ColumnRef) \
                    else f"KSQL_COL_{i}"
                self.partition.append((e, typed, name))
        return self.result_type

    def _build_scope(self, synthetic: bool = False) -> None:
        cols: list[ScopeColumn] = []
        for side in self.sides:
            quals = (side.alias,)
            src = side.source
            for i, c in enumerate(src.schema.columns):
                cols.append(ScopeColumn(c.name, c.type, side.offset + i, quals))
            base = side.offset + len(src.schema.columns)
            extra = list(PSEUDO_COLUMNS) + (list(WINDOW_COLUMNS) if src.window else [])
            for j, name in enumerate(extra):
                cols.append(ScopeColumn(name, PSEUDO_TYPES[name], base + j, quals))
        self.scope = Scope(cols, tuple(s.alias for s in self.sides), "JOIN ON")

    def side_of(self, index: int) -> _Side:
        for s in self.sides:
            if s.offset <= index < s.offset + s.width:
                return s
        raise KeyError(index)

    def _sides_in(self, e: ast.Expression, comp: ExpressionCompiler) -> set[int]:
        out: set[int] = set()
        for node in e.walk():
            if isinstance(node, ast.ColumnRef) and node.source is not None and \
                    node.source not in self.scope.sources:
                self.scope.resolve(node)  # raises: unknown qualifier
        for node in e.walk():
            if isinstance(node, ast.ColumnRef):
                col = self.scope.resolve(node)
                out.add(self.sides.index(self.side_of(col.index)))
        return out

    def qualified(self, e: ast.Expression, sep: str = ".") -> str:
        """ksqlDB's rendering of join expressions in messages: columns qualified by alias."""
        import copy

        e2 = copy.deepcopy(e)
        for node in e2.walk():
            if isinstance(node, ast.ColumnRef):
                try:
                    col = self.scope.resolve(node)
                except StatementError:
                    continue
                if col.qualifiers:
                    node.source = self.side_of(col.index).alias
        text = e2.to_sql()
        if sep != ".":
            for s in self.sides:
                text = text.replace(f"{ast.ident(s.alias)}.", f"{s.alias}{sep}")
        return text

    # ------------------------------------------------------------------ criteria
    def _criteria(self, right_pos: int, j: ast.Join) -> _Criteria:
        cond = j.criteria
        if isinstance(cond, ast.BinaryOp) and cond.op == "AND":
            raise _err("Invalid join condition: joins on multiple conditions are not yet "
                       f"supported. Got {cond.to_sql()}.", cond)
        if not (isinstance(cond, ast.BinaryOp) and cond.op == "="):
            raise _err(f"Unsupported join expression: {cond.to_sql()}", cond)
        comp = ExpressionCompiler(self.scope, self.ns, self.p.types)
        self.scope.clause = "JOIN ON"
        for node in cond.walk():  # unknown qualifiers are reported before anything else
            if isinstance(node, ast.ColumnRef) and node.source is not None and \
                    node.source not in self.scope.sources:
                self.scope.resolve(node)
        a, b = cond.left, cond.right
        sa, sb = self._sides_in(a, comp), self._sides_in(b, comp)
        for side_expr, sides in ((a, sa), (b, sb)):
            if len(sides) != 1:
                raise _err(f"Invalid comparison expression '{side_expr.to_sql().strip('()')}' in "
                           f"join '{cond.to_sql()}'. Each side of the join comparision must "
                           "contain references from exactly one source.", cond)
        if sa == {right_pos} and next(iter(sb)) < right_pos:
            a, b = b, a
            sa, sb = sb, sa
        if sb != {right_pos} or next(iter(sa)) >= right_pos:
            raise _err(f"Invalid join condition: {cond.to_sql()} must reference the joined "
                       "sources.", cond)
        ta, tb = comp.compile(a), comp.compile(b)
        if ta.type != tb.type:
            raise _err(f"Invalid join condition: types don't match. Got "
                       f"{self.qualified(a)}{{{ta.type}}} = {self.qualified(b)}{{{tb.type}}}.",
                       cond)
        from hayase.sql.properties import contains_map

        if contains_map(ta.type):
            raise _err("Map keys, including types that contain maps, are not supported as they "
                       "may lead to unexpected behavior due to inconsistent serialization. Key "
                       f"column name: `{self._name_of_key_expr(a)}`. Column type: {ta.type}. See "
                       "https://github.com/confluentinc/ksql/issues/6621 for more.", cond)
        kind = self._kind(right_pos, j, a, b)
        return _Criteria(j, a, b, ta, tb, kind)

    def _name_of_key_expr(self, e: ast.Expression) -> str:
        if isinstance(e, ast.ColumnRef):
            col = self.scope.resolve(e)
            return f"{self.side_of(col.index).alias}_{e.name}"
        return "ROWKEY"

    def _kind(self, right_pos: int, j: ast.Join, a: ast.Expression, b: ast.Expression) -> str:
        left_stream = any(s.is_stream for s in self.sides[:right_pos])
        right = self.sides[right_pos]
        left_name = self.sides[right_pos - 1].source.name if right_pos == 1 else \
            self.sides[0].source.name
        got = f"{left_name} {_TYPE_TEXT[j.join_type]} JOIN {right.source.name}"
        criteria = f"{self.qualified(j.criteria.left)} = {self.qualified(j.criteria.right)}"  # type: ignore[attr-defined]
        if not left_stream and right.is_stream:
            raise _err("Invalid join order: table-stream joins are not supported; only "
                       f"stream-table joins. Got {got}.", j)
        if left_stream and right.is_stream:
            if j.within is None:
                raise _err("Stream-Stream joins must have a WITHIN clause specified. None was "
                           "provided. To learn about how to specify a WITHIN clause with a "
                           "stream-stream join, please visit: https://docs.confluent.io/current/"
                           "ksql/docs/syntax-reference.html#create-stream-as-select", j)
            return "STREAM_STREAM"
        if j.within is not None:
            kind = "Stream-Table" if left_stream else "Table-Table"
            raise _err(f"A window definition was provided for a {kind} join. These joins are not "
                       "windowed. Please drop the window definition (i.e. the WITHIN clause) and "
                       "try to execute your join again.", j)
        if not self._is_primary_key(b, right):
            if left_stream:
                raise _err("Invalid join condition: stream-table joins require to join on the "
                           f"table's primary key. Got {criteria}.", j)
            raise _err("Invalid join condition: table-table joins require to join on the primary "
                       f"key of the right input table. Got {criteria}.", j)
        if left_stream:
            if j.join_type in ("RIGHT", "FULL"):
                raise _err(f"Invalid join type: {j.join_type.lower()} join not supported for "
                           f"stream-table join. Got {got}.", j)
            return "STREAM_TABLE"
        left_side = self.side_of(self.scope.resolve(a).index) if isinstance(a, ast.ColumnRef) \
            else None
        if left_side is not None and self._is_primary_key(a, left_side):
            return "TABLE_TABLE"
        # Foreign-key join: the left expression is not the left table's primary key.
        if j.join_type == "RIGHT":
            raise _err("RIGHT OUTER JOIN on a foreign key is not supported", j)
        if j.join_type == "FULL":
            raise _err("FULL OUTER JOIN on a foreign key is not supported", j)
        if right_pos > 1:
            raise _err("Invalid join condition: foreign-key table-table joins are not supported "
                       f"as part of n-way joins. Got {criteria}.", j)
        return "FK_TABLE_TABLE"

    def _is_primary_key(self, e: ast.Expression, side: _Side) -> bool:
        if not isinstance(e, ast.ColumnRef):
            return False
        col = self.scope.resolve(e)
        if self.side_of(col.index) is not side:
            return False
        key = side.source.schema.key
        return len(key) == 1 and key[0].name == col.name

    def _check_windows(self) -> None:
        windowed = [s for s in self.sides if s.source.window is not None]
        if not windowed:
            return
        if len(windowed) != len(self.sides):
            w, n = windowed[0], next(s for s in self.sides if s.source.window is None)
            raise _err(f"Can not join windowed source to non-windowed source.\n`{w.source.name}` "
                       f"is {w.source.window.type if w.source.window else ''} windowed\n"
                       f"`{n.source.name}` is not windowed", self.q)
        types = {s.source.window.type for s in windowed if s.source.window}
        shapes = {(s.source.window.type, s.source.window.size_ms) for s in windowed
                  if s.source.window}
        if "SESSION" not in types and len(shapes) > 1:
            raise _err("Implicit repartitioning of windowed sources is not supported. See "
                       "https://github.com/confluentinc/ksql/issues/4385.", self.q)
        if "SESSION" in types and len(types) > 1:
            a, b = self.sides[0].source.window, self.sides[1].source.window
            raise _err("Incompatible windowed sources.\nLeft source: "
                       f"{a.type if a else ''}\nRight source: {b.type if b else ''}\nSession "
                       "windowed sources can only be joined to other session windowed sources, "
                       "and may still not result in expected behaviour as session bounds must be "
                       "an exact match for the join to work\nHopping and tumbling windowed "
                       "sources can only be joined to other hopping and tumbling windowed "
                       "sources", self.q)
        for c in self.criteria:
            for e in (c.left, c.right):
                side = self.side_of(self.scope.resolve(e).index) if isinstance(e, ast.ColumnRef) \
                    else None
                if side is None or not self._is_primary_key(e, side) and \
                        side.source.source_type is SourceType.STREAM and \
                        not (isinstance(e, ast.ColumnRef) and
                             side.source.schema.find(e.name) is not None and
                             side.source.schema.find(e.name).namespace is Namespace.KEY):  # type: ignore[union-attr]
                    raise _err("Implicit repartitioning of windowed sources is not supported. "
                               "See https://github.com/confluentinc/ksql/issues/4385.", self.q)

    # ------------------------------------------------------------------ key
    def _key(self) -> None:
        """Which columns can be the result's key (viable), or a synthetic ROWKEY."""
        final = self.criteria[-1]
        self.fk = final.kind == "FK_TABLE_TABLE" or any(
            c.kind == "FK_TABLE_TABLE" for c in self.criteria)
        self.synthetic = False
        self.viable: list[tuple[ast.ColumnRef, int]] = []
        self.key_type: SqlType | None = None
        if self.fk:
            return
        if final.join.join_type == "FULL":
            self.synthetic = True
        else:
            # Expressions joined by equality are interchangeable keys (n-way chains).
            groups: list[set[str]] = []
            for c in self.criteria:
                pair = {self._norm(c.left), self._norm(c.right)}
                merged = [g for g in groups if g & pair]
                for g in merged:
                    groups.remove(g)
                    pair |= g
                groups.append(pair)
            final_group = next(g for g in groups if self._norm(final.left) in g)
            for c in self.criteria:
                for e in (c.left, c.right):
                    if isinstance(e, ast.ColumnRef) and self._norm(e) in final_group:
                        index = self.scope.resolve(e).index
                        if all(i != index for _, i in self.viable):
                            self.viable.append((e, index))
            if not self.viable:
                self.synthetic = True
        self.key_type = final.left_typed.type
        if self.synthetic:
            self.scope.columns.append(ScopeColumn("ROWKEY", final.left_typed.type,
                                                  self.total_width, (), self.rowkey))

    def _repartitions(self, exprs: list[ast.Expression]) -> bool:
        """ksqlDB's Repartitioning.repartitionNeeded: anything but the result's key column."""
        if len(exprs) != 1 or not isinstance(exprs[0], ast.ColumnRef):
            return True
        index = self.scope.resolve(exprs[0]).index
        key = self.total_width if self.synthetic else \
            (self.viable[0][1] if self.viable else None)
        return index != key

    def _norm(self, e: ast.Expression) -> str:
        if isinstance(e, ast.ColumnRef):
            return f"#{self.scope.resolve(e).index}"
        text = e.to_sql()
        for s in self.sides:
            text = text.replace(f"{ast.ident(s.alias)}.", "")
        return text

    # ------------------------------------------------------------------ projection
    def projection(self) -> list[_Item]:
        comp = ExpressionCompiler(self.scope, self.ns, self.p.types)
        comp.render = lambda e: self.qualified(e, "_")
        self.scope.clause = "SELECT"
        names_count: dict[str, int] = {}
        for c in self.scope.columns:
            if c.qualifiers:
                names_count[c.name] = names_count.get(c.name, 0) + 1
        items: list[_Item] = []
        for item in self.q.select:
            if isinstance(item, ast.AllColumns):
                items.extend(self._star(item))
                continue
            assert isinstance(item, ast.SingleColumn)
            e = item.expression
            typed = comp.compile(e)
            index = None
            name = item.alias
            if isinstance(e, ast.ColumnRef):
                col = self.scope.resolve(e)
                index = col.index
                if name is None:
                    if not col.qualifiers:
                        name = col.name  # synthetic ROWKEY
                    elif names_count.get(col.name, 0) > 1:
                        name = f"{self.side_of(col.index).alias}_{col.name}"
                    else:
                        name = col.name
            elif name is None and isinstance(e, ast.Dereference):
                name = e.field
            items.append(_Item(name or "", typed, e, index))
        name_columns(items, {c.name for c in self.scope.columns})
        self.items = items
        return items

    def _star(self, item: ast.AllColumns) -> list[_Item]:
        out: list[_Item] = []
        if item.source is None and self.synthetic:
            out.append(_Item("ROWKEY", Typed(self.rowkey, self.key_type or
                                             self.criteria[-1].left_typed.type), None,
                             self.total_width, True))
        for side in self.sides:
            if item.source is not None and item.source != side.alias:
                continue
            cols = list(enumerate(side.source.schema.columns))
            if self.partition is not None:
                # After PARTITION BY, ksqlDB's intermediate schema lists value columns, then the
                # pseudo-columns, then the former key columns of each source.
                n = len(side.source.schema.columns)
                values = [(i, c) for i, c in cols if c.namespace is not Namespace.KEY]
                keys = [(i, c) for i, c in cols if c.namespace is Namespace.KEY]
                pseudo = [(n + j, Column(name, PSEUDO_TYPES[name]))
                          for j, name in enumerate(PSEUDO_COLUMNS)]
                cols = values + pseudo + keys
            elif side.source.window is not None:
                # ksqlDB's SELECT * over a windowed source: keys, window bounds, values.
                n = len(side.source.schema.columns) + len(PSEUDO_COLUMNS)
                keys = [(i, c) for i, c in cols if c.namespace is Namespace.KEY]
                bounds = [(n + j, Column(name, PSEUDO_TYPES[name]))
                          for j, name in enumerate(WINDOW_COLUMNS)]
                cols = keys + bounds + [(i, c) for i, c in cols if c.namespace is not Namespace.KEY]
            for i, c in cols:
                index = side.offset + i
                out.append(_Item(f"{side.alias}_{c.name}", Typed(f"row[{index}]", c.type),
                                 ast.ColumnRef(c.name, side.alias), index, True))
        if item.source is not None and not out:
            raise _err(f"'{item.source}' is not a valid stream/table name or alias.", item)
        return out

    # ------------------------------------------------------------------ sink schema
    def sink_columns(self, sink_name: str, node: ast.Node) -> tuple[list[int], list[int]]:
        items = self.projection()
        if self.partition is not None:
            return self._partition_columns(items, sink_name, node)
        if self.fk:
            first = self.sides[0]
            key_idx: list[int] = []
            for kc in first.source.schema.key:
                index = first.offset + first.source.schema.index(kc.name)
                hits = [i for i, it in enumerate(items) if it.column_index == index]
                if not hits:
                    raise _err("Primary key column missing in projection. For foreign-key "
                               "table-table joins, the projection must include all primary key "
                               f"columns from the left input table (`{first.source.name}`). "
                               f"Missing column: `{kc.name}`.", node)
                self._no_duplicate_key(items, hits, node)
                key_idx.append(hits[0])
            return key_idx, [i for i in range(len(items)) if i not in key_idx]
        if self.synthetic:
            hits = [i for i, it in enumerate(items) if it.column_index == self.total_width]
            if not hits:
                raise _err(key_missing_text(sink_name, "join expression", "ROWKEY", "ROWKEY")
                           + "\nROWKEY was added as a synthetic key column because the join "
                           "criteria did not match any source column.", node)
        else:
            # The first viable column (left side first) that the projection selects is the key.
            hits = []
            for _, index in self.viable:
                hits = [i for i, it in enumerate(items) if it.column_index == index]
                if hits:
                    break
            if not hits:
                names = [f"{self.side_of(i).alias}.{e.name}" for e, i in self.viable]
                listed = names[0] if len(names) == 1 else \
                    ", ".join(names[:-1]) + " or " + names[-1]
                what = "join expression" if len(names) == 1 else "join expressions"
                raise _err(key_missing_text(sink_name, what, listed, names[0]), node)
        first_hit = hits[0]
        same = [i for i in hits if items[i].column_index == items[first_hit].column_index]
        self._no_duplicate_key(items, same, node)
        key_item = items[first_hit]
        if not self.synthetic and key_item.typed.type == self.key_type:
            # The record key is the join key even when the selected column's side is missing
            # (outer joins): read it from ROWKEY, as ksqlDB's key column does.
            key_item.typed = Typed(self.rowkey, key_item.typed.type)
        return [first_hit], [i for i in range(len(items)) if i != first_hit]

    def _partition_columns(self, items: list[_Item], sink_name: str, node: ast.Node
                           ) -> tuple[list[int], list[int]]:
        assert self.partition is not None
        key_idx: list[int] = []
        missing: list[str] = []
        for g, (e, _, _) in enumerate(self.partition):
            index = self.scope.resolve(e).index if isinstance(e, ast.ColumnRef) else None
            hits = [i for i, it in enumerate(items)
                    if (index is not None and it.column_index == index)
                    or (it.expr is not None and self._norm(it.expr) == self._norm(e))]
            if not hits:
                missing.append(self.qualified(e))
                continue
            key_idx.append(hits[0])
            items[hits[0]].key_index = g
        if missing:
            listed = ", ".join(missing)
            raise _err(key_missing_text(sink_name, "partitioning expression", listed, listed),
                       node)
        return key_idx, [i for i in range(len(items)) if i not in key_idx]

    def _no_duplicate_key(self, items: list[_Item], hits: list[int], node: ast.Node) -> None:
        explicit = [i for i in hits if not items[i].star]
        if len(hits) > 1 and explicit:
            first = items[hits[0]]
            index = first.column_index
            internal = first.name
            if index is not None and index < self.total_width:
                side = self.side_of(index)
                internal = f"{side.alias}_{side.source.schema.columns[index - side.offset].name}"
            raise _err(duplicate_key_message(internal, [items[i].name for i in hits]), node)

    def schema(self, key_idx: list[int], value_idx: list[int]) -> LogicalSchema:
        return projection_schema(self.items, key_idx, value_idx, refuse_null=False)

    # ------------------------------------------------------------------ plan
    def steps(self) -> list[JoinStep]:
        out: list[JoinStep] = []
        keyed_by: set[str] = set()  # expressions equal to the left input's key
        for pos, c in enumerate(self.criteria, start=1):
            right = self.sides[pos]
            left_repartition, keyed_by = self._left_repartition(pos, c, keyed_by)
            left_width = right.offset
            lf = build_function(f"_join{pos}_left_key", "row",
                                guarded(c.left_typed.code, "_k", c.left.to_sql())
                                + [self._window_key(c.left, 0)], self.ns)
            # The right key expression reads the right source's own row: shift its indices.
            rcode = _shift_rows(c.right_typed.code, -right.offset)
            rf = build_function(f"_join{pos}_right_key", "row",
                                guarded(rcode, "_k", c.right.to_sql())
                                + [self._window_key(c.right, -right.offset)], self.ns)
            w = c.join.within
            out.append(JoinStep(
                c.join.join_type, right.source, within=(w.before.millis, w.after.millis)
                if w else None, left_key=lf, right_key=rf, kind=c.kind, left_width=left_width,
                right_width=right.width, grace_ms=w.grace.millis if w and w.grace else None,
                left_repartition=left_repartition,
                right_repartition=not self._is_key_of_source(c.right),
                text=c.join.criteria.to_sql()))
        return out

    def _window_key(self, e: ast.Expression, shift: int) -> str:
        """The key functions' return statement. Windowed sources match like ksqlDB's serialized
        windowed keys: key and window start (hopping/tumbling: only the start is serialized),
        plus the end for session windows; the key is then ``(key, WINDOWSTART, WINDOWEND or
        None)`` (see :class:`~hayase.sql.plan.JoinStep`)."""
        if not self.windowed:
            return "return _k"
        assert isinstance(e, ast.ColumnRef)  # a key column (_check_windows)
        side = self.side_of(self.scope.resolve(e).index)
        window = side.source.window
        assert window is not None
        start = side.offset + len(side.source.schema.columns) + len(PSEUDO_COLUMNS) + shift
        end = f"row[{start + 1}]" if window.type == "SESSION" else "None"
        return f"return None if _k is None else (_k, row[{start}], {end})"

    def _left_repartition(self, pos: int, c: _Criteria, keyed_by: set[str]
                          ) -> tuple[bool, set[str]]:
        """Whether the left input of JOIN ``pos`` must be repartitioned, and the expressions
        its result is keyed by. The first JOIN's left is a source (keyed by its key column);
        a later JOIN's left is the previous result, keyed by that join's expressions (equal
        on every joined row), or by a synthetic ROWKEY after a FULL OUTER join."""
        pair = {self._norm(c.left), self._norm(c.right)}
        if pos == 1:
            repartition = not self._is_key_of_source(c.left)
        else:
            repartition = self._norm(c.left) not in keyed_by
        if c.join.join_type == "FULL":
            return repartition, set()
        if c.kind == "FK_TABLE_TABLE":  # keyed by the left table's primary key
            first = self.sides[0]
            return repartition, {f"#{first.offset + first.source.schema.index(k.name)}"
                                 for k in first.source.schema.key}
        return repartition, pair if repartition or pos == 1 else keyed_by | pair

    def _is_key_of_source(self, e: ast.Expression) -> bool:
        if not isinstance(e, ast.ColumnRef):
            return False
        col = self.scope.resolve(e)
        side = self.side_of(col.index)
        key = side.source.schema.key
        return len(key) == 1 and key[0].name == col.name


def _shift_rows(code: str, delta: int) -> str:
    import re

    return re.sub(r"row\[(\d+)\]", lambda m: f"row[{int(m.group(1)) + delta}]", code)


__all__ = ["JoinPlanner", "Any"]
