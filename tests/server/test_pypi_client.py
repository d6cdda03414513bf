"""An existing ksqlDB REST client from PyPI that hayase does not ship talks to a real
`hayase server --http2` process (embedded broker): `ksqldb` (KSQLdbClient: /ksql over
HTTP/1.1 with requests, /query-stream and /inserts-stream over HTTP/2 with httpx) creates a
stream, inserts rows and runs a push and a pull query."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import free_port, wait_until

pytest.importorskip("ksqldb")
pytest.importorskip("hypercorn")


@pytest.fixture
def hayase_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "hayase", "server", "--http2", "--port",
                             str(port), "--data-dir", str(tmp_path / "data")], stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(url + "/healthcheck", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        assert wait_until(up, 60), (tmp_path / "server.log").read_text()
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


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
