"""The WITH clause: known properties and formats, typed property values, and the schema checks
each serialization format makes (with ksqlDB's messages)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from hayase.sql import ast
from hayase.sql.delimiter import parse_delimiter
from hayase.sql.errors import StatementError
from hayase.sql.errors import statement_error as _err
from hayase.sql.plan import Column, FormatInfo, Namespace
from hayase.sql.types import ArrayType, MapType, SqlType, StructType

KNOWN_FORMATS = {"JSON", "DELIMITED", "KAFKA", "NONE", "AVRO", "PROTOBUF", "PROTOBUF_NOSR",
                 "JSON_SR"}
WRAPPING_FORMATS = {"JSON", "AVRO", "PROTOBUF", "PROTOBUF_NOSR", "JSON_SR"}
KNOWN_PROPERTIES = {
    "KAFKA_TOPIC", "KEY_FORMAT", "VALUE_FORMAT", "FORMAT", "PARTITIONS", "REPLICAS", "TIMESTAMP",
    "TIMESTAMP_FORMAT", "WRAP_SINGLE_VALUE", "KEY_DELIMITER", "VALUE_DELIMITER", "KEY_SCHEMA_ID",
    "VALUE_SCHEMA_ID", "KEY_SCHEMA_FULL_NAME", "VALUE_SCHEMA_FULL_NAME", "VALUE_AVRO_SCHEMA_FULL_NAME",
    "WINDOW_TYPE", "WINDOW_SIZE", "RETENTION_MS", "SOURCE_CONNECTOR", "CLEANUP_POLICY",
    "KEY_PROTOBUF_NULLABLE_REPRESENTATION", "VALUE_PROTOBUF_NULLABLE_REPRESENTATION",
}


def prop_str(props: dict[str, ast.Literal], name: str) -> str | None:
    lit = props.get(name)
    if lit is None or lit.value is None:
        return None
    if isinstance(lit.value, bool):
        return "true" if lit.value else "false"
    return str(lit.value)


def prop_int(props: dict[str, ast.Literal], name: str) -> int | None:
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


def prop_bool(props: dict[str, ast.Literal], name: str) -> bool | None:
    lit = props.get(name)
    if lit is None:
        return None
    if isinstance(lit.value, bool):
        return lit.value
    text = str(lit.value).lower()
    if text in ("true", "false"):
        return text == "true"
    raise _err(f"Property {name} must be a boolean: {lit.value}", lit)


def delimiter(props: dict[str, ast.Literal], name: str) -> str | None:
    """KEY_DELIMITER / VALUE_DELIMITER as written, once ksqlDB's rules accept it (the serde
    resolves the same text with the same :func:`parse_delimiter`)."""
    raw = prop_str(props, name)
    if raw is None:
        return None
    try:
        parse_delimiter(raw)
    except ValueError as e:
        raise StatementError(
            f"Failed to prepare statement: Configuration {name} is invalid: {e}") from None
    return raw


def identifier_value(text: str) -> str:
    """A column name given as a property string: back-quoted is exact, otherwise upper-cased."""
    text = text.strip()
    if len(text) >= 2 and text[0] == "`" and text[-1] == "`":
        return text[1:-1].replace("``", "`")
    return text.upper()


def contains_map(t: SqlType | None) -> bool:
    if t is None:
        return False
    if isinstance(t, MapType):
        return True
    if isinstance(t, ArrayType):
        return contains_map(t.element)
    if isinstance(t, StructType):
        return any(contains_map(ft) for _, ft in t.fields)
    return False


def columns_text(cols: Iterable[Column]) -> str:
    """Columns as ksqlDB lists them in messages: `` `NAME` TYPE[ KEY], ...``."""
    return ", ".join(f"`{c.name}` {c.type}" + (" KEY" if c.namespace is Namespace.KEY else "")
                     for c in cols)


def _format_columns(cols: tuple[Column, ...] | list[Column]) -> str:
    return "[" + columns_text(cols) + "]"


def validate_format(fmt: FormatInfo, cols: tuple[Column, ...], is_key: bool) -> None:
    """Refuse schemas the format cannot carry, with ksqlDB's messages."""
    name = fmt.name
    if is_key:
        for c in cols:
            if contains_map(c.type):
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
    refuse_delimiter(name, fmt.prop("delimiter"))


def refuse_delimiter(format_name: str, delimiter: str | None) -> None:
    """Only DELIMITED takes a delimiter."""
    if delimiter is not None and format_name != "DELIMITED":
        raise StatementError(f"{format_name} does not support the following configs: "
                             "[delimiter]")


def _bad_json_map(t: SqlType | None) -> bool:
    if isinstance(t, MapType):
        return (t.key is not None and t.key.base != "STRING") or _bad_json_map(t.value)
    if isinstance(t, ArrayType):
        return _bad_json_map(t.element)
    if isinstance(t, StructType):
        return any(_bad_json_map(ft) for _, ft in t.fields)
    return False


def parse_window_size(text: str) -> int:
    m = re.match(r"^\s*(\d+)\s*([A-Za-z]+)\s*$", text)
    if not m:
        raise StatementError(f"Invalid WINDOW_SIZE: {text}")
    unit = ast.TIME_UNITS.get(m.group(2).upper())
    if unit is None:
        raise StatementError(f"Invalid WINDOW_SIZE: {text}")
    return ast.Duration(int(m.group(1)), unit).millis
