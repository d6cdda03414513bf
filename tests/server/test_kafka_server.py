"""`hayase server` over Kafka (both backends): statements, INSERT VALUES, push and pull
queries, and the command topic replayed by a restarted server (persistent queries resume)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from server_helpers import kafka_backend, serve, wait_until

from hayase.client.admin import Admin
from hayase.client.ksql import KsqlClient, KsqlServerError
from hayase.testing.brokers import Backend as Broker


def test_server_on_kafka_survives_restart(kafka: Broker, tmp_path: Path) -> None:
    sid = f"t{uuid.uuid4().hex[:8]}_"
    topic = f"s-{sid}"
    running, stop = serve(kafka_backend(kafka, sid, tmp_path / "state"), service_id=sid)
    try:
        with KsqlClient(running.url, timeout=60) as c:
            c.ksql(f"CREATE STREAM S (K STRING KEY, ID INT) WITH (KAFKA_TOPIC='{topic}', "
                   "VALUE_FORMAT='JSON', PARTITIONS=2);"
                   f"CREATE TABLE T WITH (KAFKA_TOPIC='t-{sid}') AS SELECT K, SUM(ID) AS TOTAL "
                   "FROM S GROUP BY K;")
            got: list[Any] = []

            def consume() -> None:
                with KsqlClient(running.url, timeout=60) as own:
                    got.extend(own.query("SELECT K, ID FROM S EMIT CHANGES LIMIT 2;"))

            t = threading.Thread(target=consume)
            t.start()
            assert wait_until(lambda: bool(running.server.transient), 30)
            c.ksql("INSERT INTO S (K, ID) VALUES ('a', 1); INSERT INTO S (K, ID) VALUES "
                   "('a', 2);")
            t.join(60)
            rows = [g["row"]["columns"] for g in got if "row" in g]
            assert rows == [["a", 1], ["a", 2]]
            assert got[-1] == {"finalMessage": "Limit Reached"}
            assert wait_until(lambda: c.pull("SELECT * FROM T WHERE K='a';")[1] == [["a", 3]],
                              60)
            assert sorted(c.pull("SELECT * FROM S;")[1]) == [["a", 1], ["a", 2]]
            # The topic's partitions and replication factor as the broker reports them.
            md = Admin({"bootstrap.servers": kafka.bootstrap_servers}).metadata().topics[topic]
            factor = len(md.partitions[0].replicas)
            described = c.ksql("DESCRIBE S EXTENDED;")[0]["sourceDescription"]
            assert (described["partitions"], described["replication"]) == (2, factor) \
                and factor >= 1
            shown = {t["name"]: t["replicaInfo"] for t in c.ksql("SHOW TOPICS;")[0]["topics"]}
            assert shown[topic] == [factor, factor]
            # A statement may not declare the existing topic otherwise than it is.
            with pytest.raises(KsqlServerError) as refused:
                c.ksql(f"CREATE STREAM S3 (K STRING KEY, ID INT) WITH (KAFKA_TOPIC='{topic}', "
                       "VALUE_FORMAT='JSON', PARTITIONS=3);")
            assert refused.value.status == 400 and "KSQL expects 3 partitions (topic has 2)" \
                in refused.value.message
            assert "S3" not in [s["name"] for s in c.ksql("SHOW STREAMS;")[0]["streams"]]
    finally:
        stop()
    # A new server with the same service id replays the command topic.
    running, stop = serve(kafka_backend(kafka, sid, tmp_path / "state"), service_id=sid)
    try:
        with KsqlClient(running.url, timeout=60) as c:
            queries = c.ksql("SHOW QUERIES;")[0]["queries"]
            assert [q["id"] for q in queries] == ["CTAS_T_0"]
            c.ksql("INSERT INTO S (K, ID) VALUES ('a', 10);")
            assert wait_until(lambda: c.pull("SELECT * FROM T WHERE K='a';")[1] == [["a", 13]],
                              60)
    finally:
        stop()


def test_two_servers_with_one_service_id_share_statements(kafka: Broker,
                                                           tmp_path: Path) -> None:
    sid = f"t{uuid.uuid4().hex[:8]}_"
    topic = f"s-{sid}"
    a, stop_a = serve(kafka_backend(kafka, sid, tmp_path / "a"), service_id=sid)
    b, stop_b = serve(kafka_backend(kafka, sid, tmp_path / "b"), service_id=sid)
    try:
        with KsqlClient(a.url, timeout=60) as ca, KsqlClient(b.url, timeout=60) as cb:
            ca.ksql(f"CREATE STREAM S (K STRING KEY, ID INT) WITH (KAFKA_TOPIC='{topic}', "
                    "VALUE_FORMAT='JSON', PARTITIONS=2);"
                    f"CREATE TABLE T WITH (KAFKA_TOPIC='t-{sid}') AS SELECT K, COUNT(*) AS N "
                    "FROM S GROUP BY K;")

            def b_knows() -> bool:
                return [t["name"] for t in cb.ksql("SHOW TABLES;")[0]["tables"]] == ["T"]

            assert wait_until(b_knows, 30)
            cb.ksql("INSERT INTO S (K, ID) VALUES ('x', 1); INSERT INTO S (K, ID) VALUES "
                    "('x', 2);")
            ok = wait_until(lambda: ca.pull("SELECT * FROM T;")[1] == [["x", 2]], 60)
            assert ok, (ca.pull("SELECT * FROM T;"), ca.pull("SELECT * FROM S;"))
            assert cb.pull("SELECT * FROM T;")[1] == [["x", 2]]
    finally:
        stop_b()
        stop_a()
