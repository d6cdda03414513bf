"""Event time of a source record: the record timestamp, or the source's TIMESTAMP column
(BIGINT or TIMESTAMP ms, or STRING parsed with TIMESTAMP_FORMAT). An invalid timestamp (NULL,
negative, unparseable) makes the record skipped and logged, or a fatal error when
``ksql.timestamp.throw.on.invalid`` is true (ksqlDB's behaviour)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hayase.sql.plan import DataSource, Row

THROW_ON_INVALID = "ksql.timestamp.throw.on.invalid"


class InvalidTimestamp(Exception):
    pass


def _parser() -> Callable[[str, str], int]:
    try:  # the SQL layer's parser, shared with STRINGTOTIMESTAMP, when it exists
        from hayase.sql.functions import parse_timestamp_ms as sql_parse  # type: ignore

        return lambda text, pattern: int(sql_parse(text, pattern))
    except ImportError:
        from hayase.engine.javatime import parse_timestamp_ms

        return lambda text, pattern: parse_timestamp_ms(text, pattern)


def make_extractor(source: DataSource) -> Callable[[Row, int], int] | None:
    """None when the record timestamp is used as is; else ``fn(row, record_ts) -> ts`` raising
    InvalidTimestamp."""
    column = source.timestamp_column
    if column is None:
        return None
    index = source.schema.index(column)
    base = source.schema.columns[index].type.base
    pattern = source.timestamp_format
    parse = _parser()

    def extract(row: Row, record_ts: int) -> int:
        value: Any = row[index]
        if value is None:
            raise InvalidTimestamp(f"Timestamp column {column} is NULL")
        if base == "STRING":
            if pattern is None:
                raise InvalidTimestamp(f"Timestamp column {column} is a STRING without format")
            try:
                ts = parse(value, pattern)
            except Exception as e:  # any parse failure of user data
                raise InvalidTimestamp(
                    f"Failed to parse timestamp '{value}' with format '{pattern}': {e}") from e
        else:
            ts = int(value)
        if ts < 0:
            raise InvalidTimestamp(f"Timestamp column {column} is negative: {ts}")
        return ts

    return extract


def throw_on_invalid(properties: Mapping[str, Any]) -> bool:
    return str(properties.get(THROW_ON_INVALID, "false")).lower() == "true"
