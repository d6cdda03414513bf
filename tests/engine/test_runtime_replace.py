"""`hayase run` with CREATE OR REPLACE in its file: the query keeps its id and only the last
plan is launched (the earlier one never runs beside it)."""

from __future__ import annotations

from typing import Any

import pytest

from hayase.engine import launch
from hayase.engine.runtime import HeadlessRuntime

pytestmark = pytest.mark.integration


def test_replaced_query_launches_once_with_the_last_plan(kafka, topic_name: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    launched: list[Any] = []
    monkeypatch.setattr(launch, "launch_query", lambda plan, *a, **k: launched.append(plan))
    sql = f"""
        CREATE STREAM SRC (ID INT KEY, V INT) WITH (KAFKA_TOPIC='{topic_name}',
          VALUE_FORMAT='JSON', PARTITIONS=1);
        CREATE STREAM OTHER AS SELECT * FROM SRC WHERE V > 0;
        CREATE STREAM OUT_{topic_name.upper().replace('-', '_')} AS SELECT ID, V FROM SRC;
        CREATE OR REPLACE STREAM OUT_{topic_name.upper().replace('-', '_')} AS
          SELECT ID, V FROM SRC WHERE V > 10;
    """
    runtime = HeadlessRuntime(sql, {"bootstrap.servers": kafka.bootstrap_servers})
    runtime.start()
    ids = [p.query_id for p in launched]
    assert len(ids) == 2 and len(set(ids)) == 2, ids
    # The replaced query keeps its place after OTHER's, and runs the new text.
    assert launched[0].sink.source.name == "OTHER"
    assert "WHERE V > 10" in launched[1].sql, launched[1].sql
