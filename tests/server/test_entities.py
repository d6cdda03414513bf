"""The entities of DESCRIBE and SHOW TOPICS describe the topic as the broker has it, as
ksqlDB's do, not as the statement's WITH clause declared it."""

from __future__ import annotations

from hayase.server.backend import MemoryBackend
from hayase.server.engine import KsqlServer


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
