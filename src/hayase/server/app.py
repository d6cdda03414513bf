"""The HTTP layer: ksqlDB's REST API on Starlette (served by uvicorn).

Endpoints: POST /ksql, /query (also PRINT), /query-stream, /inserts-stream, /close-query; GET
/info, /healthcheck, /clusterStatus, /is_valid_property/{name}, /v1/metadata[/id],
/status[/type/entity/action]; the web console at / (static files).
Blocking work (statement execution, topic scans, polling subscriptions) runs in worker threads;
push queries poll their subscriptions and stop when the client disconnects, LIMIT is reached or
/close-query closes them, and always close their consumers.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from hayase.server import entities as E
from hayase.server.backend import BackendError, Subscription
from hayase.server.engine import VERSION, KsqlServer, NotAQueryError, QueryInfo, RequestError
from hayase.server.print_topic import Printer, PrintSyntaxError, is_print, parse_print
from hayase.server.transient import Row, TransientQuery, TransientRunner, run_pull

KSQL_V1 = "application/vnd.ksql.v1+json"
DELIMITED = "application/vnd.ksqlapi.delimited.v1"
STATIC = Path(__file__).parent / "static"
POLL_SECONDS = 0.25
# Request fields ksqlDB reads as JSON objects (KsqlRequest, QueryStreamArgs).
_MAP_FIELDS = ("streamsProperties", "sessionVariables", "properties")
# Properties a request may not override (/is_valid_property answers 400 for them).
_NOT_SETTABLE = frozenset({"ksql.service.id", "ksql.internal.topic.replicas",
                           "ksql.internal.topic.min.insync.replicas", "bootstrap.servers",
                           "ksql.streams.bootstrap.servers"})


@dataclass
class ServerConfig:
    max_request_bytes: int = 10 * 1024 * 1024
    max_concurrent_queries: int = 16
    # How long a request naming a commandSequenceNumber waits for that command
    # (ksql.server.command.response.timeout.ms).
    command_wait_seconds: float = 5.0
    basic_auth: tuple[str, str] | None = None  # (user, password)


class BodyTooLarge(Exception):
    pass


def _json(entity: Any, status: int = 200, request: Request | None = None) -> Response:
    media = KSQL_V1
    if request is not None and "application/json" in request.headers.get("accept", "") \
            and KSQL_V1 not in request.headers.get("accept", ""):
        media = "application/json"
    return Response(json.dumps(entity, default=_default), status_code=status, media_type=media)


def _default(o: Any) -> Any:
    import decimal

    if isinstance(o, decimal.Decimal):
        return float(o) if o != o.to_integral_value() or abs(o) > 2**53 else int(o)
    if isinstance(o, bytes):
        return base64.b64encode(o).decode()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _dumps(o: Any) -> str:
    return json.dumps(o, default=_default, separators=(",", ":"))


class KsqlApp:
    def __init__(self, server: KsqlServer, config: ServerConfig | None = None) -> None:
        self.server = server
        self.config = config or ServerConfig()
        self.active = 0
        self.active_lock = threading.Lock()
        routes = [
            Route("/ksql", self.ksql, methods=["POST"]),
            Route("/query", self.query, methods=["POST"]),
            Route("/query-stream", self.query_stream, methods=["POST"]),
            Route("/inserts-stream", self.inserts_stream, methods=["POST"]),
            Route("/close-query", self.close_query, methods=["POST"]),
            Route("/info", self.info, methods=["GET"]),
            Route("/healthcheck", self.healthcheck, methods=["GET"]),
            Route("/clusterStatus", self.cluster_status, methods=["GET"]),
            Route("/is_valid_property/{name}", self.is_valid_property, methods=["GET"]),
            Route("/v1/metadata", self.metadata, methods=["GET"]),
            Route("/v1/metadata/id", self.metadata_id, methods=["GET"]),
            Route("/status", self.status, methods=["GET"]),
            Route("/status/{kind}/{entity}/{action}", self.status_one, methods=["GET"]),
            Route("/console/api/overview", self.overview, methods=["GET"]),
            Route("/", self.console, methods=["GET"]),
            Route("/console/{name:path}", self.console_file, methods=["GET"]),
        ]
        self.app = Starlette(routes=routes)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.config.basic_auth is not None \
                and not self._authorized(scope):
            resp = JSONResponse(E.generic_error("Unauthorized", E.ERROR_CODE_UNAUTHORIZED),
                                status_code=401,
                                headers={"WWW-Authenticate": 'Basic realm="hayase"'})
            await resp(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, scope: Mapping[str, Any]) -> bool:
        assert self.config.basic_auth is not None
        header = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin-1")
        if not header.lower().startswith("basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        want_user, want_password = self.config.basic_auth
        return secrets.compare_digest(user, want_user) and secrets.compare_digest(
            password, want_password)

    # ------------------------------------------------------------------ helpers
    async def _body(self, request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.config.max_request_bytes:
            raise BodyTooLarge()
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.config.max_request_bytes:
                raise BodyTooLarge()
            chunks.append(chunk)
        return b"".join(chunks)

    async def _json_body(self, request: Request) -> dict[str, Any] | Response:
        try:
            raw = await self._body(request)
        except BodyTooLarge:
            return _json(E.generic_error(
                f"Request body larger than {self.config.max_request_bytes} bytes", 41300),
                413, request)
        try:
            body = json.loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            return _json(E.generic_error(f"Invalid JSON in request: {e}"), 400, request)
        if not isinstance(body, dict):
            return _json(E.generic_error("Invalid JSON in request: expected an object"), 400,
                         request)
        for name in _MAP_FIELDS:
            # ksqlDB reads these as maps: anything else is a malformed request, not a 500.
            if body.get(name) is not None and not isinstance(body[name], dict):
                return _json(E.generic_error(
                    f"Invalid JSON in request: {name} must be an object"), 400, request)
        return body

    def _acquire(self) -> bool:
        with self.active_lock:
            if self.active >= self.config.max_concurrent_queries:
                return False
            self.active += 1
            return True

    def _release(self) -> None:
        with self.active_lock:
            self.active -= 1

    def _too_many(self, request: Request) -> Response:
        return _json(E.generic_error(
            f"Host is at maximum concurrent queries: {self.config.max_concurrent_queries}",
            E.ERROR_CODE_TOO_MANY_REQUESTS), 429, request)

    async def _caught_up(self, body: Mapping[str, Any], request: Request) -> Response | None:
        """KsqlRequest's commandSequenceNumber: the error response when this server has not
        applied that command in time (or the number is no number), else None."""
        seq = body.get("commandSequenceNumber")
        if seq is None:
            return None
        if isinstance(seq, bool) or not isinstance(seq, int):
            return _json(E.generic_error(
                "Invalid JSON in request: commandSequenceNumber must be a number"), 400, request)
        try:
            await anyio.to_thread.run_sync(self.server.wait_for_command, seq,
                                           self.config.command_wait_seconds)
        except RequestError as e:
            return _json(e.entity, e.status, request)
        return None

    # ------------------------------------------------------------------ /ksql
    async def ksql(self, request: Request) -> Response:
        body = await self._json_body(request)
        if isinstance(body, Response):
            return body
        behind = await self._caught_up(body, request)
        if behind is not None:
            return behind
        text = body.get("ksql")
        if not isinstance(text, str) or not text.strip():
            return _json(E.generic_error("\"ksql\" field must be given"), 400, request)
        props = body.get("streamsProperties") or {}
        variables = body.get("sessionVariables") or {}
        try:
            out = await anyio.to_thread.run_sync(self.server.execute, text, props, variables)
        except RequestError as e:
            return _json(e.entity, e.status, request)
        return _json(out, 200, request)

    # ------------------------------------------------------------------ queries
    async def _plan(self, sql: Any, props: Mapping[str, Any],
                    variables: Mapping[str, Any] | None = None) -> TransientQuery:
        if not isinstance(sql, str) or not sql.strip():
            raise RequestError(E.generic_error("The query must be given"))
        return await anyio.to_thread.run_sync(self.server.plan_query, sql, props, variables)

    def _pull_rows(self, tq: TransientQuery, props: Mapping[str, Any]) -> tuple[list[Row], bool]:
        records = {t: self.server.backend.scan(t) for t in tq.source_topics}
        return run_pull(tq, records, props)

    async def _pull(self, tq: TransientQuery, props: Mapping[str, Any], request: Request | None,
                    ) -> tuple[list[Row], bool] | Response:
        """A pull query's rows and whether LIMIT cut them, or the error response; either way
        the query slot taken by _acquire is released."""
        try:
            return await anyio.to_thread.run_sync(self._pull_rows, tq, props)
        except BackendError as e:
            return _json(E.generic_error(str(e), E.ERROR_CODE_SERVER_ERROR), 500, request)
        finally:
            self._release()

    async def _push(self, tq: TransientQuery, props: Mapping[str, Any], request: Request | None,
                    ) -> tuple[list[Subscription], QueryInfo] | Response:
        """Subscribe a push query to its topics and register it, or release its query slot and
        answer the error."""
        try:
            subs = await anyio.to_thread.run_sync(self._subscribe, tq, props)
        except BackendError as e:
            self._release()
            return _json(E.generic_error(str(e), E.ERROR_CODE_SERVER_ERROR), 500, request)
        return subs, self.server.register(tq)  # after subscribing: rows produced from now are seen

    def _subscribe(self, tq: TransientQuery, props: Mapping[str, Any]) -> list[Subscription]:
        earliest = str(props.get("auto.offset.reset", props.get(
            "ksql.streams.auto.offset.reset", "latest"))).lower() == "earliest"
        return [self.server.backend.tail(t, earliest) for t in tq.source_topics]

    async def _push_rows(self, request: Request, tq: TransientQuery, info: QueryInfo,
                         props: Mapping[str, Any],
                         subs: list[Subscription]) -> AsyncIterator[Row | None]:
        """Rows as they come; yields None when LIMIT is reached (then stops)."""
        runner = TransientRunner(tq, props)
        sent = 0
        try:
            if tq.limit is not None and tq.limit <= 0:
                yield None
                return
            while not info.close.is_set():
                for sub in subs:
                    records = await anyio.to_thread.run_sync(sub.poll, POLL_SECONDS)
                    for rec in records:
                        for row in runner.feed(rec):
                            if row.tombstone and not tq.result_is_table:
                                continue
                            yield row
                            sent += 1
                            info.rows += 1
                            if tq.limit is not None and sent >= tq.limit:
                                yield None
                                return
                if await request.is_disconnected():
                    return
        finally:
            runner.close()
            for sub in subs:
                await anyio.to_thread.run_sync(sub.close)

    async def query(self, request: Request) -> Response:
        """POST /query: a chunked JSON array of header, rows and the final message."""
        body = await self._json_body(request)
        if isinstance(body, Response):
            return body
        behind = await self._caught_up(body, request)
        if behind is not None:
            return behind
        props = body.get("streamsProperties") or {}
        sql = body.get("ksql")
        if not isinstance(sql, str) or not sql.strip():
            return _json(E.generic_error("\"ksql\" field must be populated"), 400, request)
        if is_print(sql):
            return await self._print(request, sql)
        try:
            tq = await self._plan(sql, props, body.get("sessionVariables"))
        except NotAQueryError:
            # ksqlDB's StreamedQueryResource names the class of its parsed statement here.
            return _json(E.generic_error(
                "Statement type `io.confluent.ksql.parser.KsqlParser$PreparedStatement' not "
                "supported for this resource"), 400, request)
        except RequestError as e:
            return _json(e.entity, e.status, request)
        if not self._acquire():
            return self._too_many(request)
        # The content type asked for: ksqlDB's own, or application/json.
        media = KSQL_V1 if KSQL_V1 in request.headers.get("accept", "") else "application/json"
        return await self._streamed_rows(request, tq, props, media)

    async def _print(self, request: Request, sql: str) -> Response:
        """PRINT over /query: the topic's records as text lines until LIMIT or the client
        leaves (ksqlDB's TopicStreamWriter)."""
        try:
            stmt = parse_print(sql)
        except PrintSyntaxError as e:
            return _json(E.statement_error(str(e), sql), 400, request)
        topics = await anyio.to_thread.run_sync(self.server.backend.topics)
        if stmt.topic not in topics:
            message = (f"Could not find topic '{stmt.topic}', or the KSQL user does not have "
                       "permissions to list the topic. Topic names are case-sensitive.")
            similar = sorted(t for t in topics if t.lower() == stmt.topic.lower())
            if similar:
                message += "\nDid you mean:\n" + "\n".join(f"\tprint {t};" for t in similar)
            return _json(E.generic_error(message), 400, request)
        if not self._acquire():
            return self._too_many(request)
        try:
            sub = await anyio.to_thread.run_sync(self.server.backend.tail, stmt.topic,
                                                 stmt.from_beginning)
        except BackendError as e:
            self._release()
            return _json(E.generic_error(str(e), E.ERROR_CODE_SERVER_ERROR), 500, request)

        async def lines() -> AsyncIterator[str]:
            printer = Printer(stmt)
            try:
                while not printer.done:
                    for rec in await anyio.to_thread.run_sync(sub.poll, POLL_SECONDS):
                        for line in printer.lines(rec.key, rec.value, rec.timestamp,
                                                  rec.partition):
                            yield line + "\n"
                        if printer.done:
                            break
                    if await request.is_disconnected():
                        return
            finally:
                await anyio.to_thread.run_sync(sub.close)
                self._release()

        return StreamingResponse(lines(), media_type="application/json")

    async def _streamed_rows(self, request: Request, tq: TransientQuery,
                             props: Mapping[str, Any], media: str = "application/json",
                             ) -> Response:
        """A query's answer as ksqlDB's StreamedRows: a JSON array of the header, the rows and
        the final message (/query, and /query-stream asked for application/vnd.ksql.v1+json).
        The query slot is taken already; it is released when the answer ends."""
        header = {"header": {"queryId": tq.query_id, "schema": tq.schema_text}}
        if tq.is_pull:
            pulled = await self._pull(tq, props, request)
            if isinstance(pulled, Response):
                return pulled
            rows, limited = pulled
            items: list[Any] = [header] + [_row_entity(r) for r in rows]
            if tq.source.source_type.value == "STREAM":
                items.append({"finalMessage": "Limit Reached" if limited else "Query Completed"})
            text = "[" + ",\n".join(_dumps(i) for i in items) + "]\n"
            return Response(text, media_type=media)
        pushed = await self._push(tq, props, request)
        if isinstance(pushed, Response):
            return pushed
        subs, info = pushed

        async def stream() -> AsyncIterator[str]:
            try:
                yield "[" + _dumps(header)
                async for row in self._push_rows(request, tq, info, props, subs):
                    if row is None:
                        yield ",\n" + _dumps({"finalMessage": "Limit Reached"})
                        break
                    yield ",\n" + _dumps(_row_entity(row))
                yield "]\n"
            finally:
                self.server.unregister(tq.query_id)
                self._release()

        return StreamingResponse(stream(), media_type=media)

    async def query_stream(self, request: Request) -> Response:
        """POST /query-stream: metadata then rows, as delimited JSON lines or a JSON array."""
        body = await self._json_body(request)
        if isinstance(body, Response):
            return body
        props = body.get("properties") or {}
        # ksqlDB's default is the delimited form; the JSON array only when asked for, and
        # the StreamedRows of /query for application/vnd.ksql.v1+json.
        accept = request.headers.get("accept", "")
        delimited = DELIMITED in accept or "application/json" not in accept
        streamed_rows = KSQL_V1 in accept and DELIMITED not in accept
        try:
            tq = await self._plan(body.get("sql"), props, body.get("sessionVariables"))
        except RequestError as e:
            entity = dict(e.entity)
            return _json(entity, e.status, None)
        if not self._acquire():
            return self._too_many(request)
        if streamed_rows:
            return await self._streamed_rows(request, tq, props, KSQL_V1)
        meta = {"queryId": tq.query_id, "columnNames": [n for n, _ in tq.columns],
                "columnTypes": [str(t) for _, t in tq.columns]}
        media = DELIMITED if delimited else "application/json"

        def frame(item: Any, first: bool) -> str:
            if delimited:
                return _dumps(item) + "\n"
            return ("[" if first else ",\n") + _dumps(item)

        if tq.is_pull:
            pulled = await self._pull(tq, props, None)
            if isinstance(pulled, Response):
                return pulled
            rows, _limited = pulled
            parts = [frame(meta, True)] + [frame(r.columns, False) for r in rows]
            return Response("".join(parts) + ("" if delimited else "]\n"), media_type=media)
        pushed = await self._push(tq, props, None)
        if isinstance(pushed, Response):
            return pushed
        subs, info = pushed

        async def stream() -> AsyncIterator[str]:
            try:
                yield frame(meta, True)
                async for row in self._push_rows(request, tq, info, props, subs):
                    if row is None:
                        break
                    yield frame(row.columns, False)
                if not delimited:
                    yield "]\n"
            finally:
                self.server.unregister(tq.query_id)
                self._release()

        return StreamingResponse(stream(), media_type=media)

    async def close_query(self, request: Request) -> Response:
        body = await self._json_body(request)
        if isinstance(body, Response):
            return body
        qid = body.get("queryId")
        info = self.server.transient.get(str(qid))
        if info is None:
            return _json(E.generic_error(f"No query with id {qid}", E.ERROR_CODE_BAD_REQUEST),
                         400)
        info.close.set()
        return Response(status_code=200)

    async def inserts_stream(self, request: Request) -> Response:
        """POST /inserts-stream: {"target": S} then one JSON object per line; one ack per row."""
        lines = _lines(request, self.config.max_request_bytes)
        try:
            first = await lines.__anext__()
            target = json.loads(first).get("target")
        except (StopAsyncIteration, json.JSONDecodeError, AttributeError, BodyTooLarge):
            return _json(E.generic_error("Invalid JSON in inserts stream"), 400)
        if not isinstance(target, str):
            return _json(E.generic_error("Inserts stream must start with {\"target\": ...}"),
                         400)
        try:  # the target is checked before any row is read, as ksqlDB does
            target = await anyio.to_thread.run_sync(self.server.insert_target, target)
        except RequestError as e:
            return _json(e.entity, e.status)

        async def acks() -> AsyncIterator[str]:
            seq = 0
            try:
                async for line in lines:
                    try:
                        row = json.loads(line)
                        if not isinstance(row, dict):
                            raise ValueError("expected a JSON object")
                        await anyio.to_thread.run_sync(self.server.insert_row, target, row)
                        yield _dumps({"status": "ok", "seq": seq}) + "\n"
                    except Exception as e:  # every failed row is answered, the stream goes on
                        yield _dumps({"status": "error", "seq": seq,
                                      "error_code": E.ERROR_CODE_BAD_REQUEST,
                                      "message": str(e)}) + "\n"
                    seq += 1
            except BodyTooLarge:
                yield _dumps({"status": "error", "seq": seq, "error_code": 41300,
                              "message": "Request body too large"}) + "\n"

        return _BodyStreamingResponse(acks(), media_type=DELIMITED)

    # ------------------------------------------------------------------ info
    async def info(self, request: Request) -> Response:
        return _json({"KsqlServerInfo": {"version": VERSION, "kafkaClusterId": "hayase",
                                         "ksqlServiceId": self.server.service_id,
                                         "serverStatus": "RUNNING"}}, 200, request)

    async def healthcheck(self, request: Request) -> Response:
        """ksqlDB's health check: the metastore, the Kafka cluster (answers a metadata request
        within 2 s; the in-memory backend always does) and the command runner; 503 when one
        is not healthy."""
        reachable = getattr(self.server.backend, "reachable", None)
        kafka = True if reachable is None else await anyio.to_thread.run_sync(reachable, 2.0)
        details = {"metastore": {"isHealthy": True}, "kafka": {"isHealthy": kafka},
                   "commandRunner": {"isHealthy": True}}
        return _json({"isHealthy": kafka, "details": details}, 200 if kafka else 503,
                     request)

    async def cluster_status(self, request: Request) -> Response:
        """GET /clusterStatus: this server is the whole cluster (no heartbeats between
        servers), alive, with every persistent query's state."""
        host = f"{request.url.hostname}:{request.url.port or 80}"
        with self.server.lock:
            states = {qid: q.state for qid, q in self.server.session.metastore.queries.items()}
        status = {"hostAlive": True, "lastStatusUpdateMs": int(time.time() * 1000),
                  "activeStandbyPerQuery": {}, "hostStoreLags": {
                      "stateStoreLags": {}, "updateTimeMs": 0},
                  "ksqlHostQueryStatus": states}
        return _json({"clusterStatus": {host: status}}, 200, request)

    async def is_valid_property(self, request: Request) -> Response:
        """GET /is_valid_property/{name}: true, or 400 for a property a request may not set
        (ksqlDB's deny list: the server's identity and its internal topics' settings)."""
        name = request.path_params["name"]
        if name in _NOT_SETTABLE or not name.strip():
            return _json(E.generic_error(
                f"One or more properties overrides set locally are prohibited by the KSQL "
                f"server (use UNSET to reset their default value): [{name}]",
                E.ERROR_CODE_BAD_REQUEST), 400, request)
        return _json(True, 200, request)

    async def metadata(self, request: Request) -> Response:
        """GET /v1/metadata: the server's version and cluster ids."""
        return _json({"version": VERSION, "clusterId": {
            "kafka-cluster": "hayase", "ksql-cluster": self.server.service_id}}, 200, request)

    async def metadata_id(self, request: Request) -> Response:
        return _json({"id": self.server.service_id}, 200, request)

    async def status(self, request: Request) -> Response:
        return _json({"commandStatuses": {k: v.status for k, v in
                                          self.server.statuses.items()}}, 200, request)

    async def status_one(self, request: Request) -> Response:
        p = request.path_params
        cid = f"{p['kind']}/{p['entity']}/{p['action']}"
        st = self.server.statuses.get(cid)
        if st is None:
            return _json(E.generic_error(f"Command not found: {cid}", E.ERROR_CODE_NOT_FOUND),
                         404, request)
        return _json({"status": st.status, "message": st.message, "queryId": None}, 200, request)

    # ------------------------------------------------------------------ console
    async def overview(self, request: Request) -> Response:
        def collect() -> dict[str, Any]:
            srv = self.server
            with srv.lock:
                sources = [E.source_info(s) for s in srv.session.metastore.sources.values()]
                queries = srv._query_entities()
            for q in queries:
                info = srv.transient.get(q["id"])
                q["stats"] = ({"consumed": info.rows} if info is not None
                              else srv.backend.query_stats(q["id"]))
            topics = srv.backend.topics()
            return {"sources": sources, "queries": queries,
                    "topics": [{"name": t, "partitions": n} for t, n in sorted(topics.items())]}

        return JSONResponse(await anyio.to_thread.run_sync(collect))

    async def console(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def console_file(self, request: Request) -> Response:
        name = request.path_params["name"]
        path = (STATIC / name).resolve()
        if STATIC.resolve() not in path.parents or not path.is_file():
            return Response(status_code=404)
        return FileResponse(path)


class _BodyStreamingResponse(StreamingResponse):
    """A streamed response that keeps reading the request body while it answers (the acks of
    /inserts-stream): Starlette's own would also listen for a disconnect on ``receive`` on some
    servers (hypercorn), taking the body's messages away from the handler."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.stream_response(send)
        if self.background is not None:
            await self.background()


def _row_entity(row: Row) -> dict[str, Any]:
    if row.tombstone:
        return {"row": {"columns": row.columns, "tombstone": True}}
    return {"row": {"columns": row.columns}}


async def _lines(request: Request, limit: int) -> AsyncIterator[str]:
    buf = b""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield line.decode()
    if buf.strip():
        yield buf.decode()
