"""ALTER STREAM | TABLE name ADD [COLUMN] name type [, ADD [COLUMN] name type ...].

ksqlDB's AlterSourceFactory and DdlCommandExec.executeAlterSource: the new columns are value
columns appended to the source's schema; a source stream or table (CREATE SOURCE) and a sink of
CREATE ... AS SELECT cannot be altered; the statement's kind must match the source's.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from hayase.sql import ast
from hayase.sql.errors import ParseError, StatementError
from hayase.sql.errors import statement_error as _err
from hayase.sql.metastore import Metastore
from hayase.sql.plan import Column, DataSource, DdlResult, LogicalSchema, Namespace, SourceType
from hayase.sql.types import SqlType, parse_type

_ADD = re.compile(r"ADD\s+(?:COLUMN\s+)?(`(?:[^`]|``)+`|[A-Za-z_][A-Za-z0-9_@$]*)\s+(.+)$",
                  re.IGNORECASE | re.DOTALL)


def alter_source(stmt: ast.Alter, metastore: Metastore,
                 resolve: Callable[[SqlType, ast.Node], SqlType]) -> DdlResult:
    new_columns = [Column(name, resolve(t, stmt), Namespace.VALUE)
                   for name, t in parse_alter_options(stmt)]
    src = metastore.get(stmt.name)
    if src is None:
        raise _err(f"Source {stmt.name} does not exist.", stmt)
    kind = stmt.source_type.lower()
    if src.is_source:
        raise _err(f"Cannot alter {kind} '{stmt.name}': ALTER operations are not supported on "
                   f"source {kind}s.", stmt)
    actual = "STREAM" if src.source_type is SourceType.STREAM else "TABLE"
    if actual != stmt.source_type:
        raise _err(f"Incompatible data source type is {actual}, but statement was ALTER "
                   f"{stmt.source_type}", stmt)
    if _is_create_as_target(src):
        raise _err("ALTER command is not supported for CREATE ... AS statements.", stmt)
    # ksqlDB's LogicalSchema keeps key and value names apart: only a value column clashes.
    seen = {c.name for c in src.schema.value}
    for c in new_columns:
        if c.name in seen:
            quoted = "`" + c.name.replace("`", "``") + "`"  # ksqlDB's ColumnName.toString
            raise _err(f"Cannot add column {quoted} to schema. A column with "
                       "the same name already exists.", stmt)
        seen.add(c.name)
    columns = list(src.schema.columns)
    at = max((i + 1 for i, c in enumerate(columns) if c.namespace is not Namespace.HEADERS),
             default=0)
    columns[at:at] = new_columns
    metastore.sources[src.name] = dataclasses.replace(src, schema=LogicalSchema(tuple(columns)))
    return DdlResult(f"{actual.capitalize()} {src.name} altered.")


def parse_alter_options(stmt: ast.Alter) -> list[tuple[str, SqlType]]:
    """The ``ADD [COLUMN] name type`` options of the statement's body."""
    body = stmt.body.strip().rstrip(";").strip()
    options = _split_top_level(body)
    if not body or not options:
        raise _syntax_error(stmt)
    out: list[tuple[str, SqlType]] = []
    for option in options:
        m = _ADD.match(option.strip())
        if m is None:
            raise _syntax_error(stmt)
        name = m.group(1)
        name = name[1:-1].replace("``", "`") if name.startswith("`") else name.upper()
        try:
            out.append((name, parse_type(m.group(2).strip())))
        except (ParseError, StatementError):
            raise _syntax_error(stmt) from None
    return out


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside ``<>``, ``()`` and quotes (types hold commas)."""
    parts: list[str] = []
    depth, start, quote = 0, 0, ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "`'\"":
            quote = ch
        elif ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()] if all(p.strip() for p in parts) else []


def _syntax_error(stmt: ast.Alter) -> ParseError:
    return ParseError(f"Syntax Error\nStatement: {stmt.text or stmt.to_sql()}", stmt.line,
                      stmt.column)


def _is_create_as_target(src: DataSource) -> bool:
    """Was the source created by CREATE ... AS SELECT (ksqlDB's DataSource.isCasTarget)?"""
    if not src.sql:
        return src.created_by_query is not None
    from hayase.sql.parser import parse_statement

    try:
        return isinstance(parse_statement(src.sql), ast.CreateAsSelect)
    except (ParseError, StatementError):
        return src.created_by_query is not None
