"""The server's statement executor: ksqlDB's /ksql semantics over the SQL session and a backend.

Statements that change the metastore (CREATE, DROP, C*AS, INSERT INTO ... SELECT, TERMINATE,
types) are recorded in the command topic ``_confluent-ksql-<service id>_command_topic`` and
replayed at start: the replay rebuilds the metastore first and then starts only the persistent
queries still running, which resume from their consumer groups' committed offsets.

Blocking calls (backend I/O) happen here; the HTTP layer calls these methods in worker threads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hayase.formats import key_serde, value_serde
from hayase.server import entities as E
from hayase.server.assertions import (
    DEFAULT_TIMEOUT_MS,
    AssertionSyntaxError,
    AssertTopic,
    check_topic,
    is_assert_topic,
    parse_assert_topic,
)
from hayase.server.backend import Backend, BackendError
from hayase.server.print_topic import is_print
from hayase.server.transient import TransientQuery, plan_transient
from hayase.sql import ast
from hayase.sql.errors import KsqlError, StatementError
from hayase.sql.metastore import Metastore
from hayase.sql.plan import DataSource, DdlResult, InsertValues, QueryPlan

log = logging.getLogger("hayase.server")

VERSION = "7.6.0-hayase"
_RECORDED = (ast.CreateSource, ast.CreateAsSelect, ast.InsertInto, ast.DropSource,
             ast.Terminate, ast.CreateType, ast.DropType)
# CREATE SOURCE|SINK CONNECTOR, DROP / DESCRIBE CONNECTOR, SHOW SOURCE|SINK CONNECTORS, SHOW
# CONNECTOR PLUGINS: ksqlDB's statements for Kafka Connect, which hayase does not run (the
# grammar knows only SHOW CONNECTORS; these would be syntax errors).
_CONNECTOR_STATEMENT = re.compile(
    r"^\s*(CREATE\s+(SOURCE|SINK)\s+CONNECTOR|DROP\s+CONNECTOR|DESCRIBE\s+CONNECTOR|"
    r"(SHOW|LIST)\s+((SOURCE|SINK)\s+CONNECTORS|CONNECTOR\s+PLUGINS))\b",
    re.IGNORECASE)
# PAUSE / RESUME (ksqlDB 0.26+): the server carries them out itself (they change only the
# queries' state); recorded in the command topic too, so a restart keeps a query paused.
_PAUSE_RESUME = (ast.PauseQuery, ast.ResumeQuery)
# Statements whose metastore change is undone when the server cannot carry it out.
_ROLLED_BACK = (ast.CreateSource, ast.CreateAsSelect, ast.InsertInto)


def command_topic_name(service_id: str) -> str:
    return f"_confluent-ksql-{service_id}_command_topic"


class RequestError(Exception):
    """A /ksql request failed: ``entity`` is ksqlDB's error entity, ``status`` the HTTP status."""

    def __init__(self, entity: dict[str, Any], status: int = 400) -> None:
        super().__init__(entity.get("message", ""))
        self.entity = entity
        self.status = status


class NotAQueryError(RequestError):
    """A query endpoint was given another statement: /query-stream's error entity; /query
    answers its own (see KsqlApp.query)."""


@dataclass
class CommandStatus:
    command_id: str
    status: str = "SUCCESS"
    message: str = ""


@dataclass
class QueryInfo:
    """A running transient push query (for SHOW QUERIES, /close-query and the console)."""

    query_id: str
    sql: str
    close: threading.Event = field(default_factory=threading.Event)
    rows: int = 0
    started: float = field(default_factory=time.time)


