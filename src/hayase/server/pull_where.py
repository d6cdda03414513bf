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


def invalid_where(message: str, windowed: bool) -> StatementError:
    """ksqlDB's QueryFilterNode.invalidWhereClauseException: the reason, then the rules."""
    nl = "\n"
    extra = "" if not windowed else (
        f"{nl} - (optionally) limits the time bounds of the windowed table.{nl}\t Bounds on "
        f"[`WINDOWSTART`, `WINDOWEND`] are supported{nl}\t Supported operators are "
        "[EQUAL, GREATER_THAN, GREATER_THAN_OR_EQUAL, LESS_THAN, LESS_THAN_OR_EQUAL]")
    return StatementError(
        f"{message}. See https://cnfl.io/queries for more info.{nl}Add EMIT CHANGES if you "
        f"intended to issue a push query.{nl}Pull queries require a WHERE clause that:{nl} - "
        "includes a key equality expression, e.g. `SELECT * FROM X WHERE <key-column> = Y;`."
        f"{nl} - in the case of a multi-column key, is a conjunction of equality expressions "
        f"that cover all key columns.{nl} - to support range expressions, e.g.,  SELECT * FROM "
        "X WHERE <key-column> < Y;`, range scans need to be enabled by setting "
        f"ksql.query.pull.range.scan.enabled=true{extra}{nl}If more flexible queries are "
        "needed, , table scans can be enabled by setting ksql.query.pull.table.scan.enabled=true.")


def _scan_instead(table_scan: bool, windowed: bool) -> bool:
    """A key compared with a column expression pins nothing: only a table scan can answer."""
    if not table_scan:
        raise invalid_where("A comparison must be between a key column and a resolvable "
                            "expression", windowed)
    return True


# ksqlDB's expression classes, named in "Like condition on non-string pattern <class>".
_TREE = "io.confluent.ksql.execution.expression.tree."
_LITERAL_CLASSES = {"INTEGER": "IntegerLiteral", "BIGINT": "LongLiteral",
                    "DOUBLE": "DoubleLiteral", "DECIMAL": "DecimalLiteral",
                    "BOOLEAN": "BooleanLiteral", "BYTES": "BytesLiteral"}


def _pattern_class(e: ast.Expression) -> str | None:
    """The ksqlDB class of a LIKE pattern that is not a string (None: a string or unknown)."""
    if isinstance(e, ast.Literal):
        name = _LITERAL_CLASSES.get(e.type.base)
    elif isinstance(e, ast.ColumnRef):
        name = "UnqualifiedColumnReferenceExp"
    elif isinstance(e, ast.FunctionCall):
        name = "FunctionCall"
    elif isinstance(e, ast.BinaryOp) and e.op in ("+", "-", "*", "/", "%"):
        name = "ArithmeticBinaryExpression"
    else:
        name = None
    return None if name is None else _TREE + name


def _check_like(c: ast.Like, source: DataSource, table_scan: bool) -> None:
    """QueryFilterNode's LIKE rule: a STRING column on the left, a string literal pattern."""
    windowed = source.window is not None
    if not isinstance(c.operand, ast.ColumnRef):
        if not table_scan:
            raise invalid_where("Like condition must be between strings", windowed)
        return
    col = source.schema.find(c.operand.name)
    if col is None:
        return  # pseudo-columns and unknown names: the planner's errors
    if col.type.base != "STRING":
        raise invalid_where("The column type for Like condition must be VARCHAR. The column "
                            f"type is {col.type.base}", windowed)
    pattern = _pattern_class(c.pattern)
    if pattern is not None:
        raise invalid_where(f"Like condition on non-string pattern {pattern}", windowed)


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


def _columns(keys: Mapping[str, Any]) -> str:
    """A list of key columns as ksqlDB prints ``schema.key()``."""
    return "[" + ", ".join(f"`{c.name}` {c.type} KEY" for c in keys.values()) + "]"


def check_pull_where(where: ast.Expression | None, source: DataSource,
                     props: Mapping[str, Any]) -> None:
    """Raise StatementError with ksqlDB's message when the pull query cannot run."""
    table_scan = _flag(props, "ksql.query.pull.table.scan.enabled", True)
    range_scan = _flag(props, "ksql.query.pull.range.scan.enabled", True)
    keys = {c.name: c for c in source.schema.key}
    windowed = source.window is not None
    if where is None:
        if not table_scan:
            raise StatementError("Query requires table scan to be enabled")
        return
    needs_scan = False
    for disjunct in _disjuncts(where):
        pinned: set[str] = set()
        ranged: set[str] = set()
        for c in _conjuncts(disjunct):
            if isinstance(c, ast.Like) and not c.negated:
                _check_like(c, source, table_scan)
                continue
            if isinstance(c, ast.InList) and isinstance(c.operand, ast.ColumnRef) \
                    and c.operand.name in keys and not c.negated:
                key = keys[c.operand.name]
                for item in c.items:
                    if _has_refs(item):
                        needs_scan = _scan_instead(table_scan, windowed)
                    _check_literal(key, item, "=", c, True)
                pinned.add(key.name)
                continue
            if not isinstance(c, ast.BinaryOp) or c.op not in ("=", "<>", "!=") + _RANGE:
                continue
            for side, other in ((c.left, c.right), (c.right, c.left)):
                if isinstance(side, ast.ColumnRef) and side.name in keys:
                    key = keys[side.name]
                    if _has_refs(other):
                        needs_scan = _scan_instead(table_scan, windowed)
                        break
                    if c.op in ("<>", "!=") and not table_scan:
                        raise invalid_where(f"Bound on key columns '{_columns(keys)}' must "
                                            "currently be '='", windowed)
                    _check_literal(key, other, c.op, c, False)
                    (pinned if c.op == "=" else ranged).add(key.name)
                    break
        if table_scan:
            continue
        if not pinned and not ranged:
            raise invalid_where(f"WHERE clause missing key column for disjunct: "
                                f"{disjunct.to_sql()}", windowed)
        seen = [k for k in keys if k in pinned or k in ranged]
        if len(seen) < len(keys):
            specified = ", ".join(f"`{k}`" for k in seen)
            raise invalid_where("Multi-column sources must specify every key in the WHERE "
                                f"clause. Specified: [{specified}] Expected: {_columns(keys)}",
                                windowed)
        if ranged - pinned:
            single_string = len(keys) == 1 and next(iter(keys.values())).type.base == "STRING"
            if not (range_scan and single_string and source.window is None
                    and len(_disjuncts(where)) == 1):
                raise StatementError("Query requires table scan to be enabled")
    del needs_scan  # a table scan is what hayase runs anyway: it answers the same rows
