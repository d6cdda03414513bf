"""Type checking and Python code generation for expressions.

``ExpressionCompiler.compile(expr)`` returns a :class:`Typed` (Python source text + SQL type);
``build_function`` turns a set of those into one real Python function with ``compile()``/``exec``
so each query's expressions are compiled once, not interpreted per record.

Null semantics follow ksqlDB: operators and most functions return null when an input is null;
AND/OR are three-valued; a WHERE clause keeps a row only when its predicate is ``True``.
"""

from __future__ import annotations

import base64
import decimal
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hayase.sql import ast, runtime
from hayase.sql.errors import KsqlRuntimeError, StatementError
from hayase.sql.types import (
    BIGINT,
    BOOLEAN,
    DOUBLE,
    INTEGER,
    NULL,
    STRING,
    ArrayType,
    DecimalType,
    MapType,
    SqlType,
    StructType,
    array_of,
    as_decimal,
    decimal_arithmetic,
    decimal_exact,
    map_of,
    struct_of,
    widen_numeric,
)

_OP_NAMES = {"=": "EQUAL", "<>": "NOT_EQUAL", "<": "LESS_THAN", "<=": "LESS_THAN_OR_EQUAL",
             ">": "GREATER_THAN", ">=": "GREATER_THAN_OR_EQUAL"}


@dataclass
class Typed:
    code: str
    type: SqlType
    const: bool = False  # no column reference below (safe to evaluate at compile time)


@dataclass
class ScopeColumn:
    name: str
    type: SqlType
    index: int
    qualifiers: tuple[str, ...] = ()
    code: str | None = None  # how to read the value when it is not plain ``row[index]``


@dataclass
class Scope:
    """Columns an expression can reference; ``row[index]`` holds the value."""

    columns: list[ScopeColumn]
    sources: tuple[str, ...] = ()  # valid qualifiers (source names and aliases)
    clause: str = "SELECT"  # for error messages: WHERE, SELECT, PARTITION BY, ...

    def resolve(self, ref: ast.ColumnRef) -> ScopeColumn:
        if ref.source is not None and ref.source not in self.sources:
            raise StatementError(f"Failed to prepare statement: '{ref.source}' is not a valid "
                                 "stream/table name or alias.", ref.line, ref.column)
        hits = [c for c in self.columns if c.name == ref.name
                and (ref.source is None or ref.source in c.qualifiers)]
        if not hits:
            text = (f"{ref.source}." if ref.source else "") + ref.name
            raise StatementError(f"{self.clause} column '{text}' cannot be resolved.",
                                 ref.line, ref.column)
        if len(hits) > 1 and len({h.index for h in hits}) > 1:
            options = " or ".join(f"{h.qualifiers[0]}.{ref.name}" for h in hits if h.qualifiers)
            raise StatementError(f"Column '{ref.name}' is ambiguous. Could be {options}.",
                                 ref.line, ref.column)
        return hits[0]


def _java_str(v: str | None) -> str:
    """A string operand of ``+`` as Java's string concatenation reads it."""
    return "null" if v is None else v


