"""DELIMITED: one line of delimiter-separated fields in column order (Apache Commons CSV's
default dialect: `"` quotes, `""` escapes a quote). An empty field is NULL. Only primitive types.

The delimiter character comes from the format's ``delimiter`` property, resolved by
:func:`hayase.sql.delimiter.parse_delimiter` (``FormatInfo.delimiter``) as the WITH clause is.
"""

from __future__ import annotations

import base64
from decimal import Decimal, InvalidOperation
from typing import Any

from hayase.formats.base import SerdeError, Values
from hayase.formats.decimals import ensure_fit
from hayase.formats.javafmt import java_double
from hayase.formats.javanum import parse_boolean, parse_double, parse_int
from hayase.sql.plan import Column
from hayase.sql.types import DecimalType, SqlType


def split_line(line: str, delimiter: str) -> list[str | None]:
    """Split one record; a field that was quoted is kept even when empty (it is "", not null)."""
    fields: list[str | None] = []
    i, n = 0, len(line)
    if n == 0:
        return [None]
    while True:
        if i < n and line[i] == '"':
            buf: list[str] = []
            i += 1
            while True:
                if i >= n:
                    raise SerdeError("EOF reached before encapsulated token finished")
                c = line[i]
                if c == '"':
                    if i + 1 < n and line[i + 1] == '"':
                        buf.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(c)
                i += 1
            # Commons CSV tolerates nothing but the delimiter after a closing quote.
            if i < n and line[i] != delimiter:
                raise SerdeError("invalid char between encapsulated token and delimiter")
            fields.append("".join(buf))
        else:
            j = line.find(delimiter, i)
            end = n if j < 0 else j
            token = line[i:end]
            if token.endswith("\r\n"):
                token = token[:-2]
            elif token.endswith("\n"):
                token = token[:-1]
            fields.append(token if token != "" else None)
            i = end
        if i >= n:
            break
        i += 1  # the delimiter
        if i >= n:
            fields.append(None)
            break
    return fields


def _needs_quotes(text: str, delimiter: str, first_field: bool) -> bool:
    """Commons CSV QuoteMode.MINIMAL (as ksqlDB's DELIMITED writer uses it)."""
    if text == "":
        return first_field  # an empty first field is quoted so that a line is never empty
    first = text[0]
    if first <= "#":
        return True
    if first_field and not (first.isascii() and first.isalnum()):
        return True
    if any(c in (delimiter, '"', "\r", "\n") for c in text):
        return True
    return text[-1] <= " "


def _format_field(text: str, delimiter: str, first_field: bool) -> str:
    if _needs_quotes(text, delimiter, first_field):
        return '"' + text.replace('"', '""') + '"'
    return text


def _parse(text: str, t: SqlType) -> Any:
    b = t.base
    try:
        if b == "STRING":
            return text
        if b in ("INTEGER", "DATE", "TIME"):
            return parse_int(text)
        if b in ("BIGINT", "TIMESTAMP"):
            return parse_int(text, 64)
        if b == "DOUBLE":
            return parse_double(text)
        if b == "BOOLEAN":
            return parse_boolean(text)
        if isinstance(t, DecimalType):
            return ensure_fit(Decimal(text.strip()), t, text)
        if b == "BYTES":
            return base64.b64decode(text, validate=True)
    except (ValueError, InvalidOperation) as e:
        raise SerdeError(f"Failed to parse {t} value '{text}': {e}") from None
    raise SerdeError(f"The 'DELIMITED' format does not support type '{b}'")


def _render(value: Any, t: SqlType) -> str:
    b = t.base
    if b == "BOOLEAN":
        return "true" if value else "false"
    if b == "DOUBLE":
        return java_double(float(value))
    if b == "DECIMAL":
        return format(value, "f")
    if b == "BYTES":
        return base64.b64encode(value).decode("ascii")
    return str(value)


class DelimitedSerde:
    def __init__(self, columns: tuple[Column, ...], delimiter: str = ",",
                 target: str = "value") -> None:
        self.columns = columns
        self.delimiter = delimiter
        self.target = target

    def deserialize(self, data: bytes | None) -> Values | None:
        if data is None:
            return None
        try:
            line = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SerdeError(f"DELIMITED {self.target} is not UTF-8: {e}", self.target) from None
        try:
            fields = split_line(line, self.delimiter)
            if len(fields) != len(self.columns):
                raise SerdeError(
                    f"Column count mismatch on deserialization. topic: , expected: "
                    f"{len(self.columns)}, got: {len(fields)}"
                )
            return tuple(
                None if f is None else _parse(f, c.type)
                for f, c in zip(fields, self.columns, strict=True)
            )
        except SerdeError as e:
            e.target = self.target
            raise

    def serialize(self, values: Values | None) -> bytes | None:
        if values is None:
            return None
        if len(self.columns) == 1 and values[0] is None:
            return b""
        parts = [
            "" if v is None else _format_field(_render(v, c.type), self.delimiter, i == 0)
            for i, (v, c) in enumerate(zip(values, self.columns, strict=True))
        ]
        return self.delimiter.join(parts).encode("utf-8")
