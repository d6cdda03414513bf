"""ksqlDB's REST entities (the JSON shapes of io.confluent.ksql.rest.entity.*), built from the
SQL layer's results. Pure functions: no I/O."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hayase.sql.plan import Column, DataSource, Namespace, SourceType
from hayase.sql.types import ArrayType, MapType, SqlType, StructType

if TYPE_CHECKING:
    from hayase.sql.functions import Signature, Udf

# ksqlDB's error codes (Errors.java).
ERROR_CODE_BAD_REQUEST = 40000
ERROR_CODE_BAD_STATEMENT = 40001
ERROR_CODE_QUERY_ENDPOINT = 40002
ERROR_CODE_UNAUTHORIZED = 40100
ERROR_CODE_NOT_FOUND = 40400
ERROR_CODE_ASSERTION_FAILED = 41700
ERROR_CODE_TOO_MANY_REQUESTS = 42900
ERROR_CODE_SERVER_ERROR = 50000
ERROR_CODE_COMMAND_QUEUE_CATCHUP_TIMEOUT = 50301

QUERY_ENDPOINT_MESSAGE = ("The following statement types should be issued to the websocket "
                          "endpoint '/query':\n\t* PRINT\n\t* SELECT")


# SHOW CONNECTORS and the other connector statements: hayase has no Kafka Connect integration.
NO_CONNECT_MESSAGE = ("Failed to list connectors: no Kafka Connect cluster is configured "
                      "(ksql.connect.url); hayase does not run connectors")
NO_CONNECT_STATEMENT = ("Connector statements need a Kafka Connect cluster, and none is "
                        "configured (ksql.connect.url); hayase does not run connectors")


def statement_error(message: str, statement: str, code: int = ERROR_CODE_BAD_STATEMENT,
                    entities: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"@type": "statement_error", "error_code": code, "message": message,
            "statementText": statement, "entities": entities or []}


def generic_error(message: str, code: int = ERROR_CODE_BAD_REQUEST) -> dict[str, Any]:
    return {"@type": "generic_error", "error_code": code, "message": message}


def current_status(statement: str, command_id: str, message: str, seq: int,
                   query_id: str | None = None) -> dict[str, Any]:
    return {"@type": "currentStatus", "statementText": statement, "commandId": command_id,
            "commandStatus": {"status": "SUCCESS", "message": message, "queryId": query_id},
            "commandSequenceNumber": seq, "warnings": []}


def schema_info(t: SqlType) -> dict[str, Any]:
    """ksqlDB's SchemaInfo: {"type", "fields", "memberSchema"} (nested for ARRAY/MAP/STRUCT)."""
    if isinstance(t, ArrayType):
        member = schema_info(t.element) if t.element is not None else None
        return {"type": "ARRAY", "fields": None, "memberSchema": member}
    if isinstance(t, MapType):
        member = schema_info(t.value) if t.value is not None else None
        return {"type": "MAP", "fields": None, "memberSchema": member}
    if isinstance(t, StructType):
        return {"type": "STRUCT", "memberSchema": None,
                "fields": [{"name": n, "schema": schema_info(ft)} for n, ft in t.fields]}
    base = str(t)
    if base.startswith("DECIMAL"):
        return {"type": "DECIMAL", "fields": None, "memberSchema": None,
                "parameters": {"precision": getattr(t, "precision", 0),
                               "scale": getattr(t, "scale", 0)}}
    return {"type": t.base if t.base != "INTEGER" else "INTEGER", "fields": None,
            "memberSchema": None}


def field_info(c: Column) -> dict[str, Any]:
    out: dict[str, Any] = {"name": c.name, "schema": schema_info(c.type)}
    if c.namespace is Namespace.KEY:
        out["type"] = "KEY"
    elif c.namespace is Namespace.HEADERS:
        out["type"] = "HEADER"
        if c.header_key is not None:
            out["headerKey"] = c.header_key
    return out


def source_info(src: DataSource) -> dict[str, Any]:
    return {"type": src.source_type.value, "name": src.name, "topic": src.topic,
            "keyFormat": src.key_format.name, "valueFormat": src.value_format.name,
            "isWindowed": src.window is not None}


