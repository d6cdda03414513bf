"""Text -> AST for hayase's ksqlDB dialect (lark LALR over our own grammar.lark)."""

from __future__ import annotations

import decimal
import hashlib
import math
import os
import re
import sys
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import lark
from lark import Token, Transformer, v_args

from hayase.sql import ast
from hayase.sql.errors import ParseError
from hayase.sql.types import (
    BIGINT,
    BIGINT_MAX,
    BIGINT_MIN,
    BOOLEAN,
    DOUBLE,
    INT_MAX,
    INT_MIN,
    INTEGER,
    NULL,
    PRIMITIVES,
    STRING,
    ArrayType,
    SqlType,
    array_of,
    decimal_type,
    map_of,
    struct_of,
)

__all__ = ["parse", "parse_expression", "parse_type", "split_statements", "NamedType"]


class NamedType(SqlType):
    """A type referenced by name (``CREATE TYPE``); the analyzer replaces it with its definition."""

    def __init__(self, name: str) -> None:
        super().__init__("NAMED:" + name)
        object.__setattr__(self, "name", name)

    def __str__(self) -> str:
        return self.base[6:]


_LARK_OPTIONS: dict[str, Any] = {
    "parser": "lalr", "lexer": "contextual", "propagate_positions": True,
    "maybe_placeholders": True, "start": ["start", "single_expression", "single_type"]}


