"""/query-stream as ksqlDB's own clients use it, over HTTP/2 (prior knowledge, as ksqlDB's Java
client and httpx speak it) and HTTP/1.1, against a real `hayase server --http2` process on the
embedded broker: delimited rows, LIMIT, /close-query of a push query, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from server_helpers import server_process

pytest.importorskip("hypercorn")
pytest.importorskip("h2")

DELIMITED = "application/vnd.ksqlapi.delimited.v1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with server_process(tmp_path_factory.mktemp("http2"), "--http2") as url:
        r = httpx.post(url + "/ksql", timeout=60, json={"ksql": (
            "CREATE STREAM RIDES (ID STRING KEY, KM DOUBLE) WITH (KAFKA_TOPIC='rides', "
            "VALUE_FORMAT='JSON', PARTITIONS=1);"
            "INSERT INTO RIDES (ID, KM) VALUES ('r1', 2.5);"
            "INSERT INTO RIDES (ID, KM) VALUES ('r2', 7.0);")})
        assert r.status_code == 200, r.text
        yield url


@pytest.mark.parametrize("http2", [True, False], ids=["HTTP/2", "HTTP/1.1"])
def test_push_query_with_limit(server: str, http2: bool) -> None:
    with httpx.Client(http2=http2, http1=not http2, timeout=60) as c:
        r = c.post(server + "/query-stream", headers={"Accept": DELIMITED}, json={
            "sql": "SELECT ID, KM FROM RIDES EMIT CHANGES LIMIT 2;",
            "properties": {"auto.offset.reset": "earliest"}})
        assert r.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        assert r.status_code == 200 and r.headers["content-type"].startswith(DELIMITED)
        meta, *rows = [json.loads(line) for line in r.text.splitlines()]
        assert meta["queryId"] and meta["columnNames"] == ["ID", "KM"]
        assert meta["columnTypes"] == ["STRING", "DOUBLE"]
        assert rows == [["r1", 2.5], ["r2", 7.0]]


@pytest.mark.parametrize("http2", [True, False], ids=["HTTP/2", "HTTP/1.1"])
def test_close_query_ends_a_push_query(server: str, http2: bool) -> None:
    with httpx.Client(http2=http2, http1=not http2, timeout=60) as c, c.stream(
            "POST", server + "/query-stream", headers={"Accept": DELIMITED},
            json={"sql": "SELECT * FROM RIDES EMIT CHANGES;",
                  "properties": {"auto.offset.reset": "earliest"}}) as r:
        lines = r.iter_lines()
        meta = json.loads(next(lines))
        assert [json.loads(next(lines)), json.loads(next(lines))] == [["r1", 2.5], ["r2", 7.0]]
        with httpx.Client(http2=http2, http1=not http2, timeout=60) as other:
            closed = other.post(server + "/close-query", json={"queryId": meta["queryId"]})
        assert closed.status_code == 200
        assert [line for line in lines if line.strip()] == []  # the response ended


@pytest.mark.parametrize("http2", [True, False], ids=["HTTP/2", "HTTP/1.1"])
def test_errors(server: str, http2: bool) -> None:
    with httpx.Client(http2=http2, http1=not http2, timeout=60) as c:
        r = c.post(server + "/query-stream", json={"sql": "SELECT * FROM NOPE;"})
        assert r.status_code == 400
        assert (r.json()["error_code"], r.json()["message"]) == (40001, "NOPE does not exist.")
        r = c.post(server + "/query-stream", json={"sql": "LIST STREAMS;"})
        assert (r.status_code, r.json()["message"]) == (400, "Not a query")
        pulled = c.post(server + "/query-stream", json={"sql": "SELECT * FROM RIDES;"},
                        headers={"Accept": "application/json"})
        assert pulled.json()[1:] == [["r1", 2.5], ["r2", 7.0]]


def test_print_on_the_embedded_broker(server: str) -> None:
    r = httpx.post(server + "/query", json={"ksql": "PRINT 'rides' FROM BEGINNING LIMIT 2;"},
                   timeout=60)
    assert r.status_code == 200
    lines = r.text.splitlines()
    assert lines[0] == "Key format: KAFKA_STRING"
    assert [line.split(", key: ")[1] for line in lines[2:]] == [
        'r1, value: {"KM":2.5}, partition: 0', 'r2, value: {"KM":7.0}, partition: 0']