def running_query(query_id: str, sql: str, sinks: list[str], sink_topics: list[str],
                  state: str = "RUNNING") -> dict[str, Any]:
    return {"queryString": sql, "sinks": sinks, "sinkKafkaTopics": sink_topics, "id": query_id,
            "statusCount": {state: 1}, "queryType": "PERSISTENT", "state": state}


def source_description(src: DataSource, read_queries: list[dict[str, Any]],
                       write_queries: list[dict[str, Any]], extended: bool,
                       partitions: int, replication: int,
                       statistics: str = "") -> dict[str, Any]:
    """``partitions``, ``replication``: the topic's, from the broker (0 when it is missing),
    as ksqlDB describes the topic rather than repeating the WITH clause."""
    return {
        "name": src.name,
        "windowType": src.window.type if src.window is not None else None,
        "readQueries": read_queries,
        "writeQueries": write_queries,
        "fields": [field_info(c) for c in src.schema.columns],
        "type": src.source_type.value,
        "timestamp": src.timestamp_column or "",
        "statistics": statistics,
        "errorStats": "",
        "extended": extended,
        "keyFormat": src.key_format.name,
        "valueFormat": src.value_format.name,
        "topic": src.topic,
        "partitions": partitions,
        "replication": replication,
        "statement": src.sql,
        "queryOffsetSummaries": [],
        "sourceConstraints": [],
        "clusterStatistics": [],
        "clusterErrorStats": [],
    }


def command_id(kind: str, entity: str, action: str) -> str:
    """ksqlDB's CommandId text: stream/`S`/create, table/`T`/drop, terminate/CSAS_X_0/execute."""
    return f"{kind}/{entity}/{action}"


def source_kind(src_type: SourceType | str) -> str:
    return (src_type.value if isinstance(src_type, SourceType) else src_type).lower()


def function_type(udf: Udf) -> str:
    return "AGGREGATE" if udf.aggregate else "TABLE" if udf.table else "SCALAR"


def describe_function(udf: Udf, statement: str) -> dict[str, Any]:
    """DESCRIBE FUNCTION's FunctionDescriptionList: one FunctionInfo per overload."""
    from hayase.sql.functions import signatures_of

    return {"@type": "describe_function", "statementText": statement, "warnings": [],
            "name": udf.name.upper(), "description": udf.description, "author": "hayase",
            "version": "", "path": "internal",
            "functions": [function_info(s) for s in signatures_of(udf)],
            "type": function_type(udf)}


def function_info(sig: Signature) -> dict[str, Any]:
    """ksqlDB's FunctionInfo: its ArgumentInfos (only the last one variadic), the return type,
    and the deprecated argumentTypes list its JSON still carries."""
    last = len(sig.arguments) - 1
    args = [{"name": a.name, "type": a.type, "description": a.description,
             "isVariadic": sig.variadic and i == last} for i, a in enumerate(sig.arguments)]
    return {"arguments": args, "returnType": sig.returns, "description": sig.description,
            "argumentTypes": [a.type for a in sig.arguments]}


def topic_info_extended(name: str, replicas: list[int], consumers: int,
                        groups: int) -> dict[str, Any]:
    """SHOW TOPICS EXTENDED's KafkaTopicInfoExtended."""
    return {"name": name, "replicaInfo": replicas, "consumerCount": consumers,
            "consumerGroupCount": groups}


def query_description(query_id: str, sql: str, fields: list[dict[str, Any]],
                      sources: list[str], sinks: list[str], state: str,
                      query_type: str = "PERSISTENT") -> dict[str, Any]:
    """ksqlDB's QueryDescription (EXPLAIN, SHOW QUERIES EXTENDED)."""
    return {"id": query_id, "statementText": sql, "windowType": None, "fields": fields,
            "sources": sources, "sinks": sinks, "topology": "", "executionPlan": "",
            "overriddenProperties": {}, "ksqlHostQueryStatus": {}, "queryType": query_type,
            "queryErrors": [], "tasksMetadata": [], "state": state}