def _grammar_cache(grammar: str) -> Path | None:
    """Where lark keeps its analysed grammar: building the LALR tables takes ~0.3 s, a third of
    `hayase run`'s start-up; loading them ~0.1 s. The file sits in the user's own cache folder
    (lark's default is the shared temporary folder, and the file is a pickle) and its name
    carries a hash of everything it depends on, so one name only ever has one content. None
    without a writable cache folder."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hayase"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    inputs = f"{grammar}{sorted(_LARK_OPTIONS.items())}{lark.__version__}{sys.version_info[:2]}"
    return base / f"sql-grammar-{hashlib.sha256(inputs.encode()).hexdigest()[:16]}.lark"


@lru_cache(maxsize=1)
def _parser() -> lark.Lark:
    grammar = resources.files("hayase.sql").joinpath("grammar.lark").read_text()
    cache = _grammar_cache(grammar)
    if cache is not None:
        try:
            with cache.open("rb") as f:
                return lark.Lark.load(f)
        except FileNotFoundError:
            pass
        except Exception:  # noqa: BLE001 - a damaged or foreign file: build and replace it
            pass
    parser = lark.Lark(grammar, **_LARK_OPTIONS)
    if cache is not None:
        # Written under a name of this process's own, then renamed: processes starting together
        # (two `hayase run`s) never read a half-written file.
        partial = cache.with_name(f"{cache.name}.{os.getpid()}.partial")
        try:
            with partial.open("wb") as f:
                parser.save(f)
            os.replace(partial, cache)
        except OSError:
            partial.unlink(missing_ok=True)
    return parser


# --------------------------------------------------------------------------- splitting


def split_statements(text: str) -> list[tuple[str, int, int]]:
    """Split on ``;`` outside strings, quoted identifiers and comments.

    Returns ``(statement_text, line, column)`` with the 1-based position where each starts;
    the trailing ``;`` is kept off, empty statements are dropped.
    """
    out: list[tuple[str, int, int]] = []
    i, n, start = 0, len(text), 0
    while i < n:
        ch = text[i]
        if ch in "'`\"":
            j = i + 1
            while j < n:
                if text[j] == ch:
                    if j + 1 < n and text[j + 1] == ch:
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
        elif text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif ch == ";":
            _add_statement(out, text, start, i)
            i += 1
            start = i
        else:
            i += 1
    _add_statement(out, text, start, n)
    return out


def _add_statement(out: list[tuple[str, int, int]], text: str, start: int, end: int) -> None:
    chunk = text[start:end]
    stripped = _strip_comments(chunk).strip()
    if not stripped:
        return
    lead = len(chunk) - len(chunk.lstrip())
    pos = start + lead
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    out.append((chunk.strip(), line, column))


def _strip_comments(chunk: str) -> str:
    lines = [ln for ln in chunk.splitlines() if not ln.strip().startswith("--")]
    return "\n".join(lines)


# --------------------------------------------------------------------------- entry points


def parse(text: str) -> list[ast.Statement]:
    """Parse one or more ``;``-separated statements."""
    statements: list[ast.Statement] = []
    for chunk, line, column in split_statements(text):
        statements.append(parse_statement(chunk, line, column))
    return statements


def parse_statement(text: str, line: int = 1, column: int = 1) -> ast.Statement:
    """Parse exactly one statement; positions in errors are offset by ``line``/``column``."""
    m = _ALTER.match(text)
    if m:
        # ALTER is recognised (so it can be refused with a statement error) but not parsed further.
        name = m.group(3)
        name = name[1:-1].replace("``", "`") if name.startswith("`") else name.upper()
        alter = ast.Alter(m.group(2).upper(), name, m.group(4).strip(), line=line, column=column)
        alter.text = text.strip()
        return alter
    try:
        tree = _run(text, "start", line, column)
        result = _transform(tree, line, column)
    except ParseError as e:
        # ksqlDB ends parse errors with the statement they were found in.
        if "\nStatement: " not in e.message:
            e.message += "\nStatement: " + text.strip().rstrip(";") + ";"
            e.args = (e.message,)
        raise
    if len(result) != 1:
        raise ParseError("Expected exactly one statement", line, column)
    stmt = result[0]
    stmt.text = text.strip().rstrip(";").strip() + ";"
    return stmt  # type: ignore[no-any-return]


_ALTER = re.compile(r"^\s*(ALTER)\s+(STREAM|TABLE)\s+(`(?:[^`]|``)+`|[A-Za-z_][A-Za-z0-9_@$]*)\s*(.*)$",
                    re.IGNORECASE | re.DOTALL)


def parse_expression(text: str) -> ast.Expression:
    return _transform(_run(text, "single_expression", 1, 1), 1, 1)  # type: ignore[no-any-return]


def parse_type(text: str) -> SqlType:
    return _transform(_run(text, "single_type", 1, 1), 1, 1)  # type: ignore[no-any-return]


def _run(text: str, start: str, line: int, column: int) -> lark.Tree:
    try:
        return _parser().parse(text, start=start)
    except lark.exceptions.UnexpectedInput as e:
        raise _convert_error(e, text, line, column) from None


def _transform(tree: lark.Tree, line: int, column: int) -> Any:
    try:
        result = _Builder(line, column).transform(tree)
        for root in result if isinstance(result, list) else [result]:
            if isinstance(root, ast.Node):
                _finish(root, line, column)
        return result
    except lark.exceptions.VisitError as e:
        if isinstance(e.orig_exc, ParseError):
            raise e.orig_exc from None
        raise


def _finish(root: ast.Node, line: int, column: int) -> None:
    """Refuse integer literals left out of range (2^63 not negated)."""
    for node in root.walk():
        if isinstance(node, ast.Literal) and hasattr(node, "overflow_meta"):
            b = _Builder(line, column)
            b._check_literal(node, node.overflow_meta, negated=False)


def _shift(line: int, column: int, at_line: int, at_col: int) -> tuple[int, int]:
    """Position inside a statement -> position in the whole text."""
    if at_line == 1:
        return line, column + at_col - 1
    return line + at_line - 1, at_col


def _convert_error(e: lark.exceptions.UnexpectedInput, text: str, line: int,
                   column: int) -> ParseError:
    el, ec = _shift(line, column, getattr(e, "line", 1) or 1, getattr(e, "column", 1) or 1)
    if isinstance(e, lark.exceptions.UnexpectedToken):
        tok = e.token
        if tok.type != "$END" and not text[:getattr(tok, "start_pos", 1) or 0].strip():
            # ksqlDB names a statement whose first word starts no statement it knows.
            return ParseError(f"line {el}:{ec}: Syntax Error\nUnknown statement '{tok}'", el, ec)
        msg = "mismatched input '<EOF>'" if tok.type == "$END" else f"mismatched input '{tok}'"
        expected = sorted(_describe_terminal(t) for t in e.expected if not t.startswith("__"))
        if expected:
            msg += " expecting {" + ", ".join(expected[:12]) + "}"
        return ParseError(f"line {el}:{ec}: Syntax Error\n{msg}", el, ec)
    if isinstance(e, lark.exceptions.UnexpectedCharacters):
        pos = e.pos_in_stream or 0
        ch = text[pos] if pos < len(text) else ""
        return ParseError(f"line {el}:{ec}: Syntax Error\nextraneous input '{ch}'", el, ec)
    return ParseError(f"line {el}:{ec}: Syntax Error", el, ec)


_PUNCT = {"LPAR": "'('", "RPAR": "')'", "COMMA": "','", "SEMICOLON": "';'", "DOT": "'.'",
          "EQUAL": "'='", "STAR": "'*'", "LSQB": "'['", "RSQB": "']'", "LESSTHAN": "'<'",
          "MORETHAN": "'>'", "IDENT": "IDENTIFIER", "QUOTED_IDENT": "QUOTED_IDENTIFIER",
          "STRING": "STRING", "$END": "<EOF>"}


def _describe_terminal(name: str) -> str:
    return _PUNCT.get(name, f"'{name}'" if name.isupper() else name)


# --------------------------------------------------------------------------- tree -> AST


def _pos(node: ast.Node, meta: Any, base_line: int, base_col: int) -> ast.Node:
    if meta is not None and not getattr(meta, "empty", True):
        node.line, node.column = _shift(base_line, base_col, meta.line, meta.column)
    return node


def _strip_string(tok: str) -> str:
    return tok[1:-1].replace("''", "'")


_ARITH = {"+", "-", "*", "/", "%"}


@v_args(meta=True, inline=True)
class _Builder(Transformer):  # type: ignore[type-arg]
    """Turns lark's parse tree into :mod:`hayase.sql.ast` nodes."""

    def __init__(self, line: int, column: int) -> None:
        super().__init__()
        self.base_line, self.base_col = line, column

    def _p(self, node: ast.Node, meta: Any) -> Any:
        return _pos(node, meta, self.base_line, self.base_col)

    def _error(self, message: str, meta: Any) -> ParseError:
        line, col = _shift(self.base_line, self.base_col, meta.line, meta.column)
        return ParseError(f"line {line}:{col}: {message}", line, col)

    def _tok_error(self, message: str, tok: Token) -> ParseError:
        line, col = _shift(self.base_line, self.base_col, tok.line or 1, tok.column or 1)
        return ParseError(f"line {line}:{col}: {message}", line, col)

    # ---- top level
    def start(self, meta: Any, *stmts: Any) -> list[Any]:
        return [s for s in stmts if isinstance(s, ast.Statement)]

    def single_expression(self, meta: Any, e: Any) -> Any:
        return e

    def single_type(self, meta: Any, t: Any) -> Any:
        return t

    # ---- identifiers
    def plain_ident(self, meta: Any, tok: Token) -> str:
        return str(tok).upper()

    def quoted_ident(self, meta: Any, tok: Token) -> str:
        return str(tok)[1:-1].replace("``", "`")

    def dquoted_ident(self, meta: Any, tok: Token) -> str:
        return str(tok)[1:-1].replace('""', '"')

    def map_column(self, meta: Any, _m: Token) -> ast.ColumnRef:
        return self._p(ast.ColumnRef("MAP"), meta)  # type: ignore[no-any-return]

    def function_name(self, meta: Any, name: str) -> str:
        return name

    # ---- literals
    def null_lit(self, meta: Any, _t: Token) -> ast.Literal:
        return self._p(ast.Literal(None, NULL), meta)  # type: ignore[no-any-return]

    def true_lit(self, meta: Any, _t: Token) -> ast.Literal:
        return self._p(ast.Literal(True, BOOLEAN), meta)  # type: ignore[no-any-return]

    def false_lit(self, meta: Any, _t: Token) -> ast.Literal:
        return self._p(ast.Literal(False, BOOLEAN), meta)  # type: ignore[no-any-return]

    def string_lit(self, meta: Any, tok: Token) -> ast.Literal:
        return self._p(ast.Literal(_strip_string(tok), STRING), meta)  # type: ignore[no-any-return]

    def int_lit(self, meta: Any, tok: Token) -> ast.Literal:
        lit = ast.Literal(int(str(tok)), INTEGER)
        lit.text = str(tok)  # type: ignore[attr-defined]
        return self._p(lit, meta)  # type: ignore[no-any-return]

    def decimal_lit(self, meta: Any, tok: Token) -> ast.Literal:
        value = decimal.Decimal(str(tok))
        digits = value.as_tuple().digits
        exponent = value.as_tuple().exponent
        scale = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        precision = max(len(digits), scale, 1)
        return self._p(ast.Literal(value, decimal_type(precision, scale)), meta)  # type: ignore[no-any-return]

    def double_lit(self, meta: Any, tok: Token) -> ast.Literal:
        lit = ast.Literal(float(str(tok)), DOUBLE)
        lit.text = str(tok)  # type: ignore[attr-defined]
        return self._p(lit, meta)  # type: ignore[no-any-return]

    def literal(self, meta: Any, lit: ast.Literal) -> ast.Literal:
        out_of_range = (lit.type is INTEGER and isinstance(lit.value, int)
                        and lit.value > BIGINT_MAX) or (
            lit.type is DOUBLE and isinstance(lit.value, float) and math.isinf(lit.value))
        if out_of_range:
            # The sign may still come (unary minus): checked in unary_sign, or in _finish.
            lit.overflow_meta = meta  # type: ignore[attr-defined]
            return lit
        return self._check_literal(lit, meta, negated=False)

    def _literal_error(self, message: str, meta: Any) -> ParseError:
        """ksqlDB refuses a literal while preparing the statement (after parsing); its message
        names the column after the literal's (its node location is 1-based and its message
        prefix adds one). ``column`` stays the literal's."""
        line, col = _shift(self.base_line, self.base_col, meta.line, meta.column)
        return ParseError(f"Failed to prepare statement: line {line}:{col + 1}: {message}",
                          line, col)

    def _check_literal(self, lit: ast.Literal, meta: Any, negated: bool) -> ast.Literal:
        if lit.type in (INTEGER, BIGINT) and isinstance(lit.value, int):
            v = -lit.value if negated else lit.value
            if INT_MIN <= v <= INT_MAX:
                lit.type = INTEGER
            elif BIGINT_MIN <= v <= BIGINT_MAX:
                lit.type = BIGINT
            else:
                text = ("-" if negated else "") + getattr(lit, "text", str(lit.value))
                raise self._literal_error(f"Invalid numeric literal: {text}", meta)
            lit.value = v
        elif lit.type == DOUBLE and isinstance(lit.value, float):
            if math.isinf(lit.value):
                text = ("-" if negated else "") + getattr(lit, "text", "")
                raise self._literal_error(f"Number overflows DOUBLE: {text}", meta)
            if negated:
                lit.value = -lit.value
        elif negated and isinstance(lit.value, decimal.Decimal):
            lit.value = -lit.value
        return lit

    def number(self, meta: Any, lit: ast.Literal) -> ast.Literal:
        return lit

    # ---- expressions
    def column_ref(self, meta: Any, first: str, second: str | None = None) -> ast.ColumnRef:
        if second is None:
            return self._p(ast.ColumnRef(first), meta)  # type: ignore[no-any-return]
        return self._p(ast.ColumnRef(second, first), meta)  # type: ignore[no-any-return]

    def or_(self, meta: Any, a: Any, _op: Token, b: Any) -> ast.BinaryOp:
        return self._p(ast.BinaryOp("OR", a, b), meta)  # type: ignore[no-any-return]

    def and_(self, meta: Any, a: Any, _op: Token, b: Any) -> ast.BinaryOp:
        return self._p(ast.BinaryOp("AND", a, b), meta)  # type: ignore[no-any-return]

    def not_(self, meta: Any, _op: Token, a: Any) -> ast.UnaryOp:
        return self._p(ast.UnaryOp("NOT", a), meta)  # type: ignore[no-any-return]

    def comp_op(self, meta: Any, tok: Token) -> str:
        return "<>" if str(tok) == "!=" else str(tok)

    add_op = comp_op
    mul_op = comp_op

    def comparison(self, meta: Any, a: Any, op: str, b: Any) -> ast.BinaryOp:
        return self._p(ast.BinaryOp(op, a, b), meta)  # type: ignore[no-any-return]

    def eq(self, meta: Any, a: Any, b: Any) -> ast.BinaryOp:
        return self._p(ast.BinaryOp("=", a, b), meta)  # type: ignore[no-any-return]

    def between(self, meta: Any, *items: Any) -> ast.Between:
        vals = [i for i in items if not isinstance(i, Token)]
        negated = any(isinstance(i, Token) and i.type == "NOT" for i in items)
        return self._p(ast.Between(vals[0], vals[1], vals[2], negated), meta)  # type: ignore[no-any-return]

    def in_list(self, meta: Any, *items: Any) -> ast.InList:
        vals = [i for i in items if not isinstance(i, Token)]
        negated = any(isinstance(i, Token) and i.type == "NOT" for i in items)
        return self._p(ast.InList(vals[0], vals[1:], negated), meta)  # type: ignore[no-any-return]

    def like(self, meta: Any, *items: Any) -> ast.Like:
        vals = [i for i in items if not isinstance(i, Token)]
        negated = any(isinstance(i, Token) and i.type == "NOT" for i in items)
        escape = None
        strings = [i for i in items if isinstance(i, Token) and i.type == "STRING"]
        if strings:
            escape = _strip_string(strings[0])
            if len(escape) != 1:
                raise self._tok_error(f"Escape string must be a single character: {escape}",
                                      strings[0])
        return self._p(ast.Like(vals[0], vals[1], escape, negated), meta)  # type: ignore[no-any-return]

    def is_null(self, meta: Any, *items: Any) -> ast.IsNull:
        negated = any(isinstance(i, Token) and i.type == "NOT" for i in items)
        return self._p(ast.IsNull(items[0], negated), meta)  # type: ignore[no-any-return]

    def is_distinct(self, meta: Any, *items: Any) -> ast.IsDistinctFrom:
        vals = [i for i in items if not isinstance(i, Token)]
        negated = any(isinstance(i, Token) and i.type == "NOT" for i in items)
        return self._p(ast.IsDistinctFrom(vals[0], vals[1], negated), meta)  # type: ignore[no-any-return]

    def arith(self, meta: Any, a: Any, op: str, b: Any) -> ast.BinaryOp:
        return self._p(ast.BinaryOp(op, a, b), meta)  # type: ignore[no-any-return]

    def unary_sign(self, meta: Any, op: str, operand: Any) -> ast.Expression:
        if isinstance(operand, ast.Literal) and operand.type.is_numeric:
            if op == "-":
                self._check_literal(operand, meta, negated=True)
                if hasattr(operand, "overflow_meta"):
                    del operand.overflow_meta
            elif hasattr(operand, "overflow_meta"):
                self._check_literal(operand, operand.overflow_meta, negated=False)
            operand.line, operand.column = _shift(self.base_line, self.base_col, meta.line,
                                                  meta.column)
            return operand
        return self._p(ast.UnaryOp(op, operand), meta)  # type: ignore[no-any-return]

    def subscript(self, meta: Any, base: Any, index: Any) -> ast.Subscript:
        return self._p(ast.Subscript(base, index), meta)  # type: ignore[no-any-return]

    def dereference(self, meta: Any, base: Any, name: str) -> ast.Dereference:
        return self._p(ast.Dereference(base, name), meta)  # type: ignore[no-any-return]

    def dereference_all(self, meta: Any, base: Any) -> ast.DereferenceAll:
        return self._p(ast.DereferenceAll(base), meta)  # type: ignore[no-any-return]

    def cast(self, meta: Any, _c: Token, e: Any, _as: Token, t: SqlType) -> ast.Cast:
        return self._p(ast.Cast(e, t), meta)  # type: ignore[no-any-return]

    def when_clause(self, meta: Any, _w: Token, cond: Any, _t: Token, res: Any) -> tuple[Any, Any]:
        return (cond, res)

    def else_clause(self, meta: Any, _e: Token, res: Any) -> Any:
        return ("ELSE", res)

    def _case(self, meta: Any, operand: Any, items: tuple[Any, ...]) -> ast.Case:
        whens = [i for i in items if isinstance(i, tuple) and i[0] != "ELSE"]
        default = next((i[1] for i in items if isinstance(i, tuple) and i[0] == "ELSE"), None)
        return self._p(ast.Case(operand, whens, default), meta)  # type: ignore[no-any-return]

    def simple_case(self, meta: Any, _c: Token, operand: Any, *items: Any) -> ast.Case:
        return self._case(meta, operand, items)

    def searched_case(self, meta: Any, _c: Token, *items: Any) -> ast.Case:
        return self._case(meta, None, items)

    def array_ctor(self, meta: Any, _a: Token, *items: Any) -> ast.ArrayConstructor:
        return self._p(ast.ArrayConstructor([i for i in items if i is not None]), meta)  # type: ignore[no-any-return]

    def map_entry(self, meta: Any, k: Any, v: Any) -> tuple[Any, Any]:
        return (k, v)

    def map_ctor(self, meta: Any, _m: Token, *entries: Any) -> ast.MapConstructor:
        return self._p(ast.MapConstructor([e for e in entries if e is not None]), meta)  # type: ignore[no-any-return]

    def struct_field(self, meta: Any, name: str, v: Any) -> tuple[str, Any]:
        return (name, v)

    def struct_ctor(self, meta: Any, _s: Token, *fields: Any) -> ast.StructConstructor:
        return self._p(ast.StructConstructor([f for f in fields if f is not None]), meta)  # type: ignore[no-any-return]

    def function_call(self, meta: Any, name: str, *args: Any) -> ast.FunctionCall:
        return self._p(ast.FunctionCall(name, [a for a in args if a is not None]), meta)  # type: ignore[no-any-return]

    def function_star(self, meta: Any, name: str) -> ast.FunctionCall:
        return self._p(ast.FunctionCall(name, [], star=True), meta)  # type: ignore[no-any-return]

    def function_distinct(self, meta: Any, name: str, _d: Token, arg: Any) -> ast.FunctionCall:
        return self._p(ast.FunctionCall(name, [arg], distinct=True), meta)  # type: ignore[no-any-return]

    def lambda_expr(self, meta: Any, *items: Any) -> ast.Lambda:
        *params, body = items
        names: list[str] = []
        for p in params:
            if isinstance(p, str):
                names.append(p)
            elif isinstance(p, ast.ColumnRef) and p.source is None:
                names.append(p.name)
            else:
                raise self._error("Lambda parameters must be identifiers", meta)
        return self._p(ast.Lambda(names, body), meta)  # type: ignore[no-any-return]

    # ---- types
    def named_type(self, meta: Any, name: str) -> SqlType:
        if name == "NULL":
            raise self._error("Syntax Error\nmismatched input 'NULL'", meta)
        t = PRIMITIVES.get(name)
        if t is not None:
            return t
        if name == "DECIMAL":
            raise self._error("DECIMAL requires precision and scale", meta)
        return NamedType(name)

    def parameterized_type(self, meta: Any, name: str, p: Token, s: Token | None = None) -> SqlType:
        if name != "DECIMAL":
            raise self._error(f"Unknown type: {name}", meta)
        precision = self._integer(p, "DECIMAL(PRECISION)")
        scale = self._integer(s, "DECIMAL(SCALE)") if s is not None else 0
        if precision < 1:
            raise self._error("DECIMAL precision must be >= 1", meta)
        if scale > precision:
            raise self._error(f"DECIMAL precision must be >= scale: DECIMAL({precision}, {scale})",
                              meta)
        return decimal_type(precision, scale)

    def named_parameter_type(self, meta: Any, name: str, param: Token) -> SqlType:
        # ksqlDB accepts VARCHAR(STRING) / STRING(STRING) as spellings of STRING.
        if name in ("VARCHAR", "STRING") and str(param).upper() == "STRING":
            return STRING
        raise self._tok_error("Syntax Error\nExpecting {'STRING', INTEGER_VALUE}", param)

    def array_type(self, meta: Any, _a: Token, t: SqlType) -> ArrayType:
        return array_of(t)

    def map_type(self, meta: Any, _m: Token, k: SqlType, v: SqlType) -> SqlType:
        return map_of(k, v)

    def struct_type_field(self, meta: Any, name: str, t: SqlType) -> tuple[str, SqlType]:
        return (name, t)

    def struct_type(self, meta: Any, _s: Token, *fields: Any) -> SqlType:
        return struct_of([f for f in fields if f is not None])

    # ---- durations and windows
    def time_unit(self, meta: Any, tok: Token) -> str:
        unit = ast.TIME_UNITS.get(str(tok).upper())
        if unit is None:
            raise self._tok_error(f"Unknown time unit: {tok}", tok)
        return unit

    def duration(self, meta: Any, n: ast.Literal, unit: str) -> ast.Duration:
        if not isinstance(n.value, int):
            raise self._error("Duration must be an integer", meta)
        return self._p(ast.Duration(n.value, unit), meta)  # type: ignore[no-any-return]

    def grace(self, meta: Any, _g: Token, _p: Token, d: ast.Duration) -> ast.Duration:
        return d

    def within_symmetric(self, meta: Any, _w: Token, d: ast.Duration, g: Any = None) -> ast.Within:
        return self._p(ast.Within(d, d, g), meta)  # type: ignore[no-any-return]

    def within_asymmetric(self, meta: Any, _w: Token, a: ast.Duration, b: ast.Duration,
                          g: Any = None) -> ast.Within:
        return self._p(ast.Within(a, b, g), meta)  # type: ignore[no-any-return]

    def retention(self, meta: Any, _r: Token, d: ast.Duration) -> tuple[str, ast.Duration]:
        return ("retention", d)

    def grace_option(self, meta: Any, _g: Token, _p: Token, d: ast.Duration) -> tuple[str, Any]:
        return ("grace", d)

    def window_options(self, meta: Any, *opts: Any) -> dict[str, ast.Duration]:
        return dict(opts)

    def tumbling(self, meta: Any, _t: Token, _s: Token, size: ast.Duration,
                 opts: dict[str, Any]) -> ast.WindowExpression:
        return self._p(ast.WindowExpression("TUMBLING", size, None, opts.get("retention"),  # type: ignore[no-any-return]
                                            opts.get("grace")), meta)

    def hopping(self, meta: Any, _h: Token, _s: Token, size: ast.Duration, _a: Token, _b: Token,
                advance: ast.Duration, opts: dict[str, Any]) -> ast.WindowExpression:
        return self._p(ast.WindowExpression("HOPPING", size, advance, opts.get("retention"),  # type: ignore[no-any-return]
                                            opts.get("grace")), meta)

    def session(self, meta: Any, _s: Token, size: ast.Duration,
                opts: dict[str, Any]) -> ast.WindowExpression:
        return self._p(ast.WindowExpression("SESSION", size, None, opts.get("retention"),  # type: ignore[no-any-return]
                                            opts.get("grace")), meta)

    def window_clause(self, meta: Any, _w: Token, w: ast.WindowExpression) -> tuple[str, Any]:
        return ("window", w)

    # ---- query
    def select_expr(self, meta: Any, e: Any) -> ast.SingleColumn:
        if isinstance(e, ast.DereferenceAll):
            return self._p(ast.SingleColumn(e), meta)  # type: ignore[no-any-return]
        return self._p(ast.SingleColumn(e), meta)  # type: ignore[no-any-return]

    def select_expr_alias(self, meta: Any, e: Any, *rest: Any) -> ast.SingleColumn:
        alias = rest[-1]
        return self._p(ast.SingleColumn(e, alias), meta)  # type: ignore[no-any-return]

    def select_all(self, meta: Any) -> ast.AllColumns:
        return self._p(ast.AllColumns(), meta)  # type: ignore[no-any-return]

    def select_source_all(self, meta: Any, name: str) -> ast.AllColumns:
        return self._p(ast.AllColumns(name), meta)  # type: ignore[no-any-return]

    def select_items(self, meta: Any, *items: Any) -> list[Any]:
        return list(items)

    def aliased_relation(self, meta: Any, name: str, *rest: Any) -> ast.Table:
        alias = next((r for r in rest if isinstance(r, str) and not isinstance(r, Token)), None)
        return self._p(ast.Table(name, alias), meta)  # type: ignore[no-any-return]

    def join_inner(self, meta: Any, *_t: Any) -> str:
        return "INNER"

    def join_left(self, meta: Any, *_t: Any) -> str:
        return "LEFT"

    def join_right(self, meta: Any, *_t: Any) -> str:
        return "RIGHT"

    def join_full(self, meta: Any, *_t: Any) -> str:
        return "FULL"

    def join(self, meta: Any, left: Any, jt: str, _j: Token, right: ast.Table, *rest: Any) -> ast.Join:
        within = next((r for r in rest if isinstance(r, ast.Within)), None)
        criteria = rest[-1]
        return self._p(ast.Join(jt, left, right, criteria, within), meta)  # type: ignore[no-any-return]

    def where_clause(self, meta: Any, _w: Token, e: Any) -> tuple[str, Any]:
        return ("where", e)

    def group_by(self, meta: Any, _g: Token, _b: Token, *exprs: Any) -> tuple[str, Any]:
        return ("group_by", list(exprs))

    def partition_by(self, meta: Any, _p: Token, _b: Token, *exprs: Any) -> tuple[str, Any]:
        return ("partition_by", list(exprs))

    def having(self, meta: Any, _h: Token, e: Any) -> tuple[str, Any]:
        return ("having", e)

    def emit_changes(self, meta: Any, *_t: Any) -> tuple[str, Any]:
        return ("emit", "CHANGES")

    def emit_final(self, meta: Any, *_t: Any) -> tuple[str, Any]:
        return ("emit", "FINAL")

    def _integer(self, n: Token, command: str) -> int:
        """ksqlDB's grammar takes any number here, its AST builder only an integer."""
        if n.type != "INTEGER_VALUE":
            line, col = _shift(self.base_line, self.base_col, n.line or 1, n.column or 1)
            raise ParseError("Failed to prepare statement: Value must be integer for command: "
                             f"{command}", line, col)
        return int(str(n))

    def limit(self, meta: Any, _l: Token, n: Token) -> tuple[str, Any]:
        return ("limit", self._integer(n, "LIMIT"))

    def query(self, meta: Any, _s: Token, items: list[Any], _f: Token, rel: Any,
              *clauses: Any) -> ast.Query:
        q = ast.Query(items, rel)
        for clause in clauses:
            if clause is None:
                continue
            key, value = clause
            setattr(q, key, value)
        return self._p(q, meta)  # type: ignore[no-any-return]

    def query_statement(self, meta: Any, q: ast.Query) -> ast.QueryStatement:
        return self._p(ast.QueryStatement(q), meta)  # type: ignore[no-any-return]

    # ---- DDL
    def or_replace(self, meta: Any, *_t: Any) -> str:
        return "OR_REPLACE"

    def source_kw(self, meta: Any, *_t: Any) -> str:
        return "SOURCE"

    def if_not_exists(self, meta: Any, *_t: Any) -> str:
        return "IF_NOT_EXISTS"

    def if_exists(self, meta: Any, *_t: Any) -> str:
        return "IF_EXISTS"

    def stream_or_table(self, meta: Any, tok: Token) -> str:
        return str(tok).upper()

    def constraint_key(self, meta: Any, *_t: Any) -> tuple[str, None]:
        return ("KEY", None)

    def constraint_primary_key(self, meta: Any, *_t: Any) -> tuple[str, None]:
        return ("PRIMARY KEY", None)

    def constraint_headers(self, meta: Any, *_t: Any) -> tuple[str, None]:
        return ("HEADERS", None)

    def constraint_header(self, meta: Any, _h: Token, key: Token) -> tuple[str, str]:
        return ("HEADER", _strip_string(key))

    def table_element(self, meta: Any, name: str, t: SqlType,
                      constraint: tuple[str, str | None] | None = None) -> ast.TableElement:
        c, hk = constraint if constraint else (None, None)
        return self._p(ast.TableElement(name, t, c, hk), meta)  # type: ignore[no-any-return]

    def table_elements(self, meta: Any, *elements: Any) -> list[Any]:
        return list(elements)

    def property_name(self, meta: Any, name: Any) -> str:
        if isinstance(name, Token):
            return _strip_string(name).upper()
        return str(name).upper()

    def property_value(self, meta: Any, lit: ast.Literal) -> ast.Literal:
        return lit

    def property(self, meta: Any, name: str, value: ast.Literal) -> tuple[str, ast.Literal]:
        return (name, value)

    def with_properties(self, meta: Any, _w: Token, *props: Any) -> dict[str, ast.Literal]:
        out: dict[str, ast.Literal] = {}
        for name, value in props:
            if name in out:
                raise self._error(f"Duplicate property: {name}", meta)
            out[name] = value
        return out

    def as_query(self, meta: Any, _a: Token, q: ast.Query) -> ast.Query:
        return q

    def create_source(self, meta: Any, _c: Token, or_replace: Any, source: Any, kind: str,
                      ine: Any, name: str, elements: Any, props: Any,
                      query: Any) -> ast.Statement:
        props = props or {}
        if query is not None:
            if elements is not None:
                raise self._error("CREATE ... AS SELECT cannot declare columns", meta)
            if source is not None:
                raise self._error("CREATE SOURCE ... AS SELECT is not supported", meta)
            return self._p(ast.CreateAsSelect(kind, name, query, props, bool(or_replace),  # type: ignore[no-any-return]
                                              bool(ine)), meta)
        return self._p(ast.CreateSource(kind, name, elements or [], props, bool(or_replace),  # type: ignore[no-any-return]
                                        bool(ine), bool(source)), meta)

    def create_type(self, meta: Any, _c: Token, _t: Token, ine: Any, name: str, _a: Token,
                    t: SqlType) -> ast.CreateType:
        return self._p(ast.CreateType(name, t, bool(ine)), meta)  # type: ignore[no-any-return]

    def drop_type(self, meta: Any, _d: Token, _t: Token, ie: Any, name: str) -> ast.DropType:
        return self._p(ast.DropType(name, bool(ie)), meta)  # type: ignore[no-any-return]

    def column_list(self, meta: Any, *names: str) -> list[str]:
        return list(names)

    def insert_select(self, meta: Any, _i: Token, _into: Token, name: str, props: Any,
                      q: ast.Query) -> ast.InsertInto:
        return self._p(ast.InsertInto(name, q, props or {}), meta)  # type: ignore[no-any-return]

    def insert_values(self, meta: Any, _i: Token, _into: Token, name: str, cols: Any,
                      _v: Token, *values: Any) -> ast.InsertValues:
        return self._p(ast.InsertValues(name, cols, [v for v in values if v is not None]), meta)  # type: ignore[no-any-return]

    def delete_topic(self, meta: Any, *_t: Any) -> str:
        return "DELETE_TOPIC"

    def drop_source(self, meta: Any, _d: Token, kind: str, ie: Any, name: str,
                    dt: Any) -> ast.DropSource:
        return self._p(ast.DropSource(kind, name, bool(ie), bool(dt)), meta)  # type: ignore[no-any-return]

    def set_property(self, meta: Any, _s: Token, name: Token, value: Token) -> ast.SetProperty:
        return self._p(ast.SetProperty(_strip_string(name), _strip_string(value)), meta)  # type: ignore[no-any-return]

    def unset_property(self, meta: Any, _u: Token, name: Token) -> ast.UnsetProperty:
        return self._p(ast.UnsetProperty(_strip_string(name)), meta)  # type: ignore[no-any-return]

    def define_variable(self, meta: Any, _d: Token, name: str, value: Token) -> ast.DefineVariable:
        return self._p(ast.DefineVariable(name, _strip_string(value)), meta)  # type: ignore[no-any-return]

    def undefine_variable(self, meta: Any, _u: Token, name: str) -> ast.UndefineVariable:
        return self._p(ast.UndefineVariable(name), meta)  # type: ignore[no-any-return]

    def show_what(self, meta: Any, *toks: Token) -> str:
        return " ".join(str(t).upper() for t in toks)

    def extended(self, meta: Any, *_t: Any) -> str:
        return "EXTENDED"

    def show(self, meta: Any, _s: Token, what: str, ext: Any) -> ast.Show:
        return self._p(ast.Show(what, bool(ext)), meta)  # type: ignore[no-any-return]

    def describe_target(self, meta: Any, t: Any) -> str:
        return str(t).upper() if isinstance(t, Token) else str(t)

    def describe(self, meta: Any, _d: Token, target: str, ext: Any) -> ast.Describe:
        return self._p(ast.Describe(target, bool(ext)), meta)  # type: ignore[no-any-return]

    def describe_extended_first(self, meta: Any, _d: Token, ext: Any, target: str) -> ast.Describe:
        return self._p(ast.Describe(target, True), meta)  # type: ignore[no-any-return]

    def describe_function(self, meta: Any, _d: Token, _f: Token, name: str) -> ast.DescribeFunction:
        return self._p(ast.DescribeFunction(name), meta)  # type: ignore[no-any-return]

    def explain(self, meta: Any, _e: Token, target: Any) -> ast.Explain:
        if isinstance(target, ast.Query):
            return self._p(ast.Explain(query=target), meta)  # type: ignore[no-any-return]
        return self._p(ast.Explain(query_id=str(target)), meta)  # type: ignore[no-any-return]

    def terminate(self, meta: Any, _t: Token, target: Any) -> ast.Terminate:
        if isinstance(target, Token):
            return self._p(ast.Terminate(None), meta)  # type: ignore[no-any-return]
        return self._p(ast.Terminate(str(target)), meta)  # type: ignore[no-any-return]

    def pause_query(self, meta: Any, _p: Token, target: Any) -> ast.PauseQuery:
        qid = None if isinstance(target, Token) else str(target)
        return self._p(ast.PauseQuery(qid), meta)  # type: ignore[no-any-return]

    def resume_query(self, meta: Any, _r: Token, target: Any) -> ast.ResumeQuery:
        qid = None if isinstance(target, Token) else str(target)
        return self._p(ast.ResumeQuery(qid), meta)  # type: ignore[no-any-return]

    def assert_stmt(self, meta: Any, _a: Token, body: Token) -> ast.Assert:
        # ASSERT statements belong to ksqlDB's test tooling, not to the language.
        raise self._error("Syntax Error\nASSERT statements are only supported by the test runner",
                          meta)


