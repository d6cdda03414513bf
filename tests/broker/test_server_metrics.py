"""`--metrics-port`: the broker feeds hayase.broker.metrics and serves /metrics on loopback."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from hayase.testing.apache_kafka import free_port
from hayase.testing.brokers import EmbeddedBroker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(metrics_port=free_port()) as b:
        yield b


def test_metrics_count_requests_bytes_and_producers(broker: EmbeddedBroker) -> None:
    p = Producer({"bootstrap.servers": broker.bootstrap_servers, "client.id": "metrics-test"})
    for i in range(10):
        p.produce("metrics-topic", value=b"%d" % i)
    assert p.flush(10) == 0
    url = f"http://127.0.0.1:{broker.metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    assert 'hayase_broker_requests_total{api="produce"}' in text
    assert 'hayase_broker_requests_total{api="metadata"}' in text
    assert 'client_id="metrics-test"' in text
    assert "hayase_broker_request_handler_idle_ratio" in text
    bytes_in = next(line for line in text.splitlines()
                    if line.startswith("hayase_broker_bytes_in_total"))
    assert float(bytes_in.split()[-1]) > 0
