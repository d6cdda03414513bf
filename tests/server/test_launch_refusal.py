"""A persistent query the engine refuses at launch (a join of topics with different partition
counts) is answered as ksqlDB answers it: HTTP 400, a `statement_error` (40001) with the
statement and the message, and no trace — no sink source, no query, nothing in the command
topic — so the statement can be issued again once its cause is fixed."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from server_helpers import serve, wait_until

from hayase.client.ksql import KsqlClient, KsqlServerError
from hayase.engine.processing_log import DEFAULT_TOPIC
from hayase.server.backend import KafkaBackend
from hayase.testing.brokers import Backend as Broker


def _names(c: KsqlClient, what: str) -> set[str]:
    entity = c.ksql(f"SHOW {what};")[0]
    return {s["name"] for s in entity[what.lower()]}


def test_join_of_unequal_partition_counts_is_refused_without_trace(kafka: Broker,
                                                                   tmp_path: Path) -> None:
    sid = f"t{uuid.uuid4().hex[:8]}_"
    conf = {"bootstrap.servers": kafka.bootstrap_servers}
    running, stop = serve(KafkaBackend(conf, sid, tmp_path / "state", DEFAULT_TOPIC),
                          service_id=sid)

    def join(right: str) -> str:
        return (f"CREATE STREAM J WITH (KAFKA_TOPIC='j-{sid}') AS SELECT L.ID AS ID, L.A AS A, "
                f"{right}.B AS B FROM L JOIN {right} WITHIN 1 MINUTE ON L.ID = {right}.ID;")

    try:
        with KsqlClient(running.url, timeout=60) as c:
            c.ksql(f"CREATE STREAM L (ID INT KEY, A STRING) WITH (KAFKA_TOPIC='l-{sid}', "
                   "VALUE_FORMAT='JSON', PARTITIONS=2);"
                   f"CREATE STREAM R (ID INT KEY, B STRING) WITH (KAFKA_TOPIC='r-{sid}', "
                   "VALUE_FORMAT='JSON', PARTITIONS=3);")
            with pytest.raises(KsqlServerError) as refused:
                c.ksql(join("R"))
            assert refused.value.status == 400
            entity = refused.value.entity
            assert entity["@type"] == "statement_error"
            assert entity["error_code"] == 40001
            assert entity["statementText"] == join("R")
            assert entity["message"].startswith(
                "Can't join `L` with `R` since the number of partitions don't match. "
                "`L` partitions = 2; `R` partitions = 3.")
            assert _names(c, "STREAMS") >= {"L", "R"}
            assert "J" not in _names(c, "STREAMS")
            assert c.ksql("SHOW QUERIES;")[0]["queries"] == []
            with pytest.raises(KsqlServerError):
                c.ksql("DESCRIBE J;")
            recorded = [json.loads(r.value)["statement"]
                        for r in running.server.backend.scan(running.server.command_topic)
                        if r.value is not None]
            assert not any("FROM L JOIN R " in s for s in recorded), recorded

            # Fixed cause, same sink name: accepted, with the query id a replay would give.
            c.ksql(f"CREATE STREAM R2 (ID INT KEY, B STRING) WITH (KAFKA_TOPIC='r2-{sid}', "
                   "VALUE_FORMAT='JSON', PARTITIONS=2);")
            created = c.ksql(join("R2"), {"auto.offset.reset": "earliest"})[0]
            assert created["commandStatus"]["queryId"] == "CSAS_J_0"
            assert "J" in _names(c, "STREAMS")
            c.ksql("INSERT INTO L (ID, A) VALUES (7, 'a');INSERT INTO R2 (ID, B) VALUES (7, 'b');")
            assert wait_until(lambda: c.pull("SELECT * FROM J;")[1] == [[7, "a", "b"]], 60), \
                c.pull("SELECT * FROM J;")[1]
    finally:
        stop()