class KsqlServer:
    def __init__(self, backend: Backend, service_id: str = "default_",
                 properties: Mapping[str, str] | None = None,
                 record_commands: bool = True) -> None:
        from hayase.sql import Session  # type: ignore[attr-defined]

        self.backend = backend
        self.service_id = service_id
        self.base_properties = {"ksql.service.id": service_id, **dict(properties or {})}
        self.session = Session(dict(self.base_properties))
        self.lock = threading.RLock()
        self.command_topic = command_topic_name(service_id)
        self.record_commands = record_commands
        self.command_seq = -1
        self.statuses: dict[str, CommandStatus] = {}
        self.transient: dict[str, QueryInfo] = {}
        self.started_at = time.time()
        self.instance_id = uuid.uuid4().hex
        self._stop = threading.Event()
        self._follower: threading.Thread | None = None

    # ================================================================== start / replay
    def start(self) -> int:
        """Create the command topic and replay it; returns the number of commands replayed."""
        if not self.record_commands:
            return 0
        from hayase.engine.launch import internal_replicas

        # ksqlDB creates its command topic with ksql.internal.topic.replicas too.
        self.backend.ensure_topic(self.command_topic, 1,
                                  internal_replicas(self.base_properties),
                                  {"retention.ms": "-1"})
        records = self.backend.scan(self.command_topic)
        plans: list[tuple[QueryPlan, dict[str, str]]] = []
        with self.lock:
            for rec in records:
                if rec.value is None:
                    continue
                cmd = json.loads(rec.value)
                props = _command_properties(cmd)
                try:
                    with self._properties(props):
                        if self._replay_pause_resume(cmd["statement"]):
                            result = None
                        else:
                            result = self.session.execute_statement(cmd["statement"])
                except KsqlError as e:  # a command that failed then fails again: skip it
                    log.warning("replay: %s: %s", cmd["statement"], e)
                    continue
                self.command_seq += 1
                cid = rec.key.decode() if rec.key else f"replay/{self.command_seq}"
                self.statuses[cid] = CommandStatus(cid, "SUCCESS", "replayed")
                if isinstance(result, QueryPlan):
                    plans.append((result, {**self.session.properties, **props}))
            running = self.session.metastore.queries
            # A CREATE OR REPLACE replayed after its original: only the query's last plan runs
            # (starting the old one first would let it process records the new one owns).
            latest = {plan.query_id: (plan, props) for plan, props in plans}
            for plan, props in latest.values():
                if plan.query_id in running:
                    self.backend.start_query(plan, props,
                                             paused=running[plan.query_id].state == "PAUSED")
        self._follower = threading.Thread(target=self._follow, args=(len(records),),
                                          name="command-topic", daemon=True)
        self._follower.start()
        return len(records)

    def _follow(self, skip: int) -> None:
        """Apply the commands other servers with this service id write (they share the
        persistent queries through the queries' consumer groups)."""
        sub = self.backend.tail(self.command_topic, earliest=True)
        try:
            while not self._stop.is_set():
                for rec in sub.poll(0.5):
                    if skip > 0:
                        skip -= 1
                        continue
                    if rec.value is None:
                        continue
                    cmd = json.loads(rec.value)
                    if cmd.get("origin") != self.instance_id:
                        self._apply_remote(cmd, rec.key.decode() if rec.key else "")
        except Exception as e:  # the server keeps serving; it only stops following
            log.error("command topic follower stopped: %s", e)
        finally:
            sub.close()

    def _apply_remote(self, cmd: Mapping[str, Any], command_id: str) -> None:
        props = _command_properties(cmd)
        with self.lock:
            try:
                with self._properties(props):
                    stmt = self._pause_resume_statement(cmd["statement"])
                    if stmt is not None:
                        result = None
                        self._apply_pause_resume(stmt)
                    else:
                        result = self.session.execute_statement(cmd["statement"])
            except KsqlError as e:
                log.warning("command from another server failed here: %s: %s",
                            cmd["statement"], e)
                return
            self.command_seq += 1
            self.statuses[command_id] = CommandStatus(command_id, "SUCCESS")
            if isinstance(result, QueryPlan):
                self.backend.start_query(result, {**self.session.properties, **props})
            elif isinstance(result, DdlResult):
                for qid in result.queries_to_terminate:
                    self.backend.stop_query(qid)

    @contextlib.contextmanager
    def _properties(self, props: Mapping[str, str]) -> Iterator[None]:
        """The session's properties with ``props`` over them, restored afterwards."""
        saved = dict(self.session.properties)
        self.session.properties.update(props)
        try:
            yield
        finally:
            self.session.properties.clear()
            self.session.properties.update(saved)

    @contextlib.contextmanager
    def _variables(self, variables: Mapping[str, str]) -> Iterator[None]:
        """The session's variables with ``variables`` over them, restored afterwards."""
        saved = dict(self.session.variables)
        self.session.variables.update(variables)
        try:
            yield
        finally:
            self.session.variables.clear()
            self.session.variables.update(saved)

    def close(self) -> None:
        self._stop.set()
        for info in list(self.transient.values()):
            info.close.set()
        if self._follower is not None:
            self._follower.join(10)
        self.backend.close()

    def _record(self, command_id: str, statement: str, props: Mapping[str, Any]) -> int:
        self.command_seq += 1
        if self.record_commands:
            body = json.dumps({"statement": statement,
                               "streamsProperties": {k: str(v) for k, v in props.items()},
                               "origin": self.instance_id})
            self.backend.produce(self.command_topic, command_id.encode(), body.encode(), None)
        self.statuses[command_id] = CommandStatus(command_id)
        return self.command_seq

    def wait_for_command(self, seq: int, timeout: float) -> None:
        """A request's commandSequenceNumber: wait until this server has applied that command
        (another server's, read from the command topic), or raise ksqlDB's 503."""
        deadline = time.monotonic() + timeout
        while self.command_seq < seq:
            if time.monotonic() >= deadline:
                raise RequestError(E.generic_error(
                    "Timed out while waiting for a previous command to execute. command "
                    f"sequence number: {seq}", E.ERROR_CODE_COMMAND_QUEUE_CATCHUP_TIMEOUT), 503)
            time.sleep(0.05)

    # ================================================================== /ksql
    def execute(self, text: str, streams_properties: Mapping[str, Any] | None = None,
                session_variables: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run every statement of a /ksql request; returns the entities (one per statement that
        has one) or raises RequestError carrying ksqlDB's error entity."""
        from hayase.sql.parser import split_statements

        # Everything that can fail on the request itself fails before the session is touched;
        # the request's properties and variables then last exactly as long as the request.
        props = {str(k): str(v) for k, v in (streams_properties or {}).items()}
        variables = {str(k).upper(): str(v) for k, v in (session_variables or {}).items()}
        try:
            chunks = split_statements(text)
        except KsqlError as e:
            raise RequestError(E.statement_error(str(e), text)) from None
        with self.lock, self._properties(props), self._variables(variables):
            out: list[dict[str, Any]] = []
            self._validate(chunks)
            for chunk, line, column in chunks:
                entity = self._execute_one(chunk, line, column, out)
                if entity is not None:
                    out.append(entity)
            return out

    def _validate(self, chunks: list[tuple[str, int, int]]) -> None:
        """ksqlDB validates every statement of a request, in order, on a sandbox before it
        executes any: a request whose third statement is wrong runs none of them. The sandbox
        is a session over copies of the metastore's entries; raises RequestError (with no
        entities) for the first statement the SQL layer refuses."""
        from dataclasses import replace

        from hayase.sql import Session  # type: ignore[attr-defined]

        ms = self.session.metastore
        sandbox = Session(dict(self.session.properties), metastore=Metastore(
            sources={k: replace(v) for k, v in ms.sources.items()}, types=dict(ms.types),
            queries={k: replace(v) for k, v in ms.queries.items()},
            query_counter=ms.query_counter))
        sandbox.variables.update(self.session.variables)
        for chunk, line, column in chunks:
            text = chunk.strip() + ";"
            try:
                if is_print(chunk):  # PRINT is the query endpoints' only
                    raise RequestError(E.statement_error(E.QUERY_ENDPOINT_MESSAGE, text,
                                                         E.ERROR_CODE_QUERY_ENDPOINT))
                if is_assert_topic(chunk):  # checked against the broker when it runs
                    _parse_assertion(chunk, text)
                    continue
                if _CONNECTOR_STATEMENT.match(chunk):
                    raise StatementError(E.NO_CONNECT_STATEMENT)
                _follow_substitution_property(sandbox)
                stmt = sandbox.parse(chunk, line, column)
                if isinstance(stmt, ast.QueryStatement):
                    raise RequestError(E.statement_error(E.QUERY_ENDPOINT_MESSAGE, text,
                                                         E.ERROR_CODE_QUERY_ENDPOINT))
                if not self._check_here(stmt, sandbox.metastore):
                    sandbox.execute_statement(chunk, line, column)
            except KsqlError as e:
                raise RequestError(E.statement_error(_message(e), text)) from None

    def _check_here(self, stmt: ast.Statement, ms: Metastore) -> bool:
        """Validation of the statements the server answers itself (see _execute_here) over
        the metastore ``ms``: raises their errors; False for the other statements."""
        if isinstance(stmt, _PAUSE_RESUME):
            _set_query_state(stmt, ms)
        elif isinstance(stmt, ast.Terminate) and self._transient_id(stmt) is not None:
            pass
        elif isinstance(stmt, ast.DescribeFunction):
            _function(stmt.name)
        elif isinstance(stmt, ast.Show) and stmt.what == "CONNECTORS":
            raise StatementError(E.NO_CONNECT_MESSAGE)
        else:
            return False
        return True

    def _execute_one(self, chunk: str, line: int, column: int,
                     done: list[dict[str, Any]]) -> dict[str, Any] | None:
        session = self.session
        text = chunk.strip() + ";"
        if is_assert_topic(chunk):
            return self._assert_topic(_parse_assertion(chunk, text), text)
        _follow_substitution_property(session)
        try:
            stmt = session.parse(chunk, line, column)
        except KsqlError as e:
            raise RequestError(E.statement_error(_message(e), text, entities=done)) from None
        if isinstance(stmt, ast.QueryStatement):
            raise RequestError(E.statement_error(E.QUERY_ENDPOINT_MESSAGE, text,
                                                 E.ERROR_CODE_QUERY_ENDPOINT, done))
        if isinstance(stmt, ast.SetProperty | ast.UnsetProperty):
            session.execute_statement(chunk, line, column)
            return None
        props_now = dict(session.properties)
        if isinstance(stmt, ast.UndefineVariable) and stmt.name not in session.variables:
            # ksqlDB's VariableExecutor answers a warning, not an error.
            return {"@type": "warning_entity", "statementText": text, "warnings": [],
                    "message": f"Cannot undefine variable '{stmt.name}' which was never "
                               "defined"}
        try:
            special = self._execute_here(stmt, text, props_now)
        except KsqlError as e:
            raise RequestError(E.statement_error(_message(e), text, entities=done)) from None
        if special is not None:
            return special
        before = _MetastoreSnapshot(session.metastore) \
            if isinstance(stmt, _ROLLED_BACK) else None
        try:
            result = session.execute_statement(chunk, line, column)
        except KsqlError as e:
            raise RequestError(E.statement_error(_message(e), text, entities=done)) from None
        try:
            return self._apply(stmt, result, text, props_now)
        except (KsqlError, BackendError) as e:
            # Not recorded in the command topic, so not in the metastore either (ksqlDB leaves
            # no trace of a statement it refuses): the same statement can be issued again.
            if before is not None:
                before.restore(session.metastore)
            refusal = _refusal(e)
            if refusal is not None:  # the engine refused the query: the statement is wrong
                raise RequestError(E.statement_error(_message(refusal), text,
                                                     entities=done)) from None
            raise RequestError(E.statement_error(str(e), text, E.ERROR_CODE_SERVER_ERROR,
                                                 done), 500) from None

    def _apply(self, stmt: ast.Statement, result: Any, text: str,
               props: dict[str, str]) -> dict[str, Any] | None:
        if isinstance(result, InsertValues):
            self.insert_values(result)
            return None
        if isinstance(result, QueryPlan):
            sink = result.sink.source
            # INSERT INTO is stream/`T`/create too (ksqlDB's CommandIdAssigner).
            kind = "stream" if isinstance(stmt, ast.InsertInto) else E.source_kind(
                sink.source_type)
            cid = E.command_id(kind, f"`{sink.name}`", "create")
            self.backend.start_query(result, props)
            try:
                seq = self._record(cid, text, props)
            except BackendError:  # not recorded: the query must not run either
                self.backend.stop_query(result.query_id)
                raise
            return E.current_status(text, cid, f"Created query with ID {result.query_id}", seq,
                                    result.query_id)
        assert isinstance(result, DdlResult)
        if isinstance(stmt, ast.Show):
            return self._show(stmt, result, text)
        if isinstance(stmt, ast.Describe):
            return self._describe(stmt, result, text)
        if isinstance(stmt, ast.Explain):
            return self._explain(result, text)
        if isinstance(stmt, ast.DefineVariable | ast.UndefineVariable):
            return None
        # DDL with effects. A CREATE over a missing topic needs PARTITIONS (ksqlDB's rule).
        if isinstance(stmt, ast.CreateSource) and result.source is not None \
                and not any(t.partitions for t in result.topics_to_create) \
                and self.backend.partitions(result.source.topic) is None:
            self.session.metastore.sources.pop(result.source.name, None)
            raise RequestError(E.statement_error(
                f"Topic '{result.source.topic}' does not exist. If you want to create a new "
                f"topic for the {result.source.source_type.value.lower()} please re-run the "
                "statement providing the required 'PARTITIONS' configuration in the WITH "
                "clause (and optionally 'REPLICAS'). For example: CREATE STREAM FOO (ID INT) "
                "WITH (KAFKA_TOPIC='foo', PARTITIONS=2, VALUE_FORMAT='JSON');", text))
        for t in result.topics_to_create:
            existing = self.backend.partitions(t.name)
            if existing is not None:
                self._check_existing_topic(t.name, t.partitions, t.replicas, existing)
            else:
                self.backend.ensure_topic(t.name, t.partitions, t.replicas)
        for qid in result.queries_to_terminate:
            self.backend.stop_query(qid)
        for name in result.topics_to_delete:
            self.backend.delete_topic(name)
        message = result.message
        if isinstance(stmt, ast.CreateSource):
            cid = E.command_id(stmt.source_type.lower(), f"`{stmt.name}`", "create")
        elif isinstance(stmt, ast.DropSource):
            # DROP names the source without quotes (ksqlDB's SourceName.text()).
            cid = E.command_id(stmt.source_type.lower(), stmt.name, "drop")
        elif isinstance(stmt, ast.Terminate):
            cid = E.command_id("terminate", stmt.query_id or "ALL", "execute")
            message = "Query terminated."  # ksqlDB's, for one query or ALL
        elif isinstance(stmt, ast.CreateType | ast.DropType):
            cid = E.command_id("type", stmt.name, "create" if isinstance(stmt, ast.CreateType)
                               else "drop")
        else:
            cid = E.command_id("cluster", "CLUSTER", "execute")
        seq = self._record(cid, text, props) if isinstance(stmt, _RECORDED) else self.command_seq
        return E.current_status(text, cid, message, seq)

    def _check_existing_topic(self, name: str, partitions: int | None, replicas: int | None,
                              existing: int) -> None:
        """A statement over a topic that exists may name its PARTITIONS and REPLICAS, not
        others (ksqlDB's TopicValidationUtil); what it leaves out is the topic's own. Raises
        StatementError: the statement leaves no trace."""
        factor = self.backend.replication_factor(name) or 0  # 0: the metadata does not say
        want_partitions = partitions or existing
        want_replicas = replicas or factor
        if want_partitions != existing or (factor and want_replicas != factor):
            raise StatementError(
                f"A Kafka topic with the name '{name}' already exists, with different "
                f"partition/replica configuration than required. KSQL expects "
                f"{want_partitions} partitions (topic has {existing}), and {want_replicas} "
                f"replication factor (topic has {factor}).")

    # ------------------------------------------------------------------ statements of the server
    def _assert_topic(self, stmt: AssertTopic, text: str) -> dict[str, Any]:
        """ASSERT [NOT EXISTS] TOPIC: checked until it holds or its timeout passes (then
        ksqlDB's 417 / 41700 with what is wrong)."""
        timeout_ms = stmt.timeout_ms if stmt.timeout_ms is not None else int(
            self.base_properties.get("ksql.assert.topic.default.timeout.ms", DEFAULT_TIMEOUT_MS))
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            problem = check_topic(stmt, self.backend.partitions(stmt.topic),
                                  self.backend.replication_factor(stmt.topic))
            if problem is None:
                return {"@type": "assert_topic", "statementText": text, "warnings": [],
                        "topicName": stmt.topic, "exists": stmt.exists}
            if time.monotonic() >= deadline:
                raise RequestError(E.generic_error(problem, E.ERROR_CODE_ASSERTION_FAILED), 417)
            time.sleep(0.1)

    def _execute_here(self, stmt: ast.Statement, text: str,
                      props: dict[str, str]) -> dict[str, Any] | None:
        """The entity of a statement the server answers itself rather than the SQL session
        (PAUSE / RESUME, DESCRIBE FUNCTION, connectors); None for the others."""
        if isinstance(stmt, _PAUSE_RESUME):
            return self._pause_resume(stmt, text, props)
        if isinstance(stmt, ast.DescribeFunction):
            return E.describe_function(_function(stmt.name), text)
        if isinstance(stmt, ast.Terminate):
            qid = self._transient_id(stmt)
            if qid is not None:  # a push query: closed, not a command (ksqlDB 0.15+)
                self.transient[qid].close.set()
                return {"@type": "terminate_query", "statementText": text, "warnings": [],
                        "queryId": qid, "wasTerminated": True}
        if isinstance(stmt, ast.Show) and stmt.what == "CONNECTORS":
            raise StatementError(E.NO_CONNECT_MESSAGE)
        return None

    def _transient_id(self, stmt: ast.Terminate) -> str | None:
        """The id of the running push query TERMINATE names, if it names one."""
        if stmt.query_id is None:
            return None
        for qid in list(self.transient):
            if qid.upper() == stmt.query_id.upper():
                return qid
        return None

    def _pause_resume(self, stmt: ast.PauseQuery | ast.ResumeQuery, text: str,
                      props: dict[str, str]) -> dict[str, Any]:
        self._apply_pause_resume(stmt)
        pause = isinstance(stmt, ast.PauseQuery)
        cid = E.command_id("pause" if pause else "resume",
                           stmt.query_id.upper() if stmt.query_id else "ALL", "execute")
        seq = self._record(cid, text, props)
        # ksqlDB's InteractiveStatementExecutor: the same message for one query or ALL.
        return E.current_status(text, cid, "Query paused." if pause else "Query resumed.", seq)

    def _apply_pause_resume(self, stmt: ast.PauseQuery | ast.ResumeQuery) -> list[str]:
        ids = _set_query_state(stmt, self.session.metastore)
        for qid in ids:
            if isinstance(stmt, ast.PauseQuery):
                self.backend.pause_query(qid)
            else:
                self.backend.resume_query(qid)
        return ids

    def _pause_resume_statement(self, text: str) -> ast.PauseQuery | ast.ResumeQuery | None:
        """``text`` as PAUSE / RESUME, or None when it is another statement (or none)."""
        if not text.lstrip()[:6].upper().startswith(("PAUSE", "RESUME")):
            return None
        stmt = self.session.parse(text.strip().rstrip(";"))
        return stmt if isinstance(stmt, _PAUSE_RESUME) else None

    def _replay_pause_resume(self, text: str) -> bool:
        """At start: a recorded PAUSE / RESUME sets the queries' state only (the queries are
        started, and paused ones paused, once the whole command topic is read)."""
        stmt = self._pause_resume_statement(text)
        if stmt is None:
            return False
        _set_query_state(stmt, self.session.metastore)
        return True

    # ------------------------------------------------------------------ SHOW / DESCRIBE
    def _query_entities(self) -> list[dict[str, Any]]:
        out = []
        ms = self.session.metastore
        for q in ms.queries.values():
            sink = ms.get(q.sink)
            out.append(E.running_query(q.query_id, q.sql, [q.sink],
                                       [sink.topic] if sink else [], q.state))
        for info in list(self.transient.values()):
            out.append({"queryString": info.sql, "sinks": [], "sinkKafkaTopics": [],
                        "id": info.query_id, "statusCount": {"RUNNING": 1},
                        "queryType": "PUSH", "state": "RUNNING"})
        return out

    def _show(self, stmt: ast.Show, result: DdlResult, text: str) -> dict[str, Any]:
        what = stmt.what
        ms = self.session.metastore
        base: dict[str, Any] = {"statementText": text, "warnings": []}
        if what in ("STREAMS", "TABLES"):
            kind = what[:-1]
            items = [E.source_info(s) for s in sorted(ms.sources.values(), key=lambda s: s.name)
                     if s.source_type.value == kind]
            if stmt.extended:
                return {"@type": "source_descriptions", **base, "sourceDescriptions": [
                    self._source_description(s, True) for s in sorted(
                        ms.sources.values(), key=lambda s: s.name)
                    if s.source_type.value == kind]}
            return {"@type": what.lower(), **base, what.lower(): items}
        if what == "QUERIES":
            if stmt.extended:
                return {"@type": "query_descriptions", **base,
                        "queryDescriptions": self._query_descriptions()}
            return {"@type": "queries", **base, "queries": self._query_entities()}
        if what == "PROPERTIES":
            props = [{"name": r["name"], "scope": "KSQL", "value": r["value"]}
                     for r in result.rows]
            # Those the request (streamsProperties, SET) gives a value other than the server's.
            overwritten = sorted(k for k, v in self.session.properties.items()
                                 if self.base_properties.get(k) != v)
            return {"@type": "properties", **base, "properties": props,
                    "overwrittenProperties": overwritten, "defaultProperties": []}
        if what in ("TOPICS", "ALL TOPICS"):
            topics = self.backend.replica_info()  # replicaInfo: each partition's replicas
            names = sorted(t for t in topics if what == "ALL TOPICS" or not t.startswith("_"))
            if stmt.extended:
                counts = self._consumer_counts()
                return {"@type": "kafka_topics_extended", **base, "topics": [
                    E.topic_info_extended(t, topics[t], *counts.get(t, (0, 0)))
                    for t in names]}
            return {"@type": "kafka_topics", **base,
                    "topics": [{"name": t, "replicaInfo": topics[t]} for t in names]}
        if what == "FUNCTIONS":
            return {"@type": "function_names", **base, "functions": result.rows}
        if what == "TYPES":  # TypeList: each name's SchemaInfo
            return {"@type": "type_list", **base,
                    "types": {n: E.schema_info(t) for n, t in sorted(ms.types.items())}}
        if what == "VARIABLES":
            return {"@type": "variables", **base, "variables": result.rows}
        return {"@type": "currentStatus", **base, "rows": result.rows}

    def _consumer_counts(self) -> dict[str, tuple[int, int]]:
        """topic -> (consumers, consumer groups) reading it, as the backend knows them."""
        counts = getattr(self.backend, "consumer_counts", None)
        try:
            return counts() if counts is not None else {}
        except BackendError as e:  # the listing still answers, with zero counts
            log.warning("consumer counts: %s", e)
            return {}

    def _query_descriptions(self) -> list[dict[str, Any]]:
        ms = self.session.metastore
        out = []
        for q in ms.queries.values():
            sink = ms.get(q.sink)
            fields = [E.field_info(c) for c in sink.schema.columns] if sink else []
            out.append(E.query_description(q.query_id, q.sql, fields, list(q.sources),
                                           [q.sink], q.state))
        return out

    def _source_description(self, src: DataSource, extended: bool) -> dict[str, Any]:
        ms = self.session.metastore

        def queries(ids: list[str]) -> list[dict[str, Any]]:
            out = []
            for qid in ids:
                q = ms.queries.get(qid)
                if q is not None:
                    sink = ms.get(q.sink)
                    out.append(E.running_query(q.query_id, q.sql, [q.sink],
                                               [sink.topic] if sink else [], q.state))
            return out

        stats = ""
        if extended and src.created_by_query:
            s = self.backend.query_stats(src.created_by_query)
            if s:
                stats = f"messages-per-sec: 0 total-messages: {s.get('produced', 0)}"
        return E.source_description(src, queries(ms.readers(src.name)),
                                    queries(ms.writers(src.name)), extended,
                                    self.backend.partitions(src.topic) or 0,
                                    self.backend.replication_factor(src.topic) or 0, stats)

    def _describe(self, stmt: ast.Describe, result: DdlResult, text: str) -> dict[str, Any]:
        if result.source is None:  # DESCRIBE STREAMS / TABLES
            return self._show(ast.Show(stmt.target, True, text=text), result, text)
        return {"@type": "sourceDescription", "statementText": text, "warnings": [],
                "sourceDescription": self._source_description(result.source, stmt.extended)}

    def _explain(self, result: DdlResult, text: str) -> dict[str, Any]:
        row = result.rows[0] if result.rows else {}
        qid = row.get("id")
        ms = self.session.metastore
        fields: list[dict[str, Any]] = []
        sinks: list[str] = []
        if qid is not None:
            sink = ms.get(row.get("sink", ""))
            if sink is not None:
                fields = [E.field_info(c) for c in sink.schema.columns]
                sinks = [sink.name]
        q = ms.queries.get(qid) if qid is not None else None
        desc = E.query_description(qid or "", row.get("sql", ""), fields,
                                   row.get("sources", []), sinks,
                                   q.state if q is not None else "RUNNING")
        return {"@type": "queryDescription", "statementText": text, "warnings": [],
                "queryDescription": desc}

    # ================================================================== inserts
    def insert_values(self, iv: InsertValues) -> None:
        t = iv.target
        key = key_serde(t.key_format, t.schema.key).serialize(tuple(iv.key))
        value = value_serde(t.value_format, t.schema.value).serialize(tuple(iv.value))
        self.backend.produce(t.topic, key, value, iv.timestamp, tuple(iv.headers or ()))

    def insert_target(self, target: str) -> str:
        """/inserts-stream's target: the stream's name (unquoted names upper-case, `quoted`
        ones as they are), or RequestError with ksqlDB's InsertsStreamEndpoint refusals."""
        name = target[1:-1] if len(target) > 1 and target[0] == target[-1] == "`" \
            else target.upper()
        with self.lock:
            src = self.session.metastore.get(name)
        problem = None
        if src is None:
            problem = f"Cannot insert values into an unknown stream: `{name}`"
        elif src.window is not None:
            problem = "Cannot insert values into windowed stream"
        elif src.source_type.value == "TABLE":
            problem = "Cannot insert into a table"
        if problem is not None:
            raise RequestError(E.generic_error(problem, E.ERROR_CODE_BAD_STATEMENT))
        return name

    def insert_row(self, target: str, row: Mapping[str, Any]) -> None:
        """/inserts-stream: one JSON object -> INSERT INTO target (cols) VALUES (...);
        ``target`` as insert_target resolved it."""
        with self.lock:
            src = self.session.metastore.get(target)
        if src is None:  # dropped while the inserts stream was open
            raise KsqlError(f"Cannot insert values into an unknown stream: `{target}`")
        by_name = {str(k).upper(): v for k, v in row.items()}
        key = tuple(_coerce(by_name.get(c.name), c.type) for c in src.schema.key)
        value = tuple(_coerce(by_name.get(c.name), c.type) for c in src.schema.value)
        ts = by_name.get("ROWTIME")
        k = key_serde(src.key_format, src.schema.key).serialize(key)
        v = value_serde(src.value_format, src.schema.value).serialize(value)
        self.backend.produce(src.topic, k, v, int(ts) if ts is not None else None)

    # ================================================================== queries
    def plan_query(self, sql: str, properties: Mapping[str, Any],
                   session_variables: Mapping[str, Any] | None = None) -> TransientQuery:
        """Parse and plan one SELECT, ``${name}`` replaced by the request's sessionVariables
        (raises RequestError with ksqlDB's entity)."""
        variables = {str(k).upper(): str(v) for k, v in (session_variables or {}).items()}
        with self.lock, self._variables(variables):
            return self._plan_query(sql, properties)

    def _plan_query(self, sql: str, properties: Mapping[str, Any]) -> TransientQuery:
        from hayase.sql.parser import split_statements

        try:
            chunks = split_statements(sql)
            if len(chunks) != 1:
                raise RequestError(E.statement_error(
                    f"Expected exactly one KSQL statement; found {len(chunks)} instead", sql))
            chunk, line, column = chunks[0]
            if is_print(chunk):  # /query answers PRINT itself (KsqlApp.query)
                raise NotAQueryError(E.statement_error("Not a query", sql))
            _follow_substitution_property(self.session, properties)
            stmt = self.session.parse(chunk, line, column)
            if not isinstance(stmt, ast.QueryStatement):
                raise NotAQueryError(E.statement_error("Not a query", sql))
            return plan_transient(self.session, stmt, properties)
        except KsqlError as e:
            raise RequestError(E.statement_error(_message(e), sql)) from None

    def register(self, tq: TransientQuery) -> QueryInfo:
        info = QueryInfo(tq.query_id, tq.sql)
        self.transient[tq.query_id] = info
        return info

    def unregister(self, query_id: str) -> None:
        self.transient.pop(query_id, None)


class _MetastoreSnapshot:
    """The parts of the metastore a CREATE / C*AS / INSERT INTO changes: its sources, queries
    and query-id counter (the counter too, so the ids stay those a replay of the command topic
    gives). The analyzer replaces entries rather than changing them, so shallow copies do."""

    def __init__(self, ms: Metastore) -> None:
        self.sources = dict(ms.sources)
        self.queries = dict(ms.queries)
        self.query_counter = ms.query_counter

    def restore(self, ms: Metastore) -> None:
        ms.sources.clear()
        ms.sources.update(self.sources)
        ms.queries.clear()
        ms.queries.update(self.queries)
        ms.query_counter = self.query_counter


def _set_query_state(stmt: ast.PauseQuery | ast.ResumeQuery, ms: Metastore) -> list[str]:
    """The metastore's side of PAUSE / RESUME: the ids of the queries it applies to. Raises
    StatementError for an unknown query id (nothing changes then)."""
    if stmt.query_id is None:
        ids = sorted(ms.queries)
    else:
        qid = stmt.query_id.upper()
        if qid not in ms.queries:
            raise StatementError(f"Unknown queryId: {stmt.query_id}")
        ids = [qid]
    state = "PAUSED" if isinstance(stmt, ast.PauseQuery) else "RUNNING"
    for qid in ids:
        ms.queries[qid].state = state
    return ids


def _follow_substitution_property(session: Any,
                                  request: Mapping[str, Any] | None = None) -> None:
    """ksql.variable.substitution.enable (default true), from the request's properties or
    the session's (SET): false leaves ${name} as it is."""
    props = {**session.properties, **(request or {})}
    on = str(props.get("ksql.variable.substitution.enable", "true")).strip().lower()
    session.substitution = on != "false"


def _parse_assertion(chunk: str, text: str) -> AssertTopic:
    try:
        return parse_assert_topic(chunk)
    except AssertionSyntaxError as e:
        raise RequestError(E.statement_error(str(e), text)) from None


def _function(name: str) -> Any:
    """DESCRIBE FUNCTION's function, or ksqlDB's FunctionRegistry error."""
    from hayase.sql.functions import lookup

    udf = lookup(name)
    if udf is None:
        raise StatementError(f"Can't find any functions with the name '{name}'")
    return udf


def _refusal(e: Exception) -> KsqlError | None:
    """The SQL-layer error behind a failed launch, if the engine refused the query (join
    partition counts...). KafkaBackend.start_query re-raises it as BackendError ``from None``,
    which still keeps it as the context."""
    if isinstance(e, KsqlError):
        return e
    return e.__context__ if isinstance(e.__context__, KsqlError) else None


def _command_properties(cmd: Mapping[str, Any]) -> dict[str, str]:
    """A command-topic command's streamsProperties, as session property strings."""
    return {str(k): str(v) for k, v in cmd.get("streamsProperties", {}).items()}


def _message(e: KsqlError) -> str:
    """ksqlDB prefixes parse errors with their position; statement errors are bare."""
    from hayase.sql.errors import ParseError

    return str(e) if isinstance(e, ParseError) else e.message


def _coerce(value: Any, t: Any) -> Any:
    """JSON values of /inserts-stream -> the SQL layer's Python carriers."""
    import decimal

    if value is None:
        return None
    base = getattr(t, "base", "")
    if base == "DECIMAL":
        return decimal.Decimal(str(value)).quantize(decimal.Decimal(1).scaleb(-t.scale))
    if base == "DOUBLE":
        return float(value)
    if base in ("INTEGER", "BIGINT") and not isinstance(value, bool):
        return int(value)
    return value
