"""Client matrix: confluent-kafka, kafka-python, aiokafka and kcat each produce keyed records to
a 3-partition topic (plus null keys, null values and headers, with each compression codec the
client supports) and read them back by assigning partitions and offsets.

Keys must land on the partition Java's default partitioner picks, murmur2 computed here
independently of hayase's own code."""

from __future__ import annotations

import os

import pytest
from confluent_kafka import TopicPartition
from matrix_clients import CLIENTS, CODECS, Read, Rec

from hayase.client.admin import Admin
from hayase.client.partitioners import murmur2 as hayase_murmur2

PARTITIONS = 3


def murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2 (Java, signed 32-bit result), seed 0x9747b28c."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length % 4
    base = length - tail
    if tail == 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def java_partition(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions  # Utils.toPositive(murmur2(key)) % n


def test_murmur2_matches_java_vectors() -> None:
    # Values from Apache Kafka's UtilsTest.testMurmur2 (Java).
    vectors = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
               b"a-little-bit-longer-string": -1486304829,
               b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
               b"abc": 479470107}
    for data, expected in vectors.items():
        assert murmur2(data) == expected
        assert hayase_murmur2(data) == expected


def _records(client: str, codec: str) -> list[Rec]:
    h1 = (("client", client.encode()), ("codec", codec.encode()))
    keyed = [Rec(f"key-{i}".encode(), f"value-{i}-{codec}".encode(), h1) for i in range(40)]
    keyed += [Rec(f"k{i}".encode(), f"{i}".encode() * 50, h1) for i in range(10)]  # compressible
    return keyed + [
        Rec(None, b"null-key", (("kind", b"null-key"),)),
        Rec(b"null-value-key", None, (("kind", b"tombstone"),)),
    ]


def _create(bootstrap: str, topic: str) -> None:
    Admin({"bootstrap.servers": bootstrap}, 30).create_topic(topic, PARTITIONS,
                                                             wait_for_leaders=True)


def _high_watermarks(bootstrap: str, topic: str) -> list[int]:
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "matrix-watermarks"})
    try:
        return [c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                for p in range(PARTITIONS)]
    finally:
        c.close()


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("client_name", list(CLIENTS))
def test_client_round_trip(kafka, topic_name: str, client_name: str, codec: str) -> None:
    client = CLIENTS[client_name]
    if codec not in client.codecs():
        # kafka-python needs python-snappy, lz4 and zstandard; aiokafka needs cramjam.
        missing = f"{client_name} has no {codec} codec installed here"
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    bootstrap = kafka.bootstrap_servers
    _create(bootstrap, topic_name)
    sent = _records(client_name, codec)
    client.produce(bootstrap, topic_name, sent, codec)

    ends = _high_watermarks(bootstrap, topic_name)
    assert sum(ends) == len(sent)
    reads: list[Read] = []
    for p in range(PARTITIONS):
        got = client.read(bootstrap, topic_name, p, ends[p])
        assert [r.partition for r in got] == [p] * ends[p]
        assert [r.offset for r in got] == list(range(ends[p])), "offsets contiguous from 0"
        reads += got

    # Every record came back once, intact: key, value and headers (null key and value too).
    assert sorted(map(repr, (r.rec for r in reads))) == sorted(map(repr, sent))
    # Keyed records sit where Java's murmur2 partitioner puts them, in produce order.
    for rec in sent:
        if rec.key is None:
            continue
        where = [r.partition for r in reads if r.rec == rec]
        assert where == [java_partition(rec.key, PARTITIONS)], rec.key
    for p in range(PARTITIONS):
        expected = [s for s in sent if s.key is not None and java_partition(s.key, PARTITIONS) == p]
        got = [r.rec for r in reads if r.partition == p and r.rec.key is not None]
        assert got == expected
