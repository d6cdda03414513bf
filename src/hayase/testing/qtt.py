"""Loading ksqlDB query-validation test (QTT) files and ksql-test-runner files.

The files are data describing ksqlDB's behaviour (see the conformance README, sections 1-3 and
8). This module only parses them into plain objects; running and comparing is elsewhere. The
corpus is read at test time from outside the repository and never copied in.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ABSENT: Any = type("Absent", (), {"__repr__": lambda self: "<absent>"})()


def strip_json_comments(text: str) -> str:
    """Remove `//` and `/* */` comments outside strings (Jackson's ALLOW_COMMENTS)."""
    out: list[str] = []
    i, n, in_string = 0, len(text), False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
            continue
        if c == '"':
            in_string = True
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def load_json(text: str) -> Any:
    """Parse a corpus JSON document: comments allowed, floats as exact decimals."""
    return json.loads(strip_json_comments(text), parse_float=Decimal)


@dataclass(frozen=True)
class WindowSpec:
    start: int
    end: int
    type: str  # "TIME" or "SESSION"


@dataclass(frozen=True)
class RecordSpec:
    """One record of `inputs`/`outputs` (README section 3). `key`/`timestamp` may be ABSENT."""

    topic: str
    key: Any
    value: Any
    timestamp: Any = ABSENT
    window: WindowSpec | None = None
    headers: list[tuple[str, bytes | None]] | None = None

    @property
    def key_or_none(self) -> Any:
        return None if self.key is ABSENT else self.key


@dataclass(frozen=True)
class ExpectedException:
    type: str
    message: str | None = None
    cause: str | None = None
    cause_message: str | None = None

    @property
    def kind(self) -> str:
        """The category hayase matches: "parse", "statement" or "runtime"."""
        if self.type.endswith("ParseFailedException"):
            return "parse"
        if self.type.endswith("StreamsException"):
            return "runtime"
        return "statement"


@dataclass
class TestCase:
    """One runnable test: a test node expanded for one format and one config value."""

    __test__ = False  # not a pytest test class

    file: str
    name: str
    statements: list[str]
    inputs: list[RecordSpec] = field(default_factory=list)
    outputs: list[RecordSpec] = field(default_factory=list)
    expected_exception: ExpectedException | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    topics: list[dict[str, Any]] = field(default_factory=list)
    post: dict[str, Any] | None = None
    format: str | None = None
    enabled: bool = True
    has_inputs: bool = True

    @property
    def full_name(self) -> str:
        return self.name

    @property
    def is_negative(self) -> bool:
        return self.expected_exception is not None


def parse_window(node: Any) -> WindowSpec | None:
    if node is None:
        return None
    kind = str(node.get("type", "")).upper()
    if kind not in ("TIME", "SESSION"):
        raise ValueError(f"window type must be 'time' or 'session', got {node.get('type')!r}")
    return WindowSpec(start=int(node["start"]), end=int(node["end"]), type=kind)


def parse_headers(node: Any) -> list[tuple[str, bytes | None]] | None:
    if node is None:
        return None
    out: list[tuple[str, bytes | None]] = []
    for h in node:
        value = h.get("VALUE", h.get("value"))
        out.append((h.get("KEY", h.get("key")), None if value is None else base64.b64decode(value)))
    return out


def parse_record(node: dict[str, Any], fmt: str | None = None) -> RecordSpec:
    if "topic" not in node:
        raise ValueError(f"record without 'topic': {node}")
    if "value" not in node:
        raise ValueError(f"record without 'value': {node}")
    topic = node["topic"]
    if fmt is not None:
        topic = topic.replace("{FORMAT}", fmt)
    ts = node.get("timestamp", ABSENT)
    return RecordSpec(
        topic=topic,
        key=node.get("key", ABSENT),
        value=node["value"],
        timestamp=ABSENT if ts is ABSENT or ts is None else int(ts),
        window=parse_window(node.get("window")),
        headers=parse_headers(node.get("headers")),
    )


def _substitute(obj: Any, fmt: str) -> Any:
    if isinstance(obj, str):
        return obj.replace("{FORMAT}", fmt)
    if isinstance(obj, list):
        return [_substitute(x, fmt) for x in obj]
    if isinstance(obj, dict):
        return {k: _substitute(v, fmt) for k, v in obj.items()}
    return obj


def expand_node(stem: str, node: dict[str, Any]) -> list[TestCase]:
    """Expand one test node into its cases, one per `format` entry and `config` value."""
    formats: list[str | None] = list(node.get("format") or []) or [None]
    configs: list[str | None] = list(node.get("config") or []) or [None]
    cases: list[TestCase] = []
    for fmt in formats:
        for cfg in configs:
            name = f"{stem} - {node['name']}"
            props = dict(node.get("properties") or {})
            if fmt is not None:
                name += f" - {fmt}"
            if cfg is not None:
                for k, v in list(props.items()):
                    if v == "{CONFIG}":
                        props[k] = cfg
                        name += f" - {k}={cfg}"
            statements = list(node["statements"])
            topics = list(node.get("topics") or [])
            post = node.get("post")
            if fmt is not None:
                statements = _substitute(statements, fmt)
                topics = _substitute(topics, fmt)
                post = _substitute(post, fmt)
            exc = node.get("expectedException")
            cases.append(
                TestCase(
                    file=stem,
                    name=name,
                    statements=statements,
                    inputs=[parse_record(r, fmt) for r in node.get("inputs") or []],
                    outputs=[parse_record(r, fmt) for r in node.get("outputs") or []],
                    expected_exception=None if exc is None else ExpectedException(
                        type=exc.get("type", ""),
                        message=exc.get("message"),
                        cause=exc.get("cause"),
                        cause_message=exc.get("causeMessage"),
                    ),
                    properties=props,
                    topics=topics,
                    post=post,
                    format=fmt,
                    enabled=node.get("enabled", True) is not False,
                    has_inputs=bool(node.get("inputs")),
                )
            )
    return cases


def load_qtt_file(path: Path) -> list[TestCase]:
    doc = load_json(path.read_text(encoding="utf-8"))
    stem = path.stem
    out: list[TestCase] = []
    for node in doc.get("tests", []):
        out.extend(expand_node(stem, node))
    return out


def split_sql(text: str) -> list[str]:
    """Split a SQL file into statements on `;` outside quotes and comments; keeps the `;`."""
    statements: list[str] = []
    buf: list[str] = []
    i, n = 0, len(text)
    quote: str | None = None
    while i < n:
        c = text[i]
        if quote:
            buf.append(c)
            if c == quote:
                if i + 1 < n and text[i + 1] == quote:
                    buf.append(text[i + 1])
                    i += 2
                    continue
                quote = None
            i += 1
            continue
        if c in ("'", '"', "`"):
            quote = c
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        elif c == ";":
            buf.append(c)
            stmt = "".join(buf).strip()
            if stmt != ";":
                statements.append(stmt)
            buf = []
            i += 1
            continue
        buf.append(c)
        i += 1
    rest = "".join(buf).strip()
    if rest:
        statements.append(rest)
    return statements


def _load_file(path: Path) -> Any:
    try:
        return load_json(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ValueError(f"{path}: not valid JSON: {e}") from None


def load_runner_files(
    sql_file: Path, input_file: Path | None, output_file: Path
) -> TestCase:
    """A ksql-test-runner triple (README section 8) as one TestCase."""
    statements = split_sql(sql_file.read_text(encoding="utf-8"))
    inputs: list[RecordSpec] = []
    if input_file is not None:
        doc = _load_file(input_file)
        if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list):
            raise ValueError(f"{input_file}: expected an object with an 'inputs' list")
        inputs = [parse_record(r) for r in doc["inputs"]]
    doc = _load_file(output_file)
    if not isinstance(doc, dict) or not isinstance(doc.get("outputs"), list):
        raise ValueError(f"{output_file}: expected an object with an 'outputs' list")
    if not doc["outputs"]:
        raise ValueError(f"{output_file}: 'outputs' must not be empty")
    outputs = [parse_record(r) for r in doc["outputs"]]
    return TestCase(
        file=sql_file.parent.name,
        name=sql_file.parent.name,
        statements=statements,
        inputs=inputs,
        outputs=outputs,
        has_inputs=bool(inputs),
    )
