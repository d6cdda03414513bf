"""ksqlDB's names for projection columns: implicit names, reserved names, ``KSQL_COL_<n>``.

The single-source, aggregation and join planners all name unaliased select items the same way,
so the rules live here once.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Protocol

from hayase.sql import ast
from hayase.sql.plan import PSEUDO_COLUMNS, WINDOW_COLUMNS

RESERVED = set(PSEUDO_COLUMNS) | set(WINDOW_COLUMNS)


class NamedColumn(Protocol):
    name: str  # "" until named
    deref_name: str | None  # implicit name of an unaliased a->b, resolved after the rest


def implicit_name(e: ast.Expression) -> str | None:
    """The name an unaliased select item takes from its expression, if any."""
    if isinstance(e, ast.ColumnRef):
        return e.name
    if isinstance(e, ast.Dereference):
        return e.field
    return None


def synthetic_name(used: Container[str]) -> str:
    """``KSQL_COL_<n>`` with the lowest n not in ``used``."""
    n = 0
    while f"KSQL_COL_{n}" in used:
        n += 1
    return f"KSQL_COL_{n}"


def name_columns(items: Sequence[NamedColumn], taken: set[str]) -> None:
    """Name the unnamed items in place, avoiding ``taken`` and the names already given.

    Struct field names (``a->b``) yield to real columns: a clashing one becomes ``B_1``,
    ``B_2``, ...; every other unnamed item becomes the next free ``KSQL_COL_<n>``.
    """
    used = taken | {it.name for it in items if it.name}
    for it in items:
        if not it.name and it.deref_name:
            name, n = it.deref_name, 0
            while name in used:
                n += 1
                name = f"{it.deref_name}_{n}"
            it.name = name
            used.add(name)
    for it in items:
        if not it.name:
            it.name = synthetic_name(used)
            used.add(it.name)
