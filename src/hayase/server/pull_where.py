"""ksqlDB's checks on a pull query's WHERE clause against a table (its key lookups, range scans
and table scans), as done before the query runs. Pure: AST and source in, error or None out.

- Key columns compared with a literal of the wrong type, or NULL keys, are refused always.
- With ``ksql.query.pull.table.scan.enabled=false`` every disjunct must pin the key: equality
  (or IN) on every key column with an expression that has no column reference; a range on a
  single STRING key is allowed when ``ksql.query.pull.range.scan.enabled`` is true and the
  table is not windowed; anything else needs a table scan.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from hayase.sql import ast
from hayase.sql.errors import StatementError
from hayase.sql.plan import DataSource

_RANGE = ("<", "<=", ">", ">=")
_NUMERIC = ("INTEGER", "BIGINT", "DOUBLE", "DECIMAL")


def _flag(props: Mapping[str, Any], name: str, default: bool) -> bool:
    value = props.get(name)
    return default if value is None else str(value).lower() == "true"


def _disjuncts(e: ast.Expression) -> list[ast.Expression]:
    if isinstance(e, ast.BinaryOp) and e.op.upper() == "OR":
        return _disjuncts(e.left) + _disjuncts(e.right)
    return [e]


def _conjuncts(e: ast.Expression) -> list[ast.Expression]:
    if isinstance(e, ast.BinaryOp) and e.op.upper() == "AND":
        return _conjuncts(e.left) + _conjuncts(e.right)
    return [e]


def column_refs(e: ast.Node) -> Iterator[ast.ColumnRef]:
    """Every column reference in an expression tree, however deeply nested (CASE arms, map and
    struct constructor entries, lambdas, subscripts): the AST's own walk, so no kind of node is
    skipped."""
    return (n for n in e.walk() if isinstance(n, ast.ColumnRef))


def _scan_instead(table_scan: bool) -> bool:
    """A key compared with a column expression pins nothing: only a table scan can answer."""
    if not table_scan:
        raise StatementError("A comparison must be between a key column and a resolvable "
                             "expression.")
    return True


def _has_refs(e: ast.Expression) -> bool:
    return any(True for _ in column_refs(e))


def _op_name(op: str) -> str:
    return {"=": "EQUAL", "<>": "NOT_EQUAL", "!=": "NOT_EQUAL", "<": "LESS_THAN",
            "<=": "LESS_THAN_OR_EQUAL", ">": "GREATER_THAN",
            ">=": "GREATER_THAN_OR_EQUAL"}.get(op, op)


def _check_literal(key: Any, lit: ast.Expression, op: str, whole: ast.Expression,
                   in_list: bool) -> None:
    if not isinstance(lit, ast.Literal):
        return
    base = key.type.base
    if lit.value is None:
        raise StatementError(f"Primary key columns can not be NULL: ({key.name} = null)")
    if base in _NUMERIC and isinstance(lit.value, str):
        if in_list:
            raise StatementError(f"'{lit.value}' can not be converted to the type of the key "
                                 f"column: {key.name} {key.type} KEY")
        raise StatementError(f"Error in WHERE expression: Cannot compare {key.name} ({key.type}) "
                             f"to {lit.to_sql()} ({lit.type}) with {_op_name(op)}.\n"
                             f"Statement: {whole.to_sql()}")


def check_pull_where(where: ast.Expression | None, source: DataSource,
                     props: Mapping[str, Any]) -> None:
    """Raise StatementError with ksqlDB's message when the pull query cannot run."""
    table_scan = _flag(props, "ksql.query.pull.table.scan.enabled", True)
    range_scan = _flag(props, "ksql.query.pull.range.scan.enabled", True)
    keys = {c.name: c for c in source.schema.key}
    if where is None:
        if not table_scan:
            raise StatementError("Query requires table scan to be enabled")
        return
    needs_scan = False
    for disjunct in _disjuncts(where):
        pinned: set[str] = set()
        ranged: set[str] = set()
        for c in _conjuncts(disjunct):
            if isinstance(c, ast.InList) and isinstance(c.operand, ast.ColumnRef) \
                    and c.operand.name in keys and not c.negated:
                key = keys[c.operand.name]
                for item in c.items:
                    if _has_refs(item):
                        needs_scan = _scan_instead(table_scan)
                    _check_literal(key, item, "=", c, True)
                pinned.add(key.name)
                continue
            if not isinstance(c, ast.BinaryOp) or c.op not in ("=",) + _RANGE:
                continue
            for side, other in ((c.left, c.right), (c.right, c.left)):
                if isinstance(side, ast.ColumnRef) and side.name in keys:
                    key = keys[side.name]
                    if _has_refs(other):
                        needs_scan = _scan_instead(table_scan)
                        break
                    _check_literal(key, other, c.op, c, False)
                    (pinned if c.op == "=" else ranged).add(key.name)
                    break
        if table_scan:
            continue
        if not pinned and not ranged:
            raise StatementError(f"WHERE clause missing key column for disjunct: "
                                 f"{disjunct.to_sql()}")
        if ranged - pinned:
            single_string = len(keys) == 1 and next(iter(keys.values())).type.base == "STRING"
            if not (range_scan and single_string and source.window is None
                    and len(_disjuncts(where)) == 1):
                raise StatementError("Query requires table scan to be enabled")
        elif len(pinned) < len(keys):
            raise StatementError("Multi-column sources must specify every key in the WHERE "
                                 "clause")
    del needs_scan  # a table scan is what hayase runs anyway: it answers the same rows
