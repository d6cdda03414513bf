"""The QTT runner's post-conditions on internal topics: names, formats and blacklists."""

from __future__ import annotations

from typing import Any

from hayase.testing.conformance import run_case
from hayase.testing.qtt import TestCase, parse_record

PREFIX = "_confluent-ksql-some.ksql.service.idquery_CSAS_OUTPUT_0-"
STATEMENTS = [
    "CREATE STREAM S1 (ID INT KEY, FOO INT) WITH (kafka_topic='s1', key_format='DELIMITED', "
    "value_format='JSON');",
    "CREATE STREAM S2 (ID INT KEY, VAL STRING) WITH (kafka_topic='s2', key_format='KAFKA', "
    "value_format='JSON');",
    "CREATE STREAM OUTPUT AS SELECT S1.ID, S2.VAL FROM S1 JOIN S2 WITHIN 10 SECONDS "
    "ON S1.ID = S2.ID;",
]


def case(post: dict[str, Any]) -> TestCase:
    return TestCase(
        file="t", name="t", statements=list(STATEMENTS),
        inputs=[parse_record({"topic": "s2", "key": 10, "value": {"VAL": "hello"}}),
                parse_record({"topic": "s1", "key": "10", "value": {"FOO": 22}})],
        outputs=[parse_record({"topic": "OUTPUT", "key": "10", "value": {"VAL": "hello"}})],
        post=post)


def topic(name: str, key: str = "DELIMITED", value: str = "JSON") -> dict[str, Any]:
    return {"name": PREFIX + name, "keyFormat": {"format": key}, "valueFormat": {"format": value}}


def test_internal_topics_with_ksqldb_names_and_formats_pass() -> None:
    outcome = run_case(case({"topics": {"topics": [
        topic("Join-right-repartition"),
        topic("KSTREAM-JOINTHIS-0000000012-store-changelog"),
        topic("KSTREAM-JOINOTHER-0000000013-store-changelog")]}}))
    assert outcome.passed, outcome.reason


def test_an_internal_topic_ksqldb_would_not_create_fails() -> None:
    outcome = run_case(case({"topics": {"topics": [topic("Join-left-repartition")]}}))
    assert not outcome.passed
    assert "Join-left-repartition was not created" in outcome.reason


def test_an_internal_topic_in_another_format_fails() -> None:
    outcome = run_case(case({"topics": {"topics": [topic("Join-right-repartition", "KAFKA")]}}))
    assert not outcome.passed
    assert "key format is DELIMITED, expected KAFKA" in outcome.reason


def test_blacklist_sees_internal_topics() -> None:
    outcome = run_case(case({"topics": {"blacklist": ".*-repartition"}}))
    assert not outcome.passed
    assert "matches the blacklist" in outcome.reason
