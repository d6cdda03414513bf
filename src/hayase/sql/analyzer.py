"""Statement semantics: DDL effects on the metastore, INSERT VALUES, and persistent queries.

``Analyzer.execute(statement)`` returns a DdlResult, a QueryPlan or an InsertValues, or raises
a KsqlError.  The WITH clause is read by :mod:`hayase.sql.properties`; a query's SELECT is planned
by :class:`hayase.sql.planner.QueryPlanner`.
"""

from __future__ import annotations

from typing import Any

from hayase.sql import ast
from hayase.sql.compiler import (
    CodeNamespace,
    ExpressionCompiler,
    Scope,
    Typed,
    build_function,
)
from hayase.sql.errors import KsqlError, StatementError
from hayase.sql.errors import statement_error as _err
from hayase.sql.metastore import Metastore, PersistentQuery
from hayase.sql.naming import RESERVED
from hayase.sql.plan import (
    PSEUDO_COLUMNS,
    Column,
    DataSource,
    DdlResult,
    FormatInfo,
    InsertValues,
    LogicalSchema,
    Namespace,
    QueryPlan,
    SourceType,
    Topic,
)
from hayase.sql.planner import QueryPlanner
from hayase.sql.properties import (
    KNOWN_FORMATS,
    KNOWN_PROPERTIES,
    WRAPPING_FORMATS,
    columns_text,
    delimiter,
    identifier_value,
    parse_window_size,
    prop_bool,
    prop_int,
    prop_str,
    refuse_delimiter,
    validate_format,
)
from hayase.sql.types import (
    BIGINT,
    BYTES,
    NULL,
    STRING,
    TIMESTAMP,
    SqlType,
    array_of,
    struct_of,
)

HEADERS_TYPE = array_of(struct_of([("KEY", STRING), ("VALUE", BYTES)]))


