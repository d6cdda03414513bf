"""An existing ksqlDB REST client from PyPI that hayase does not ship talks to a real
`hayase server --http2` process (embedded broker): `ksqldb` (KSQLdbClient: /ksql over
HTTP/1.1 with requests, /query-stream and /inserts-stream over HTTP/2 with httpx) creates a
stream, inserts rows and runs a push and a pull query."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_helpers import server_process, wait_until

pytest.importorskip("ksqldb")
pytest.importorskip("hypercorn")


@pytest.fixture
def hayase_server(tmp_path: Path) -> Iterator[str]:
    with server_process(tmp_path, "--http2") as url:
        yield url


def test_ksqldb_client_against_hayase_server(hayase_server: str) -> None:
    from ksqldb import KSQLdbClient

    client = KSQLdbClient(hayase_server)
    out = client.ksql("CREATE STREAM RIDES (ID STRING KEY, KM DOUBLE) WITH "
                      "(KAFKA_TOPIC='rides', VALUE_FORMAT='JSON', PARTITIONS=1);")
    assert out[0]["commandStatus"]["status"] == "SUCCESS"
    pushed: list[Any] = []

    def push() -> None:
        async def run() -> None:
            async for item in KSQLdbClient(hayase_server).query_async(
                    "SELECT ID, KM FROM RIDES EMIT CHANGES LIMIT 2;", timeout=60):
                pushed.append(item)

        asyncio.run(run())

    t = threading.Thread(target=push)
    t.start()

    def running() -> bool:
        queries = client.ksql("SHOW QUERIES;")[0]["queries"]
        return any(q["queryType"] == "PUSH" for q in queries)

    assert wait_until(running, 30)
    acks = client.inserts_stream("RIDES", [{"ID": "r1", "KM": 2.5}, {"ID": "r2", "KM": 7.0}])
    assert [a["status"] for a in acks] == ["ok", "ok"]
    t.join(60)
    assert pushed[0]["columnNames"] == ["ID", "KM"]
    assert pushed[1:] == [["r1", 2.5], ["r2", 7.0]]
    pulled = client.query_sync("SELECT * FROM RIDES WHERE KM > 5;", timeout=60)
    assert pulled[0]["columnNames"] == ["ID", "KM"]
    assert pulled[1:] == [["r2", 7.0]]
