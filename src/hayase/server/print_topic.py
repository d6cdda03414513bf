"""PRINT topic [FROM BEGINNING] [INTERVAL | SAMPLE n] [LIMIT n]: a topic's records as text, as
ksqlDB's /query answers it. Pure code: the statement's parts, and the guesser that narrows the
formats the keys and values can be read as (the formats every record seen so far decodes in;
the first of them shows the record). Without a schema registry, AVRO, PROTOBUF and JSON_SR are
never guessed; windowed keys are shown as their bytes' format.
"""

from __future__ import annotations

import datetime
import json
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

NO_DATA = "¯\\_(ツ)_/¯ - no data processed"

_PRINT = re.compile(r"^\s*PRINT\s+(?P<topic>'(?:[^']|'')*'|`(?:[^`]|``)+`|\"(?:[^\"]|\"\")+\""
                    r"|[^\s;]+)(?P<rest>.*?)\s*;?\s*$", re.IGNORECASE | re.DOTALL)
_CLAUSES = re.compile(r"^(?P<begin>\s+FROM\s+BEGINNING)?"
                      r"(?:\s+(?:INTERVAL|SAMPLE)\s+(?P<interval>\d+))?"
                      r"(?:\s+LIMIT\s+(?P<limit>\d+))?$", re.IGNORECASE)


@dataclass(frozen=True)
class PrintTopic:
    topic: str
    from_beginning: bool = False
    interval: int = 1  # every n-th record is shown
    limit: int | None = None


class PrintSyntaxError(ValueError):
    pass


def is_print(sql: str) -> bool:
    return re.match(r"^\s*PRINT\b", sql, re.IGNORECASE) is not None


def parse_print(sql: str) -> PrintTopic:
    """The PRINT statement's parts; PrintSyntaxError for a malformed one."""
    m = _PRINT.match(sql)
    if m is None:
        raise PrintSyntaxError("Syntax Error\nPRINT needs a topic name")
    topic = m.group("topic")
    if topic[0] in "'`\"" and topic[-1] == topic[0] and len(topic) > 1:
        q = topic[0]
        topic = topic[1:-1].replace(q + q, q)
    clauses = _CLAUSES.match(m.group("rest"))
    if clauses is None:
        raise PrintSyntaxError(f"Syntax Error\nmismatched input '{m.group('rest').strip()}' in "
                               "PRINT: expecting [FROM BEGINNING] [INTERVAL n] [LIMIT n]")
    interval = int(clauses.group("interval") or 1)
    limit = clauses.group("limit")
    return PrintTopic(topic, clauses.group("begin") is not None, max(interval, 1),
                      int(limit) if limit is not None else None)


def _json(data: bytes) -> str:
    text = data.decode("utf-8")
    json.loads(text)
    return text


def _string(data: bytes) -> str:
    return data.decode("utf-8")


def _fixed(fmt: str, size: int) -> Callable[[bytes], str]:
    def read(data: bytes) -> str:
        if len(data) != size:
            raise ValueError(f"{len(data)} bytes, not {size}")
        return str(struct.unpack(fmt, data)[0])
    return read


def _double(data: bytes) -> str:
    if len(data) != 8:
        raise ValueError(f"{len(data)} bytes, not 8")
    return repr(struct.unpack(">d", data)[0]).replace("inf", "Infinity").replace("nan", "NaN")


# In the order a record is shown by the first that reads it (ksqlDB's, less the registry ones).
_FORMATS: list[tuple[str, Callable[[bytes], str]]] = [
    ("JSON", _json),
    ("KAFKA_INT", _fixed(">i", 4)),
    ("KAFKA_BIGINT", _fixed(">q", 8)),
    ("KAFKA_DOUBLE", _double),
    ("KAFKA_STRING", _string),
]


class FormatGuesser:
    """The formats every non-empty key (or value) seen so far reads as."""

    def __init__(self) -> None:
        self.candidates = list(_FORMATS)
        self.seen = False

    def possible(self) -> str:
        if not self.seen:
            return NO_DATA
        return " or ".join(name for name, _ in self.candidates) or "UNRECOGNISED_BYTES"

    def format(self, data: bytes | None) -> str:
        if data is None:
            return "<null>"
        self.seen = True
        first: str | None = None
        kept = []
        for name, read in self.candidates:
            try:
                if not data:
                    raise ValueError("empty")
                shown = read(data)
            except (ValueError, UnicodeDecodeError, struct.error):
                continue
            kept.append((name, read))
            if first is None:
                first = shown
        self.candidates = kept
        return first if first is not None else _bytes_text(data)


def _bytes_text(data: bytes) -> str:
    return "".join(chr(b) if 32 <= b < 127 else f"\\x{b:02X}" for b in data)


def rowtime(timestamp: int | None) -> str:
    if timestamp is None or timestamp < 0:
        return "N/A"
    t = datetime.datetime.fromtimestamp(timestamp / 1000, tz=datetime.UTC)
    return t.strftime("%Y/%m/%d %H:%M:%S.") + f"{timestamp % 1000:03d} Z"


class Printer:
    """Text lines for a PRINT's records: the formats' lines before the first record, then one
    line per shown record (every ``interval``-th), up to ``limit`` records."""

    def __init__(self, stmt: PrintTopic) -> None:
        self.stmt = stmt
        self.keys = FormatGuesser()
        self.values = FormatGuesser()
        self.seen = 0
        self.shown = 0
        self.headed = False

    @property
    def done(self) -> bool:
        return self.stmt.limit is not None and self.shown >= self.stmt.limit

    def lines(self, key: bytes | None, value: bytes | None, timestamp: int | None,
              partition: int) -> list[str]:
        if self.done:
            return []
        self.seen += 1
        if (self.seen - 1) % self.stmt.interval != 0:
            # Not shown, but it still narrows the formats (as ksqlDB's formatter sees it).
            self.keys.format(key)
            self.values.format(value)
            return []
        line = (f"rowtime: {rowtime(timestamp)}, key: {self.keys.format(key)}, "
                f"value: {self.values.format(value)}, partition: {partition}")
        out = []
        if not self.headed:
            self.headed = True
            out += [f"Key format: {self.keys.possible()}",
                    f"Value format: {self.values.possible()}"]
        self.shown += 1
        return out + [line]
