"""DESCRIBE FUNCTION over REST lists one FunctionInfo per overload, as ksqlDB's
DescribeFunctionExecutor does; SHOW FUNCTIONS still lists the names."""

from __future__ import annotations

from typing import Any

import httpx
from server_helpers import Running

from hayase.server.entities import describe_function
from hayase.sql.functions import lookup


def _ksql(url: str, sql: str) -> Any:
    r = httpx.post(url + "/ksql", json={"ksql": sql}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()[0]


def test_describe_function_entity_lists_overloads() -> None:
    udf = lookup("CONCAT_WS")
    assert udf is not None
    d = describe_function(udf, "DESCRIBE FUNCTION concat_ws;")
    first = d["functions"][0]
    assert first["returnType"] == "STRING"
    assert [(a["name"], a["type"], a["isVariadic"]) for a in first["arguments"]] == [
        ("separator", "STRING", False), ("inputs", "STRING", True)]
    assert first["argumentTypes"] == ["STRING", "STRING"]
    assert set(first) == {"arguments", "returnType", "description", "argumentTypes"}


def test_describe_function_over_rest(running: Running) -> None:
    d = _ksql(running.url, "DESCRIBE FUNCTION substring;")
    assert (d["@type"], d["name"], d["type"]) == ("describe_function", "SUBSTRING", "SCALAR")
    assert [[a["type"] for a in f["arguments"]] for f in d["functions"]] == [
        ["STRING", "INT"], ["STRING", "INT", "INT"], ["BYTES", "INT"], ["BYTES", "INT", "INT"]]
    agg = _ksql(running.url, "DESCRIBE FUNCTION topk;")
    assert agg["type"] == "AGGREGATE" and agg["functions"][0]["returnType"] == "ARRAY<T>"
    table = _ksql(running.url, "DESCRIBE FUNCTION explode;")
    assert table["functions"][0]["arguments"][0]["type"] == "ARRAY<T>"
    names = {f["name"] for f in _ksql(running.url, "SHOW FUNCTIONS;")["functions"]}
    assert {"SUBSTRING", "TOPK", "EXPLODE"} <= names
