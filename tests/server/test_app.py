"""ksqlDB's REST API of `hayase server` over HTTP (in-memory backend), through the Python
client hayase.client.ksql and raw httpx where the wire shape matters."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from server_helpers import Running, wait_until

from hayase.client.ksql import KsqlClient, KsqlServerError, iter_json_array
from hayase.server.app import ServerConfig
from hayase.sql.errors import ParseError

CREATE = ("CREATE STREAM S (K STRING KEY, ID INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', "
          "PARTITIONS=1);")


def test_ksql_statements_return_ksqldb_entities(running: Running) -> None:
    with KsqlClient(running.url) as c:
        out = c.ksql(CREATE + "CREATE TABLE T AS SELECT K, COUNT(*) AS C FROM S GROUP BY K;")
        assert [e["@type"] for e in out] == ["currentStatus", "currentStatus"]
        assert out[0]["commandId"] == "stream/`S`/create"
        assert out[0]["commandStatus"]["status"] == "SUCCESS"
        assert out[1]["commandStatus"]["queryId"] == "CTAS_T_0"
        shown = c.ksql("SHOW STREAMS; LIST TABLES; SHOW QUERIES; DESCRIBE S; SHOW TOPICS;")
        assert [e["@type"] for e in shown] == ["streams", "tables", "queries",
                                               "sourceDescription", "kafka_topics"]
        assert shown[0]["streams"][0]["name"] == "S"
        assert shown[1]["tables"][0]["name"] == "T"
        assert shown[2]["queries"][0]["id"] == "CTAS_T_0"
        fields = shown[3]["sourceDescription"]["fields"]
        assert fields[0] == {"name": "K", "schema": {"type": "STRING", "fields": None,
                                                     "memberSchema": None}, "type": "KEY"}
        assert {"name": "s", "replicaInfo": [1]} in shown[4]["topics"]
        assert c.ksql("TERMINATE CTAS_T_0;")[0]["commandStatus"]["message"].startswith(
            "Query terminated")


def test_statement_error_entity_and_400(running: Running) -> None:
    r = httpx.post(running.url + "/ksql", json={"ksql": "CREATE STREAM X (A INT) WITH "
                                                        "(KAFKA_TOPIC='nope', VALUE_FORMAT='JSON');"})
    assert r.status_code == 400
    body = r.json()
    assert body["@type"] == "statement_error" and body["error_code"] == 40001
    assert "Topic 'nope' does not exist" in body["message"]
    assert body["statementText"].startswith("CREATE STREAM X") and body["entities"] == []
    r = httpx.post(running.url + "/ksql", json={"ksql": "SELEC 1;"})
    assert r.status_code == 400 and r.json()["message"].startswith("line 1:1: Syntax Error")


def test_malformed_json_is_400_generic_error(running: Running) -> None:
    for path in ("/ksql", "/query", "/query-stream", "/close-query"):
        r = httpx.post(running.url + path, content=b"{not json")
        assert r.status_code == 400, path
        assert r.json()["@type"] == "generic_error" and r.json()["error_code"] == 40000


def test_content_types(running: Running) -> None:
    r = httpx.post(running.url + "/ksql", json={"ksql": "SHOW STREAMS;"})
    assert r.headers["content-type"] == "application/vnd.ksql.v1+json"
    r = httpx.post(running.url + "/ksql", json={"ksql": "SHOW STREAMS;"},
                   headers={"Accept": "application/json"})
    assert r.headers["content-type"] == "application/json"


def test_insert_values_then_pull_and_push_queries(running: Running) -> None:
    with KsqlClient(running.url) as c:
        c.ksql(CREATE + "CREATE TABLE T AS SELECT K, SUM(ID) AS TOTAL FROM S GROUP BY K;")
        assert c.ksql("INSERT INTO S (K, ID) VALUES ('a', 1); INSERT INTO S (K, ID) VALUES "
                      "('b', 2); INSERT INTO S (K, ID) VALUES ('a', 3);") == []
        header, rows = c.pull("SELECT * FROM S;")
        assert header["schema"] == "`K` STRING, `ID` INTEGER"
        assert rows == [["a", 1], ["b", 2], ["a", 3]]
        header, rows = c.pull("SELECT * FROM T WHERE K='a';")
        assert header["schema"] == "`K` STRING KEY, `TOTAL` INTEGER"
        assert rows == [["a", 4]]
        items = list(c.query("SELECT ID FROM S EMIT CHANGES LIMIT 2;",
                             {"auto.offset.reset": "earliest"}))
        assert items[1:] == [{"row": {"columns": [1]}}, {"row": {"columns": [2]}},
                             {"finalMessage": "Limit Reached"}]
        assert items[0]["header"]["queryId"].startswith("transient_S_")


def test_push_query_from_latest_sees_new_rows(running: Running) -> None:
    with KsqlClient(running.url) as c:
        c.ksql(CREATE + "INSERT INTO S (K, ID) VALUES ('old', 0);")
        got: list[Any] = []

        def consume() -> None:
            with KsqlClient(running.url) as own:
                got.extend(own.query("SELECT K, ID FROM S EMIT CHANGES LIMIT 2;"))

        t = threading.Thread(target=consume)
        t.start()
        assert wait_until(lambda: bool(running.server.transient))
        c.ksql("INSERT INTO S (K, ID) VALUES ('x', 1); INSERT INTO S (K, ID) VALUES ('y', 2);")
        t.join(60)
        assert [g["row"]["columns"] for g in got if "row" in g] == [["x", 1], ["y", 2]]


def test_query_stream_delimited_and_json(running: Running) -> None:
    with KsqlClient(running.url) as c:
        c.ksql(CREATE + "INSERT INTO S (K, ID) VALUES ('a', 1);")
    r = httpx.post(running.url + "/query-stream", json={"sql": "SELECT * FROM S;"},
                   headers={"Accept": "application/vnd.ksqlapi.delimited.v1"})
    lines = r.text.splitlines()
    # Pull queries name their query id too (ksqlDB 0.23+'s QueryStreamHandler).
    meta = json.loads(lines[0])
    assert meta.pop("queryId").startswith("query_")
    assert meta == {"columnNames": ["K", "ID"], "columnTypes": ["STRING", "INTEGER"]}
    assert json.loads(lines[1]) == ["a", 1]
    r = httpx.post(running.url + "/query-stream",
                   json={"sql": "SELECT * FROM S EMIT CHANGES LIMIT 1;",
                         "properties": {"auto.offset.reset": "earliest"}},
                   headers={"Accept": "application/json"})
    items = json.loads(r.text)
    assert items[0]["queryId"].startswith("transient_S_") and items[1] == ["a", 1]


def test_streamed_query_close_frees_the_push_query(running: Running) -> None:
    with KsqlClient(running.url) as c:
        c.ksql(CREATE)
        q = c.stream("SELECT * FROM S EMIT CHANGES;")
        assert q.columns == ["K", "ID"] and q.query_id in running.server.transient
        c.ksql("INSERT INTO S (K, ID) VALUES ('a', 1);")
        assert next(iter(q)) == ["a", 1]
        q.close()  # the client goes away: the server ends the query
        assert wait_until(lambda: not running.server.transient)
        assert running.app.active == 0


def test_close_query_ends_a_push_query(running: Running) -> None:
    with KsqlClient(running.url) as c:
        c.ksql(CREATE)
        q = c.stream("SELECT * FROM S EMIT CHANGES;")
        assert q.query_id is not None
        c.close_query(q.query_id)
        assert list(q) == []  # the stream ends
        q.close()
        with pytest.raises(KsqlServerError):
            c.close_query("no-such-query")


def test_inserts_stream_acks_each_row(running: Running) -> None:
    with KsqlClient(running.url) as c:
        c.ksql(CREATE)
        acks = c.insert("S", [{"K": "a", "ID": 1}, {"K": "b", "ID": "x"}, {"K": "c", "ID": 3}])
        assert [a["status"] for a in acks] == ["ok", "error", "ok"]
        assert [a["seq"] for a in acks] == [0, 1, 2]
        assert c.pull("SELECT * FROM S;")[1] == [["a", 1], ["c", 3]]


def test_info_healthcheck_status(running: Running) -> None:
    with KsqlClient(running.url) as c:
        assert c.info()["ksqlServiceId"] == "default_"
        assert c.healthcheck()["isHealthy"] is True
        c.ksql(CREATE)
    assert httpx.get(running.url + "/status").json() == {
        "commandStatuses": {"stream/`S`/create": "SUCCESS"}}
    assert httpx.get(running.url + "/status/stream/`S`/create").json()["status"] == "SUCCESS"


def test_basic_auth(make_server: Callable[..., Running]) -> None:
    srv = make_server(ServerConfig(basic_auth=("fred", "secret")))
    r = httpx.get(srv.url + "/info")
    assert r.status_code == 401 and r.json()["error_code"] == 40100
    assert httpx.get(srv.url + "/info", auth=("fred", "wrong")).status_code == 401
    with KsqlClient(srv.url, auth=("fred", "secret")) as c:
        assert c.info()["serverStatus"] == "RUNNING"


def test_request_size_limit(make_server: Callable[..., Running]) -> None:
    srv = make_server(ServerConfig(max_request_bytes=100))
    r = httpx.post(srv.url + "/ksql", json={"ksql": "SHOW STREAMS; " * 20})
    assert r.status_code == 413 and r.json()["@type"] == "generic_error"


def test_query_concurrency_limit(make_server: Callable[..., Running]) -> None:
    srv = make_server(ServerConfig(max_concurrent_queries=1))
    with KsqlClient(srv.url) as c:
        c.ksql(CREATE)
        q = c.stream("SELECT * FROM S EMIT CHANGES;")
        with pytest.raises(KsqlServerError) as err:
            c.pull("SELECT * FROM S;")
        assert err.value.status == 429 and err.value.error_code == 42900
        q.close()
        assert wait_until(lambda: srv.app.active == 0)
        assert c.pull("SELECT * FROM S;")[1] == []


def test_select_on_ksql_endpoint_is_refused(running: Running) -> None:
    with KsqlClient(running.url) as c:
        c.ksql(CREATE)
        with pytest.raises(KsqlServerError) as err:
            c.ksql("SELECT * FROM S;")
        assert err.value.error_code == 40002


def test_iter_json_array_incremental() -> None:
    chunks = ['[{"header":{"a":', '1}},\n{"row":{"columns":[1,"]"]}}', ",\n", '{"x":2}]']
    assert list(iter_json_array(chunks)) == [{"header": {"a": 1}},
                                             {"row": {"columns": [1, "]"]}}, {"x": 2}]


def test_delimited_space_value_delimiter_end_to_end(running: Running) -> None:
    """VALUE_DELIMITER='SPACE' reaches the serde (written, read, inherited by a C*AS sink)."""
    with KsqlClient(running.url) as c:
        c.ksql("CREATE STREAM D (K STRING KEY, A INT, B STRING) WITH (KAFKA_TOPIC='d', "
               "VALUE_FORMAT='DELIMITED', VALUE_DELIMITER='SPACE', PARTITIONS=1);"
               "CREATE STREAM D2 AS SELECT K, A + 1 AS A, B FROM D;")
        c.ksql("INSERT INTO D (K, A, B) VALUES ('k', 1, 'x');")
        running.server.backend.produce("d", b"j", b'2 "y z"', None)
        assert [r.value for r in running.server.backend.scan("d")] == [b"1 x", b'2 "y z"']
        assert c.pull("SELECT * FROM D;")[1] == [["k", 1, "x"], ["j", 2, "y z"]]
        assert [r.value for r in running.server.backend.scan("D2")] == [b"2 x", b'3 "y z"']


def _listed_properties(url: str) -> dict[str, str]:
    r = httpx.post(url + "/ksql", json={"ksql": "LIST PROPERTIES;"})
    assert r.status_code == 200
    return {p["name"]: p["value"] for p in r.json()[0]["properties"]}


def test_request_properties_do_not_outlive_a_request_whose_split_fails(
        running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    import hayase.sql.parser as parser

    def refuse(text: str) -> list[tuple[str, int, int]]:
        raise ParseError("cannot split", 1, 1)

    monkeypatch.setattr(parser, "split_statements", refuse)
    r = httpx.post(running.url + "/ksql", json={
        "ksql": "LIST PROPERTIES;", "streamsProperties": {"ksql.leak.test": "bad"},
        "sessionVariables": {"leaked": "yes"}})
    assert r.status_code == 400 and r.json()["@type"] == "statement_error"
    monkeypatch.undo()
    assert "ksql.leak.test" not in _listed_properties(running.url)
    assert "LEAKED" not in running.server.session.variables


def test_malformed_session_variables_are_400_and_leave_no_properties(running: Running) -> None:
    r = httpx.post(running.url + "/ksql", json={
        "ksql": "LIST PROPERTIES;", "streamsProperties": {"ksql.leak.test": "bad"},
        "sessionVariables": ["not", "an", "object"]})
    assert r.status_code == 400
    assert r.json()["@type"] == "generic_error" and r.json()["error_code"] == 40000
    assert "ksql.leak.test" not in _listed_properties(running.url)


def test_session_properties_are_restored_when_execute_fails(running: Running) -> None:
    """Called directly (not through the app's checks): a bad variables mapping fails before the
    session takes the request's properties."""
    with pytest.raises(AttributeError):
        running.server.execute("LIST PROPERTIES;", {"ksql.leak.test": "bad"},
                               ["x"])  # type: ignore[arg-type]
    assert "ksql.leak.test" not in running.server.session.properties
