"""The hayase broker with real clients: confluent-kafka (librdkafka), kafka-python, aiokafka,
kcat, and raw sockets for the protocol edge cases. One broker for the whole module."""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic
from tests.broker.wire import read_frame, roundtrip

from hayase.broker.protocol.frames import decode_response, encode_request
from hayase.testing.brokers import EmbeddedBroker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(configs={"num.partitions": "1"}) as b:
        yield b


@pytest.fixture
def topic() -> str:
    return f"srv-{uuid.uuid4().hex[:10]}"


def _create(bs: str, name: str, partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bs})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(10)


def _consume(bs: str, tps: list[TopicPartition], count: int, timeout: float = 30.0) -> list:
    c = Consumer({"bootstrap.servers": bs, "group.id": "unused", "enable.auto.commit": False,
                  "enable.partition.eof": False})
    try:
        c.assign(tps)
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                raise KafkaException(m.error())
            out.append(m)
        return out
    finally:
        c.close()


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_confluent_produce_and_consume_by_assign(broker: EmbeddedBroker, topic: str,
                                                 acks: str) -> None:
    bs = broker.bootstrap_servers
    _create(bs, topic, 3)
    p = Producer({"bootstrap.servers": bs, "acks": acks, "linger.ms": 5})
    for i in range(300):
        p.produce(topic, key=f"k{i}", value=f"v{i}", partition=i % 3,
                  headers=[("h", b"x")] if i == 0 else None)
    assert p.flush(30) == 0
    msgs = _consume(bs, [TopicPartition(topic, p, 0) for p in range(3)], 300)
    assert sorted(m.value() for m in msgs) == sorted(f"v{i}".encode() for i in range(300))
    for part in range(3):
        offsets = [m.offset() for m in msgs if m.partition() == part]
        assert offsets == list(range(100))
    first = next(m for m in msgs if m.value() == b"v0")
    assert first.headers() == [("h", b"x")]


def test_idempotent_producer_delivers_each_record_once(broker: EmbeddedBroker, topic: str) -> None:
    bs = broker.bootstrap_servers
    _create(bs, topic, 2)
    p = Producer({"bootstrap.servers": bs, "enable.idempotence": True, "linger.ms": 2})
    errors: list[KafkaError] = []

    def report(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            errors.append(err)

    for i in range(2000):
        p.produce(topic, value=str(i).encode(), partition=i % 2, on_delivery=report)
    assert p.flush(30) == 0
    assert errors == []
    msgs = _consume(bs, [TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)], 2000)
    assert sorted(int(m.value()) for m in msgs) == list(range(2000))


def test_null_key_and_null_value_round_trip(broker: EmbeddedBroker, topic: str) -> None:
    bs = broker.bootstrap_servers
    p = Producer({"bootstrap.servers": bs})
    p.produce(topic, key=None, value=b"a")
    p.produce(topic, key=b"k", value=None)
    assert p.flush(30) == 0
    msgs = _consume(bs, [TopicPartition(topic, 0, 0)], 2)
    assert [(m.key(), m.value()) for m in msgs] == [(None, b"a"), (b"k", None)]


