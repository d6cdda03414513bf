"""Durability `always` (fsync before acks=all answers, group commit), restarts and identity."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from tests.broker.wire import long_poll_fetch, roundtrip

from hayase.broker.protocol.frames import decode_response, encode_request
from hayase.testing.brokers import EmbeddedBroker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(configs={"hayase.durability": "always"}) as b:
        yield b


def _count(bs: str, topic: str, partitions: int) -> list[bytes]:
    c = Consumer({"bootstrap.servers": bs, "group.id": "unused", "enable.auto.commit": False,
                  "enable.partition.eof": True})
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        values: list[bytes] = []
        eof: set[int] = set()
        deadline = time.monotonic() + 120
        while len(eof) < partitions:
            # Every partition read to its end: a partial read on a slow machine is no count.
            assert time.monotonic() < deadline, f"end of {sorted(eof)} only, {len(values)} read"
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                raise AssertionError(m.error())
            values.append(m.value())
        return values
    finally:
        c.close()


def test_concurrent_acks_all_producers_are_all_answered(broker: EmbeddedBroker) -> None:
    bs = broker.bootstrap_servers
    topic = f"dur-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bs})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(10)
    failures: list[object] = []

    def produce(n: int) -> None:
        p = Producer({"bootstrap.servers": bs, "acks": "all", "linger.ms": 1,
                      "enable.idempotence": n == 0})
        for i in range(500):
            p.produce(topic, value=f"{n}-{i}".encode(), partition=i % 3,
                      on_delivery=lambda err, _m: failures.append(err) if err else None)
            p.poll(0)
        if p.flush(60):
            failures.append(f"producer {n}: records left unacknowledged")

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    values = _count(bs, topic, 3)
    assert sorted(values) == sorted(f"{n}-{i}".encode() for n in range(4) for i in range(500))


def test_acknowledged_records_survive_sigkill(broker: EmbeddedBroker) -> None:
    bs = broker.bootstrap_servers
    topic = f"kill-{uuid.uuid4().hex[:8]}"
    p = Producer({"bootstrap.servers": bs, "acks": "all"})
    for i in range(200):
        p.produce(topic, value=str(i).encode())
    assert p.flush(30) == 0
    broker.kill()
    broker.start()
    assert _count(bs, topic, 1) == [str(i).encode() for i in range(200)]


def test_restart_keeps_cluster_id_and_never_reuses_producer_ids(broker: EmbeddedBroker) -> None:
    bs = broker.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bs})
    before = admin.describe_cluster().result(10).cluster_id
    pid_before = _init_producer_id(broker.port)
    broker.restart()
    assert "stopped cleanly" in broker.log()
    admin = AdminClient({"bootstrap.servers": bs})
    assert admin.describe_cluster().result(10).cluster_id == before
    assert _init_producer_id(broker.port) > pid_before
    broker.kill()
    broker.start()
    assert _init_producer_id(broker.port) > pid_before


def _init_producer_id(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        reply = roundtrip(s, encode_request(22, 0, 1, "t", {"transactional_id": None,
                                                            "transaction_timeout": 1000}))
    _corr, body = decode_response(22, 0, reply)
    assert body.error_code == 0
    return int(body.producer_id)


def test_sigterm_does_not_wait_for_a_parked_long_poll(broker: EmbeddedBroker) -> None:
    topic = f"park-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(10)
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s:
        s.sendall(long_poll_fetch(topic, 600_000, 1))
        time.sleep(0.5)  # let the broker park the fetch; not a timing assertion
        assert broker.proc is not None
        broker.proc.terminate()
        code = broker.proc.wait(60)
    assert code == 0
    assert broker.log().rstrip().endswith("hayase broker stopped cleanly")
    broker.start()
