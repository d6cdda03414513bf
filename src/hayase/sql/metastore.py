"""The metastore: streams, tables, custom types and persistent queries known to a session."""

from __future__ import annotations

from dataclasses import dataclass, field

from hayase.sql.errors import StatementError
from hayase.sql.plan import DataSource, QueryPlan
from hayase.sql.types import SqlType


@dataclass
class PersistentQuery:
    query_id: str
    sink: str
    sources: list[str]
    sql: str
    plan: QueryPlan | None = None
    state: str = "RUNNING"


@dataclass
class Metastore:
    sources: dict[str, DataSource] = field(default_factory=dict)
    types: dict[str, SqlType] = field(default_factory=dict)
    queries: dict[str, PersistentQuery] = field(default_factory=dict)
    query_counter: int = 0

    def get(self, name: str) -> DataSource | None:
        return self.sources.get(name)

    def require(self, name: str, line: int = 0, column: int = 0) -> DataSource:
        src = self.sources.get(name)
        if src is None:
            raise StatementError(f"{name} does not exist.", line, column)
        return src

    def next_query_id(self, prefix: str) -> str:
        qid = f"{prefix}_{self.query_counter}"
        self.query_counter += 1
        return qid

    def readers(self, name: str) -> list[str]:
        return sorted(q.query_id for q in self.queries.values() if name in q.sources)

    def writers(self, name: str) -> list[str]:
        return sorted(q.query_id for q in self.queries.values() if q.sink == name)

    def add_query(self, query: PersistentQuery) -> None:
        self.queries[query.query_id] = query

    def terminate(self, query_id: str) -> PersistentQuery:
        q = self.queries.pop(query_id, None)
        if q is None:
            raise StatementError(f"Unknown queryId: {query_id}")
        return q