class CodeNamespace:
    """Constants and helpers referenced by generated code, shared by one query's functions."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {
            "_rt": runtime, "_D": decimal.Decimal,
            "_KsqlRuntimeError": KsqlRuntimeError, "on_error": _ignore_error,
            "_rt_str": _java_str,
        }
        self.values["_cast"] = _safe_cast(self.values)
        self._ids: dict[int, str] = {}
        self._n = 0

    def const(self, value: Any, hint: str = "k") -> str:
        key = id(value)
        if key in self._ids and self.values.get(self._ids[key]) is value:
            return self._ids[key]
        self._n += 1
        name = f"_{hint}{self._n}"
        self.values[name] = value
        self._ids[key] = name
        return name

    def temp(self) -> str:
        self._n += 1
        return f"_t{self._n}"


def _ignore_error(exc: Exception) -> None:
    return None


@dataclass
class _LambdaCtx:
    params: dict[str, tuple[str, SqlType]] = field(default_factory=dict)


class ExpressionCompiler:
    def __init__(self, scope: Scope, ns: CodeNamespace, type_registry: dict[str, SqlType] | None = None,
                 allow_aggregates: bool = False) -> None:
        self.scope = scope
        self.ns = ns
        self.lambdas: list[dict[str, tuple[str, SqlType]]] = []
        self.types = type_registry or {}
        self.allow_aggregates = allow_aggregates
        # Table function calls already computed by a FlatMapStep: id(node) -> (row index, type).
        self.table_slots: dict[int, tuple[int, SqlType]] = {}
        # Whole expressions already computed (GROUP BY keys): normalised SQL -> (index, type).
        self.expr_slots: dict[str, tuple[int, SqlType]] = {}
        self.normalize: Callable[[ast.Expression], str] = lambda e: e.to_sql()
        # WHERE/SELECT cast a string literal compared with another type; HAVING does not.
        self.coerce_string_literals = True
        # How expressions are printed in error messages (joins print ALIAS_COLUMN).
        self.render: Callable[[ast.Expression], str] = lambda e: e.to_sql()

    # ------------------------------------------------------------------ entry
    def compile(self, e: ast.Expression) -> Typed:
        if self.expr_slots and not isinstance(e, ast.Lambda):
            slot = self.expr_slots.get(self.normalize(e))
            if slot is not None:
                return Typed(f"row[{slot[0]}]", slot[1])
        method = getattr(self, "_" + type(e).__name__, None)
        if method is None:
            raise StatementError(f"Unsupported expression: {e.to_sql()}", e.line, e.column)
        return method(e)  # type: ignore[no-any-return]

    def compile_predicate(self, e: ast.Expression, clause: str) -> Typed:
        t = self.compile(e)
        if t.type.base not in ("BOOLEAN", "NULL"):
            raise StatementError(
                f"Type error in {clause} expression: Should evaluate to boolean but is "
                f"{e.to_sql()} ({t.type}) instead.", e.line, e.column)
        return t

    # ------------------------------------------------------------------ leaves
    def _Literal(self, e: ast.Literal) -> Typed:
        if e.value is None:
            return Typed("None", NULL, True)
        if isinstance(e.value, bool | int | float | str):
            if isinstance(e.value, float):
                return Typed(repr(e.value) if e.value == e.value else "float('nan')", DOUBLE, True)
            return Typed(repr(e.value), e.type, True)
        return Typed(self.ns.const(e.value), e.type, True)

    def _ColumnRef(self, e: ast.ColumnRef) -> Typed:
        if e.source is None:
            for frame in reversed(self.lambdas):
                if e.name in frame:
                    pyname, t = frame[e.name]
                    return Typed(pyname, t)
        col = self.scope.resolve(e)
        return Typed(col.code or f"row[{col.index}]", col.type)

    def _LambdaVariable(self, e: ast.LambdaVariable) -> Typed:
        return self._ColumnRef(ast.ColumnRef(e.name, line=e.line, column=e.column))

    # ------------------------------------------------------------------ helpers
    def _null_guard(self, parts: list[Typed], body: Callable[[list[str]], str]) -> str:
        """``None if any part is None else body(part values)`` with each part evaluated once."""
        names: list[str] = []
        checks: list[str] = []
        for p in parts:
            if p.type is NULL or p.code == "None":
                return "None"
            if _is_literal_code(p.code):
                names.append(p.code)
                continue
            if _is_simple(p.code):
                names.append(p.code)
                checks.append(f"{p.code} is None")
            else:
                t = self.ns.temp()
                names.append(t)
                checks.append(f"({t} := {p.code}) is None")
        if not checks:
            return f"({body(names)})"
        return f"(None if {' or '.join(checks)} else {body(names)})"

    def _false_guard(self, parts: list[Typed], body: Callable[[list[str]], str]) -> str:
        """Like _null_guard but yields False on null input (ksqlDB's comparison semantics)."""
        code = self._null_guard(parts, body)
        if code == "None":
            return "False"
        if code.startswith("(None if "):
            return "(False if " + code[len("(None if "):]
        return code

    def coerce(self, t: Typed, target: SqlType) -> Typed:
        """Implicitly convert ``t`` to ``target`` (numeric widening, null)."""
        if t.type == target or t.type is NULL:
            return Typed(t.code, target, t.const)
        return self.fold(self._coerce(t, target))

    def fold(self, t: Typed) -> Typed:
        """Evaluate a constant expression once, at compile time (errors stay for run time)."""
        if not t.const or _is_literal_code(t.code) or t.code == "None":
            return t
        try:
            value = _eval_const(t.code, self.ns)
        except Exception:  # noqa: BLE001 - leave it to run time, where it is logged
            return t
        if value is None:
            return Typed("None", t.type, True)
        if isinstance(value, bool | int | str) or (isinstance(value, float) and value == value
                                                   and value not in (float("inf"), float("-inf"))):
            return Typed(repr(value), t.type, True)
        return Typed(self.ns.const(value), t.type, True)

    def _coerce(self, t: Typed, target: SqlType) -> Typed:
        if t.type == target or t.type is NULL:
            return Typed(t.code, target, t.const)
        src = t.type
        if target.base == "DOUBLE" and src.base in ("INTEGER", "BIGINT", "DECIMAL"):
            return Typed(self._null_guard([t], lambda n: f"float({n[0]})"), DOUBLE, t.const)
        if isinstance(target, DecimalType) and src.base in ("INTEGER", "BIGINT", "DECIMAL"):
            k = self.ns.const(target, "T")
            return Typed(self._null_guard([t], lambda n: f"_rt.dec({n[0]}, {k})"), target, t.const)
        if target.base == "BIGINT" and src.base == "INTEGER":
            return Typed(t.code, BIGINT, t.const)
        if isinstance(target, ArrayType) and isinstance(src, ArrayType):
            if src.element is None or src.element.base == "NULL" or target.element is None:
                return Typed(t.code, target, t.const)
            if src.element == target.element:
                return Typed(t.code, target, t.const)
            x = self.ns.temp()
            inner = self.coerce(Typed(x, src.element), target.element)
            return Typed(self._null_guard([t], lambda n: f"[{inner.code} for {x} in {n[0]}]"),
                         target, t.const)
        if isinstance(target, StructType) and isinstance(src, StructType):
            return Typed(self._null_guard([t], lambda n: _struct_rebuild(n[0], target, src, self)),
                         target, t.const)
        if isinstance(target, MapType) and isinstance(src, MapType):
            if src.value is None or target.value is None or src.value == target.value:
                return Typed(t.code, target, t.const)
            kk, vv = self.ns.temp(), self.ns.temp()
            inner = self.coerce(Typed(vv, src.value), target.value)
            return Typed(self._null_guard(
                [t], lambda n: f"{{{kk}: {inner.code} for {kk}, {vv} in {n[0]}.items()}}"),
                target, t.const)
        return Typed(t.code, target, t.const)

    def _type_error(self, e: ast.Node, message: str) -> StatementError:
        return StatementError(message, e.line, e.column)

    # ------------------------------------------------------------------ operators
    def _BinaryOp(self, e: ast.BinaryOp) -> Typed:
        if e.op in ("AND", "OR"):
            return self._logical(e)
        if e.op in _OP_NAMES:
            return self._comparison(e)
        return self._arith(e)

    def _logical(self, e: ast.BinaryOp) -> Typed:
        a = self.compile(e.left)
        b = self.compile(e.right)
        for side, t in ((e.left, a), (e.right, b)):
            if t.type.base not in ("BOOLEAN", "NULL"):
                raise self._type_error(side, f"Logical operator {e.op} requires BOOLEAN operands, "
                                             f"but {side.to_sql()} is {t.type}")
        x, y = self.ns.temp(), self.ns.temp()
        if e.op == "AND":
            code = (f"(False if ({x} := {a.code}) is False else "
                    f"(False if ({y} := {b.code}) is False else "
                    f"(None if {x} is None or {y} is None else True)))")
        else:
            code = (f"(True if ({x} := {a.code}) is True else "
                    f"(True if ({y} := {b.code}) is True else "
                    f"(None if {x} is None or {y} is None else False)))")
        return Typed(code, BOOLEAN, a.const and b.const)

    def _UnaryOp(self, e: ast.UnaryOp) -> Typed:
        a = self.compile(e.operand)
        if e.op == "NOT":
            if a.type.base not in ("BOOLEAN", "NULL"):
                raise self._type_error(e, f"NOT requires a BOOLEAN operand, but "
                                          f"{e.operand.to_sql()} is {a.type}")
            return Typed(self._null_guard([a], lambda n: f"(not {n[0]})"), BOOLEAN, a.const)
        if not a.type.is_numeric:
            raise self._type_error(e, f"Unary {e.op} requires a numeric operand, but "
                                      f"{e.operand.to_sql()} is {a.type}")
        if e.op == "+":
            return a
        if a.type.base == "INTEGER":
            return Typed(self._null_guard([a], lambda n: _wrap(f"-{n[0]}", 32)), a.type, a.const)
        if a.type.base == "BIGINT":
            return Typed(self._null_guard([a], lambda n: _wrap(f"-{n[0]}", 64)), a.type, a.const)
        return Typed(self._null_guard([a], lambda n: f"(-{n[0]})"), a.type, a.const)

    def _arith(self, e: ast.BinaryOp) -> Typed:
        a = self.compile(e.left)
        b = self.compile(e.right)
        op = e.op
        ta, tb = a.type, b.type
        if ta.base == "STRING" and tb.base == "STRING" and op == "+":
            # Java string concatenation in ksqlDB's generated code: a null operand reads "null"
            # (ksql#9136: the compiled expression gives "nullfoo").
            return Typed(f"(_rt_str({a.code}) + _rt_str({b.code}))", STRING, a.const and b.const)
        if ta is NULL or tb is NULL:
            # ksqlDB's type checker refuses a NULL literal operand (ksql#7554; #7602 is open).
            raise self._type_error(e, f"Error processing expression: {e.to_sql()}. Arithmetic on "
                                      f"types {_type_or_null(ta)} and {_type_or_null(tb)} are "
                                      "not supported.")
        if not (ta.is_numeric and tb.is_numeric):
            raise self._type_error(e, f"Error processing expression: {e.to_sql()}. Unsupported "
                                      f"arithmetic types. {ta} {tb}")
        result = widen_numeric(ta, tb)
        const = a.const and b.const
        if result.base == "DECIMAL":
            rt = decimal_arithmetic(op, as_decimal(ta), as_decimal(tb))
            k = self.ns.const(rt, "T")
            a2 = self._to_decimal(a, ta)
            b2 = self._to_decimal(b, tb)
            # Exact, or null when the result needs rounding (ksqlDB's BigDecimal arithmetic).
            fn = self.ns.const(decimal_exact, "dec_op")
            code = self._null_guard([a2, b2], lambda n: f"{fn}({op!r}, {n[0]}, {n[1]}, {k})")
            return Typed(code, rt, const)
        if result.base == "DOUBLE":
            # A DECIMAL operand beside a DOUBLE is used as a double (ksqlDB casts it).
            a, b = self.coerce(a, DOUBLE), self.coerce(b, DOUBLE)
            if op == "/":
                code = self._null_guard([a, b], lambda n: f"_rt.double_div({n[0]}, {n[1]})")
            elif op == "%":
                code = self._null_guard([a, b], lambda n: f"_rt.double_mod({n[0]}, {n[1]})")
            else:
                code = self._null_guard([a, b], lambda n: f"float({n[0]} {op} {n[1]})")
            return Typed(code, DOUBLE, const)
        bits = 32 if result.base == "INTEGER" else 64
        if op == "/":
            code = self._null_guard([a, b], lambda n: f"_rt.int_div({n[0]}, {n[1]}, {bits})")
        elif op == "%":
            code = self._null_guard([a, b], lambda n: f"_rt.int_mod({n[0]}, {n[1]})")
        else:
            code = self._null_guard([a, b], lambda n: _wrap(f"{n[0]} {op} {n[1]}", bits))
        return Typed(code, result, const)

    def _exact(self, t: Typed) -> Typed:
        """A number as a Python Decimal for comparing; a DOUBLE keeps the DOUBLE type (no
        DECIMAL type holds every double) though its value is a Decimal."""
        if t.type.base == "DOUBLE":
            return Typed(self._null_guard([t], lambda n: f"_rt.double_to_decimal({n[0]})"),
                         t.type, t.const)
        return self._to_decimal(t, t.type)

    def _to_decimal(self, t: Typed, st: SqlType) -> Typed:
        if st.base == "DECIMAL":
            return t
        return Typed(self._null_guard([t], lambda n: f"_D({n[0]})"), as_decimal(st), t.const)

    def comparable(self, a: Typed, b: Typed, op: str, left: ast.Expression,
                   right: ast.Expression) -> tuple[Typed, Typed]:
        """Make two operands comparable or raise ksqlDB's error; returns coerced operands."""
        ta, tb = a.type, b.type
        if ta is NULL or tb is NULL or ta == tb:
            # ksqlDB's ComparisonUtil: BOOLEAN, ARRAY, MAP and STRUCT have = and <> only.
            if ta == tb and (isinstance(ta, MapType) or ta.base == "BOOLEAN") \
                    and op not in ("=", "<>"):
                raise self._cannot_compare(left, right, ta, tb, op)
            return a, b
        if ta.is_numeric and tb.is_numeric:
            w = widen_numeric(ta, tb)
            if w.base == "DOUBLE" and "DECIMAL" in (ta.base, tb.base):
                # SqlToJavaVisitor compares a DECIMAL with any number as BigDecimals: a DOUBLE
                # becomes BigDecimal.valueOf(d), its shortest decimal text, not a rounded double.
                return self._exact(a), self._exact(b)
            if w.base == "DOUBLE":
                return self.coerce(a, DOUBLE), self.coerce(b, DOUBLE)
            if w.base == "DECIMAL":
                return self._to_decimal(a, ta), self._to_decimal(b, tb)
            return a, b
        # A string literal compared with another type is cast to that type; compared with
        # ROWTIME/WINDOWSTART/WINDOWEND it is a timestamp text (ksqlDB's "magic" conversion).
        for lit_side, other in ((0, tb), (1, ta)):
            lit_expr = left if lit_side == 0 else right
            other_expr = right if lit_side == 0 else left
            lit = a if lit_side == 0 else b
            if (isinstance(lit_expr, ast.Literal) and lit.type.base == "STRING"
                    and isinstance(other_expr, ast.ColumnRef)
                    and other_expr.name in ("ROWTIME", "WINDOWSTART", "WINDOWEND")):
                converted = self.constant_cast(lit_expr, TIMESTAMP_T)
                converted = Typed(converted.code, other)
                return (converted, b) if lit_side == 0 else (a, converted)
            if isinstance(lit_expr, ast.Literal) and lit.type.base == "STRING" and (
                    other.is_numeric or other.is_temporal or other.base == "BOOLEAN") and \
                    self.coerce_string_literals:
                converted = self.constant_cast(lit_expr, other)
                return (converted, b) if lit_side == 0 else (a, converted)
        if ta.is_temporal and tb.is_temporal:
            if "TIME" in (ta.base, tb.base):  # a TIME compares with a TIME or a STRING only
                raise self._cannot_compare(left, right, ta, tb, op)
            return self._temporal(a), self._temporal(b)
        if ta.is_temporal and tb.base == "STRING" or tb.is_temporal and ta.base == "STRING":
            # A string expression is parsed as the other side's time type (a TIME as a TIME).
            target = TIME_T if "TIME" in (ta.base, tb.base) else TIMESTAMP_T
            return self.cast(a, target) if ta.base == "STRING" else self._temporal(a), \
                self.cast(b, target) if tb.base == "STRING" else self._temporal(b)
        if isinstance(ta, (ArrayType, MapType, StructType)) and type(ta) is type(tb):
            try:
                self._merge(ta, tb, None, left, "COMPARE")
            except StatementError:
                raise self._cannot_compare(left, right, ta, tb, op) from None
            return a, b
        raise self._cannot_compare(left, right, ta, tb, op)

    def _temporal(self, t: Typed) -> Typed:
        if t.type.base == "DATE":
            return Typed(self._null_guard([t], lambda n: f"({n[0]} * 86400000)"), TIMESTAMP_T)
        return t

    def _cannot_compare(self, left: ast.Expression, right: ast.Expression, ta: SqlType,
                        tb: SqlType, op: str) -> StatementError:
        return StatementError(f"Cannot compare {self.render(left)} ({ta}) to {self.render(right)} "
                              f"({tb}) with {_OP_NAMES.get(op, op)}.", left.line, left.column)

    def constant_cast(self, lit: ast.Literal, target: SqlType) -> Typed:
        """Cast a string literal at compile time; bad text is a statement error."""
        try:
            if target.base == "BOOLEAN":
                value = runtime.parse_bool(lit.value)  # coercion is stricter than CAST
            else:
                value = _cast_value(lit.value, STRING, target)
        except KsqlRuntimeError as err:
            raise StatementError(err.message, lit.line, lit.column) from None
        if isinstance(value, bool | int | str):
            return Typed(repr(value), target, True)
        if isinstance(value, float):
            return Typed(repr(value), target, True)
        return Typed(self.ns.const(value), target, True)

    def _comparison(self, e: ast.BinaryOp) -> Typed:
        a = self.compile(e.left)
        b = self.compile(e.right)
        op = e.op
        if a.type is NULL or b.type is NULL:
            # ksqlDB's ComparisonUtil refuses a NULL operand at compile time.
            raise StatementError(f"Comparison with NULL not supported: {a.type.base} {op} "
                                 f"{b.type.base}\nUse 'IS NULL' or 'IS NOT NULL' instead.",
                                 e.line, e.column)
        a, b = self.comparable(a, b, op, e.left, e.right)
        py = {"=": "==", "<>": "!="}.get(op, op)
        if isinstance(a.type, (ArrayType, MapType, StructType)) and op in ("<", "<=", ">", ">="):
            raise self._cannot_compare(e.left, e.right, a.type, b.type, op)
        k = _order_key(a.type) if op in ("<", "<=", ">", ">=") else ""
        return Typed(self._false_guard([a, b], lambda n: f"({k}({n[0]}) {py} {k}({n[1]}))"),
                     BOOLEAN, a.const and b.const)

    def _IsNull(self, e: ast.IsNull) -> Typed:
        a = self.compile(e.operand)
        return Typed(f"({a.code} is {'not ' if e.negated else ''}None)", BOOLEAN, a.const)

    def _IsDistinctFrom(self, e: ast.IsDistinctFrom) -> Typed:
        a = self.compile(e.left)
        b = self.compile(e.right)
        a, b = self.comparable(a, b, "=", e.left, e.right)
        x, y = self.ns.temp(), self.ns.temp()
        distinct = (f"((({x} := {a.code}) is None) != (({y} := {b.code}) is None) or "
                    f"({x} is not None and {x} != {y}))")
        return Typed(f"(not {distinct})" if e.negated else distinct, BOOLEAN)

    def _Between(self, e: ast.Between) -> Typed:
        v = self.compile(e.operand)
        lo = self.compile(e.low)
        hi = self.compile(e.high)
        if NULL in (v.type, lo.type, hi.type):
            # ksqlDB types a BETWEEN without looking at its operands, and its code generator
            # fails on an untyped NULL: the statement is refused.
            raise StatementError(f"Comparison with NULL not supported in BETWEEN: "
                                 f"{self.render(e)}", e.line, e.column)
        v1, lo = self.comparable(v, lo, ">=", e.operand, e.low)
        v2, hi = self.comparable(v, hi, "<=", e.operand, e.high)
        k = _order_key(v1.type)
        if v1.code == v2.code:
            body = self._false_guard([v1, lo, hi],
                                     lambda n: f"({k}({n[1]}) <= {k}({n[0]}) <= {k}({n[2]}))")
        else:  # the bounds convert the value differently (INT and DECIMAL and DOUBLE bounds)
            body = (f"({self._false_guard([v1, lo], lambda n: f'({n[0]} >= {n[1]})')} and "
                    f"{self._false_guard([v2, hi], lambda n: f'({n[0]} <= {n[1]})')})")
        # ksqlDB's AstBuilder wraps BETWEEN in a NotExpression: NOT of the comparisons' false on
        # a null operand is true.
        return Typed(f"(not {body})" if e.negated else body, BOOLEAN)

    def _InList(self, e: ast.InList) -> Typed:
        v0 = self.compile(e.operand)
        compiled = [(e.operand, v0)] + [(i, self.compile(i)) for i in e.items]
        _, converted = self.unify(compiled, e, "IN")
        v, items = converted[0], converted[1:]
        if all(it.const for it in items):
            values = [_eval_const(it.code, self.ns) for it in items]
            try:
                pool: Any = frozenset(x for x in values if x is not None)
            except TypeError:
                pool = [x for x in values if x is not None]
            k = self.ns.const(pool, "in")
            body = self._false_guard([v], lambda n: f"({n[0]} in {k})")
        else:
            lst = "[" + ", ".join(it.code for it in items) + "]"
            body = self._false_guard([v], lambda n: f"({n[0]} in {lst})")
        if e.negated:
            r = self.ns.temp()
            body = self._false_guard([v], lambda n: f"(not ({r} := {body}))")
        return Typed(body, BOOLEAN)

    def _Like(self, e: ast.Like) -> Typed:
        v = self.compile(e.operand)
        p = self.compile(e.pattern)
        for side, t in ((e.operand, v), (e.pattern, p)):
            if t.type.base not in ("STRING", "NULL"):
                raise self._type_error(side, f"Unsupported type for LIKE: {t.type}")
        esc = repr(e.escape)
        if p.const and p.code != "None":
            rx = self.ns.const(runtime.like_regex(_eval_const(p.code, self.ns), e.escape), "rx")
            neg = "is None" if e.negated else "is not None"
            body = self._null_guard([v], lambda n: f"({rx}.fullmatch({n[0]}) {neg})")
        else:
            neg = "not " if e.negated else ""
            body = self._null_guard([v, p], lambda n: f"({neg}_rt.like({n[0]}, {n[1]}, {esc}))")
        # A null operand is null, not false: ksqlDB's LikeEvaluator fails on it (no null check
        # in the generated code), which makes the expression null.
        return Typed(body, BOOLEAN)

    # ------------------------------------------------------------------ structure
    def _Dereference(self, e: ast.Dereference) -> Typed:
        base = self.compile(e.base)
        if not isinstance(base.type, StructType):
            raise self._type_error(e, f"Can't dereference non-struct type: {base.type} "
                                      f"({e.base.to_sql()})")
        ft = base.type.field(e.field)
        name = e.field
        if ft is None:
            raise self._type_error(e, f"Could not find field '{e.field}' in "
                                      f"'{e.base.to_sql()}'.")
        return Typed(self._null_guard([base], lambda n: f"{n[0]}.get({name!r})"), ft)

    def _Subscript(self, e: ast.Subscript) -> Typed:
        base = self.compile(e.base)
        idx = self.compile(e.index)
        if isinstance(base.type, ArrayType):
            if idx.type.base not in ("INTEGER", "BIGINT", "NULL"):
                raise self._type_error(e, f"Array index must be an integer: {e.index.to_sql()}")
            et = base.type.element or NULL
            return Typed(self._null_guard([base, idx], lambda n: f"_rt.array_index({n[0]}, {n[1]})"), et)
        if isinstance(base.type, MapType):
            kt = base.type.key or STRING
            idx = self.coerce(idx, kt) if idx.type.is_numeric and kt.is_numeric else idx
            vt = base.type.value or NULL
            return Typed(self._null_guard([base, idx], lambda n: f"{n[0]}.get({n[1]})"), vt)
        raise self._type_error(e, f"Subscript expression is only supported on ARRAY and MAP, "
                                  f"not {base.type}")

    def _ArrayConstructor(self, e: ast.ArrayConstructor) -> Typed:
        if not e.items:
            raise self._type_error(e, "Array constructor cannot be empty. Please supply at least "
                                      "one element (see https://github.com/confluentinc/ksql/issues/4239).")
        compiled = [(i, self.compile(i)) for i in e.items]
        if all(c.type is NULL for _, c in compiled):
            raise self._type_error(e, "Cannot construct an array with all NULL elements (see "
                                      "https://github.com/confluentinc/ksql/issues/4239). As a "
                                      "workaround, you may cast a NULL value to the desired type.")
        et, items = self.unify(compiled, e, "ARRAY")
        return Typed("[" + ", ".join(i.code for i in items) + "]", array_of(et),
                     all(i.const for i in items))

    def _MapConstructor(self, e: ast.MapConstructor) -> Typed:
        if not e.entries:
            raise self._type_error(e, "Map constructor cannot be empty. Please supply at least one "
                                      "key value pair (see https://github.com/confluentinc/ksql/issues/4239).")
        keys = [(k, self.compile(k)) for k, _ in e.entries]
        vals = [(v, self.compile(v)) for _, v in e.entries]
        if all(k.type is NULL for _, k in keys):
            raise self._type_error(e, "Cannot construct a map with all NULL keys")
        if all(v.type is NULL for _, v in vals):
            raise self._type_error(e, "Cannot construct a map with all NULL values")
        kt, kc = self.unify(keys, e, "MAP")
        vt, vc = self.unify(vals, e, "MAP")
        code = "{" + ", ".join(f"{k.code}: {v.code}" for k, v in zip(kc, vc, strict=True)) + "}"
        return Typed(code, map_of(kt, vt))

    # ------------------------------------------------------------------ implicit coercion
    def unify(self, items: list[tuple[ast.Expression, Typed]], node: ast.Node, what: str
              ) -> tuple[SqlType, list[Typed]]:
        """ksqlDB's coercion of a list of expressions to one type (constructors, IN, ...)."""
        target: SqlType = NULL
        from_literal = False
        for e, t in items:
            if t.type is NULL:
                continue
            is_str_lit = isinstance(e, ast.Literal) and t.type.base == "STRING"
            if target is NULL:
                target, from_literal = t.type, is_str_lit
                continue
            if from_literal and not is_str_lit and t.type.base != "STRING":
                target, from_literal = t.type, False
                continue
            merged = self._merge(target, t.type, e, node, what)
            target = merged
        converted = [self._convert(e, t, target, node, what) for e, t in items]
        return target, converted

    def _merge(self, target: SqlType, t: SqlType, e: ast.Expression | None, node: ast.Node,
               what: str) -> SqlType:
        if t is NULL or t == target:
            return target
        if target is NULL:
            return t
        lit = isinstance(e, ast.Literal)
        if target.is_numeric and t.is_numeric:
            return widen_numeric(target, t)
        if lit and t.base == "STRING" and e is not None:
            assert isinstance(e, ast.Literal)
            if target.is_numeric:
                lt = _numeric_text_type(e.value)
                if lt is None:
                    raise self._type_error(e, f"invalid input syntax for type {target}: "
                                              f"\"{e.value}\".")
                return widen_numeric(target, lt)
            if target.base in ("BOOLEAN", "DATE", "TIME", "TIMESTAMP"):
                return target
        if target.base == "STRING" and lit:
            return target
        # Constructors of literals merge element by element, so ARRAY['3'] fits ARRAY<BIGINT>.
        if isinstance(e, ast.ArrayConstructor) and isinstance(target, ArrayType):
            elem: SqlType = target.element or NULL
            for item in e.items:
                elem = self._merge(elem, self.compile(item).type, item, node, what)
            return array_of(elem if elem is not NULL else None)
        if isinstance(e, ast.StructConstructor) and isinstance(target, StructType):
            fields = dict(target.fields)
            for n, fe in e.fields:
                ft = self.compile(fe).type
                fields[n] = self._merge(fields[n], ft, fe, node, what) if n in fields else ft
            return struct_of(list(fields.items()))
        if isinstance(target, StructType) and isinstance(t, StructType):
            fields = dict(target.fields)
            for n, ft in t.fields:
                fields[n] = self._merge(fields[n], ft, None, node, what) if n in fields else ft
            return struct_of(list(fields.items()))
        if isinstance(target, ArrayType) and isinstance(t, ArrayType):
            if target.element is None:
                return t
            if t.element is None:
                return target
            return array_of(self._merge(target.element, t.element, None, node, what))
        if isinstance(target, MapType) and isinstance(t, MapType):
            if target.key is None or target.value is None:
                return t
            if t.key is None or t.value is None:
                return target
            return map_of(self._merge(target.key, t.key, None, node, what),
                          self._merge(target.value, t.value, None, node, what))
        where = e if e is not None else node
        if what == "CASE":
            raise StatementError("Invalid Case expression. Type for all 'THEN' clauses should be "
                                 f"the same.\nTHEN expression types: {target} and {t}",
                                 where.line, where.column)
        raise StatementError(f"operator does not exist: {target} = {t} "
                             f"({where.to_sql() if isinstance(where, ast.Expression) else ''})\n"
                             "Hint: You might need to add explicit type casts.",
                             where.line, where.column)

    def _convert(self, e: ast.Expression, t: Typed, target: SqlType, node: ast.Node,
                 what: str) -> Typed:
        if t.type is NULL:
            return Typed(t.code, target, t.const)
        if t.type == target:
            return t
        if isinstance(e, ast.Literal):
            if t.type.base == "STRING" and target.base != "STRING":
                return self.constant_cast(e, target)
            if target.base == "STRING":
                return Typed(repr(runtime.to_string(e.value, t.type)), STRING, True)
        if isinstance(e, ast.ArrayConstructor) and isinstance(target, ArrayType) \
                and target.element is not None:
            items = [self._convert(i, self.compile(i), target.element, node, what) for i in e.items]
            return Typed("[" + ", ".join(i.code for i in items) + "]", target)
        if isinstance(e, ast.StructConstructor) and isinstance(target, StructType):
            given = dict(e.fields)
            parts = []
            for n, ft in target.fields:
                if n in given:
                    fe = given[n]
                    parts.append(f"{n!r}: {self._convert(fe, self.compile(fe), ft, node, what).code}")
                else:
                    parts.append(f"{n!r}: None")
            return Typed("{" + ", ".join(parts) + "}", target)
        if isinstance(target, StructType) and isinstance(t.type, StructType):
            src_t = t.type
            code = self._null_guard([t], lambda n: _struct_rebuild(n[0], target, src_t, self))
            return Typed(code, target, t.const)
        return self.coerce(t, target)

    def _StructConstructor(self, e: ast.StructConstructor) -> Typed:
        fields = [(n, self.compile(v)) for n, v in e.fields]
        code = "{" + ", ".join(f"{n!r}: {t.code}" for n, t in fields) + "}"
        return Typed(code, struct_of([(n, t.type if t.type is not NULL else STRING)
                                      for n, t in fields]))

    def _Case(self, e: ast.Case) -> Typed:
        conds: list[Typed] = []
        if e.operand is not None:
            # ksqlDB parses the simple form (CASE x WHEN v THEN ...) but no visitor of its
            # engine implements it: its ExpressionTypeManager refuses every statement using it.
            raise self._type_error(e, "not yet implemented: io.confluent.ksql.execution.util."
                                      "ExpressionTypeManager$Visitor.visitSimpleCaseExpression")
        for w, _ in e.whens:
            conds.append(self.compile_predicate(w, "CASE"))
        results = [self.compile(r) for _, r in e.whens]
        default = self.compile(e.default) if e.default is not None else Typed("None", NULL, True)
        rtypes = [r.type for r in results] + [default.type]
        if all(t is NULL for t in rtypes):
            raise self._type_error(e, "Invalid Case expression. All case branches have NULL type")
        rt = self._case_type(e, results, default)
        results = [self.coerce(r, rt) for r in results]
        default = self.coerce(default, rt)
        code = default.code
        for c, r in reversed(list(zip(conds, results, strict=True))):
            code = f"({r.code} if {c.code} is True else {code})"
        return Typed(code, rt)

    def _case_type(self, e: ast.Case, results: list[Typed], default: Typed) -> SqlType:
        """ksqlDB's ExpressionTypeManager: every THEN and the ELSE have the very same type (no
        widening: INT and BIGINT, or DECIMAL(2, 1) and DECIMAL(3, 1), are refused); NULL
        branches take it."""
        then_type: SqlType | None = None
        for (cond, result_expr), r in zip(e.whens, results, strict=True):
            if r.type is NULL:
                continue
            if then_type is None:
                then_type = r.type
            elif r.type != then_type:
                raise StatementError(
                    "Invalid Case expression. Type for all 'THEN' clauses should be the same.\n"
                    f"THEN expression 'WHEN {cond.to_sql()} THEN {result_expr.to_sql()}' has "
                    f"type: {r.type}.\nPrevious THEN expression(s) type: {then_type}.",
                    e.line, e.column)
        if then_type is not None and default.type is not NULL and default.type != then_type:
            raise StatementError(
                "Invalid Case expression. Type for the default clause should be the same as for "
                f"'THEN' clauses.\nTHEN type: {then_type}.\nDEFAULT type: {default.type}.",
                e.line, e.column)
        return then_type if then_type is not None else default.type

    def _Cast(self, e: ast.Cast) -> Typed:
        a = self.compile(e.operand)
        target = self.resolve_type(e.target, e)
        if not _cast_supported(a.type, target):
            raise self._type_error(e, f"Cast of {a.type} to {target} is not supported")
        return self.cast(a, target)

    def resolve_type(self, t: SqlType, node: ast.Node) -> SqlType:
        from hayase.sql.parser import NamedType

        if isinstance(t, NamedType):
            name = str(t)
            if name not in self.types:
                raise StatementError(f"Unknown type: {name}", node.line, node.column)
            return self.types[name]
        if isinstance(t, ArrayType) and t.element is not None:
            return array_of(self.resolve_type(t.element, node))
        if isinstance(t, MapType) and t.key is not None and t.value is not None:
            return map_of(self.resolve_type(t.key, node), self.resolve_type(t.value, node))
        if isinstance(t, StructType):
            return struct_of([(n, self.resolve_type(ft, node)) for n, ft in t.fields])
        return t

    def cast(self, a: Typed, target: SqlType) -> Typed:
        if a.type == target:
            return a
        if a.type is NULL:
            return Typed("None", target, True)
        src = self.ns.const(a.type, "T")
        dst = self.ns.const(target, "T")
        return Typed(self._null_guard([a], lambda n: f"_cast({n[0]}, {src}, {dst})"), target,
                     a.const)

    def _Lambda(self, e: ast.Lambda) -> Typed:
        raise self._type_error(e, "Lambda expressions are only allowed as function arguments")

    def compile_lambda(self, e: ast.Lambda, param_types: list[SqlType]) -> Typed:
        if len(param_types) != len(e.params):
            raise self._type_error(e, f"Lambda expects {len(param_types)} arguments, "
                                      f"got {len(e.params)}")
        frame: dict[str, tuple[str, SqlType]] = {}
        for p, t in zip(e.params, param_types, strict=True):
            frame[p] = ("_L_" + re.sub(r"\W", "_", p) + f"_{len(self.lambdas)}", t)
        self.lambdas.append(frame)
        try:
            body = self.compile(e.body)
        finally:
            self.lambdas.pop()
        params = ", ".join(py for py, _ in frame.values())
        return Typed(f"(lambda {params}: {body.code})", LambdaType(body.type, len(frame)))

    def _FunctionCall(self, e: ast.FunctionCall) -> Typed:
        from hayase.sql.functions import FunctionArgError, lookup

        if id(e) in self.table_slots:
            idx, st = self.table_slots[id(e)]
            return Typed(f"row[{idx}]", st)
        udf = lookup(e.name)
        if udf is None:
            raise self._type_error(e, f"Can't find any functions with the name '{e.name}'")
        if udf.table:
            raise self._type_error(e, f"Table function {e.name} can only be used as a top-level "
                                      "expression of a SELECT")
        if udf.aggregate and not self.allow_aggregates:
            raise self._type_error(e, f"Use of aggregate function {e.name} requires a GROUP BY "
                                      "clause.")
        args: list[Typed] = []
        from hayase.sql.functions.datetime_fns import TIME_UNIT_FUNCTIONS

        call_args = list(e.args)
        if (udf.name in TIME_UNIT_FUNCTIONS and call_args and isinstance(call_args[0], ast.ColumnRef)
                and call_args[0].source is None and call_args[0].name in ast.TIME_UNITS):
            unit = call_args[0]
            call_args[0] = ast.Literal(unit.name, STRING, line=unit.line, column=unit.column)
        for i, arg in enumerate(call_args):
            if isinstance(arg, ast.Lambda):
                if udf.lambda_params is None:
                    raise self._type_error(arg, f"Function '{e.name.lower()}' does not accept "
                                                f"lambda arguments")
                try:
                    ptypes = udf.lambda_params([a.type for a in args], i)
                except FunctionArgError as err:
                    raise self._type_error(e, str(err)) from None
                args.append(self.compile_lambda(arg, ptypes))
            else:
                args.append(self.compile(arg))
        if udf.precheck is not None:
            try:
                udf.precheck([a.type for a in args])
            except FunctionArgError as err:
                raise self._type_error(e, str(err)) from None
        if udf.unify_args and args and not any(isinstance(x, ast.Lambda) for x in call_args):
            try:
                _, args = self.unify(list(zip(call_args, args, strict=True)), e, "FUNCTION")
            except StatementError:
                from hayase.sql.functions import format_types

                raise self._type_error(e, f"Function '{e.name.lower()}' does not accept parameters "
                                          f"({format_types([a.type for a in args])}).") from None
        arg_types = [a.type for a in args]
        try:
            bound = udf.bind(arg_types, [_literal_value(x) for x in call_args])
        except FunctionArgError as err:
            raise self._type_error(e, str(err)) from None
        if bound.coerce:
            coerced: list[Typed] = []
            for i, a in enumerate(args):
                target = bound.coerce[i] if i < len(bound.coerce) else None
                coerced.append(a if target is None else self.coerce(a, target))
            args = coerced
        fn = self.ns.const(_safe_call(bound.impl, self.ns.values, e.name), "f")
        const = all(a.const for a in args) and udf.deterministic
        if bound.nulls:
            code = self._null_guard(args, lambda n: f"{fn}({', '.join(n)})")
        else:
            code = f"{fn}({', '.join(a.code for a in args)})"
        return Typed(code, bound.return_type, const)


TIMESTAMP_T = SqlType("TIMESTAMP")
TIME_T = SqlType("TIME")


class LambdaType(SqlType):
    """Type of a compiled lambda argument: what its body returns."""

    def __init__(self, returns: SqlType, arity: int) -> None:
        super().__init__("LAMBDA")
        object.__setattr__(self, "returns", returns)
        object.__setattr__(self, "arity", arity)

    def __str__(self) -> str:
        return f"LAMBDA<{self.returns}>"  # type: ignore[attr-defined]


def _struct_rebuild(name: str, target: StructType, src: StructType,
                    comp: ExpressionCompiler) -> str:
    parts = []
    for n, ft in target.fields:
        st = src.field(n)
        if st is None:
            parts.append(f"{n!r}: None")
        else:
            inner = comp.coerce(Typed(f"{name}.get({n!r})", st), ft)
            parts.append(f"{n!r}: {inner.code}")
    return "{" + ", ".join(parts) + "}"


def _numeric_text_type(text: str) -> SqlType | None:
    """Type of a number written as text ('10' INTEGER, '4.000' DECIMAL(4, 3), '2e1' DECIMAL)."""
    s = text.strip()
    try:
        if re.fullmatch(r"[+-]?\d+", s):
            v = int(s)
            return INTEGER if -2**31 <= v < 2**31 else BIGINT
        d = decimal.Decimal(s)
    except (ValueError, decimal.InvalidOperation):
        return None
    if not d.is_finite():
        return DOUBLE
    sign, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    scale = max(0, -exp)
    precision = max(len(digits) + max(exp, 0), scale, 1)
    from hayase.sql.types import decimal_type

    return decimal_type(min(precision, 38), scale)


def _safe_call(impl: Callable[..., Any], values: dict[str, Any], name: str) -> Callable[..., Any]:
    """ksqlDB evaluates each function call on its own: a failure yields null and is logged."""

    def call(*args: Any) -> Any:
        try:
            return impl(*args)
        except Exception as e:  # noqa: BLE001 - any UDF failure becomes null + processing log
            values["on_error"](KsqlRuntimeError(f"Error computing {name}: {e}"))
            return None
    call.__name__ = f"udf_{name}"
    return call


def _safe_cast(values: dict[str, Any]) -> Callable[..., Any]:
    def cast(v: Any, src: SqlType, dst: SqlType) -> Any:
        try:
            return _cast_value(v, src, dst)
        except Exception as e:  # noqa: BLE001 - a failed CAST is null, as in ksqlDB
            values["on_error"](KsqlRuntimeError(f"Failed to cast {v!r} to {dst}: {e}"))
            return None
    return cast


def _literal_value(e: ast.Expression) -> Any:
    if isinstance(e, ast.Literal):
        return e.value
    if isinstance(e, ast.UnaryOp) and e.op == "-" and isinstance(e.operand, ast.Literal):
        return -e.operand.value
    return _NOT_LITERAL


class _NotLiteral:
    def __repr__(self) -> str:
        return "<not a literal>"


_NOT_LITERAL = _NotLiteral()
NOT_LITERAL = _NOT_LITERAL


def _wrap(expr: str, bits: int) -> str:
    if bits == 32:
        return f"((({expr}) + 2147483648) & 4294967295) - 2147483648"
    return f"((({expr}) + 9223372036854775808) & 18446744073709551615) - 9223372036854775808"


_SIMPLE = re.compile(r"^(row\[\d+\]|_[A-Za-z0-9_]+|[0-9.]+|'[^']*')$")


_LITERAL_CODE = re.compile(r"^(-?[0-9][0-9.eE+-]*|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|True|False)$")


def _order_key(t: SqlType) -> str:
    """The generated code's sort-key call for ordering values of ``t`` (nothing but STRING
    needs one: String.compareTo orders UTF-16 units)."""
    return "_rt.java_string_key" if t.base == "STRING" else ""


def _is_literal_code(code: str) -> bool:
    return bool(_LITERAL_CODE.match(code))


def _is_simple(code: str) -> bool:
    return bool(_SIMPLE.match(code))


def _eval_const(code: str, ns: CodeNamespace) -> Any:
    return eval(code, dict(ns.values, _cast=cast_value))  # noqa: S307 - our own generated code




# --------------------------------------------------------------------------- CAST


def _cast_supported(src: SqlType, dst: SqlType) -> bool:
    s, d = src.base, dst.base
    if s == "NULL" or src == dst:
        return True
    if d == "STRING":
        return s != "BYTES"
    if d in ("INTEGER", "BIGINT", "DOUBLE", "DECIMAL"):
        return s in ("INTEGER", "BIGINT", "DOUBLE", "DECIMAL", "STRING")
    if d == "BOOLEAN":
        return s in ("BOOLEAN", "STRING")
    if d == "TIMESTAMP":
        return s in ("TIMESTAMP", "STRING", "DATE")
    if d == "DATE":
        return s in ("DATE", "STRING", "TIMESTAMP")
    if d == "TIME":
        return s in ("TIME", "STRING", "TIMESTAMP")
    if d == "BYTES":  # ksqlDB reads a string as base64
        return s in ("BYTES", "STRING")
    if isinstance(dst, ArrayType) and isinstance(src, ArrayType):
        return src.element is None or dst.element is None or _cast_supported(src.element, dst.element)
    if isinstance(dst, MapType) and isinstance(src, MapType):
        return ((src.key is None or dst.key is None or _cast_supported(src.key, dst.key))
                and (src.value is None or dst.value is None
                     or _cast_supported(src.value, dst.value)))
    if isinstance(dst, StructType) and isinstance(src, StructType):
        return all(src.field(n) is None or _cast_supported(src.field(n) or NULL, t)
                   for n, t in dst.fields)
    return False


def cast_value(v: Any, src: SqlType, dst: SqlType) -> Any:
    """Runtime CAST of a non-null value (generated code calls it as ``_cast``)."""
    return _cast_value(v, src, dst)


def _cast_value(v: Any, src: SqlType, dst: SqlType) -> Any:
    if v is None:
        return None
    s, d = src.base, dst.base
    if src == dst:
        return v
    if d == "STRING":
        return runtime.to_string(v, src)
    if d in ("INTEGER", "BIGINT"):
        bits = 32 if d == "INTEGER" else 64
        if s == "STRING":
            return runtime.parse_int(v, bits)
        if s == "DOUBLE":
            return runtime.double_to_int(v, bits)
        if s == "DECIMAL":
            return runtime.decimal_to_int(v, bits)
        return runtime.wrap_int(v) if bits == 32 else runtime.wrap_bigint(v)
    if d == "DOUBLE":
        if s == "STRING":
            return runtime.parse_double(v)
        return float(v)
    if isinstance(dst, DecimalType):
        if s == "STRING":
            return runtime.parse_decimal(v, dst)
        return runtime.dec(v, dst)
    if d == "BOOLEAN":
        # CAST (ksqlDB's SqlBooleans.parseBoolean): a non-empty prefix of "true" or "yes", in
        # any case, is true; any other text is false.
        if s == "STRING":
            low = v.strip().lower()
            return bool(low) and ("true".startswith(low) or "yes".startswith(low))
        return bool(v)
    if d == "TIMESTAMP":
        if s == "STRING":
            return runtime.parse_timestamp(v)
        if s == "DATE":
            return v * 86_400_000
        return v
    if d == "DATE":
        if s == "STRING":
            return runtime.parse_date(v)
        if s == "TIMESTAMP":
            return v // 86_400_000
        return v
    if d == "BYTES":
        # Java's strict base64 decoder: bad text fails the cast (null).
        return base64.b64decode(v.strip(), validate=True)
    if d == "TIME":
        if s == "STRING":
            return runtime.parse_time(v)
        if s == "TIMESTAMP":
            return v % 86_400_000
        return v
    if isinstance(dst, ArrayType) and isinstance(src, ArrayType):
        if src.element is None or dst.element is None:
            return list(v)
        return [_cast_value(x, src.element, dst.element) for x in v]
    if isinstance(dst, MapType) and isinstance(src, MapType):
        sk, sv = src.key or STRING, src.value or STRING
        return {_cast_value(k, sk, dst.key or sk): _cast_value(x, sv, dst.value or sv)
                for k, x in v.items()}
    if isinstance(dst, StructType) and isinstance(src, StructType):
        out = {}
        for n, t in dst.fields:
            st = src.field(n)
            out[n] = None if st is None else _cast_value(v.get(n), st, t)
        return out
    raise KsqlRuntimeError(f"Cast of {src} to {dst} is not supported")


# --------------------------------------------------------------------------- building


def build_function(name: str, params: str, body_lines: list[str], ns: CodeNamespace) -> Callable[..., Any]:
    """Compile ``def name(params): body`` with the query's namespace and return it."""
    src = f"def {name}({params}):\n" + "\n".join("    " + ln for ln in body_lines) + "\n"
    glb = ns.values
    code = compile(src, f"<hayase-sql:{name}>", "exec")
    exec(code, glb)  # noqa: S102 - generated from the analyzed AST, never from raw text
    fn = glb[name]
    fn.__hayase_source__ = src
    return fn  # type: ignore[no-any-return]


def _type_or_null(t: SqlType) -> str:
    """A type as ksqlDB's messages print it; the NULL literal's (Java null) prints as null."""
    return "null" if t is NULL else str(t)


def guarded(code: str, target: str, label: str) -> list[str]:
    """Statement lines evaluating ``code`` into ``target``; a failure logs and yields null."""
    if _is_simple(code) or _is_literal_code(code) or code == "None":
        return [f"{target} = {code}"]  # cannot fail: no try block needed
    return [
        "try:",
        f"    {target} = {code}",
        "except Exception as _e:",
        f"    {target} = None",
        f"    on_error(_KsqlRuntimeError({('Error computing expression ' + label + ': ')!r} + str(_e)))",
    ]


__all__ = ["ExpressionCompiler", "Scope", "ScopeColumn", "CodeNamespace", "Typed",
           "build_function", "guarded", "cast_value", "LambdaType", "NOT_LITERAL", "INTEGER"]
