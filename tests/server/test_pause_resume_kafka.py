"""PAUSE / RESUME over Kafka (both brokers): a paused persistent query's worker is stopped (its
consumer group keeps the committed offsets, its changelog the state); RESUME starts it again
from there, also on a server restarted while the query was paused."""

from __future__ import annotations

import uuid
from pathlib import Path

from server_helpers import kafka_backend, serve, wait_until

from hayase.client.ksql import KsqlClient
from hayase.testing.brokers import Backend as Broker


def _total(c: KsqlClient) -> list[list[object]]:
    return c.pull("SELECT * FROM T WHERE K='a';")[1]  # type: ignore[no-any-return]


def test_pause_resume_over_kafka_and_a_restart(kafka: Broker, tmp_path: Path) -> None:
    sid = f"p{uuid.uuid4().hex[:8]}_"
    backend = kafka_backend(kafka, sid, tmp_path / "state")
    running, stop = serve(backend, service_id=sid)
    try:
        with KsqlClient(running.url, timeout=60) as c:
            c.ksql(f"CREATE STREAM S (K STRING KEY, ID INT) WITH (KAFKA_TOPIC='s-{sid}', "
                   "VALUE_FORMAT='JSON', PARTITIONS=1);"
                   f"CREATE TABLE T WITH (KAFKA_TOPIC='t-{sid}') AS SELECT K, SUM(ID) AS TOTAL "
                   "FROM S GROUP BY K;")
            c.ksql("INSERT INTO S (K, ID) VALUES ('a', 1);")
            assert wait_until(lambda: _total(c) == [["a", 1]], 60)

            status = c.ksql("PAUSE CTAS_T_0;")[0]
            assert status["commandId"] == "pause/CTAS_T_0/execute"
            assert "CTAS_T_0" not in backend.workers  # stopped and joined: nothing runs
            c.ksql("INSERT INTO S (K, ID) VALUES ('a', 2);")
            assert _total(c) == [["a", 1]]
            assert c.ksql("SHOW QUERIES;")[0]["queries"][0]["state"] == "PAUSED"

            c.ksql("RESUME CTAS_T_0;")
            assert "CTAS_T_0" in backend.workers
            assert wait_until(lambda: _total(c) == [["a", 3]], 60)
            c.ksql("PAUSE CTAS_T_0;")
            c.ksql("INSERT INTO S (K, ID) VALUES ('a', 4);")
    finally:
        stop()
    # A server restarted from the command topic keeps the query paused until RESUME.
    backend = kafka_backend(kafka, sid, tmp_path / "state")
    running, stop = serve(backend, service_id=sid)
    try:
        with KsqlClient(running.url, timeout=60) as c:
            [q] = c.ksql("SHOW QUERIES;")[0]["queries"]
            assert (q["id"], q["state"]) == ("CTAS_T_0", "PAUSED")
            assert "CTAS_T_0" not in backend.workers  # never started: ('a', 4) waits
            assert _total(c) == [["a", 3]]
            c.ksql("RESUME ALL;")
            assert wait_until(lambda: _total(c) == [["a", 7]], 60)
    finally:
        stop()
