"""Statement semantics: DDL effects on the metastore and persistent-query planning.

``Analyzer.execute(statement)`` returns a DdlResult, a QueryPlan or an InsertValues, or raises
a KsqlError.  Only the stateless part of ksqlDB is planned here (filter, project, PARTITION BY);
GROUP BY, windows and joins parse and are refused with a statement error until issues 6 and 7.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hayase.sql import ast
from hayase.sql.compiler import (
    CodeNamespace,
    ExpressionCompiler,
    Scope,
    ScopeColumn,
    Typed,
    build_function,
    guarded,
)
from hayase.sql.errors import StatementError
from hayase.sql.errors import statement_error as _err
from hayase.sql.metastore import Metastore, PersistentQuery
from hayase.sql.naming import RESERVED, implicit_name, name_columns, synthetic_name
from hayase.sql.plan import (
    PSEUDO_COLUMNS,
    PSEUDO_TYPES,
    WINDOW_COLUMNS,
    Column,
    DataSource,
    DdlResult,
    FilterStep,
    FlatMapStep,
    FormatInfo,
    InsertValues,
    LogicalSchema,
    Namespace,
    ProjectStep,
    QueryPlan,
    SelectKeyStep,
    SinkDescriptor,
    SourceType,
    Step,
    Topic,
)
from hayase.sql.types import (
    BIGINT,
    BYTES,
    NULL,
    STRING,
    TIMESTAMP,
    ArrayType,
    MapType,
    SqlType,
    StructType,
    array_of,
    struct_of,
)

KNOWN_FORMATS = {"JSON", "DELIMITED", "KAFKA", "NONE", "AVRO", "PROTOBUF", "PROTOBUF_NOSR",
                 "JSON_SR"}
WRAPPING_FORMATS = {"JSON", "AVRO", "PROTOBUF", "PROTOBUF_NOSR", "JSON_SR"}
HEADERS_TYPE = array_of(struct_of([("KEY", STRING), ("VALUE", BYTES)]))
KNOWN_PROPERTIES = {
    "KAFKA_TOPIC", "KEY_FORMAT", "VALUE_FORMAT", "FORMAT", "PARTITIONS", "REPLICAS", "TIMESTAMP",
    "TIMESTAMP_FORMAT", "WRAP_SINGLE_VALUE", "KEY_DELIMITER", "VALUE_DELIMITER", "KEY_SCHEMA_ID",
    "VALUE_SCHEMA_ID", "KEY_SCHEMA_FULL_NAME", "VALUE_SCHEMA_FULL_NAME", "VALUE_AVRO_SCHEMA_FULL_NAME",
    "WINDOW_TYPE", "WINDOW_SIZE", "RETENTION_MS", "SOURCE_CONNECTOR", "CLEANUP_POLICY",
    "KEY_PROTOBUF_NULLABLE_REPRESENTATION", "VALUE_PROTOBUF_NULLABLE_REPRESENTATION",
}


def _prop_str(props: dict[str, ast.Literal], name: str) -> str | None:
    lit = props.get(name)
    if lit is None or lit.value is None:
        return None
    if isinstance(lit.value, bool):
        return "true" if lit.value else "false"
    return str(lit.value)


def _prop_int(props: dict[str, ast.Literal], name: str) -> int | None:
    lit = props.get(name)
    if lit is None:
        return None
    try:
        v = int(str(lit.value))
    except ValueError:
        raise _err(f"Invalid value for {name}: {lit.value}", lit) from None
    if v < 1 and name != "REPLICAS":
        raise _err(f"Invalid value for {name}: {v}", lit)
    return v


def _prop_bool(props: dict[str, ast.Literal], name: str) -> bool | None:
    lit = props.get(name)
    if lit is None:
        return None
    if isinstance(lit.value, bool):
        return lit.value
    text = str(lit.value).lower()
    if text in ("true", "false"):
        return text == "true"
    raise _err(f"Property {name} must be a boolean: {lit.value}", lit)


def _delimiter(props: dict[str, ast.Literal], name: str) -> str | None:
    raw = _prop_str(props, name)
    if raw is None:
        return None
    special = {"TAB": "\t", "SPACE": " "}
    if raw.upper() in special:
        return special[raw.upper()]
    if raw == "":
        raise StatementError(
            f"Failed to prepare statement: Configuration {name} is invalid: Delimiter cannot be "
            "empty, if you meant to have a tab or space for delimiter, please use the special "
            "values 'TAB' or 'SPACE'\nExample valid value: ';'")
    if len(raw) != 1:
        raise StatementError(
            f"Failed to prepare statement: Configuration {name} is invalid: Delimiter must be a "
            f"single character or TAB or SPACE\nExample valid value: ';'")
    return raw


def _identifier_value(text: str) -> str:
    """A column name given as a property string: back-quoted is exact, otherwise upper-cased."""
    text = text.strip()
    if len(text) >= 2 and text[0] == "`" and text[-1] == "`":
        return text[1:-1].replace("``", "`")
    return text.upper()


def _contains_map(t: SqlType | None) -> bool:
    if t is None:
        return False
    if isinstance(t, MapType):
        return True
    if isinstance(t, ArrayType):
        return _contains_map(t.element)
    if isinstance(t, StructType):
        return any(_contains_map(ft) for _, ft in t.fields)
    return False


def _format_columns(cols: tuple[Column, ...] | list[Column]) -> str:
    return "[" + ", ".join(f"`{c.name}` {c.type}" + (" KEY" if c.namespace is Namespace.KEY else "")
                           for c in cols) + "]"


def validate_format(fmt: FormatInfo, cols: tuple[Column, ...], is_key: bool) -> None:
    """Refuse schemas the format cannot carry, with ksqlDB's messages."""
    name = fmt.name
    if is_key:
        for c in cols:
            if _contains_map(c.type):
                raise StatementError(
                    "Map keys, including types that contain maps, are not supported as they may "
                    "lead to unexpected behavior due to inconsistent serialization. Key column "
                    f"name: `{c.name}`. Column type: {c.type}. See "
                    "https://github.com/confluentinc/ksql/issues/6621 for more.")
    if name == "NONE":
        if cols:
            raise StatementError(f"The 'NONE' format can only be used when no columns are defined. "
                                 f"Got: {_format_columns(cols)}")
        return
    if name == "KAFKA":
        if len(cols) > 1:
            raise StatementError(f"The 'KAFKA' format only supports a single field. Got: "
                                 f"{_format_columns(cols)}")
        for c in cols:
            if c.type.base not in ("INTEGER", "BIGINT", "DOUBLE", "STRING", "BYTES"):
                raise StatementError(f"The 'KAFKA' format does not support type '{c.type.base}'")
    if name == "DELIMITED":
        for c in cols:
            if c.type.base in ("ARRAY", "MAP", "STRUCT"):
                raise StatementError(f"The 'DELIMITED' format does not support type "
                                     f"'{c.type.base}', column: `{c.name}`")
    if name in ("JSON", "JSON_SR"):
        for c in cols:
            if _bad_json_map(c.type):
                raise StatementError("JSON only supports MAP types with STRING keys")
    if name == "AVRO":
        for c in cols:
            if _bad_json_map(c.type):
                raise StatementError("Avro only supports MAPs with STRING keys")
            if c.name[:1].isdigit():
                raise StatementError(f"Schema is not compatible with Avro: Illegal initial "
                                     f"character: {c.name}")
    if fmt.prop("delimiter") is not None and name != "DELIMITED":
        raise StatementError(f"{name} does not support the following configs: [delimiter]")


