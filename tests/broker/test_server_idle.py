"""connections.max.idle.ms: idle sockets are closed, busy ones (a parked long poll) are not."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from tests.broker.wire import long_poll_fetch, roundtrip

from hayase.broker.protocol.frames import decode_response
from hayase.testing.brokers import EmbeddedBroker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(configs={"connections.max.idle.ms": "1000"}) as b:
        yield b


def test_idle_connection_is_closed(broker: EmbeddedBroker) -> None:
    with socket.create_connection(("127.0.0.1", broker.port), timeout=60) as s:
        assert s.recv(10) == b""  # closed by the broker, never answered anything
    assert "connections.max.idle.ms" in broker.log()


def test_parked_long_poll_outlives_the_idle_limit(broker: EmbeddedBroker) -> None:
    topic = f"idle-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(10)
    with socket.create_connection(("127.0.0.1", broker.port), timeout=60) as s:
        corr, body = decode_response(1, 12, roundtrip(s, long_poll_fetch(topic, 4000, 5)))
    assert corr == 5
    assert body.responses[0].partitions[0].error_code == 0