class Analyzer:
    """Executes statements against a metastore with a set of session properties."""

    def __init__(self, metastore: Metastore, properties: dict[str, str]) -> None:
        self.metastore = metastore
        self.properties = properties

    # ================================================================== dispatch
    def execute(self, stmt: ast.Statement) -> DdlResult | QueryPlan | InsertValues:
        if isinstance(stmt, ast.CreateSource):
            return self.create_source(stmt)
        if isinstance(stmt, ast.CreateAsSelect):
            return self.create_as_select(stmt)
        if isinstance(stmt, ast.InsertInto):
            return self.insert_into(stmt)
        if isinstance(stmt, ast.InsertValues):
            return self.insert_values(stmt)
        if isinstance(stmt, ast.DropSource):
            return self.drop_source(stmt)
        if isinstance(stmt, ast.CreateType):
            return self.create_type(stmt)
        if isinstance(stmt, ast.DropType):
            if stmt.name not in self.metastore.types:
                if stmt.if_exists:
                    return DdlResult(f"Type {stmt.name} does not exist.")
                raise _err(f"Type {stmt.name} does not exist.", stmt)
            del self.metastore.types[stmt.name]
            return DdlResult(f"Dropped type {stmt.name}")
        if isinstance(stmt, ast.Terminate):
            return self.terminate(stmt)
        if isinstance(stmt, ast.Show):
            return self.show(stmt)
        if isinstance(stmt, ast.Describe):
            return self.describe(stmt)
        if isinstance(stmt, ast.Explain):
            return self.explain(stmt)
        if isinstance(stmt, ast.Alter):
            from hayase.sql.alter import alter_source

            return alter_source(stmt, self.metastore, self._resolve_type)
        if isinstance(stmt, ast.QueryStatement):
            raise _err("Transient queries (SELECT without CREATE ... AS or INSERT INTO) are not "
                       "supported by this engine yet.", stmt)
        raise _err(f"Unsupported statement: {stmt.to_sql()}", stmt)

    def _case_hint(self, name: str) -> str:
        """ksqlDB's hint when a source exists under a different letter case."""
        for other in self.metastore.sources:
            if other != name and other.upper() == name.upper():
                if other == other.upper():
                    return (f"\nDid you mean {other}? Hint: try removing double quotes from the "
                            "source name.")
                return (f"\nDid you mean \"{other}\"? Hint: wrap the source name in double quotes "
                        "to make it case-sensitive.")
        return ""

    # ================================================================== formats
    def _formats(self, props: dict[str, ast.Literal], node: ast.Node,
                 inherit_key: FormatInfo | None, inherit_value: FormatInfo | None,
                 ) -> tuple[str | None, str | None]:
        fmt = prop_str(props, "FORMAT")
        key = prop_str(props, "KEY_FORMAT")
        value = prop_str(props, "VALUE_FORMAT")
        if fmt is not None and (key is not None or value is not None):
            which = "KEY_FORMAT" if key is not None else "VALUE_FORMAT"
            raise _err(f"Cannot supply both '{which}' and 'FORMAT' properties, as 'FORMAT' sets "
                       "both key and value formats. Either use just 'FORMAT', or use 'KEY_FORMAT' "
                       "and 'VALUE_FORMAT'.", node)
        if fmt is not None:
            key = value = fmt
        for f in (key, value):
            if f is not None and f.upper() not in KNOWN_FORMATS:
                raise _err(f"Unknown format: {f.upper()}", node)
        return (key.upper() if key else None), (value.upper() if value else None)

    def _default_key_format(self) -> str:
        return self.properties.get("ksql.persistence.default.format.key", "KAFKA").upper()

    def _format_info(self, name: str, delimiter: str | None, features: frozenset[str]) -> FormatInfo:
        props: tuple[tuple[str, str], ...] = ()
        if delimiter is not None:
            props = (("delimiter", delimiter),)
        return FormatInfo(name, props, features)

    def _value_features(self, props: dict[str, ast.Literal], value_format: str,
                        n_value_cols: int) -> frozenset[str]:
        wrap = prop_bool(props, "WRAP_SINGLE_VALUE")
        if wrap is not None:
            # Formats that cannot wrap accept only false; PROTOBUF always wraps.
            refused = (value_format not in WRAPPING_FORMATS and wrap) or (
                value_format in ("PROTOBUF", "PROTOBUF_NOSR") and not wrap)
            if refused:
                raise StatementError(f"Format '{value_format}' does not support "
                                     f"'WRAP_SINGLE_VALUE' set to '{str(wrap).lower()}'.")
            if value_format not in WRAPPING_FORMATS:
                return frozenset()
            if n_value_cols != 1:
                raise StatementError("'WRAP_SINGLE_VALUE' is only valid for single-field value "
                                     "schemas")
            return frozenset({"WRAP_SINGLES" if wrap else "UNWRAP_SINGLES"})
        default = self.properties.get("ksql.persistence.wrap.single.values")
        if (default is not None and value_format in WRAPPING_FORMATS and n_value_cols == 1
                and default.lower() == "false"):
            return frozenset({"UNWRAP_SINGLES"})
        return frozenset()

    def _key_features(self, key_format: str, n_key_cols: int) -> frozenset[str]:
        if key_format in WRAPPING_FORMATS and n_key_cols == 1:
            return frozenset({"UNWRAP_SINGLES"})
        return frozenset()

    def _check_properties(self, props: dict[str, ast.Literal], node: ast.Node) -> None:
        for name in props:
            if name not in KNOWN_PROPERTIES:
                raise _err(f"Invalid config variable(s) in the WITH clause: {name}", node)

    # ================================================================== CREATE
    def _resolve_type(self, t: SqlType, node: ast.Node) -> SqlType:
        return ExpressionCompiler(Scope([]), CodeNamespace(), self.metastore.types).resolve_type(t, node)

    def create_type(self, stmt: ast.CreateType) -> DdlResult:
        if stmt.name in self.metastore.types:
            if stmt.if_not_exists:
                return DdlResult(f"Type {stmt.name} already exists")
            raise _err(f"Cannot register custom type '{stmt.name}' since it is already registered "
                       f"with type: {self.metastore.types[stmt.name]}", stmt)
        self.metastore.types[stmt.name] = self._resolve_type(stmt.type, stmt)
        return DdlResult(f"Registered custom type with name '{stmt.name}' and SQL type "
                         f"{self.metastore.types[stmt.name]}")

    def _check_existing(self, name: str, kind: str, or_replace: bool, if_not_exists: bool,
                        node: ast.Node, is_source: bool = False) -> DataSource | None:
        existing = self.metastore.get(name)
        lower = kind.lower()
        if or_replace and is_source:
            raise _err(f"Cannot add {lower} '{name}': CREATE OR REPLACE is not supported on "
                       f"source {lower}s.", node)
        if existing is None:
            return None
        if if_not_exists:
            return existing
        if or_replace:
            if existing.is_source or is_source:
                raise _err(f"Cannot add {lower} '{name}': CREATE OR REPLACE is not supported on "
                           f"source {lower}s.", node)
            if existing.source_type.value != kind:
                raise _err(f"Cannot add {lower} '{name}': A {existing.source_type.value.lower()} "
                           f"with the same name already exists", node)
            return None
        raise _err(f"Cannot add {lower} '{name}': A {existing.source_type.value.lower()} with the "
                   "same name already exists", node)

    def _check_upgrade(self, stmt: ast.CreateSource | ast.CreateAsSelect,
                       new: DataSource) -> None:
        """CREATE OR REPLACE over an existing source: ksqlDB's DataSource.canUpgradeTo."""
        old = self.metastore.get(stmt.name) if stmt.or_replace else None
        if old is None:
            return
        from hayase.sql.upgrade import source_upgrade_error

        issue = source_upgrade_error(old, new)
        if issue is not None:
            raise _err(f"Cannot upgrade data source: {issue}", stmt)

    def create_source(self, stmt: ast.CreateSource) -> DdlResult:
        props = stmt.properties
        self._check_properties(props, stmt)
        kind = stmt.source_type
        existing = self._check_existing(stmt.name, kind, stmt.or_replace, stmt.if_not_exists, stmt,
                                        stmt.is_source)
        if existing is not None:
            return DdlResult(f"Cannot add {kind.lower()} {stmt.name}: already exists", existing)
        columns = self._columns(stmt)
        if columns and "VALUE_SCHEMA_ID" in props and any(
                c.namespace is Namespace.VALUE for c in columns):
            raise _err("Table elements and VALUE_SCHEMA_ID cannot both exist for create statement.",
                       stmt)
        key_cols = [c for c in columns if c.namespace is Namespace.KEY]
        value_cols = [c for c in columns if c.namespace is Namespace.VALUE]
        header_cols = [c for c in columns if c.namespace is Namespace.HEADERS]
        if kind == "TABLE" and not key_cols and columns:
            raise _err("Tables require a PRIMARY KEY. Please define the PRIMARY KEY.", stmt)
        key_fmt0, value_fmt0 = self._formats(props, stmt, None, None)
        # ksqlDB checks the WITH clause's delimiters before the columns.
        default_value = self.properties.get("ksql.persistence.default.format.value")
        for prop, fmt in (("KEY_DELIMITER", key_fmt0), ("VALUE_DELIMITER",
                                                        value_fmt0 or default_value)):
            given = delimiter(props, prop)  # refuses an invalid delimiter
            if fmt:
                refuse_delimiter(fmt.upper(), given)
        if not columns:
            vf = value_fmt0 or self.properties.get("ksql.persistence.default.format.value", "")
            if vf.upper() in ("AVRO", "PROTOBUF", "JSON_SR"):
                raise _err("Schema for message values on topic "
                           f"'{prop_str(props, 'KAFKA_TOPIC') or stmt.name}' does not exist in the "
                           "Schema Registry.", stmt)
            raise _err("The statement does not define any columns.", stmt)
        topic = prop_str(props, "KAFKA_TOPIC")
        partitions = prop_int(props, "PARTITIONS")
        replicas = prop_int(props, "REPLICAS")
        if topic is None:
            if partitions is None:
                raise _err("Missing required property \"KAFKA_TOPIC\" in WITH clause", stmt)
            topic = stmt.name
        key_fmt, value_fmt = self._formats(props, stmt, None, None)
        if value_fmt is None:
            default = self.properties.get("ksql.persistence.default.format.value")
            if default is None:
                raise _err("Statement is missing the 'VALUE_FORMAT' property from the WITH clause. "
                           "Either provide one or set a default via the "
                           "'ksql.persistence.default.format.value' config.", stmt)
            value_fmt = default.upper()
        if key_fmt is None:
            key_fmt = self._default_key_format() if key_cols else "NONE"
            if not key_cols and key_fmt != "NONE":
                key_fmt = "NONE"
        key_format = self._format_info(key_fmt, delimiter(props, "KEY_DELIMITER"),
                                       self._key_features(key_fmt, len(key_cols)))
        value_format = self._format_info(value_fmt, delimiter(props, "VALUE_DELIMITER"),
                                         self._value_features(props, value_fmt, len(value_cols)))
        validate_format(key_format, tuple(key_cols), True)
        validate_format(value_format, tuple(value_cols), False)
        schema = LogicalSchema(tuple(key_cols + value_cols + header_cols))
        ts_col, ts_fmt = self._timestamp(props, schema, stmt)
        source = DataSource(
            name=stmt.name, source_type=SourceType(kind), schema=schema, topic=topic,
            key_format=key_format, value_format=value_format, timestamp_column=ts_col,
            timestamp_format=ts_fmt, partitions=partitions, replicas=replicas,
            is_source=stmt.is_source, sql=stmt.text)
        window_type = prop_str(props, "WINDOW_TYPE")
        if window_type is not None:
            from hayase.sql.plan import WindowInfo

            size = prop_str(props, "WINDOW_SIZE")
            if window_type.upper() == "SESSION" and size:
                from hayase.sql.errors import ParseError

                raise ParseError("'WINDOW_SIZE' should not be set for SESSION windows.",
                                 stmt.line, stmt.column)
            if window_type.upper() in ("TUMBLING", "HOPPING") and not size:
                from hayase.sql.errors import ParseError

                raise ParseError(f"'WINDOW_SIZE' config is required for '{window_type.upper()}' "
                                 "windows.", stmt.line, stmt.column)
            source.window = WindowInfo(window_type.upper(), parse_window_size(size) if size else None)
        self._check_upgrade(stmt, source)
        self.metastore.sources[stmt.name] = source
        return DdlResult(f"{kind.capitalize()} created", source,
                         topics_to_create=[Topic(topic, partitions, replicas)])

    def _columns(self, stmt: ast.CreateSource) -> list[Column]:
        seen: set[str] = set()
        out: list[Column] = []
        for el in stmt.elements:
            if el.name in seen:
                raise _err(f"Duplicate column names: {el.name}", el)
            seen.add(el.name)
            if el.name in RESERVED:
                raise _err(f"'{el.name}' is a reserved column name. You cannot use it as a name "
                           "for a column.", el)
            t = self._resolve_type(el.type, el)
            c = el.constraint
            if c == "KEY":
                if stmt.source_type == "TABLE":
                    raise _err(f"Column `{el.name}` is a 'KEY' column: please use 'PRIMARY KEY' "
                               "for tables.\nTables have PRIMARY KEYs, which are unique and NON "
                               "NULL.\nStreams have KEYs, which have no uniqueness or NON NULL "
                               "constraints.", el)
                out.append(Column(el.name, t, Namespace.KEY))
            elif c == "PRIMARY KEY":
                if stmt.source_type == "STREAM":
                    raise _err(f"Column `{el.name}` is a 'PRIMARY KEY' column: please use 'KEY' "
                               "for streams.\nTables have PRIMARY KEYs, which are unique and NON "
                               "NULL.\nStreams have KEYs, which have no uniqueness or NON NULL "
                               "constraints.", el)
                out.append(Column(el.name, t, Namespace.KEY))
            elif c == "HEADERS":
                if t != HEADERS_TYPE:
                    raise _err(f"Invalid type for HEADERS column: expected {HEADERS_TYPE}, got {t}",
                               el)
                out.append(Column(el.name, t, Namespace.HEADERS))
            elif c == "HEADER":
                if t != BYTES:
                    raise _err(f"Invalid type for HEADER('{el.header_key}') column: expected BYTES, "
                               f"got {t}", el)
                out.append(Column(el.name, t, Namespace.HEADERS, el.header_key))
            else:
                out.append(Column(el.name, t, Namespace.VALUE))
        if sum(1 for c in out if c.namespace is Namespace.HEADERS and c.header_key is None) > 1:
            raise _err("Schema already contains a HEADERS column.", stmt)
        return out

    def _timestamp(self, props: dict[str, ast.Literal], schema: LogicalSchema,
                   node: ast.Node) -> tuple[str | None, str | None]:
        raw = prop_str(props, "TIMESTAMP")
        fmt = prop_str(props, "TIMESTAMP_FORMAT")
        if raw is None:
            return None, None
        name = identifier_value(raw)
        col = schema.find(name)
        if col is None:
            raise _err(f"The TIMESTAMP column set in the WITH clause does not exist in the schema: "
                       f"'{name}'", node)
        ok = col.type.base in ("BIGINT", "TIMESTAMP") or (col.type.base == "STRING" and fmt)
        if not ok:
            raise _err(f"Timestamp column, `{name}`, should be LONG(INT64), TIMESTAMP, or a String "
                       "with a timestamp_format specified", node)
        return name, fmt

    # ================================================================== DROP / TERMINATE
    def drop_source(self, stmt: ast.DropSource) -> DdlResult:
        src = self.metastore.get(stmt.name)
        if src is None:
            if stmt.if_exists:
                return DdlResult(f"Source {stmt.name} does not exist.")
            raise _err(f"{stmt.source_type.capitalize()} {stmt.name} does not exist.", stmt)
        if src.source_type.value != stmt.source_type:
            raise _err(f"Incompatible data source type is {src.source_type.value}, but statement "
                       f"was DROP {stmt.source_type}", stmt)
        if stmt.delete_topic and src.is_source:
            raise _err(f"Cannot delete topic for read-only source: {stmt.name}", stmt)
        readers = self.metastore.readers(stmt.name)
        writers = [q for q in self.metastore.writers(stmt.name) if q != src.created_by_query]
        if readers or writers:
            raise _err(f"Cannot drop {stmt.name}.\nThe following queries read from this source: "
                       f"[{', '.join(readers)}].\nThe following queries write into this source: "
                       f"[{', '.join(writers)}].\nYou need to terminate them before dropping "
                       f"{stmt.name}.", stmt)
        terminated: list[str] = []
        if src.created_by_query and src.created_by_query in self.metastore.queries:
            self.metastore.terminate(src.created_by_query)
            terminated.append(src.created_by_query)
        del self.metastore.sources[stmt.name]
        return DdlResult(f"Source `{stmt.name}` (topic: {src.topic}) was dropped.",
                         topics_to_delete=[src.topic] if stmt.delete_topic else [],
                         queries_to_terminate=terminated)

    def terminate(self, stmt: ast.Terminate) -> DdlResult:
        if stmt.query_id is None:
            ids = sorted(self.metastore.queries)
            for qid in ids:
                self.metastore.terminate(qid)
            return DdlResult("All queries terminated.", queries_to_terminate=ids)
        qid = stmt.query_id.upper()
        if qid not in self.metastore.queries:
            raise _err(f"Unknown queryId: {stmt.query_id}", stmt)
        self.metastore.terminate(qid)
        for src in self.metastore.sources.values():
            if src.created_by_query == qid:
                src.created_by_query = None
        return DdlResult(f"Query terminated: {qid}", queries_to_terminate=[qid])

    # ================================================================== SHOW / DESCRIBE
    def show(self, stmt: ast.Show) -> DdlResult:
        what = stmt.what
        rows: list[dict[str, Any]] = []
        if what in ("STREAMS", "TABLES"):
            kind = what[:-1]
            for s in sorted(self.metastore.sources.values(), key=lambda s: s.name):
                if s.source_type.value == kind:
                    rows.append({"name": s.name, "topic": s.topic, "keyFormat": s.key_format.name,
                                 "valueFormat": s.value_format.name,
                                 "isWindowed": s.window is not None})
        elif what == "QUERIES":
            for q in self.metastore.queries.values():
                rows.append({"id": q.query_id, "sinks": [q.sink], "queryString": q.sql,
                             "state": q.state})
        elif what == "PROPERTIES":
            rows = [{"name": k, "value": v} for k, v in sorted(self.properties.items())]
        elif what == "FUNCTIONS":
            from hayase.sql.functions import all_functions

            rows = [{"name": f.name, "type": "AGGREGATE" if f.aggregate else
                     "TABLE" if f.table else "SCALAR", "category": f.category}
                    for f in all_functions()]
        elif what == "TYPES":
            rows = [{"name": n, "schema": str(t)} for n, t in sorted(self.metastore.types.items())]
        elif what in ("TOPICS", "ALL TOPICS"):
            topics = sorted({s.topic for s in self.metastore.sources.values()})
            rows = [{"name": t} for t in topics]
        return DdlResult(f"SHOW {what}", rows=rows)

    def describe(self, stmt: ast.Describe) -> DdlResult:
        if stmt.target in ("STREAMS", "TABLES") and self.metastore.get(stmt.target) is None:
            return self.show(ast.Show(stmt.target, stmt.extended))
        src = self.metastore.get(stmt.target)
        if src is None:
            raise _err(f"Could not find STREAM/TABLE '{stmt.target}' in the Metastore", stmt)
        fields = [{"name": c.name, "type": str(c.type),
                   "key": c.namespace is Namespace.KEY} for c in src.schema.columns]
        row = {"name": src.name, "type": src.source_type.value, "topic": src.topic,
               "keyFormat": src.key_format.name, "valueFormat": src.value_format.name,
               "timestamp": src.timestamp_column, "fields": fields,
               "readQueries": self.metastore.readers(src.name),
               "writeQueries": self.metastore.writers(src.name), "statement": src.sql}
        return DdlResult(f"DESCRIBE {src.name}", source=src, rows=[row])

    def explain(self, stmt: ast.Explain) -> DdlResult:
        if stmt.query_id is not None:
            q = self.metastore.queries.get(stmt.query_id.upper())
            if q is None:
                raise _err(f"Query with id:{stmt.query_id} does not exist, use SHOW QUERIES to "
                           "view the full set of queries.", stmt)
            return DdlResult(f"EXPLAIN {q.query_id}", rows=[{"id": q.query_id, "sql": q.sql,
                                                             "sources": q.sources,
                                                             "sink": q.sink}])
        assert stmt.query is not None
        return DdlResult("EXPLAIN", rows=[{"sql": stmt.query.to_sql()}])

    # ================================================================== queries
    def create_as_select(self, stmt: ast.CreateAsSelect) -> DdlResult | QueryPlan:
        self._check_properties(stmt.properties, stmt)
        existing = self._check_existing(stmt.name, stmt.source_type, stmt.or_replace,
                                        stmt.if_not_exists, stmt)
        if existing is not None:
            return DdlResult(f"Cannot add {stmt.source_type.lower()} {stmt.name}: already exists",
                             existing)
        if stmt.query.limit is not None:
            raise _err(f"CREATE {stmt.source_type} AS SELECT statements don't support LIMIT "
                       "clause.", stmt)
        prior = self.metastore.get(stmt.name) if stmt.or_replace else None
        prefix = "CSAS" if stmt.source_type == "STREAM" else "CTAS"
        if stmt.query.group_by is None:
            _refuse_aggregates_without_group_by(stmt)
        planner = QueryPlanner(self, stmt.query, stmt.name)
        plan_parts = planner.plan()
        if plan_parts.result_type != stmt.source_type:
            produced = plan_parts.result_type
            other = "STREAM" if produced == "STREAM" else "TABLE"
            raise _err(f"Invalid result type. Your SELECT query produces a {produced}. Please use "
                       f"CREATE {other} AS SELECT statement instead.", stmt)
        sink = planner.sink_source(stmt.name, stmt.source_type, stmt.properties, stmt)
        self._check_upgrade(stmt, sink)
        if prior is not None and prior.created_by_query in self.metastore.queries:
            from hayase.sql.parser import parse_statement
            from hayase.sql.upgrade import query_upgrade_error

            try:
                old: ast.Statement | None = parse_statement(
                    self.metastore.queries[prior.created_by_query].sql)
            except KsqlError:  # the old text no longer parses: no plan to compare with
                old = None
            if isinstance(old, ast.CreateAsSelect):
                issue = query_upgrade_error(old.query, stmt.query, self.metastore.sources)
                if issue is not None:
                    raise _err(issue, stmt)
        qid = (prior.created_by_query if prior is not None and prior.created_by_query else
               self.metastore.next_query_id(f"{prefix}_{stmt.name}"))
        sink.sql = stmt.text
        sink.created_by_query = qid
        plan = planner.build(qid, sink, stmt.text)
        self.metastore.sources[stmt.name] = sink
        self.metastore.add_query(PersistentQuery(qid, stmt.name, planner.source_names, stmt.text,
                                                 plan))
        return plan

    def insert_into(self, stmt: ast.InsertInto) -> QueryPlan:
        target = self.metastore.get(stmt.target)
        if target is None:
            raise _err(f"{stmt.target} does not exist.", stmt)
        if target.source_type is SourceType.TABLE:
            raise _err(f"INSERT INTO can only be used to insert into a stream. {stmt.target} is a "
                       "table.", stmt)
        if target.is_source:
            raise _err(f"Cannot insert into read-only stream: {stmt.target}", stmt)
        if target.schema.headers:
            raise _err(f"Cannot insert into {stmt.target} because it has header columns", stmt)
        if stmt.query.limit is not None:
            raise _err("INSERT INTO statements don't support LIMIT clause.", stmt)
        planner = QueryPlanner(self, stmt.query, stmt.target)
        parts = planner.plan()
        if parts.result_type != "STREAM":
            raise _err(f"INSERT INTO can only be used to insert into a stream. The query produces "
                       f"a {parts.result_type}.", stmt)
        if stmt.target in planner.source_names:
            raise _err(f"Cannot insert into {stmt.target} because it is also the source of the "
                       "query.", stmt)
        result = planner.sink_source(stmt.target, "STREAM", {}, stmt, existing=target)
        if not _schemas_compatible(result.schema, target.schema):
            raise _err("Incompatible schema between results and sink.\n"
                       f"Result schema is {_fmt_schema(result.schema)}\n"
                       f"Sink schema is {_fmt_schema(target.schema)}", stmt)
        qid = self.metastore.next_query_id("INSERTQUERY")
        plan = planner.build(qid, target, stmt.text)
        self.metastore.add_query(PersistentQuery(qid, stmt.target, planner.source_names,
                                                 stmt.text, plan))
        return plan

    def insert_values(self, stmt: ast.InsertValues) -> InsertValues:
        if stmt.columns is not None and len(stmt.columns) != len(stmt.values):
            # ksqlDB checks this while building the statement, before looking at the target.
            raise _err("Failed to prepare statement: Expected number columns and values to "
                       f"match: {len(stmt.columns)}, {len(stmt.values)}", stmt)
        target = self.metastore.get(stmt.target)
        if target is None:
            raise _err(f"Cannot insert values into an unknown stream/table: `{stmt.target}`"
                       + self._case_hint(stmt.target), stmt)
        if target.is_source:
            raise _err(f"Cannot insert values into read-only {target.source_type.value.lower()}: "
                       f"{stmt.target}", stmt)
        schema = target.schema
        if stmt.columns is None:
            names = [c.name for c in schema.columns if c.namespace is not Namespace.HEADERS]
            if len(stmt.values) == len(names) + 1:
                names = ["ROWTIME"] + names
        else:
            names = stmt.columns
        if len(names) != len(stmt.values):
            raise _err(f"Expected a value for each column. Expected Columns: {names}. Got "
                       f"[{', '.join(v.to_sql() for v in stmt.values)}]", stmt)
        if not names:
            raise _err("No columns supplied.", stmt)
        # Like ksqlDB's InsertValuesExecutor: every column is checked before any value.
        for name, expr in zip(names, stmt.values, strict=True):
            if name not in PSEUDO_COLUMNS and schema.find(name) is None:
                raise _err(f"Column name {name} does not exist.", expr)
            if name in _NOT_INSERTABLE:
                raise _err(f"Inserting into column `{name}` is not allowed.", expr)
        ns = CodeNamespace()
        comp = ExpressionCompiler(Scope([]), ns, self.metastore.types)
        values: dict[str, Any] = {}
        for name, expr in zip(names, stmt.values, strict=True):
            if name == "ROWTIME":
                col_type: SqlType = BIGINT
            else:
                col = schema.find(name)
                assert col is not None
                if col.namespace is Namespace.HEADERS:
                    raise _err(f"Cannot insert into HEADER columns: {name}", expr)
                col_type = col.type
            typed = comp.compile(expr)
            typed = _coerce_for_insert(comp, typed, col_type, expr, name)
            fn = build_function("_value", "", [f"return {typed.code}"], ns)
            try:
                values[name] = fn()
            except StatementError:
                raise
            except Exception as e:  # noqa: BLE001 - any evaluation failure is the user's input
                raise _err(f"Failed to insert values into '{stmt.target}'. {e}", expr) from None
        key = tuple(values.get(c.name) for c in schema.key)
        value = tuple(values.get(c.name) for c in schema.value)
        ts = values.get("ROWTIME")
        if ts is None and target.timestamp_column and values.get(target.timestamp_column) is not None:
            ts = values[target.timestamp_column]
        return InsertValues(target, key, value, ts)


