"""Errors of the SQL layer, in ksqlDB's three kinds.

ksqlDB's test corpus names an expected failure by Java class; hayase maps them onto three kinds:

- ``ParseError``      <- io.confluent.ksql.parser.exception.ParseFailedException
- ``StatementError``  <- io.confluent.ksql.util.KsqlStatementException / KsqlException
- ``KsqlRuntimeError``<- org.apache.kafka.streams.errors.StreamsException (evaluation failures)

Every error carries the 1-based ``line`` and ``column`` of the offending text when known.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hayase.sql import ast


class KsqlError(Exception):
    """Base class of every error the SQL layer raises on purpose."""

    kind = "error"

    def __init__(self, message: str, line: int | None = None, column: int | None = None,
                 statement: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.statement = statement

    def __str__(self) -> str:
        if self.line is not None and f"line {self.line}:" not in self.message:
            return f"line {self.line}:{self.column or 0}: {self.message}"
        return self.message  # it names its position already


class ParseError(KsqlError):
    """The text is not valid SQL for hayase's dialect."""

    kind = "parse"


class StatementError(KsqlError):
    """The statement parses but is semantically invalid (unknown column, type mismatch, ...)."""

    kind = "statement"


def statement_error(message: str, node: ast.Node | None = None) -> StatementError:
    """A StatementError pointing at ``node`` (no position when there is no node)."""
    return StatementError(message, node.line if node else None, node.column if node else None)


class KsqlRuntimeError(KsqlError):
    """An expression or function failed while evaluating a record."""

    kind = "runtime"
