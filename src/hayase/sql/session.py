"""A SQL session: statements in, DDL results / query plans / inserts out.

    session = Session({"ksql.persistence.default.format.value": "JSON"})
    for result in session.execute(sql_text):
        ...  # DdlResult | QueryPlan | InsertValues

Handles what is not tied to the metastore: statement splitting, ``DEFINE``/``UNDEFINE`` and
``${var}`` substitution, ``SET``/``UNSET``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from hayase.sql import ast
from hayase.sql.analyzer import Analyzer
from hayase.sql.errors import KsqlError, ParseError
from hayase.sql.metastore import Metastore
from hayase.sql.parser import parse_statement, split_statements
from hayase.sql.plan import DdlResult, InsertValues, QueryPlan

Result = DdlResult | QueryPlan | InsertValues

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Session:
    def __init__(self, properties: dict[str, str] | None = None,
                 metastore: Metastore | None = None) -> None:
        self.properties: dict[str, str] = dict(properties or {})
        self.metastore = metastore or Metastore()
        self.variables: dict[str, str] = {}
        self.substitution = True

    def execute(self, text: str) -> list[Result]:
        """Run every statement in ``text``; stops at the first error (raised)."""
        return list(self.iter_execute(text))

    def iter_execute(self, text: str) -> Iterator[Result]:
        for chunk, line, column in split_statements(text):
            yield self.execute_statement(chunk, line, column)

    def execute_statement(self, chunk: str, line: int = 1, column: int = 1) -> Result:
        stmt = self.parse(chunk, line, column)
        try:
            return self._run(stmt)
        except KsqlError as e:
            if e.statement is None:
                e.statement = stmt.text
            if e.line is None:
                # Errors found on the statement as a whole point at its first character.
                e.line, e.column = stmt.line or line, stmt.column or column
            raise

    def parse(self, chunk: str, line: int = 1, column: int = 1) -> ast.Statement:
        if self.substitution and "${" in chunk:
            chunk = self._substitute(chunk, line, column)
        return parse_statement(chunk, line, column)

    def _substitute(self, chunk: str, line: int, column: int) -> str:
        def repl(m: re.Match[str]) -> str:
            name = m.group(1).upper()
            if name not in self.variables:
                raise ParseError(f"Cannot substitute variable '{m.group(1)}': not defined", line,
                                 column)
            return self.variables[name]

        return _VAR.sub(repl, chunk)

    def _run(self, stmt: ast.Statement) -> Result:
        if isinstance(stmt, ast.SetProperty):
            self.properties[stmt.name] = stmt.value
            return DdlResult(f"Successfully changed local property '{stmt.name}' to "
                             f"'{stmt.value}'.")
        if isinstance(stmt, ast.UnsetProperty):
            self.properties.pop(stmt.name, None)
            return DdlResult(f"Successfully unset local property '{stmt.name}'.")
        if isinstance(stmt, ast.DefineVariable):
            self.variables[stmt.name] = stmt.value
            return DdlResult(f"Defined variable {stmt.name}")
        if isinstance(stmt, ast.UndefineVariable):
            self.variables.pop(stmt.name, None)
            return DdlResult(f"Undefined variable {stmt.name}")
        if isinstance(stmt, ast.Show) and stmt.what == "VARIABLES":
            return DdlResult("SHOW VARIABLES", rows=[{"name": k, "value": v}
                                                     for k, v in sorted(self.variables.items())])
        return Analyzer(self.metastore, self.properties).execute(stmt)
