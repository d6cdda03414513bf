"""ASSERT [NOT EXISTS] TOPIC name [WITH (PARTITIONS=n, REPLICAS=m)] [TIMEOUT n unit]: ksqlDB's
(0.27+) check that a topic exists as expected, used by migration scripts before they create
sources over it. Pure code: the statement's parts and the check of what the broker reports; the
server retries the check until the timeout (ksql.assert.topic.default.timeout.ms, 1 s)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DEFAULT_TIMEOUT_MS = 1000
_UNITS_MS = {"MILLISECOND": 1, "SECOND": 1000, "MINUTE": 60_000, "HOUR": 3_600_000,
             "DAY": 86_400_000}

_ASSERT = re.compile(
    r"^\s*ASSERT\s+(?P<not>NOT\s+EXISTS\s+)?TOPIC\s+"
    r"(?P<topic>'(?:[^']|'')*'|`(?:[^`]|``)+`|[A-Za-z0-9_.\-]+)"
    r"(?:\s+WITH\s*\((?P<with>[^)]*)\))?"
    r"(?:\s+TIMEOUT\s+(?P<n>\d+)\s+(?P<unit>[A-Za-z]+))?\s*;?\s*$", re.IGNORECASE | re.DOTALL)
_PROPERTY = re.compile(r"^\s*(?P<name>[A-Za-z_][\w.]*|'[^']*')\s*=\s*(?P<value>-?\d+|'[^']*')\s*$")


class AssertionSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class AssertTopic:
    topic: str
    exists: bool = True
    config: dict[str, int | str] = field(default_factory=dict)
    timeout_ms: int | None = None  # None: the server's default


def is_assert_topic(sql: str) -> bool:
    return re.match(r"^\s*ASSERT\s+(NOT\s+EXISTS\s+)?TOPIC\b", sql, re.IGNORECASE) is not None


def parse_assert_topic(sql: str) -> AssertTopic:
    m = _ASSERT.match(sql)
    if m is None:
        raise AssertionSyntaxError("Syntax Error\nexpected ASSERT [NOT EXISTS] TOPIC name "
                                   "[WITH (...)] [TIMEOUT n unit]")
    topic = m.group("topic")
    if topic[0] in "'`":
        topic = topic[1:-1].replace(topic[0] * 2, topic[0])
    config: dict[str, int | str] = {}
    if m.group("with") is not None and m.group("with").strip():
        for part in m.group("with").split(","):
            p = _PROPERTY.match(part)
            if p is None:
                raise AssertionSyntaxError(f"Syntax Error\ninvalid property '{part.strip()}'")
            name = p.group("name").strip("'").upper()
            value = p.group("value")
            config[name] = value.strip("'") if value.startswith("'") else int(value)
    timeout = None
    if m.group("n") is not None:
        unit = m.group("unit").upper().rstrip("S")
        if unit not in _UNITS_MS:
            raise AssertionSyntaxError(f"Syntax Error\nunknown time unit '{m.group('unit')}'")
        timeout = int(m.group("n")) * _UNITS_MS[unit]
    return AssertTopic(topic, m.group("not") is None, config, timeout)


def check_topic(stmt: AssertTopic, partitions: int | None, replicas: int | None) -> str | None:
    """What is wrong with the topic as the broker reports it (``partitions`` None: it does not
    exist), in ksqlDB's words; None when the assertion holds."""
    if not stmt.exists:
        return f"Topic {stmt.topic} exists" if partitions is not None else None
    if partitions is None:
        return f"Topic {stmt.topic} does not exist"
    errors = []
    for name, want in stmt.config.items():
        actual = {"PARTITIONS": partitions, "REPLICAS": replicas}.get(name)
        if name not in ("PARTITIONS", "REPLICAS"):
            errors.append(f"Cannot assert unknown topic property: {name}")
        elif want != actual:
            errors.append(f"Mismatched configuration for topic {stmt.topic}: For config "
                          f"{name.lower()}, expected {want} got {actual}")
    return "\n".join(errors) or None
