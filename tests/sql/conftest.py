"""Helpers for SQL tests: run a query's plan over hand-built rows, no engine needed."""

from __future__ import annotations

from typing import Any

import pytest

from hayase.sql import Session
from hayase.sql.plan import FilterStep, FlatMapStep, ProjectStep, QueryPlan, SelectKeyStep


def run_plan(plan: QueryPlan, columns: tuple[Any, ...], ts: int = 0) -> list[tuple[Any, ...]]:
    """Apply the plan's steps to one source row (columns + pseudo-columns); returns outputs."""
    rows = [columns + (ts, 0, 0)]
    key = None
    outs: list[tuple[Any, ...]] = []
    for step in plan.steps:
        if isinstance(step, FilterStep):
            rows = [r for r in rows if step.predicate(r) is True]
        elif isinstance(step, FlatMapStep):
            rows = [x for r in rows for x in step.fn(r)]
        elif isinstance(step, SelectKeyStep):
            keys = [step.key_fn(r) for r in rows]
            key = keys[0] if keys else None
        elif isinstance(step, ProjectStep):
            outs = [step.fn(r, key) for r in rows]
    return outs


@pytest.fixture
def session() -> Session:
    return Session()


def last_plan(session: Session, sql: str) -> QueryPlan:
    """The QueryPlan of the last statement in ``sql``."""
    result = session.execute(sql)[-1]
    assert isinstance(result, QueryPlan)
    return result


def plan_after(setup: str, sql: str, props: dict[str, str] | None = None) -> QueryPlan:
    """In a new session: run ``setup``, then plan ``sql``."""
    s = Session(props)
    s.execute(setup)
    return last_plan(s, sql)


def _expression_plan(expr: str, columns: str, props: dict[str, str] | None = None) -> QueryPlan:
    """``SELECT K, <expr> AS R`` over a stream with the given value columns."""
    return plan_after(f"CREATE STREAM SRC (K STRING KEY, {columns}) WITH (kafka_topic='t', "
                      "value_format='JSON');",
                      f"CREATE STREAM OUT AS SELECT K, {expr} AS R FROM SRC;", props)


def evaluate(expr: str, columns: str = "X INT", row: tuple[Any, ...] = (None,),
             props: dict[str, str] | None = None) -> Any:
    """Evaluate a SELECT expression over one row of a stream with the given value columns."""
    plan = _expression_plan(expr, columns, props)
    errors: list[Exception] = []
    plan.set_error_handler(errors.append)
    outs = run_plan(plan, ("k",) + row)
    return outs[0][1]


def result_type(expr: str, columns: str = "X INT") -> str:
    plan = _expression_plan(expr, columns)
    return str(plan.sink.source.schema.columns[1].type)