def _bad_json_map(t: SqlType | None) -> bool:
    if isinstance(t, MapType):
        return (t.key is not None and t.key.base != "STRING") or _bad_json_map(t.value)
    if isinstance(t, ArrayType):
        return _bad_json_map(t.element)
    if isinstance(t, StructType):
        return any(_bad_json_map(ft) for _, ft in t.fields)
    return False


@dataclass
class _SelectColumn:
    name: str
    typed: Typed
    expr: ast.Expression | None  # None for columns produced by * expansion
    key_index: int | None = None  # index into the PARTITION BY key tuple
    deref_name: str | None = None  # implicit name of an unaliased a->b, resolved after the rest


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
            src = self.metastore.get(stmt.name)
            if src is None:
                raise _err(f"Source {stmt.name} does not exist.", stmt)
            if src.is_source:
                raise _err(f"Cannot alter {stmt.source_type.lower()} '{stmt.name}': ALTER "
                           f"operations are not supported on source {stmt.source_type.lower()}s.",
                           stmt)
            raise _err("ALTER is not supported yet.", stmt)
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
        fmt = _prop_str(props, "FORMAT")
        key = _prop_str(props, "KEY_FORMAT")
        value = _prop_str(props, "VALUE_FORMAT")
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
        wrap = _prop_bool(props, "WRAP_SINGLE_VALUE")
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
        if not columns:
            vf = value_fmt0 or self.properties.get("ksql.persistence.default.format.value", "")
            if vf.upper() in ("AVRO", "PROTOBUF", "JSON_SR"):
                raise _err("Schema for message values on topic "
                           f"'{_prop_str(props, 'KAFKA_TOPIC') or stmt.name}' does not exist in the "
                           "Schema Registry.", stmt)
            raise _err("The statement does not define any columns.", stmt)
        topic = _prop_str(props, "KAFKA_TOPIC")
        partitions = _prop_int(props, "PARTITIONS")
        replicas = _prop_int(props, "REPLICAS")
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
        key_format = self._format_info(key_fmt, _delimiter(props, "KEY_DELIMITER"),
                                       self._key_features(key_fmt, len(key_cols)))
        value_format = self._format_info(value_fmt, _delimiter(props, "VALUE_DELIMITER"),
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
        window_type = _prop_str(props, "WINDOW_TYPE")
        if window_type is not None:
            from hayase.sql.plan import WindowInfo

            size = _prop_str(props, "WINDOW_SIZE")
            if window_type.upper() == "SESSION" and size:
                from hayase.sql.errors import ParseError

                raise ParseError("'WINDOW_SIZE' should not be set for SESSION windows.",
                                 stmt.line, stmt.column)
            if window_type.upper() in ("TUMBLING", "HOPPING") and not size:
                from hayase.sql.errors import ParseError

                raise ParseError(f"'WINDOW_SIZE' config is required for '{window_type.upper()}' "
                                 "windows.", stmt.line, stmt.column)
            source.window = WindowInfo(window_type.upper(), _parse_window_size(size) if size else None)
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
        raw = _prop_str(props, "TIMESTAMP")
        fmt = _prop_str(props, "TIMESTAMP_FORMAT")
        if raw is None:
            return None, None
        name = _identifier_value(raw)
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
        planner = _QueryPlanner(self, stmt.query, stmt.name)
        plan_parts = planner.plan()
        if plan_parts.result_type != stmt.source_type:
            produced = plan_parts.result_type
            other = "STREAM" if produced == "STREAM" else "TABLE"
            raise _err(f"Invalid result type. Your SELECT query produces a {produced}. Please use "
                       f"CREATE {other} AS SELECT statement instead.", stmt)
        sink = planner.sink_source(stmt.name, stmt.source_type, stmt.properties, stmt)
        if prior is not None and prior.schema != sink.schema:
            raise _err(f"Cannot upgrade data source: {stmt.name} schema changed from "
                       f"{prior.schema} to {sink.schema}", stmt)
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
        planner = _QueryPlanner(self, stmt.query, stmt.target)
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
        ns = CodeNamespace()
        comp = ExpressionCompiler(Scope([]), ns, self.metastore.types)
        values: dict[str, Any] = {}
        for name, expr in zip(names, stmt.values, strict=True):
            if name == "ROWTIME":
                col_type: SqlType = BIGINT
            else:
                col = schema.find(name)
                if col is None:
                    raise _err(f"Column name {name} does not exist.", expr)
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


def _parse_window_size(text: str) -> int:
    m = re.match(r"^\s*(\d+)\s*([A-Za-z]+)\s*$", text)
    if not m:
        raise StatementError(f"Invalid WINDOW_SIZE: {text}")
    unit = ast.TIME_UNITS.get(m.group(2).upper())
    if unit is None:
        raise StatementError(f"Invalid WINDOW_SIZE: {text}")
    return ast.Duration(int(m.group(1)), unit).millis


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
    return ", ".join(f"`{c.name}` {c.type}" + (" KEY" if c.namespace is Namespace.KEY else "")
                     for c in s.columns if c.namespace is not Namespace.HEADERS)


# ====================================================================== query planning


@dataclass
class _PlanParts:
    result_type: str


class _QueryPlanner:
    """Plans one SELECT: scope, WHERE, PARTITION BY, projection, sink schema, generated code."""

    def __init__(self, analyzer: Analyzer, query: ast.Query, sink_name: str) -> None:
        self.analyzer = analyzer
        self.query = query
        self.sink_name = sink_name
        self.ns = CodeNamespace()
        self.source_names: list[str] = []
        self.agg: Any = None
        self.join: Any = None
        self.partition: list[tuple[ast.Expression, Typed, str]] | None = None
        self.table_functions: list[tuple[ast.FunctionCall, list[Typed], Any, SqlType]] = []

    # ------------------------------------------------------------------ analysis
    def plan(self) -> _PlanParts:
        q = self.query
        if isinstance(q.from_, ast.Join):
            return self._plan_join()
        assert isinstance(q.from_, ast.Table)
        ms = self.analyzer.metastore
        src = ms.get(q.from_.name)
        if src is None:
            raise _err(f"{q.from_.name} does not exist.", q.from_)
        self.source = src
        self.source_names = [src.name]
        self._check_group_by_clauses()
        if q.emit == "FINAL" and q.group_by is None:
            raise _err("EMIT FINAL is only supported for windowed aggregations.", q)
        if q.partition_by is not None and src.window is not None:
            raise _err("Implicit repartitioning of windowed sources is not supported. See "
                       "https://github.com/confluentinc/ksql/issues/4385.", q)
        if q.partition_by is not None and src.source_type is SourceType.TABLE:
            raise _err("Unsupported operation: PARTITION BY on a table. Use GROUP BY instead.", q)
        qualifiers = (src.name,) + ((q.from_.alias,) if q.from_.alias else ())
        cols = [ScopeColumn(c.name, c.type, i, qualifiers) for i, c in enumerate(src.schema.columns)]
        base = len(src.schema.columns)
        extra = list(PSEUDO_COLUMNS) + (list(WINDOW_COLUMNS) if src.window else [])
        for j, name in enumerate(extra):
            cols.append(ScopeColumn(name, PSEUDO_TYPES[name], base + j, qualifiers))
        self.rowtime_index = base
        self.scope = Scope(cols, qualifiers)
        self.types = ms.types
        self._plan_where()
        if q.group_by is not None:
            return self._plan_aggregation()
        self._plan_partition_by()
        self._plan_select()
        return _PlanParts(src.source_type.value)

    def _plan_join(self) -> _PlanParts:
        from hayase.sql.joins import JoinPlanner

        self._check_group_by_clauses()
        self.types = self.analyzer.metastore.types
        self.join = JoinPlanner(self)
        result = self.join.analyze()
        self.source = self.join.sides[0].source
        self.source_names = [s.source.name for s in self.join.sides]
        self.scope = self.join.scope
        self.rowtime_index = self.join.total_width + 1  # JOINTIME
        self._where_render = lambda e: self.join.qualified(e, "_")
        self._plan_where()
        if self.query.group_by is not None:
            # GROUP BY over the joined rows: the join chain, then the aggregation.
            return self._plan_aggregation()
        return _PlanParts(result)

    def _check_group_by_clauses(self) -> None:
        q = self.query
        if q.window is not None and q.group_by is None:
            raise _err("WINDOW clause requires a GROUP BY clause.", q.window)
        if q.having is not None and q.group_by is None:
            raise _err("HAVING clause requires a GROUP BY clause.", q.having)

    def _plan_aggregation(self) -> _PlanParts:
        """GROUP BY: the aggregation planner plans the projection; the result is a table."""
        from hayase.sql.aggregation import AggregatePlanner

        self.agg = AggregatePlanner(self)
        self.agg.analyze()
        self.partition = None
        self.table_functions = []
        return _PlanParts("TABLE")

    def _compiler(self, clause: str) -> ExpressionCompiler:
        self.scope.clause = clause
        return ExpressionCompiler(self.scope, self.ns, self.types)

    def _plan_where(self) -> None:
        self.where: Typed | None = None
        if self.query.where is not None:
            comp = self._compiler("WHERE")
            render = getattr(self, "_where_render", None)
            if render is not None:
                comp.render = render
            try:
                self.where = comp.compile_predicate(self.query.where, "WHERE")
                self.where_conjuncts = [comp.compile(c) for c in _conjuncts(self.query.where)]
            except StatementError as e:
                if "cannot be resolved" in e.message or "is not a valid stream" in e.message:
                    raise
                prefix = ("Error in WHERE expression: " if e.message.startswith("Cannot compare")
                          else "Invalid Predicate: ")
                raise StatementError(prefix + e.message, e.line, e.column) from None

    def _plan_partition_by(self) -> None:
        self.partition = None
        exprs = self.query.partition_by
        if exprs is None:
            return
        comp = self._compiler("PARTITION BY")
        out: list[tuple[ast.Expression, Typed, str]] = []
        if len(exprs) == 1 and isinstance(exprs[0], ast.Literal) and exprs[0].value is None:
            self.partition = []
            return
        if any(isinstance(e, ast.Literal) and e.value is None for e in exprs):
            raise _err("Cannot PARTITION BY multiple columns including NULL", exprs[0])
        taken = {c.name for c in self.source.schema.columns}
        for e in exprs:
            typed = comp.compile(e)
            name = implicit_name(e)
            if name is None:
                name = synthetic_name(taken)
            taken.add(name)
            out.append((e, typed, name))
        self.partition = out

    def _plan_table_functions(self, comp: ExpressionCompiler) -> None:
        """Find EXPLODE-like calls in the projection; each becomes a column after the row."""
        from hayase.sql.functions import FunctionArgError, lookup

        self.table_functions = []
        width = self.source.row_width
        for item in self.query.select:
            if not isinstance(item, ast.SingleColumn):
                continue
            for node in item.expression.walk():
                if not isinstance(node, ast.FunctionCall):
                    continue
                udf = lookup(node.name)
                if udf is None or not udf.table:
                    continue
                if self.source.source_type is SourceType.TABLE:
                    raise _err("Table source is not supported with table functions", node)
                args = [comp.compile(a) for a in node.args]
                try:
                    bound = udf.bind([a.type for a in args], [None] * len(args))
                except FunctionArgError as err:
                    raise _err(str(err), node) from None
                comp.table_slots[id(node)] = (width + len(self.table_functions),
                                              bound.return_type)
                self.table_functions.append((node, args, bound.impl, bound.return_type))

    def _plan_select(self) -> None:
        comp = self._compiler("SELECT")
        self._plan_table_functions(comp)
        src = self.source
        items: list[_SelectColumn] = []
        pending: list[tuple[ast.SingleColumn, Typed]] = []
        for item in self.query.select:
            if isinstance(item, ast.AllColumns):
                if item.source is not None and item.source not in self.scope.sources:
                    raise _err(f"'{item.source}' is not a valid stream/table name or alias.", item)
                items.extend(self._star())
                continue
            assert isinstance(item, ast.SingleColumn)
            if isinstance(item.expression, ast.DereferenceAll):
                base = comp.compile(item.expression.base)
                if not isinstance(base.type, StructType):
                    raise _err("Can't dereference non-struct type with ->*", item)
                for fname, ftype in base.type.fields:
                    code = f"(None if ({(t := self.ns.temp())} := {base.code}) is None else {t}.get({fname!r}))"
                    items.append(_SelectColumn(fname, Typed(code, ftype), None))
                continue
            typed = comp.compile(item.expression)
            if item.alias is not None and item.alias in RESERVED:
                raise _err(f"`{item.alias}` is a reserved column name. You cannot use it as an "
                           "alias for a column.", item)
            name = item.alias or implicit_name(item.expression)
            if name is None:
                pending.append((item, typed))
                items.append(_SelectColumn("", typed, item.expression))
                continue
            if item.alias is None and isinstance(item.expression, ast.Dereference):
                # Struct field names yield to real columns: clashing ones get _1, _2, ...
                items.append(_SelectColumn("", typed, item.expression))
                items[-1].deref_name = name
                continue
            if item.alias is None and name in RESERVED:
                raise _err(f"Reserved column name in select: `{name}`. Please remove or alias the "
                           "column.", item)
            items.append(_SelectColumn(name, typed, item.expression))
        name_columns(items, {c.name for c in src.schema.columns})
        self.items = items

    def _star(self) -> list[_SelectColumn]:
        src = self.source
        cols = src.schema.columns
        if self.partition is None:
            ordered = list(cols)
            return [_SelectColumn(c.name, Typed(f"row[{src.schema.index(c.name)}]", c.type),
                                  ast.ColumnRef(c.name)) for c in ordered]
        # After PARTITION BY: new key columns, source value columns, then the old key columns.
        out: list[_SelectColumn] = []
        key_names = set()
        for i, (e, typed, name) in enumerate(self.partition):
            out.append(_SelectColumn(name, typed, e, key_index=i))
            key_names.add(name)
        rest = [c for c in cols if c.namespace is not Namespace.KEY] + \
            [c for c in cols if c.namespace is Namespace.KEY]
        for c in rest:
            if c.name in key_names:
                continue
            out.append(_SelectColumn(c.name, Typed(f"row[{src.schema.index(c.name)}]", c.type),
                                     ast.ColumnRef(c.name)))
        return out

    # ------------------------------------------------------------------ sink schema
    def sink_source(self, name: str, kind: str, props: dict[str, ast.Literal], node: ast.Node,
                    existing: DataSource | None = None) -> DataSource:
        src = self.source
        if self.join is not None and self.agg is None:
            key_idx, value_idx = self.join.sink_columns(name, node)
            schema = self.join.schema(key_idx, value_idx)
            self.join_columns = (key_idx, value_idx)
            return self._sink_formats(name, kind, props, node, existing, schema, list(schema.key),
                                      list(schema.value), None)
        if self.agg is not None:
            key_idx, value_idx = self.agg.sink_columns(name, node)
            schema = self.agg.schema(key_idx, value_idx)
            self.agg_columns = (key_idx, value_idx)
            key_cols = list(schema.key)
            value_cols = list(schema.value)
            return self._sink_formats(name, kind, props, node, existing, schema, key_cols,
                                      value_cols, self.agg.window_info())
        items = self.items
        ts_raw = _prop_str(props, "TIMESTAMP")
        if ts_raw is not None and existing is None and \
                _identifier_value(ts_raw) not in {it.name for it in items}:
            raise _err("The TIMESTAMP column set in the WITH clause does not exist in the schema: "
                       f"'{_identifier_value(ts_raw)}'", node)
        key_cols = []
        key_sources: list[int] = []  # index into items for each key column
        if self.partition is None:
            # The source's key columns must appear in the projection.
            missing = []
            for kc in src.schema.key:
                hits = [i for i, it in enumerate(items) if _refers_to(it, kc.name, self.scope)]
                if not hits:
                    missing.append(kc.name)
                    continue
                if len(hits) > 1:
                    names = [items[i].name for i in hits]
                    raise _err(f"The projection contains a key column (`{kc.name}`) more than "
                               f"once, aliased as: {' and '.join(names)}.", node)
                key_sources.append(hits[0])
            new_planner = self.analyzer.properties.get(
                "ksql.new.query.planner.enabled", "false").lower() == "true"
            # hayase's server plans transient SELECTs as C*AS with this internal property: a
            # push/pull query's projection need not contain the key columns.
            transient = self.analyzer.properties.get("__hayase.transient") == "true"
            if transient or (new_planner and src.source_type is SourceType.STREAM):
                # The new planner drops unselected stream keys and orders keys as projected.
                if missing:
                    key_sources = []
                key_sources = sorted(key_sources)
            elif missing:
                every = [kc.name for kc in src.schema.key]
                raise _err(_missing_key_message(name, every, "key columns" if len(every) > 1
                                                else "key column"), node)
        else:
            missing = []
            for i, (e, _typed, _) in enumerate(self.partition):
                hits = [j for j, it in enumerate(items) if it.key_index == i
                        or (it.expr is not None and _same_expression(it.expr, e, self.scope))]
                if not hits:
                    missing.append(_qualified(e, src.name))
                    continue
                if len(hits) > 1:
                    names = [items[h].name for h in hits]
                    raise _err(f"The projection contains a key column (`{items[hits[0]].name}`) "
                               f"more than once, aliased as: {' and '.join(names)}.", node)
                key_sources.append(hits[0])
                items[hits[0]].key_index = i
            if missing:
                raise _err(_missing_key_message(name, missing, "partitioning expression" if
                                                len(missing) == 1 else "partitioning expressions"),
                           node)
        for j in key_sources:
            it = items[j]
            key_cols.append(Column(it.name, it.typed.type, Namespace.KEY))
        key_set = set(key_sources)
        value_cols = [Column(it.name, it.typed.type, Namespace.VALUE)
                      for j, it in enumerate(items) if j not in key_set]
        seen: set[str] = set()
        for c in key_cols + value_cols:
            if c.name in seen:
                raise _err(f"Value columns clash with key columns or each other: `{c.name}`",
                           node)
            seen.add(c.name)
        for c in key_cols + value_cols:
            if c.type.base == "NULL":
                raise _err(f"Can't infer a type of null. Please explicitly cast it to a required "
                           f"type, e.g. CAST(null AS VARCHAR). Column: {c.name}", node)
        self.key_sources = key_sources
        self.value_sources = [j for j in range(len(items)) if j not in key_set]
        schema = LogicalSchema(tuple(key_cols + value_cols))
        return self._sink_formats(name, kind, props, node, existing, schema, key_cols, value_cols,
                                  src.window)

    def _sink_formats(self, name: str, kind: str, props: dict[str, ast.Literal], node: ast.Node,
                      existing: DataSource | None, schema: LogicalSchema, key_cols: list[Column],
                      value_cols: list[Column], window: Any) -> DataSource:
        src = self.source
        if existing is not None:
            self.sink_schema = existing.schema
            self.sink_timestamp = (existing.timestamp_column, existing.timestamp_format)
            return DataSource(name, existing.source_type, schema, existing.topic,
                              existing.key_format, existing.value_format)
        # Formats: the WITH clause wins, otherwise inherit from the source.
        an = self.analyzer
        an._check_properties(props, node)
        key_fmt, value_fmt = an._formats(props, node, None, None)
        if key_fmt is None:
            if not key_cols:
                key_fmt = "NONE"
            elif src.key_format.name == "NONE":
                key_fmt = an._default_key_format()
            else:
                key_fmt = src.key_format.name
        elif not key_cols:
            key_fmt = "NONE" if key_fmt != "NONE" and not key_cols else key_fmt
        if value_fmt is None:
            value_fmt = src.value_format.name
        key_delim = _delimiter(props, "KEY_DELIMITER")
        if key_delim is None and key_fmt == src.key_format.name:
            key_delim = src.key_format.prop("delimiter")
        value_delim = _delimiter(props, "VALUE_DELIMITER")
        if value_delim is None and value_fmt == src.value_format.name:
            value_delim = src.value_format.prop("delimiter")
        key_format = an._format_info(key_fmt, key_delim, an._key_features(key_fmt, len(key_cols)))
        value_format = an._format_info(value_fmt, value_delim,
                                       an._value_features(props, value_fmt, len(value_cols)))
        try:
            validate_format(key_format, tuple(key_cols), True)
        except StatementError as e:
            if e.message.startswith("Map keys") or key_fmt == "DELIMITED":
                raise
            cols = ", ".join(f"`{c.name}` {c.type} KEY" for c in key_cols)
            feats = ", ".join(sorted(key_format.features))
            raise _err(f"Key format does not support schema.\nformat: {key_fmt}\nschema: "
                       f"Persistence{{columns=[{cols}], features=[{feats}]}}\nreason: {e.message}",
                       node) from None
        validate_format(value_format, tuple(value_cols), False)
        topic = _prop_str(props, "KAFKA_TOPIC")
        if topic is None:
            topic = an.properties.get("ksql.output.topic.name.prefix", "") + name
        partitions = _prop_int(props, "PARTITIONS")
        replicas = _prop_int(props, "REPLICAS")
        ts_col, ts_fmt = an._timestamp(props, schema, node)
        self.sink_schema = schema
        self.sink_timestamp = (ts_col, ts_fmt)
        # A windowed source keeps its windowed key in the sink (no PARTITION BY is allowed).
        return DataSource(name=name, source_type=SourceType(kind), schema=schema, topic=topic,
                          key_format=key_format, value_format=value_format,
                          timestamp_column=ts_col, timestamp_format=ts_fmt,
                          partitions=partitions, replicas=replicas, window=window)

    # ------------------------------------------------------------------ code
    def build(self, query_id: str, sink: DataSource, sql: str) -> QueryPlan:
        steps: list[Step] = []
        ns = self.ns
        if self.join is not None:
            steps.extend(self.join.steps())
        if self.join is not None and self.agg is None:
            key_idx, value_idx = self.join_columns
            self.items = self.join.items  # type: ignore[assignment]
            self.key_sources, self.value_sources = key_idx, value_idx
            self.partition = self.join.partition
        if self.where is not None:
            fn = build_function("_where", "row", [
                "try:",
                f"    return {self._where_test()}",
                "except Exception as _e:",
                _WHERE_ERROR,
                "    return False"], ns)
            steps.append(FilterStep(fn, self.query.where.to_sql() if self.query.where else ""))
        if self.agg is not None:
            key_idx, value_idx = self.agg_columns
            steps.append(self.agg.build(sink.schema if sink.name == self.sink_name
                                        else self.sink_schema, key_idx, value_idx))
            return self._query_plan(query_id, sink, steps, sql)
        if self.table_functions:
            lines_tf: list[str] = []
            names_tf = []
            for j, (node, args, impl, _) in enumerate(self.table_functions):
                fn_name = ns.const(impl, "tf")
                call = f"{fn_name}({', '.join(a.code for a in args)})"
                lines_tf += guarded(call, f"_l{j}", node.to_sql())
                lines_tf.append(f"_l{j} = _l{j} or []")
                names_tf.append(f"_l{j}")
            lines_tf.append(f"_n = max({', '.join('len(' + n + ')' for n in names_tf)}, 0)")
            cells = ", ".join(f"({n}[_i] if _i < len({n}) else None)" for n in names_tf)
            lines_tf.append(f"return [row + ({cells},) for _i in range(_n)]")
            steps.append(FlatMapStep(build_function("_flat_map", "row", lines_tf, ns),
                                     ", ".join(n.to_sql() for n, _, _, _ in self.table_functions)))
        key_lines: list[str] = ["key = None"]
        if self.partition is not None:
            lines: list[str] = []
            names = []
            for i, (e, typed, _) in enumerate(self.partition):
                lines += guarded(typed.code, f"_k{i}", e.to_sql())
                names.append(f"_k{i}")
            tup = "(" + "".join(n + ", " for n in names) + ")"
            key_lines = lines + [f"key = {tup}"]
            key_fn = build_function("_partition_by", "row", lines + [f"return {tup}"], ns)
            key_columns = tuple(Column(n, t.type, Namespace.KEY) for _, t, n in self.partition)
            steps.append(SelectKeyStep(key_fn, key_columns,
                                       ", ".join(e.to_sql() for e, _, _ in self.partition)))
        lines = []
        outs: list[str] = []
        order = self.key_sources + self.value_sources
        for pos, j in enumerate(order):
            it = self.items[j]
            var = f"_c{pos}"
            if it.key_index is not None and self.partition is not None:
                lines.append(f"{var} = key[{it.key_index}] if key is not None else None")
            else:
                label = it.expr.to_sql() if it.expr is not None else it.name
                lines += guarded(it.typed.code, var, label)
            outs.append(var)
        ts_col, ts_fmt = self.sink_timestamp
        if ts_col is not None:
            idx = [c.name for c in self.sink_schema.columns].index(ts_col)
            ts_type = self.sink_schema.columns[idx].type
            if ts_type.base == "STRING":
                fmt_fn = ns.const(_timestamp_parser(ts_fmt or ""), "tsp")
                lines += guarded(f"None if _c{idx} is None else {fmt_fn}(_c{idx})", "_ts",
                                 "TIMESTAMP")
            else:
                lines.append(f"_ts = _c{idx}")
        else:
            lines.append(f"_ts = row[{self.rowtime_index}]")
        out_tuple = "(" + "".join(o + ", " for o in outs) + "_ts,)"
        project = build_function("_project", "row, key", lines + [f"return {out_tuple}"], ns)
        steps.append(ProjectStep(project, self.sink_schema,
                                 ", ".join(s.to_sql() for s in self.query.select)))
        fused = None
        if not self.table_functions:
            # The whole stateless pipeline as one function: row -> (key, out) or None.
            where_lines: list[str] = []
            if self.where is not None:
                where_lines = ["try:", f"    _ok = {self._where_test()}", "except Exception as _e:",
                               _WHERE_ERROR, "    return None", "if not _ok:", "    return None"]
            fused = build_function("_fused", "row", where_lines + key_lines + lines
                                   + [f"return key, {out_tuple}"], ns)
        plan = self._query_plan(query_id, sink, steps, sql)
        plan.fused = fused if self.join is None else None
        return plan

    def _where_test(self) -> str:
        """WHERE as one condition: each top-level conjunct must be True (the 3-valued AND)."""
        return " and ".join(f"({c.code}) is True" for c in self.where_conjuncts)

    def _query_plan(self, query_id: str, sink: DataSource, steps: list[Step],
                    sql: str) -> QueryPlan:
        sources = [s.source for s in self.join.sides] if self.join is not None else [self.source]
        plan = QueryPlan(query_id, sources, steps,
                         SinkDescriptor(sink, sink.partitions or self.source.partitions,
                                        sink.replicas), sql, self.ns.values)
        plan.source_timestamp = self._source_timestamp()
        return plan

    def _source_timestamp(self) -> Any:
        src = self.source
        if src.timestamp_column is None:
            return None
        idx = src.schema.index(src.timestamp_column)
        t = src.schema.columns[idx].type
        if t.base == "STRING":
            parser = _timestamp_parser(src.timestamp_format or "")

            def extract(row: tuple[Any, ...]) -> int | None:
                v = row[idx]
                return None if v is None else parser(v)
            return extract

        def extract_int(row: tuple[Any, ...]) -> int | None:
            v = row[idx]
            return None if v is None else int(v)
        return extract_int


_WHERE_ERROR = "    on_error(_KsqlRuntimeError('Error computing WHERE: ' + str(_e)))"


def _timestamp_parser(fmt: str) -> Any:
    from hayase.sql.functions.datetime_fns import make_timestamp_parser

    return make_timestamp_parser(fmt)


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


def _qualified(e: ast.Expression, source: str) -> str:
    """ksqlDB prints column references qualified with their source in these messages."""
    if isinstance(e, ast.ColumnRef):
        return f"{ast.ident(e.source or source)}.{ast.ident(e.name)}"
    return e.to_sql()


def _conjuncts(e: ast.Expression) -> list[ast.Expression]:
    if isinstance(e, ast.BinaryOp) and e.op == "AND":
        return _conjuncts(e.left) + _conjuncts(e.right)
    return [e]


def _refers_to(it: _SelectColumn, name: str, scope: Scope) -> bool:
    e = it.expr
    if not isinstance(e, ast.ColumnRef) or e.name != name:
        return False
    try:
        col = scope.resolve(e)
    except StatementError:
        return False
    return col.name == name


def _same_expression(a: ast.Expression, b: ast.Expression, scope: Scope) -> bool:
    if isinstance(a, ast.ColumnRef) and isinstance(b, ast.ColumnRef):
        try:
            return scope.resolve(a).index == scope.resolve(b).index
        except StatementError:
            return False
    return _normal_sql(a, scope) == _normal_sql(b, scope)


def _normal_sql(e: ast.Expression, scope: Scope) -> str:
    text = e.to_sql()
    for q in scope.sources:
        text = text.replace(f"{q}.", "")
    return text


def _missing_key_message(sink: str, missing: list[str], what: str) -> str:
    names = missing[0] if len(missing) == 1 else ", ".join(missing[:-1]) + " and " + missing[-1]
    return ("Key missing from projection (ie, SELECT). See https://cnfl.io/2LV7ouS.\n"
            f"The query used to build `{sink}` must include the {what} {names} in its projection "
            f"(eg, SELECT {', '.join(missing)}...).")




__all__ = ["Analyzer", "validate_format", "TIMESTAMP"]
