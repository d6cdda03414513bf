"""A Python client for ksqlDB's REST API (hayase server or ksqlDB itself), over httpx.

    with KsqlClient("http://127.0.0.1:8088") as c:
        c.ksql("CREATE STREAM S (K STRING KEY, V INT) WITH (KAFKA_TOPIC='s', "
               "VALUE_FORMAT='JSON', PARTITIONS=1);")
        c.insert("S", [{"K": "a", "V": 1}])
        header, rows = c.pull("SELECT * FROM S;")
        with c.stream("SELECT * FROM S EMIT CHANGES;") as q:
            for row in q:   # lists of column values, as they come
                ...

``ksql`` posts to /ksql and returns the entities; ``query`` streams the /query JSON array
elements (header, rows, final message); ``stream`` reads /query-stream's delimited lines;
``insert`` uses /inserts-stream. Errors raise :class:`KsqlServerError` with ksqlDB's entity.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any

import httpx

KSQL_V1 = "application/vnd.ksql.v1+json"
DELIMITED = "application/vnd.ksqlapi.delimited.v1"


class KsqlServerError(Exception):
    """The server answered with an error entity (``@type``, ``error_code``, ``message``)."""

    def __init__(self, status: int, entity: Any) -> None:
        self.status = status
        self.entity = entity if isinstance(entity, dict) else {"message": str(entity)}
        self.error_code = self.entity.get("error_code")
        self.message = str(self.entity.get("message", entity))
        super().__init__(f"{status} {self.error_code}: {self.message}")


def iter_json_array(chunks: Iterable[str]) -> Iterator[Any]:
    """Elements of a JSON array read incrementally (as /query writes it, chunk by chunk)."""
    decoder = json.JSONDecoder()
    buf = ""
    for chunk in chunks:
        buf += chunk
        while True:
            stripped = buf.lstrip(" \t\r\n[,")
            if not stripped or stripped.startswith("]"):
                buf = stripped
                break
            try:
                item, end = decoder.raw_decode(stripped)
            except json.JSONDecodeError:
                buf = stripped
                break
            yield item
            buf = stripped[end:]


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code >= 400:
        resp.read()
        try:
            entity = resp.json()
        except ValueError:
            entity = resp.text
        raise KsqlServerError(resp.status_code, entity)


class StreamedQuery:
    """A running /query-stream query: metadata (``query_id``, ``columns``, ``types``) then rows
    (lists) as they arrive; ``close()`` ends it (and the server frees it)."""

    def __init__(self, client: KsqlClient, sql: str, properties: Mapping[str, Any]) -> None:
        self._cm = client.http.stream(
            "POST", "/query-stream", json={"sql": sql, "properties": dict(properties)},
            headers={"Accept": DELIMITED}, timeout=httpx.Timeout(client.timeout, read=None))
        self.response = self._cm.__enter__()
        try:
            _raise_for(self.response)
        except KsqlServerError:
            self._cm.__exit__(None, None, None)
            raise
        self._lines = self.response.iter_lines()
        meta = json.loads(next(self._lines))
        self.query_id: str | None = meta.get("queryId")
        self.columns: list[str] = meta.get("columnNames", [])
        self.types: list[str] = meta.get("columnTypes", [])

    def __iter__(self) -> Iterator[list[Any]]:
        for line in self._lines:
            if line.strip():
                item = json.loads(line)
                if isinstance(item, dict) and "@type" in item:
                    raise KsqlServerError(self.response.status_code, item)
                yield item

    def close(self) -> None:
        self._cm.__exit__(None, None, None)

    def __enter__(self) -> StreamedQuery:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class KsqlClient:
    def __init__(self, url: str = "http://127.0.0.1:8088", auth: tuple[str, str] | None = None,
                 timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.http = httpx.Client(base_url=self.url, auth=auth, timeout=timeout,
                                 headers={"Accept": KSQL_V1})

    # ------------------------------------------------------------------ statements
    def ksql(self, statements: str, properties: Mapping[str, Any] | None = None,
             variables: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"ksql": statements, "streamsProperties": dict(properties or {})}
        if variables:
            body["sessionVariables"] = dict(variables)
        resp = self.http.post("/ksql", json=body)
        _raise_for(resp)
        result: list[dict[str, Any]] = resp.json()
        return result

    # ------------------------------------------------------------------ queries
    def query(self, sql: str, properties: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """/query elements as they arrive: {"header"}, {"row"}..., {"finalMessage"}."""
        with self.http.stream("POST", "/query",
                              json={"ksql": sql, "streamsProperties": dict(properties or {})},
                              timeout=httpx.Timeout(self.timeout, read=None)) as resp:
            _raise_for(resp)
            yield from iter_json_array(resp.iter_text())

    def print_topic(self, sql: str, properties: Mapping[str, Any] | None = None
                    ) -> Iterator[str]:
        """PRINT over /query: the topic's record lines as they arrive."""
        with self.http.stream("POST", "/query",
                              json={"ksql": sql, "streamsProperties": dict(properties or {})},
                              timeout=httpx.Timeout(self.timeout, read=None)) as resp:
            _raise_for(resp)
            yield from (line for line in resp.iter_lines() if line)

    def pull(self, sql: str, properties: Mapping[str, Any] | None = None,
             ) -> tuple[dict[str, Any], list[list[Any]]]:
        """A pull query: (header, rows)."""
        header: dict[str, Any] = {}
        rows: list[list[Any]] = []
        for item in self.query(sql, properties):
            if "header" in item:
                header = item["header"]
            elif "row" in item:
                rows.append(item["row"]["columns"])
            elif "errorMessage" in item:
                raise KsqlServerError(200, item["errorMessage"])
        return header, rows

    def stream(self, sql: str, properties: Mapping[str, Any] | None = None) -> StreamedQuery:
        return StreamedQuery(self, sql, properties or {})

    def close_query(self, query_id: str) -> None:
        resp = self.http.post("/close-query", json={"queryId": query_id})
        _raise_for(resp)

    def insert(self, target: str, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """/inserts-stream: one ack per row ({"status": "ok", "seq": n} or an error)."""
        lines = [json.dumps({"target": target})] + [json.dumps(dict(r)) for r in rows]
        resp = self.http.post("/inserts-stream", content="\n".join(lines).encode(),
                              headers={"Accept": DELIMITED})
        _raise_for(resp)
        return [json.loads(line) for line in resp.text.splitlines() if line.strip()]

    # ------------------------------------------------------------------ server
    def info(self) -> dict[str, Any]:
        resp = self.http.get("/info")
        _raise_for(resp)
        result: dict[str, Any] = resp.json()["KsqlServerInfo"]
        return result

    def healthcheck(self) -> dict[str, Any]:
        resp = self.http.get("/healthcheck")
        _raise_for(resp)
        result: dict[str, Any] = resp.json()
        return result

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> KsqlClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
