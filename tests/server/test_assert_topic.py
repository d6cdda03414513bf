"""ASSERT [NOT EXISTS] TOPIC (ksqlDB 0.27+, as migration scripts use it): the statement's
parts, the check against what the broker reports, and /ksql's entity or 417 / 41700."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from server_helpers import Running

from hayase.server.assertions import (
    AssertionSyntaxError,
    AssertTopic,
    check_topic,
    parse_assert_topic,
)


@pytest.mark.parametrize(("sql", "want"), [
    ("ASSERT TOPIC clicks;", AssertTopic("clicks")),
    ("assert not exists topic 'My.Topic' timeout 3 seconds;",
     AssertTopic("My.Topic", False, {}, 3000)),
    ("ASSERT TOPIC `t` WITH (PARTITIONS=2, replicas=1) TIMEOUT 500 MILLISECONDS",
     AssertTopic("t", True, {"PARTITIONS": 2, "REPLICAS": 1}, 500)),
])
def test_parse(sql: str, want: AssertTopic) -> None:
    assert parse_assert_topic(sql) == want


def test_parse_refuses_garbage() -> None:
    with pytest.raises(AssertionSyntaxError):
        parse_assert_topic("ASSERT TOPIC t TIMEOUT 3 FORTNIGHTS;")


def test_check() -> None:
    t = AssertTopic("t", True, {"PARTITIONS": 2, "REPLICAS": 3, "RETENTION": 1})
    assert check_topic(t, 2, 3) == "Cannot assert unknown topic property: RETENTION"
    assert check_topic(AssertTopic("t", True, {"PARTITIONS": 2}), 1, 1) == (
        "Mismatched configuration for topic t: For config partitions, expected 2 got 1")
    assert check_topic(AssertTopic("t"), None, None) == "Topic t does not exist"
    assert check_topic(AssertTopic("t", False), 1, 1) == "Topic t exists"
    assert check_topic(AssertTopic("t", False), None, None) is None


def _ksql(url: str, sql: str) -> httpx.Response:
    return httpx.post(url + "/ksql", json={"ksql": sql}, timeout=30)


def test_assert_topic_over_ksql(running: Running) -> None:
    url = running.url
    r = _ksql(url, "CREATE STREAM S (ID INT) WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', "
                   "PARTITIONS=2); ASSERT TOPIC clicks WITH (PARTITIONS=2);"
                   "ASSERT NOT EXISTS TOPIC other TIMEOUT 0 SECONDS;")
    assert r.status_code == 200
    out: list[dict[str, Any]] = r.json()
    assert out[1] == {"@type": "assert_topic",
                      "statementText": "ASSERT TOPIC clicks WITH (PARTITIONS=2);",
                      "warnings": [], "topicName": "clicks", "exists": True}
    assert out[2]["exists"] is False
    failed = _ksql(url, "ASSERT TOPIC nope TIMEOUT 200 MILLISECONDS;")
    assert failed.status_code == 417
    assert (failed.json()["error_code"], failed.json()["message"]) == (
        41700, "Topic nope does not exist")
    mismatch = _ksql(url, "ASSERT TOPIC clicks WITH (PARTITIONS=3) TIMEOUT 0 SECONDS;")
    assert mismatch.status_code == 417
    assert mismatch.json()["message"].endswith("expected 3 got 2")
    bad = _ksql(url, "ASSERT TOPIC clicks TIMEOUT 1 FORTNIGHT;")
    assert (bad.status_code, bad.json()["error_code"]) == (400, 40001)
