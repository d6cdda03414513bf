"""CREATE OR REPLACE on a running persistent query of `hayase server`: ksqlDB's in-place
upgrade. The old query stops, the new plan runs under the same query id, consumer group and
state: an aggregate goes on from its state, nothing already consumed is read again, and only
the new plan writes the sink (no duplicates); a server restarted from the command topic runs
only the last plan."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server_helpers import Running, kafka_backend, serve, wait_until

from hayase.client.ksql import KsqlClient
from hayase.server.backend import Backend, MemoryBackend
from hayase.testing.brokers import Backend as Broker


def _setup(sid: str) -> str:
    return (f"CREATE STREAM S (K STRING KEY, ID INT) WITH (KAFKA_TOPIC='s-{sid}', "
            "VALUE_FORMAT='JSON', PARTITIONS=1);"
            f"CREATE STREAM C WITH (KAFKA_TOPIC='c-{sid}') AS SELECT K, ID FROM S;"
            f"CREATE TABLE T WITH (KAFKA_TOPIC='t-{sid}') AS SELECT K, SUM(ID) AS TOTAL "
            "FROM S GROUP BY K;")


def _upgrade(sid: str) -> str:
    return (f"CREATE OR REPLACE STREAM C WITH (KAFKA_TOPIC='c-{sid}') AS SELECT K, ID FROM S "
            "WHERE ID > 0;"
            f"CREATE OR REPLACE TABLE T WITH (KAFKA_TOPIC='t-{sid}') AS SELECT K, SUM(ID) AS "
            "TOTAL FROM S WHERE ID > 0 GROUP BY K;")


def _column(backend: Backend, topic: str, name: str) -> list[Any]:
    return [json.loads(r.value)[name] for r in backend.scan(topic) if r.value is not None]


def _insert(c: KsqlClient, *ids: int) -> None:
    c.ksql("".join(f"INSERT INTO S (K, ID) VALUES ('a', {i});" for i in ids))


def _upgrade_and_check(c: KsqlClient, backend: Backend, sid: str) -> None:
    _insert(c, 1)
    assert wait_until(lambda: _column(backend, f"t-{sid}", "TOTAL") == [1]
                      and _column(backend, f"c-{sid}", "ID") == [1])
    statuses = c.ksql(_upgrade(sid))
    assert [s["commandStatus"]["queryId"] for s in statuses] == ["CSAS_C_0", "CTAS_T_1"]
    assert sorted(q["id"] for q in c.ksql("SHOW QUERIES;")[0]["queries"]) == \
        ["CSAS_C_0", "CTAS_T_1"]
    _insert(c, 2, -5, 3)  # -5: only the old plans would let it through
    assert wait_until(lambda: len(_column(backend, f"c-{sid}", "ID")) >= 3
                      and len(_column(backend, f"t-{sid}", "TOTAL")) >= 3)
    # Each record once, through the plan that was running when it came; the sum goes on from
    # the old query's state (1), and 1 is not added again.
    assert _column(backend, f"c-{sid}", "ID") == [1, 2, 3]
    assert _column(backend, f"t-{sid}", "TOTAL") == [1, 3, 6]


def test_create_or_replace_in_memory(make_server: Callable[..., Running]) -> None:
    backend = MemoryBackend()
    running = make_server(backend=backend)
    with KsqlClient(running.url, timeout=60) as c:
        c.ksql(_setup("m"))
        _upgrade_and_check(c, backend, "m")
        assert len(backend.queries) == 2


def test_create_or_replace_over_kafka_and_a_restart(kafka: Broker, tmp_path: Path) -> None:
    sid = f"u{uuid.uuid4().hex[:8]}_"
    backend = kafka_backend(kafka, sid, tmp_path / "state")
    running, stop = serve(backend, service_id=sid)
    try:
        with KsqlClient(running.url, timeout=60) as c:
            c.ksql(_setup(sid))
            _upgrade_and_check(c, backend, sid)
            assert sorted(backend.workers) == ["CSAS_C_0", "CTAS_T_1"]  # one worker each
    finally:
        stop()
    # Restarted from the command topic: only the upgraded plans run, from where they were.
    backend = kafka_backend(kafka, sid, tmp_path / "state")
    running, stop = serve(backend, service_id=sid)
    try:
        with KsqlClient(running.url, timeout=60) as c:
            _insert(c, -1, 4)
            assert wait_until(lambda: len(_column(backend, f"c-{sid}", "ID")) >= 4
                              and len(_column(backend, f"t-{sid}", "TOTAL")) >= 4)
            assert _column(backend, f"c-{sid}", "ID") == [1, 2, 3, 4]
            assert _column(backend, f"t-{sid}", "TOTAL") == [1, 3, 6, 10]
    finally:
        stop()
