"""`hayase server` against ksqlDB's REST API reference: PAUSE / RESUME, the EXTENDED listings,
DESCRIBE FUNCTION, connectors, types, properties, command ids, session variables on the query
endpoints, /query-stream's StreamedRows form, /clusterStatus, /is_valid_property, /v1/metadata
(in-memory backend; test_pause_resume_kafka.py runs PAUSE / RESUME over both brokers)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from server_helpers import Running

from hayase.client.ksql import KsqlClient
from hayase.server.backend import MemoryBackend
from hayase.server.engine import KsqlServer
from hayase.sql import ast
from hayase.sql.parser import parse

KSQL_V1 = "application/vnd.ksql.v1+json"
SETUP = ("CREATE STREAM S (K STRING KEY, ID INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', "
         "PARTITIONS=1);"
         "CREATE TABLE T AS SELECT K, SUM(ID) AS TOTAL FROM S GROUP BY K;")


def _ksql(url: str, sql: str, status: int = 200, **fields: Any) -> Any:
    r = httpx.post(url + "/ksql", json={"ksql": sql, **fields}, timeout=30)
    assert r.status_code == status, r.text
    return r.json()


def _pull(url: str, sql: str, **fields: Any) -> list[Any]:
    r = httpx.post(url + "/query", json={"ksql": sql, **fields}, timeout=30)
    assert r.status_code == 200, r.text
    return [i["row"]["columns"] for i in r.json() if "row" in i]


def _insert(url: str, key: str, value: int) -> None:
    _ksql(url, f"INSERT INTO S (K, ID) VALUES ('{key}', {value});")


# ---------------------------------------------------------------------- PAUSE / RESUME


def test_pause_and_resume_parse() -> None:
    assert [(type(s).__name__, s.query_id) for s in parse(  # type: ignore[attr-defined]
        "PAUSE CTAS_T_0; resume ctas_t_0; PAUSE ALL; RESUME ALL;")] == [
        ("PauseQuery", "CTAS_T_0"), ("ResumeQuery", "CTAS_T_0"), ("PauseQuery", None),
        ("ResumeQuery", None)]
    assert parse("PAUSE ALL")[0].to_sql() == "PAUSE ALL"
    # Still names where a name is expected.
    stmt = parse("SELECT PAUSE, RESUME FROM S EMIT CHANGES;")[0]
    assert isinstance(stmt, ast.QueryStatement)


def test_paused_query_processes_nothing_until_resumed(running: Running) -> None:
    url = running.url
    _ksql(url, SETUP)
    _insert(url, "a", 1)
    assert _pull(url, "SELECT * FROM T WHERE K='a';") == [["a", 1]]

    paused = _ksql(url, "PAUSE CTAS_T_0;")[0]
    assert paused["@type"] == "currentStatus"
    assert paused["commandId"] == "pause/CTAS_T_0/execute"
    assert paused["commandStatus"] == {"status": "SUCCESS", "message": "Query paused.",
                                       "queryId": None}
    _insert(url, "a", 2)
    assert _pull(url, "SELECT * FROM T WHERE K='a';") == [["a", 1]]
    q = _ksql(url, "SHOW QUERIES;")[0]["queries"][0]
    assert (q["id"], q["state"], q["statusCount"]) == ("CTAS_T_0", "PAUSED", {"PAUSED": 1})

    resumed = _ksql(url, "RESUME CTAS_T_0;")[0]
    assert resumed["commandId"] == "resume/CTAS_T_0/execute"
    assert resumed["commandStatus"]["message"] == "Query resumed."
    assert resumed["commandSequenceNumber"] == paused["commandSequenceNumber"] + 1
    # The record that came while paused is processed now, then the query goes on.
    assert _pull(url, "SELECT * FROM T WHERE K='a';") == [["a", 3]]
    _insert(url, "a", 4)
    assert _pull(url, "SELECT * FROM T WHERE K='a';") == [["a", 7]]
    assert _ksql(url, "SHOW QUERIES;")[0]["queries"][0]["state"] == "RUNNING"


def test_pause_all_resume_all_and_unknown_ids(running: Running) -> None:
    url = running.url
    _ksql(url, SETUP + "CREATE STREAM S2 AS SELECT * FROM S;")
    assert _ksql(url, "PAUSE ALL;")[0]["commandId"] == "pause/ALL/execute"
    states = {q["id"]: q["state"] for q in _ksql(url, "SHOW QUERIES;")[0]["queries"]}
    assert states == {"CTAS_T_0": "PAUSED", "CSAS_S2_1": "PAUSED"}
    assert _ksql(url, "RESUME ALL;")[0]["commandId"] == "resume/ALL/execute"
    states = {q["id"]: q["state"] for q in _ksql(url, "SHOW QUERIES;")[0]["queries"]}
    assert states == {"CTAS_T_0": "RUNNING", "CSAS_S2_1": "RUNNING"}
    err = _ksql(url, "PAUSE NOPE_0;", 400)
    assert (err["@type"], err["error_code"]) == ("statement_error", 40001)
    assert err["message"] == "Unknown queryId: NOPE_0"
    assert _ksql(url, "RESUME NOPE_0;", 400)["message"] == "Unknown queryId: NOPE_0"


def test_a_restarted_server_keeps_a_query_paused() -> None:
    backend = MemoryBackend()
    first = KsqlServer(backend)
    first.start()
    first.execute(SETUP + "INSERT INTO S (K, ID) VALUES ('a', 1); PAUSE CTAS_T_0;")
    first.close()
    second = KsqlServer(backend)
    try:
        second.start()
        assert second.session.metastore.queries["CTAS_T_0"].state == "PAUSED"
        second.execute("INSERT INTO S (K, ID) VALUES ('a', 5);")
        assert "CTAS_T_0" in backend.paused  # the record waits for RESUME
        assert backend.query_stats("CTAS_T_0")["lag"] == 1
        second.execute("RESUME CTAS_T_0;")
        assert backend.query_stats("CTAS_T_0")["lag"] == 0
        assert second.session.metastore.queries["CTAS_T_0"].state == "RUNNING"
    finally:
        second.close()


# ---------------------------------------------------------------------- listings


def test_show_topics_and_queries_extended(running: Running) -> None:
    url = running.url
    _ksql(url, SETUP + "CREATE STREAM U (ID INT) WITH (KAFKA_TOPIC='u', VALUE_FORMAT='JSON', "
                       "PARTITIONS=1);")
    topics = _ksql(url, "SHOW TOPICS EXTENDED;")[0]
    assert topics["@type"] == "kafka_topics_extended"
    by_name = {t["name"]: t for t in topics["topics"]}
    # s is read by CTAS_T_0 (one group, one member); u by nobody.
    assert by_name["s"] == {"name": "s", "replicaInfo": [1], "consumerCount": 1,
                            "consumerGroupCount": 1}
    assert (by_name["u"]["consumerCount"], by_name["u"]["consumerGroupCount"]) == (0, 0)
    plain = _ksql(url, "LIST TOPICS;")[0]
    assert plain["@type"] == "kafka_topics" and "consumerCount" not in plain["topics"][0]

    described = _ksql(url, "SHOW QUERIES EXTENDED;")[0]
    assert described["@type"] == "query_descriptions"
    [d] = described["queryDescriptions"]
    assert (d["id"], d["sources"], d["sinks"], d["state"], d["queryType"]) == (
        "CTAS_T_0", ["S"], ["T"], "RUNNING", "PERSISTENT")
    assert [(f["name"], f["schema"]["type"], f.get("type")) for f in d["fields"]] == [
        ("K", "STRING", "KEY"), ("TOTAL", "INTEGER", None)]
    explained = _ksql(url, "EXPLAIN CTAS_T_0;")[0]["queryDescription"]
    assert explained["id"] == "CTAS_T_0" and explained["state"] == "RUNNING"


def test_describe_function(running: Running) -> None:
    url = running.url
    d = _ksql(url, "DESCRIBE FUNCTION sum;")[0]
    assert (d["@type"], d["name"], d["type"]) == ("describe_function", "SUM", "AGGREGATE")
    assert d["statementText"] == "DESCRIBE FUNCTION sum;"
    assert _ksql(url, "DESCRIBE FUNCTION ucase;")[0]["type"] == "SCALAR"
    assert _ksql(url, "DESCRIBE FUNCTION explode;")[0]["type"] == "TABLE"
    err = _ksql(url, "DESCRIBE FUNCTION no_such_fn;", 400)
    assert err["message"] == "Can't find any functions with the name 'NO_SUCH_FN'"


@pytest.mark.parametrize("sql", [
    "SHOW CONNECTORS;", "LIST SOURCE CONNECTORS;", "SHOW SINK CONNECTORS;",
    "SHOW CONNECTOR PLUGINS;", "DESCRIBE CONNECTOR c;", "DROP CONNECTOR c;",
    "CREATE SOURCE CONNECTOR c WITH ('connector.class'='x');",
    "CREATE SINK CONNECTOR c WITH ('connector.class'='x');"])
def test_connectors_are_refused_clearly(running: Running, sql: str) -> None:
    err = _ksql(running.url, sql, 400)
    assert err["@type"] == "statement_error" and "Kafka Connect" in err["message"]
    assert err["statementText"] == sql


def test_show_types_gives_schema_info(running: Running) -> None:
    out = _ksql(running.url, "CREATE TYPE ADDRESS AS STRUCT<NUMBER INT, STREET STRING>;"
                             "SHOW TYPES;")
    assert out[1]["@type"] == "type_list"
    assert out[1]["types"]["ADDRESS"] == {
        "type": "STRUCT", "memberSchema": None, "fields": [
            {"name": "NUMBER", "schema": {"type": "INTEGER", "fields": None,
                                          "memberSchema": None}},
            {"name": "STREET", "schema": {"type": "STRING", "fields": None,
                                          "memberSchema": None}}]}


def test_show_properties_names_the_overwritten(running: Running) -> None:
    out = _ksql(running.url, "SET 'auto.offset.reset'='earliest'; SHOW PROPERTIES;",
                streamsProperties={"ksql.streams.num.stream.threads": "2"})[0]
    assert out["@type"] == "properties"
    assert out["overwrittenProperties"] == ["auto.offset.reset",
                                            "ksql.streams.num.stream.threads"]
    values = {p["name"]: p["value"] for p in out["properties"]}
    assert values["auto.offset.reset"] == "earliest"
    # SET lasts for its request only.
    later = _ksql(running.url, "SHOW PROPERTIES;")[0]
    assert later["overwrittenProperties"] == []


def test_command_ids_of_insert_into_and_drop(running: Running) -> None:
    url = running.url
    out = _ksql(url, SETUP + "CREATE STREAM S2 AS SELECT * FROM S;"
                             "INSERT INTO S2 SELECT * FROM S;")
    assert [e["commandId"] for e in out] == [
        "stream/`S`/create", "table/`T`/create", "stream/`S2`/create", "stream/`S2`/create"]
    terminated = _ksql(url, "TERMINATE ALL;")[0]
    assert (terminated["commandId"], terminated["commandStatus"]["message"]) == (
        "terminate/ALL/execute", "Query terminated.")
    assert _ksql(url, "DROP STREAM S2;")[0]["commandId"] == "stream/S2/drop"


# ---------------------------------------------------------------------- query endpoints


def test_session_variables_on_query_endpoints(running: Running) -> None:
    url = running.url
    _ksql(url, SETUP)
    _insert(url, "a", 1)
    _insert(url, "b", 2)
    assert _pull(url, "SELECT * FROM S WHERE K = '${key}';",
                 sessionVariables={"key": "b"}) == [["b", 2]]
    r = httpx.post(url + "/query-stream", timeout=30, json={
        "sql": "SELECT ID FROM S WHERE K = '${KEY}';", "sessionVariables": {"key": "a"}})
    assert r.status_code == 200
    assert [json.loads(line) for line in r.text.splitlines()][1:] == [[1]]
    err = httpx.post(url + "/query-stream", timeout=30,
                     json={"sql": "SELECT * FROM S WHERE K = '${nope}';"})
    assert err.status_code == 400
    assert "Cannot substitute variable 'nope'" in err.json()["message"]


def test_query_stream_answers_streamed_rows_for_ksql_v1(running: Running) -> None:
    url = running.url
    _ksql(url, SETUP)
    _insert(url, "a", 1)
    _insert(url, "b", 2)
    r = httpx.post(url + "/query-stream", timeout=30, headers={"Accept": KSQL_V1}, json={
        "sql": "SELECT K, ID FROM S EMIT CHANGES LIMIT 2;",
        "properties": {"auto.offset.reset": "earliest"}})
    assert r.status_code == 200 and r.headers["content-type"].startswith(KSQL_V1)
    items = r.json()
    assert items[0]["header"]["schema"] == "`K` STRING, `ID` INTEGER"
    assert [i["row"]["columns"] for i in items[1:-1]] == [["a", 1], ["b", 2]]
    assert items[-1] == {"finalMessage": "Limit Reached"}


@pytest.mark.parametrize("path", ["/clusterStatus", "/v1/metadata", "/v1/metadata/id"])
def test_cluster_endpoints(running: Running, path: str) -> None:
    _ksql(running.url, SETUP)
    r = httpx.get(running.url + path, timeout=30)
    assert r.status_code == 200
    body = r.json()
    if path == "/clusterStatus":
        [(host, status)] = body["clusterStatus"].items()
        assert host.startswith("127.0.0.1:") and status["hostAlive"] is True
        assert status["ksqlHostQueryStatus"] == {"CTAS_T_0": "RUNNING"}
    elif path == "/v1/metadata":
        assert body["clusterId"]["ksql-cluster"] == "default_"
    else:
        assert body == {"id": "default_"}


def test_is_valid_property(running: Running) -> None:
    ok = httpx.get(running.url + "/is_valid_property/ksql.streams.num.stream.threads")
    assert (ok.status_code, ok.json()) == (200, True)
    denied = httpx.get(running.url + "/is_valid_property/ksql.service.id")
    assert denied.status_code == 400
    assert denied.json()["message"].endswith("[ksql.service.id]")


def test_table_pull_select_star_names_header_columns(running: Running) -> None:
    """ksqlDB's header schema puts a table's header columns after its key columns, with their
    HEADER('k') constraint; the rows keep the value columns before them."""
    url = running.url
    _ksql(url, "CREATE SOURCE TABLE H (ID STRING PRIMARY KEY, NAME STRING, "
               "TRACE BYTES HEADER('t')) WITH (KAFKA_TOPIC='h', VALUE_FORMAT='JSON', "
               "PARTITIONS=1);")
    running.server.backend.produce("h", b"x", b'{"NAME": "n1"}', 1000, (("t", b"!"),))
    items = httpx.post(url + "/query", json={"ksql": "SELECT * FROM H;"}, timeout=30).json()
    assert items[0]["header"]["schema"] == (
        "`ID` STRING KEY, `TRACE` BYTES HEADER('t'), `NAME` STRING")
    assert [i["row"]["columns"] for i in items[1:]] == [["x", "n1", "IQ=="]]
    # A projection keeps its own order and plain types.
    items = httpx.post(url + "/query", json={"ksql": "SELECT ID, TRACE FROM H;"},
                       timeout=30).json()
    assert items[0]["header"]["schema"] == "`ID` STRING KEY, `TRACE` BYTES"


def test_a_request_is_validated_whole_before_any_statement_runs(running: Running) -> None:
    url = running.url
    err = _ksql(url, "CREATE STREAM A (ID INT) WITH (KAFKA_TOPIC='a', VALUE_FORMAT='JSON', "
                     "PARTITIONS=1);"
                     "CREATE STREAM B AS SELECT NOPE FROM A;", 400)
    assert (err["@type"], err["error_code"], err["entities"]) == ("statement_error", 40001, [])
    assert err["statementText"] == "CREATE STREAM B AS SELECT NOPE FROM A;"
    assert _ksql(url, "SHOW STREAMS;")[0]["streams"] == []
    # A later statement may rely on an earlier one of the same request.
    out = _ksql(url, "CREATE STREAM A (ID INT) WITH (KAFKA_TOPIC='a', VALUE_FORMAT='JSON', "
                     "PARTITIONS=1); CREATE STREAM B AS SELECT ID FROM A; PAUSE CSAS_B_0;"
                     "TERMINATE CSAS_B_0;")
    assert [e["commandId"] for e in out] == [
        "stream/`A`/create", "stream/`B`/create", "pause/CSAS_B_0/execute",
        "terminate/CSAS_B_0/execute"]
    # A SELECT anywhere in the request: the query endpoints' error, nothing run.
    err = _ksql(url, "DROP STREAM B; SELECT * FROM A EMIT CHANGES;", 400)
    assert (err["error_code"], err["entities"]) == (40002, [])
    assert [s["name"] for s in _ksql(url, "SHOW STREAMS;")[0]["streams"]] == ["A", "B"]


def test_query_endpoints_refuse_other_statements_as_ksqldb(running: Running) -> None:
    url = running.url
    _ksql(url, SETUP)
    r = httpx.post(url + "/query-stream", json={"sql": "SHOW STREAMS;"}, timeout=30)
    assert r.status_code == 400
    assert (r.json()["error_code"], r.json()["message"]) == (40001, "Not a query")
    r = httpx.post(url + "/query-stream", timeout=30,
                   json={"sql": "SELECT * FROM S; SELECT * FROM T;"})
    assert r.json()["message"] == "Expected exactly one KSQL statement; found 2 instead"
    r = httpx.post(url + "/query", json={"ksql": "SHOW STREAMS;"}, timeout=30)
    assert r.status_code == 400
    body = r.json()
    assert (body["@type"], body["error_code"]) == ("generic_error", 40000)
    assert body["message"].endswith("not supported for this resource")
    r = httpx.post(url + "/query", json={"ksql": "  "}, timeout=30)
    assert (r.status_code, r.json()["message"]) == (400, '"ksql" field must be populated')


def test_query_stream_pull_metadata_has_the_query_id(running: Running) -> None:
    _ksql(running.url, SETUP)
    _insert(running.url, "a", 1)
    r = httpx.post(running.url + "/query-stream", json={"sql": "SELECT * FROM T WHERE K='a';"},
                   timeout=30)
    meta, *rows = [json.loads(line) for line in r.text.splitlines()]
    assert meta["queryId"].startswith("query_")
    assert (meta["columnNames"], meta["columnTypes"]) == (["K", "TOTAL"], ["STRING", "INTEGER"])
    assert rows == [["a", 1]]


def test_terminate_names_a_push_query(running: Running) -> None:
    import threading

    from server_helpers import wait_until

    _ksql(running.url, SETUP)
    got: list[Any] = []
    with KsqlClient(running.url, timeout=30) as client:
        stream = client.stream("SELECT * FROM S EMIT CHANGES;")

        def read() -> None:
            got.extend(stream)

        t = threading.Thread(target=read)
        t.start()
        assert wait_until(lambda: bool(running.server.transient), 30)
        qid = stream.query_id
        assert qid is not None and qid in running.server.transient
        out = _ksql(running.url, f"TERMINATE {qid};")[0]
        assert out == {"@type": "terminate_query", "statementText": f"TERMINATE {qid};",
                       "warnings": [], "queryId": qid, "wasTerminated": True}
        t.join(30)
        assert not t.is_alive() and got == []
        stream.close()
    assert wait_until(lambda: not running.server.transient, 30)


@pytest.mark.parametrize("sql", ["SELECT * FROM S EMIT FINAL;",
                                 "SELECT K, COUNT(*) FROM S GROUP BY K EMIT FINAL;"])
def test_emit_final_without_a_windowed_aggregation_is_refused(running: Running,
                                                              sql: str) -> None:
    _ksql(running.url, SETUP)
    for path, field in (("/query", "ksql"), ("/query-stream", "sql")):
        r = httpx.post(running.url + path, json={field: sql}, timeout=30)
        assert r.status_code == 400
        assert r.json()["message"] == "EMIT FINAL is only supported for windowed aggregations."


def test_push_query_emit_final_gives_closed_windows_only(running: Running) -> None:
    url = running.url
    _ksql(url, SETUP)
    for key, ts in (("a", 0), ("a", 1000), ("b", 2000), ("a", 61000)):
        _ksql(url, f"INSERT INTO S (ROWTIME, K, ID) VALUES ({ts}, '{key}', 1);")
    r = httpx.post(url + "/query", timeout=60, json={
        "ksql": "SELECT K, WINDOWSTART AS WS, COUNT(*) AS N FROM S "
                "WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 0 SECONDS) GROUP BY K "
                "EMIT FINAL LIMIT 2;",
        "streamsProperties": {"auto.offset.reset": "earliest"}})
    rows = [i["row"]["columns"] for i in r.json() if "row" in i]
    # The record at 61 s closes the first minute: one final row per key, no updates.
    assert sorted(rows) == [["a", 0, 2], ["b", 0, 1]]


def test_command_sequence_number_waits_for_the_command(make_server: Any) -> None:
    from hayase.server.app import ServerConfig

    url = make_server(ServerConfig(command_wait_seconds=0.2)).url
    seq = _ksql(url, SETUP)[-1]["commandSequenceNumber"]
    assert seq == 1
    shown = _ksql(url, "SHOW STREAMS;", commandSequenceNumber=seq)[0]
    assert [s["name"] for s in shown["streams"]] == ["S"]
    assert _pull(url, "SELECT * FROM T;", commandSequenceNumber=seq) == []
    behind = _ksql(url, "SHOW STREAMS;", 503, commandSequenceNumber=seq + 5)
    assert behind["error_code"] == 50301
    assert behind["message"].endswith(f"command sequence number: {seq + 5}")
    assert _ksql(url, "SHOW STREAMS;", 400, commandSequenceNumber="x")["error_code"] == 40000


@pytest.mark.parametrize(("sql", "clause"), [
    ("SELECT * FROM S JOIN T ON S.K = T.K WINDOW TUMBLING (SIZE 1 SECOND);", "JOIN"),
    ("SELECT K, COUNT(*) FROM S WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY K;", "WINDOW"),
    ("SELECT K, COUNT(*) FROM S GROUP BY K HAVING COUNT(*) > 1;", "GROUP BY"),
    ("SELECT * FROM S PARTITION BY ID;", "PARTITION BY"),
])
def test_pull_query_restrictions_in_ksqldb_order(running: Running, sql: str,
                                                 clause: str) -> None:
    _ksql(running.url, SETUP)
    r = httpx.post(running.url + "/query", json={"ksql": sql}, timeout=30)
    assert r.status_code == 400
    assert r.json()["message"].startswith(f"Pull queries don't support {clause} clauses. ")
    assert r.json()["message"].endswith("Add EMIT CHANGES if you intended to issue a push query.")


def test_undefine_of_an_undefined_variable_warns(running: Running) -> None:
    out = _ksql(running.url, "DEFINE a = 'x'; UNDEFINE a; UNDEFINE a;")
    assert out == [{"@type": "warning_entity", "statementText": "UNDEFINE a;", "warnings": [],
                    "message": "Cannot undefine variable 'A' which was never defined"}]
    out = _ksql(running.url, "UNDEFINE b; SHOW VARIABLES;", sessionVariables={"b": "1"})
    assert out[0]["@type"] == "variables" and out[0]["variables"] == []


def test_pause_from_another_server_applies_here() -> None:
    """A PAUSE another server (same service id) wrote to the command topic, as the follower
    applies it."""
    backend = MemoryBackend()
    server = KsqlServer(backend, record_commands=False)
    try:
        server.execute(SETUP)
        server._apply_remote({"statement": "PAUSE CTAS_T_0;", "streamsProperties": {}},
                             "pause/CTAS_T_0/execute")
        assert server.session.metastore.queries["CTAS_T_0"].state == "PAUSED"
        assert server.statuses["pause/CTAS_T_0/execute"].status == "SUCCESS"
        server.execute("INSERT INTO S (K, ID) VALUES ('a', 1);")
        assert backend.query_stats("CTAS_T_0")["lag"] == 1
        server._apply_remote({"statement": "RESUME ALL;", "streamsProperties": {}},
                             "resume/ALL/execute")
        assert backend.query_stats("CTAS_T_0") == {"consumed": 1, "produced": 1, "lag": 0}
    finally:
        server.close()


def test_inserts_stream_checks_its_target_first(running: Running) -> None:
    url = running.url
    _ksql(url, SETUP + "CREATE STREAM `Mixed` (ID INT) WITH (KAFKA_TOPIC='m', "
                       "VALUE_FORMAT='JSON', PARTITIONS=1);")

    def post(target: str) -> httpx.Response:
        body = json.dumps({"target": target}) + "\n" + json.dumps({"ID": 1}) + "\n"
        return httpx.post(url + "/inserts-stream", content=body, timeout=30)

    for target, message in (("nope", "Cannot insert values into an unknown stream: `NOPE`"),
                            ("t", "Cannot insert into a table")):
        r = post(target)
        assert r.status_code == 400
        assert (r.json()["error_code"], r.json()["message"]) == (40001, message)
    ok = post("`Mixed`")
    assert ok.status_code == 200
    assert [json.loads(line) for line in ok.text.splitlines()] == [{"status": "ok", "seq": 0}]
    assert _pull(url, "SELECT * FROM `Mixed`;") == [[1]]
    assert post("s").status_code == 200  # unquoted names are upper-cased


@pytest.mark.parametrize(("accept", "media"), [
    (KSQL_V1, KSQL_V1), ("application/json", "application/json"), (None, "application/json")])
def test_query_answers_the_content_type_asked_for(running: Running, accept: str | None,
                                                  media: str) -> None:
    _ksql(running.url, SETUP)
    headers = {"Accept": accept} if accept else {}
    for sql in ("SELECT * FROM S;", "SELECT * FROM S EMIT CHANGES LIMIT 0;"):
        r = httpx.post(running.url + "/query", json={"ksql": sql}, headers=headers, timeout=30)
        assert r.status_code == 200 and r.headers["content-type"].startswith(media)
        assert "header" in r.json()[0]


def test_healthcheck_reports_an_unreachable_cluster(tmp_path: Any) -> None:
    import socket
    import threading

    import uvicorn

    from hayase.engine.processing_log import DEFAULT_TOPIC
    from hayase.server.app import KsqlApp
    from hayase.server.backend import KafkaBackend
    from hayase.testing.apache_kafka import free_port

    # Nothing listens there: the cluster does not answer.
    backend = KafkaBackend({"bootstrap.servers": f"127.0.0.1:{free_port()}"}, "h_",
                           tmp_path / "state", DEFAULT_TOPIC)
    server = KsqlServer(backend, "h_", record_commands=False)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    uv = uvicorn.Server(uvicorn.Config(KsqlApp(server), log_level="error"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        from server_helpers import wait_until

        assert wait_until(lambda: uv.started)
        r = httpx.get(f"http://127.0.0.1:{sock.getsockname()[1]}/healthcheck", timeout=30)
        assert r.status_code == 503
        assert r.json() == {"isHealthy": False, "details": {
            "metastore": {"isHealthy": True}, "kafka": {"isHealthy": False},
            "commandRunner": {"isHealthy": True}}}
    finally:
        uv.should_exit = True
        thread.join(60)
        sock.close()
        server.close()


def test_variable_substitution_can_be_turned_off(running: Running) -> None:
    url = running.url
    off = {"ksql.variable.substitution.enable": "false"}
    _ksql(url, "CREATE STREAM V (ID STRING KEY, TXT STRING) WITH (KAFKA_TOPIC='v', "
               "VALUE_FORMAT='JSON', PARTITIONS=1);"
               "INSERT INTO V (ID, TXT) VALUES ('a', '${x}');",
          streamsProperties=off, sessionVariables={"x": "substituted"})
    assert _pull(url, "SELECT TXT FROM V;", streamsProperties=off,
                 sessionVariables={"x": "y"}) == [["${x}"]]
    _ksql(url, "SET 'ksql.variable.substitution.enable'='false';"
               "INSERT INTO V (ID, TXT) VALUES ('b', '${x}');")
    # On again (the default): substituted.
    _ksql(url, "INSERT INTO V (ID, TXT) VALUES ('c', '${x}');", sessionVariables={"x": "z"})
    assert sorted(_pull(url, "SELECT ID, TXT FROM V;")) == [
        ["a", "${x}"], ["b", "${x}"], ["c", "z"]]
