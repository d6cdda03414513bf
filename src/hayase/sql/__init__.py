"""hayase.sql: the ksqlDB dialect — parser, analyzer, expression compiler, functions.

Entry points: :func:`parse` (text -> statements) and :class:`Session` (statements -> DDL
results, query plans and inserts).  See ``plan.py`` for what the engine receives.
"""

from hayase.sql.errors import KsqlError, KsqlRuntimeError, ParseError, StatementError
from hayase.sql.parser import parse, parse_expression, parse_type
from hayase.sql.session import Session

__all__ = ["parse", "parse_expression", "parse_type", "Session", "KsqlError", "ParseError",
           "StatementError", "KsqlRuntimeError"]
