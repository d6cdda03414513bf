"""Joins of windowed sources: ksqlDB's result schema (window bounds of each side), matching on
the serialized windowed key (key + window start; + end for session windows) and a windowed
result key taken from the left source."""

from __future__ import annotations

from typing import Any

import pytest
from tests.sql.conftest import plan_after

from hayase.sql.errors import StatementError
from hayase.sql.plan import JoinStep
from hayase.testing.conformance import run_case
from hayase.testing.qtt import expand_node

SETUP = """
CREATE STREAM S1 (K INT KEY, ID BIGINT) WITH (kafka_topic='l', value_format='JSON',
  WINDOW_TYPE='Tumbling', WINDOW_SIZE='2 SECONDS');
CREATE STREAM S2 (K INT KEY, ID BIGINT) WITH (kafka_topic='r', value_format='JSON',
  WINDOW_TYPE='Tumbling', WINDOW_SIZE='2 SECONDS');
"""


def test_select_star_lists_keys_window_bounds_then_values_and_keeps_the_window() -> None:
    plan = plan_after(SETUP, "CREATE STREAM O AS SELECT * FROM S1 JOIN S2 WITHIN 1 MINUTE "
                             "ON S1.K = S2.K;")
    sink = plan.sink.source
    assert str(sink.schema) == (
        "S1_K INTEGER KEY, S1_WINDOWSTART BIGINT, S1_WINDOWEND BIGINT, S1_ID BIGINT, "
        "S2_K INTEGER, S2_WINDOWSTART BIGINT, S2_WINDOWEND BIGINT, S2_ID BIGINT")
    assert sink.window is not None and (sink.window.type, sink.window.size_ms) == \
        ("TUMBLING", 2000)


def test_time_windowed_join_key_is_key_and_window_start() -> None:
    plan = plan_after(SETUP, "CREATE STREAM O AS SELECT * FROM S1 JOIN S2 WITHIN 1 MINUTE "
                             "ON S1.K = S2.K;")
    join = plan.steps[0]
    assert isinstance(join, JoinStep) and join.left_key and join.right_key
    # (K, ID, ROWTIME, ROWPARTITION, ROWOFFSET, WINDOWSTART, WINDOWEND)
    assert join.left_key((1, 5, 0, 0, 0, 2000, 4000)) == (1, 2000, None)
    assert join.right_key((1, 6, 0, 0, 0, 2000, 4000)) == (1, 2000, None)
    assert join.left_key((None, 5, 0, 0, 0, 2000, 4000)) is None


def _window(start: int, end: int, kind: str = "time") -> dict[str, Any]:
    return {"start": start, "end": end, "type": kind}


def _run(node: dict[str, Any]) -> None:
    (case,) = expand_node("windowed-join", node)
    outcome = run_case(case)
    assert outcome.passed, outcome.reason


def test_time_windowed_sources_join_only_records_of_the_same_window() -> None:
    _run({
        "name": "tumbling",
        "statements": [
            "CREATE STREAM S1 (K INT KEY, ID BIGINT) WITH (kafka_topic='l', value_format='JSON',"
            " WINDOW_TYPE='Tumbling', WINDOW_SIZE='2 SECONDS');",
            "CREATE STREAM S2 (K INT KEY, ID BIGINT) WITH (kafka_topic='r', value_format='JSON',"
            " WINDOW_TYPE='Tumbling', WINDOW_SIZE='2 SECONDS');",
            "CREATE STREAM O AS SELECT * FROM S1 JOIN S2 WITHIN 1 MINUTE ON S1.K = S2.K;",
        ],
        "inputs": [
            {"topic": "l", "key": 1, "value": {"ID": 1}, "timestamp": 0,
             "window": _window(0, 2000)},
            {"topic": "r", "key": 1, "value": {"ID": 2}, "timestamp": 10,
             "window": _window(2000, 4000)},  # same key, other window: no match
            {"topic": "r", "key": 1, "value": {"ID": 3}, "timestamp": 20,
             "window": _window(0, 2000)},
        ],
        "outputs": [
            {"topic": "O", "key": 1, "timestamp": 20, "window": _window(0, 2000),
             "value": {"S1_WINDOWSTART": 0, "S1_WINDOWEND": 2000, "S1_ID": 1, "S2_K": 1,
                       "S2_WINDOWSTART": 0, "S2_WINDOWEND": 2000, "S2_ID": 3}},
        ],
        "post": {"sources": [{"name": "O", "type": "stream", "keyFormat": {
            "format": "KAFKA", "windowType": "TUMBLING", "windowSize": 2000}}]},
    })


def test_session_windowed_sources_match_on_both_bounds() -> None:
    _run({
        "name": "session",
        "statements": [
            "CREATE STREAM S1 (K INT KEY, ID BIGINT) WITH (kafka_topic='l', value_format='JSON',"
            " WINDOW_TYPE='Session');",
            "CREATE STREAM S2 (K INT KEY, ID BIGINT) WITH (kafka_topic='r', value_format='JSON',"
            " WINDOW_TYPE='Session');",
            "CREATE STREAM O AS SELECT S1.K AS K, S1.ID AS A, S2.ID AS B, S2.WINDOWEND AS E "
            "FROM S1 JOIN S2 WITHIN 1 MINUTE ON S1.K = S2.K;",
        ],
        "inputs": [
            {"topic": "l", "key": 1, "value": {"ID": 1}, "timestamp": 100,
             "window": _window(0, 100, "session")},
            {"topic": "r", "key": 1, "value": {"ID": 2}, "timestamp": 200,
             "window": _window(0, 200, "session")},  # same start, other end: no match
            {"topic": "r", "key": 1, "value": {"ID": 3}, "timestamp": 100,
             "window": _window(0, 100, "session")},
        ],
        "outputs": [
            {"topic": "O", "key": 1, "timestamp": 100, "window": _window(0, 100, "session"),
             "value": {"A": 1, "B": 3, "E": 100}},
        ],
    })


def test_partition_by_other_than_the_key_is_refused() -> None:
    join = "FROM S1 JOIN S2 WITHIN 1 MINUTE ON S1.K = S2.K"
    with pytest.raises(StatementError, match="Implicit repartitioning of windowed sources"):
        plan_after(SETUP, f"CREATE STREAM O AS SELECT * {join} PARTITION BY S1.ID;")
    plan = plan_after(SETUP, f"CREATE STREAM O AS SELECT * {join} PARTITION BY S1.K;")
    assert plan.sink.source.window is not None
