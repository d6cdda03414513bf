"""The entities of DESCRIBE and SHOW TOPICS describe the topic as the broker has it, as
ksqlDB's do, not as the statement's WITH clause declared it; and a statement over an existing
topic may not declare it otherwise than it is."""

from __future__ import annotations

import pytest

from hayase.server.backend import MemoryBackend
from hayase.server.engine import KsqlServer, RequestError


def test_describe_reports_the_topics_own_replication_factor() -> None:
    backend = MemoryBackend()
    backend.ensure_topic("three", 2, 3)  # made outside ksqlDB, three replicas
    server = KsqlServer(backend, "svc_")
    server.start()
    try:
        server.execute("CREATE STREAM S (ID INT) WITH (KAFKA_TOPIC='three', "
                       "VALUE_FORMAT='JSON');")
        for extended in ("", " EXTENDED"):
            described = server.execute(f"DESCRIBE S{extended};")[0]["sourceDescription"]
            assert (described["partitions"], described["replication"]) == (2, 3)
        shown = server.execute("SHOW TOPICS;")[0]["topics"]
        assert {"name": "three", "replicaInfo": [3, 3]} in shown
        backend.delete_topic("three")  # deleted behind ksqlDB's back: nothing to describe
        described = server.execute("DESCRIBE S EXTENDED;")[0]["sourceDescription"]
        assert (described["partitions"], described["replication"]) == (0, 0)
    finally:
        server.close()


def test_a_topic_created_by_a_write_has_one_replica() -> None:
    backend = MemoryBackend()
    backend.produce("auto", None, b"{}", 0)
    assert backend.replication_factor("auto") == 1
    assert backend.replication_factor("missing") is None


@pytest.mark.parametrize(("declared", "expects"), [
    ("PARTITIONS=4", "KSQL expects 4 partitions (topic has 2), and 3 replication factor "
                     "(topic has 3)."),
    ("REPLICAS=1", "KSQL expects 2 partitions (topic has 2), and 1 replication factor "
                   "(topic has 3)."),
])
def test_a_create_that_declares_an_existing_topic_otherwise_is_refused(
        declared: str, expects: str) -> None:
    backend = MemoryBackend()
    backend.ensure_topic("three", 2, 3)
    server = KsqlServer(backend, "svc_")
    server.start()
    try:
        with pytest.raises(RequestError) as refused:
            server.execute("CREATE STREAM S (ID INT) WITH (KAFKA_TOPIC='three', "
                           f"VALUE_FORMAT='JSON', {declared});")
        assert refused.value.status == 400
        assert refused.value.entity["message"] == (
            "A Kafka topic with the name 'three' already exists, with different "
            f"partition/replica configuration than required. {expects}")
        assert server.execute("SHOW STREAMS;")[0]["streams"] == []  # no trace left
        # Declaring it as it is is fine.
        server.execute("CREATE STREAM S (ID INT) WITH (KAFKA_TOPIC='three', "
                       "VALUE_FORMAT='JSON', PARTITIONS=2, REPLICAS=3);")
    finally:
        server.close()