def test_long_poll_fetch_is_woken_by_an_append(broker: EmbeddedBroker, topic: str) -> None:
    bs = broker.bootstrap_servers
    _create(bs, topic)
    c = Consumer({"bootstrap.servers": bs, "group.id": "unused", "fetch.wait.max.ms": 5000,
                  "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        assert c.poll(0.5) is None  # the fetch is now parked in the broker
        p = Producer({"bootstrap.servers": bs})
        p.produce(topic, value=b"late")
        assert p.flush(10) == 0
        m = None
        deadline = time.monotonic() + 20
        while m is None and time.monotonic() < deadline:
            m = c.poll(0.5)
        assert m is not None and m.value() == b"late"
    finally:
        c.close()


def test_offsets_for_times(broker: EmbeddedBroker, topic: str) -> None:
    bs = broker.bootstrap_servers
    p = Producer({"bootstrap.servers": bs})
    base = 1_700_000_000_000
    for i in range(10):
        p.produce(topic, value=b"x", timestamp=base + i * 1000)
        p.flush(10)  # one batch per record, so the time index sees each
    c = Consumer({"bootstrap.servers": bs, "group.id": "unused"})
    try:
        found = c.offsets_for_times([TopicPartition(topic, 0, base + 4500)], timeout=10)
        assert found[0].offset == 5
        after = c.offsets_for_times([TopicPartition(topic, 0, base + 60_000)], timeout=10)
        assert after[0].offset == -1  # no record at or after that time
        low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        assert (low, high) == (0, 10)
    finally:
        c.close()


def test_admin_topics_partitions_and_configs(broker: EmbeddedBroker, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    new = NewTopic(topic, 2, 1, config={"retention.ms": "123456", "cleanup.policy": "delete"})
    admin.create_topics([new])[topic].result(10)
    with pytest.raises(KafkaException) as dup:
        admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(10)
    assert dup.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
    with pytest.raises(KafkaException) as rf:
        admin.create_topics([NewTopic(topic + "-rf", 1, 3)])[topic + "-rf"].result(10)
    assert rf.value.args[0].code() == KafkaError.INVALID_REPLICATION_FACTOR

    admin.create_partitions([NewPartitions(topic, 4)])[topic].result(10)
    assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 4
    with pytest.raises(KafkaException) as fewer:
        admin.create_partitions([NewPartitions(topic, 3)])[topic].result(10)
    assert fewer.value.args[0].code() == KafkaError.INVALID_PARTITIONS

    res = ConfigResource("topic", topic)
    configs = admin.describe_configs([res])[res].result(10)
    assert configs["retention.ms"].value == "123456"
    assert configs["retention.ms"].source == 1  # DYNAMIC_TOPIC_CONFIG
    assert configs["segment.bytes"].source == 5  # DEFAULT_CONFIG: set nowhere
    b_res = ConfigResource("broker", "0")
    b_configs = admin.describe_configs([b_res])[b_res].result(10)
    assert b_configs["num.partitions"].value == "1"

    admin.delete_topics([topic])[topic].result(10)
    assert topic not in admin.list_topics(timeout=10).topics
    with pytest.raises(KafkaException) as gone:
        admin.delete_topics([topic])[topic].result(10)
    assert gone.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_create_topics_validate_only_creates_nothing(broker: EmbeddedBroker, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic(topic, 1, 1)], validate_only=True)[topic].result(10)
    assert topic not in admin.list_topics(timeout=10).topics
    with pytest.raises(KafkaException) as bad:
        admin.create_topics([NewTopic(topic, 1, 1, config={"no.such.config": "1"})],
                            validate_only=True)[topic].result(10)
    assert bad.value.args[0].code() == KafkaError.INVALID_CONFIG


def test_describe_cluster(broker: EmbeddedBroker) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    cluster = admin.describe_cluster().result(10)
    assert [n.id for n in cluster.nodes] == [0]
    assert cluster.nodes[0].port == broker.port
    assert cluster.cluster_id


def test_kafka_python_round_trip(broker: EmbeddedBroker, topic: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KTP

    bs = broker.bootstrap_servers
    p = KafkaProducer(bootstrap_servers=bs, acks="all")
    for i in range(20):
        p.send(topic, key=b"k", value=b"kp%d" % i)
    p.flush(30)
    p.close()
    # The iteration ends after consumer_timeout_ms without a record, which also covers its
    # first fetch: generous, and left at the 20th record rather than by that timeout.
    c = KafkaConsumer(bootstrap_servers=bs, consumer_timeout_ms=60_000, enable_auto_commit=False)
    try:
        c.assign([KTP(topic, 0)])
        c.seek_to_beginning()
        values = []
        for m in c:
            values.append(m.value)
            if len(values) == 20:
                break
        end = c.end_offsets([KTP(topic, 0)])[KTP(topic, 0)]
    finally:
        c.close()
    assert values == [b"kp%d" % i for i in range(20)] and end == 20


def test_aiokafka_round_trip(broker: EmbeddedBroker, topic: str) -> None:
    import aiokafka

    bs = broker.bootstrap_servers

    async def run() -> list[bytes]:
        p = aiokafka.AIOKafkaProducer(bootstrap_servers=bs, acks="all")
        await p.start()
        try:
            for i in range(20):
                await p.send_and_wait(topic, b"ak%d" % i, key=b"k")
        finally:
            await p.stop()
        c = aiokafka.AIOKafkaConsumer(bootstrap_servers=bs, enable_auto_commit=False)
        await c.start()
        try:
            c.assign([aiokafka.TopicPartition(topic, 0)])
            await c.seek_to_beginning()
            out: list[bytes] = []
            for _ in range(20):
                batch = await c.getmany(timeout_ms=2000)
                out += [m.value for ms in batch.values() for m in ms]
                if len(out) >= 20:
                    break
            return out
        finally:
            await c.stop()

    assert asyncio.run(run()) == [b"ak%d" % i for i in range(20)]


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")
def test_kcat_round_trip(broker: EmbeddedBroker, topic: str) -> None:
    bs = broker.bootstrap_servers
    lines = b"".join(b"k%d:line %d\n" % (i, i) for i in range(50))
    subprocess.run(["kcat", "-b", bs, "-P", "-t", topic, "-K", ":"], input=lines, check=True,
                   timeout=60)
    out = subprocess.run(["kcat", "-b", bs, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
                          "-f", "%k=%s\n"], capture_output=True, check=True, timeout=60).stdout
    assert sorted(out.splitlines()) == sorted(b"k%d=line %d" % (i, i) for i in range(50))


# ---------------------------------------------------------------- raw protocol


def test_api_versions_fallback_over_the_wire(broker: EmbeddedBroker) -> None:
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s:
        frame = bytearray(encode_request(18, 3, 31, "probe", {"client_software_name": "p",
                                                                "client_software_version": "1"}))
        frame[6:8] = struct.pack(">h", 77)  # a version from the future
        reply = roundtrip(s, bytes(frame))
        corr, body = decode_response(18, 0, reply)
        assert corr == 31
        assert body.error_code == 35
        keys = {k.api_key: (k.min_version, k.max_version) for k in body.api_keys}
        assert keys[18] == (0, 3)
        # the connection stays usable: ask again with a version we serve
        corr, body = decode_response(18, 3, roundtrip(s, encode_request(
            18, 3, 32, "probe", {"client_software_name": "p", "client_software_version": "1"})))
        assert (corr, body.error_code) == (32, 0)


def test_pipelined_requests_are_answered_in_order(broker: EmbeddedBroker) -> None:
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s:
        frames = b"".join(encode_request(3 if i % 2 else 18, 1 if i % 2 else 0, 100 + i, "p",
                                         {"topics": []} if i % 2 else {}) for i in range(20))
        s.sendall(frames)
        seen = []
        for _ in range(20):
            seen.append(struct.unpack(">i", read_frame(s)[:4])[0])
        assert seen == list(range(100, 120))


@pytest.mark.parametrize("garbage", [
    struct.pack(">i", -5),
    struct.pack(">i", 12) + b"\xff" * 12,
    struct.pack(">i", 10) + struct.pack(">hhih", 3, 250, 1, -1),  # unsupported Metadata v250
    struct.pack(">i", 14) + struct.pack(">hhih", 0, 9, 1, -1) + b"\x07\x07\x07\x07",
])
def test_malformed_frame_closes_only_its_connection(broker: EmbeddedBroker, topic: str,
                                                    garbage: bytes) -> None:
    bs = broker.bootstrap_servers
    p = Producer({"bootstrap.servers": bs})
    p.produce(topic, value=b"before")
    assert p.flush(10) == 0
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as bad:
        bad.sendall(garbage)
        assert bad.recv(100) == b""  # closed by the broker, no answer
    p.produce(topic, value=b"after")
    assert p.flush(10) == 0
    assert [m.value() for m in _consume(bs, [TopicPartition(topic, 0, 0)], 2)] == [
        b"before", b"after"]
    assert broker.proc is not None and broker.proc.poll() is None
    assert "closing connection from 127.0.0.1" in broker.log()


def test_alter_topic_configs(broker: EmbeddedBroker, topic: str) -> None:
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry

    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic(topic, 1, 1, config={"retention.ms": "1000"})])[topic].result(10)
    res = ConfigResource("topic", topic, incremental_configs=[
        ConfigEntry("segment.bytes", "1048576", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
    admin.incremental_alter_configs([res])[res].result(10)
    described = admin.describe_configs([ConfigResource("topic", topic)])
    configs = next(iter(described.values())).result(10)
    assert configs["segment.bytes"].value == "1048576"
    assert configs["retention.ms"].source == 5  # back to the default
    bad = ConfigResource("topic", topic, incremental_configs=[
        ConfigEntry("no.such.config", "1", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as info:
        admin.incremental_alter_configs([bad])[bad].result(10)
    assert info.value.args[0].code() == KafkaError.INVALID_CONFIG


def test_delete_records_raises_the_log_start_offset(broker: EmbeddedBroker, topic: str) -> None:
    bs = broker.bootstrap_servers
    p = Producer({"bootstrap.servers": bs})
    for i in range(10):
        p.produce(topic, value=str(i).encode())
    assert p.flush(10) == 0
    admin = AdminClient({"bootstrap.servers": bs})
    tp = TopicPartition(topic, 0, 4)
    result = admin.delete_records([tp])[tp].result(10)
    assert result.low_watermark == 4
    msgs = _consume(bs, [TopicPartition(topic, 0, -2)], 6)  # -2: OFFSET_BEGINNING
    assert [m.value() for m in msgs] == [str(i).encode() for i in range(4, 10)]