# ksqlDB's SystemColumns.isDisallowedForInsertValues: pseudo-columns other than ROWTIME.
_NOT_INSERTABLE = frozenset(c for c in PSEUDO_COLUMNS if c != "ROWTIME")


def _coerce_for_insert(comp: ExpressionCompiler, typed: Typed, target: SqlType,
                       expr: ast.Expression, name: str) -> Typed:
    from hayase.sql.types import is_assignable

    if typed.type is NULL or typed.type == target:
        return Typed(typed.code, target)
    if typed.type.base == "STRING" and isinstance(expr, ast.Literal) and (
            target.is_numeric or target.is_temporal or target.base == "BOOLEAN"):
        return comp.constant_cast(expr, target)
    if is_assignable(target, typed.type):
        return comp.coerce(typed, target)
    if target.is_numeric and typed.type.is_numeric:
        return comp.cast(typed, target)
    raise StatementError(f"Expected type {target} for field {name} but got {expr.to_sql()}"
                         f"({typed.type})", expr.line, expr.column)


def _schemas_compatible(a: LogicalSchema, b: LogicalSchema) -> bool:
    def norm(s: LogicalSchema) -> list[tuple[str, SqlType, bool]]:
        return [(c.name, c.type, c.namespace is Namespace.KEY) for c in s.columns
                if c.namespace is not Namespace.HEADERS]

    return norm(a) == norm(b)


def _fmt_schema(s: LogicalSchema) -> str:
    return columns_text(c for c in s.columns if c.namespace is not Namespace.HEADERS)


def _refuse_aggregates_without_group_by(stmt: ast.CreateAsSelect) -> None:
    from hayase.sql.functions import lookup

    calls = []
    for item in stmt.query.select:
        if isinstance(item, ast.SingleColumn):
            for node in item.expression.walk():
                if isinstance(node, ast.FunctionCall):
                    udf = lookup(node.name)
                    if udf is not None and udf.aggregate:
                        calls.append(f"{node.name}(ROWTIME)" if node.star else node.to_sql())
    if calls:
        raise _err(f"CREATE {stmt.source_type} AS SELECT statement does not support aggregate "
                   f"function [{', '.join(calls)}] without a GROUP BY clause.", stmt)


__all__ = ["Analyzer", "validate_format", "TIMESTAMP"]
