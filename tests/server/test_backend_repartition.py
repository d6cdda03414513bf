"""`hayase server` on Kafka runs persistent queries like `hayase run` (one launcher,
hayase.engine.launch): a GROUP BY on a non-key column over a multi-partition source goes through
ksqlDB's `-Aggregate-GroupBy-repartition` topic, and a stream-table join on a non-key column of
the stream through its `Join-repartition` topic. Without them each partition counts / joins on
its own and the results are wrong."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from server_helpers import kafka_backend, serve, wait_until

from hayase.client.ksql import KsqlClient
from hayase.testing.brokers import Backend as Broker

COLORS = ("red", "green", "blue", "cyan")


def _inserts(table: str, rows: list[tuple[Any, ...]], columns: str) -> str:
    def lit(v: Any) -> str:
        return f"'{v}'" if isinstance(v, str) else str(v)

    return "".join(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(map(lit, r))});"
                   for r in rows)


def test_group_by_non_key_column_over_three_partitions_is_exact(kafka: Broker,
                                                                 tmp_path: Path) -> None:
    sid = f"t{uuid.uuid4().hex[:8]}_"
    rows = [(i, COLORS[(i * 7) % 5 % 4]) for i in range(40)]  # uneven counts per color
    expected = sorted([c, n] for c, n in Counter(c for _i, c in rows).items())
    running, stop = serve(kafka_backend(kafka, sid, tmp_path / "state"), service_id=sid)
    try:
        with KsqlClient(running.url, timeout=60) as c:
            c.ksql(f"CREATE STREAM S (ID INT KEY, COLOR STRING) WITH (KAFKA_TOPIC='s-{sid}', "
                   "VALUE_FORMAT='JSON', PARTITIONS=3);"
                   f"CREATE TABLE T WITH (KAFKA_TOPIC='t-{sid}') AS SELECT COLOR, COUNT(*) AS N "
                   "FROM S GROUP BY COLOR;")
            c.ksql(_inserts("S", rows, "ID, COLOR"))
            partitions = {r.partition for r in running.server.backend.scan(f"s-{sid}")}
            assert partitions == {0, 1, 2}  # every partition holds every color's rows
            assert wait_until(lambda: sorted(c.pull("SELECT * FROM T;")[1]) == expected, 60), \
                c.pull("SELECT * FROM T;")[1]
            assert f"_confluent-ksql-{sid}query_CTAS_T_0-Aggregate-GroupBy-repartition" in \
                running.server.backend.topics()
    finally:
        stop()


def test_stream_table_join_on_a_non_key_column_is_repartitioned(kafka: Broker,
                                                                  tmp_path: Path) -> None:
    sid = f"t{uuid.uuid4().hex[:8]}_"
    customers = [(f"c{k}", f"name{k}") for k in range(6)]
    orders = [(i, f"c{i % 6}") for i in range(24)]
    expected = sorted([cust, i, f"name{cust[1:]}"] for i, cust in orders)
    running, stop = serve(kafka_backend(kafka, sid, tmp_path / "state"), service_id=sid)
    try:
        with KsqlClient(running.url, timeout=60) as c:
            c.ksql(f"CREATE TABLE C (CUST STRING PRIMARY KEY, NAME STRING) WITH ("
                   f"KAFKA_TOPIC='c-{sid}', VALUE_FORMAT='JSON', PARTITIONS=3);"
                   f"CREATE STREAM O (ID INT KEY, CUST STRING) WITH (KAFKA_TOPIC='o-{sid}', "
                   "VALUE_FORMAT='JSON', PARTITIONS=3);")
            # The table's rows are older than every order: each order finds its customer.
            c.ksql(_inserts("C", customers, "CUST, NAME"))
            c.ksql(_inserts("O", orders, "ID, CUST"))
            c.ksql(f"CREATE STREAM J WITH (KAFKA_TOPIC='j-{sid}') AS SELECT O.CUST AS CUST, "
                   "O.ID AS ID, C.NAME AS NAME FROM O JOIN C ON O.CUST = C.CUST;")
            assert wait_until(lambda: sorted(c.pull("SELECT * FROM J;")[1]) == expected, 60), \
                sorted(c.pull("SELECT * FROM J;")[1])
    finally:
        stop()
