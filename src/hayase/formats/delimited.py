"""DELIMITED: one line of delimiter-separated fields in column order (Apache Commons CSV's
default dialect: `"` quotes, `""` escapes a quote). An empty field is NULL. Only primitive types.

The delimiter character comes from the format's ``delimiter`` property, resolved by
:func:`hayase.sql.delimiter.parse_delimiter` (``FormatInfo.delimiter``) as the WITH clause is.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from hayase.formats.base import SerdeError, Values
from hayase.formats.decimals import check_time, ensure_fit
from hayase.formats.javafmt import java_double
from hayase.formats.javanum import parse_big_decimal, parse_boolean, parse_double, parse_int
from hayase.sql.plan import Column
from hayase.sql.types import DecimalType, SqlType


def split_line(line: str, delimiter: str) -> list[str | None]:
    """Split the first record of ``line`` (Commons CSV reads a line break outside quotes as the
    end of the record; ksqlDB takes the first record). A field that was quoted is kept even
    when empty ("", where an unquoted empty field is None)."""
    fields: list[str | None] = []
    i, n = 0, len(line)
    while i < n and line[i] in "\r\n":
        i += 1  # Commons CSV skips empty lines (ignoreEmptyLines)
    if i == n:
        raise SerdeError("No fields in record")  # "" is no record at all, not one empty field
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
            # Commons CSV tolerates nothing but the delimiter or a line break after a closing
            # quote.
            if i < n and line[i] not in (delimiter, "\r", "\n"):
                raise SerdeError("invalid char between encapsulated token and delimiter")
            fields.append("".join(buf))
        else:
            end = i
            while end < n and line[end] not in (delimiter, "\r", "\n"):
                end += 1
            token = line[i:end]
            fields.append(token if token != "" else None)
            i = end
        if i >= n or line[i] in "\r\n":
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


def _base64_decode(text: str) -> bytes:
    """java.util.Base64's basic decoder: the standard alphabet, padding optional."""
    if len(text) % 4 == 1:
        raise ValueError("Last unit does not have enough valid bits")
    padding = "" if text.endswith("=") else "=" * (-len(text) % 4)  # given padding must be whole
    return base64.b64decode(text + padding, validate=True)


def _parse(text: str, t: SqlType) -> Any:
    b = t.base
    try:
        if b == "STRING":
            return text
        if b in ("INTEGER", "DATE"):
            return parse_int(text)
        if b == "TIME":
            return check_time(parse_int(text, 64))
        if b in ("BIGINT", "TIMESTAMP"):
            return parse_int(text, 64)
        if b == "DOUBLE":
            return parse_double(text)
        if b == "BOOLEAN":
            return parse_boolean(text)
        if isinstance(t, DecimalType):
            return ensure_fit(parse_big_decimal(text), t)
        if b == "BYTES":
            try:
                return _base64_decode(text)
            except (ValueError, binascii.Error):
                raise SerdeError(f"Value is not a valid Base64 encoded string: {text}") from None
    except (ValueError, binascii.Error) as e:
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
        # new String(bytes, UTF_8): malformed bytes become U+FFFD, as in ksqlDB
        line = data.decode("utf-8", "replace")
        try:
            fields = split_line(line, self.delimiter)
            if len(fields) != len(self.columns):
                raise SerdeError(
                    f"Column count mismatch on deserialization. topic: , expected: "
                    f"{len(self.columns)}, got: {len(fields)}"
                )
            # ksqlDB reads an empty field as NULL whether it was quoted or not, for every type.
            return tuple(
                None if not f else _parse(f, c.type)
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
        # String.getBytes(UTF_8) writes '?' for a lone surrogate instead of failing
        return self.delimiter.join(parts).encode("utf-8", "replace")
