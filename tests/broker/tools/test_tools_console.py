"""The console producer and consumer against both backends: keys and headers written by
kafka-console-producer read back by confluent-kafka, and kafka-console-consumer printing them
in a group whose offsets it commits."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition
from tests.broker.tools.apache_tools import CONSOLE_CONSUMER, CONSOLE_PRODUCER, Tool

from hayase.testing.brokers import Backend

pytestmark = pytest.mark.integration

LINES = [
    "source:web,trace:t-1\tuser-1\t{\"clicks\": 1}",
    "source:app\tuser-2\t{\"clicks\": 2}",
    "source:web,trace:t-3\tuser-1\t{\"clicks\": 3}",
]


def _read_all(bootstrap: str, topic: str, count: int) -> list[tuple[str, str, list]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:6]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got: list[tuple[str, str, list]] = []
        for _ in range(200):
            if len(got) >= count:
                break
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                headers = [(k, v.decode()) for k, v in (m.headers() or [])]
                got.append((m.key().decode(), m.value().decode(), headers))
        return got
    finally:
        c.close()


def test_console_round_trip(kafka: Backend, kafka_tool: Tool,
                            new_topic: Callable[[int], str]) -> None:
    bs = ["--bootstrap-server", kafka.bootstrap_servers]
    topic = new_topic(1)
    kafka_tool(CONSOLE_PRODUCER, *bs, "--topic", topic, "--property", "parse.key=true",
               "--property", "parse.headers=true", input="\n".join(LINES) + "\n")
    assert _read_all(kafka.bootstrap_servers, topic, 3) == [
        ("user-1", '{"clicks": 1}', [("source", "web"), ("trace", "t-1")]),
        ("user-2", '{"clicks": 2}', [("source", "app")]),
        ("user-1", '{"clicks": 3}', [("source", "web"), ("trace", "t-3")]),
    ]

    group = f"console-{uuid.uuid4().hex[:8]}"
    done = kafka_tool(CONSOLE_CONSUMER, *bs, "--topic", topic, "--from-beginning",
                      "--group", group, "--max-messages", "3", "--timeout-ms", "30000",
                      "--property", "print.key=true", "--property", "print.headers=true",
                      "--property", "print.partition=true", "--property", "print.offset=true",
                      "--property", "key.separator=|")
    assert done.stdout.splitlines() == [
        'Partition:0|Offset:0|source:web,trace:t-1|user-1|{"clicks": 1}',
        'Partition:0|Offset:1|source:app|user-2|{"clicks": 2}',
        'Partition:0|Offset:2|source:web,trace:t-3|user-1|{"clicks": 3}',
    ]
    assert "Processed a total of 3 messages" in done.stderr
    # The console consumer commits what it consumed when it closes.
    c = Consumer({"bootstrap.servers": kafka.bootstrap_servers, "group.id": group})
    try:
        assert c.committed([TopicPartition(topic, 0)], timeout=30)[0].offset == 3
    finally:
        c.close()

    # Without --from-beginning a new group starts at the log end: nothing within the timeout.
    late = kafka_tool(CONSOLE_CONSUMER, *bs, "--topic", topic, "--group", f"{group}-late",
                      "--timeout-ms", "3000", check=False)
    assert late.stdout.strip() == ""
    assert "Processed a total of 0 messages" in late.stderr
