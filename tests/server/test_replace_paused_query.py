"""CREATE OR REPLACE of a PAUSED persistent query, as ksqlDB does it: the replacement is a new
query (its pause flag starts false) that the server starts, so the query runs again under the
same id; a server restarted from the command topic (CREATE, PAUSE, CREATE OR REPLACE) runs it
too."""

from __future__ import annotations

import json
from typing import Any

from server_helpers import serve, wait_until

from hayase.client.ksql import KsqlClient
from hayase.server.backend import MemoryBackend

_SETUP = ("CREATE STREAM S (K STRING KEY, ID INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', "
          "PARTITIONS=1);"
          "CREATE STREAM C WITH (KAFKA_TOPIC='c') AS SELECT K, ID FROM S;")
_REPLACE = "CREATE OR REPLACE STREAM C WITH (KAFKA_TOPIC='c') AS SELECT K, ID FROM S WHERE ID > 0;"


def _ids(backend: MemoryBackend) -> list[Any]:
    return [json.loads(r.value)["ID"] for r in backend.scan("c") if r.value is not None]


def _states(c: KsqlClient) -> dict[str, str]:
    return {q["id"]: q["state"] for q in c.ksql("SHOW QUERIES;")[0]["queries"]}


def test_replacing_a_paused_query_runs_it_again() -> None:
    backend = MemoryBackend()
    running, stop = serve(backend)
    try:
        with KsqlClient(running.url, timeout=60) as c:
            c.ksql(_SETUP)
            c.ksql("PAUSE CSAS_C_0;")
            assert _states(c) == {"CSAS_C_0": "PAUSED"}
            c.ksql(_REPLACE)
            assert _states(c) == {"CSAS_C_0": "RUNNING"}
            c.ksql("INSERT INTO S (K, ID) VALUES ('a', -1); INSERT INTO S (K, ID) VALUES ('a', 2);")
            assert wait_until(lambda: _ids(backend) == [2])
    finally:
        stop()
    running, stop = serve(backend)  # the same backend: the command topic is replayed
    try:
        with KsqlClient(running.url, timeout=60) as c:
            assert _states(c) == {"CSAS_C_0": "RUNNING"}
            c.ksql("INSERT INTO S (K, ID) VALUES ('a', 3);")
            assert wait_until(lambda: _ids(backend) == [2, 3])
    finally:
        stop()
