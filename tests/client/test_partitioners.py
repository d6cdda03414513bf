"""Partitioners: Java-compatible murmur2, and each strategy's placement on a real broker."""

from __future__ import annotations

import random
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from hayase.client.admin import Admin
from hayase.client.partitioners import PartitionedProducer, Partitioner, kafka_partition, murmur2
from hayase.testing.apache_kafka import default_libs

JAVA = """
import org.apache.kafka.common.utils.Utils;
import java.io.*;
import java.util.HexFormat;
public class Murmur {
  public static void main(String[] a) throws Exception {
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
    StringBuilder out = new StringBuilder();
    for (String line; (line = in.readLine()) != null;) {
      byte[] key = HexFormat.of().parseHex(line);
      out.append(Utils.murmur2(key)).append(' ')
         .append(Utils.toPositive(Utils.murmur2(key)) % 12).append('\\n');
    }
    System.out.print(out);
  }
}
"""


def test_known_vectors():
    # Values from Kafka's UtilsTest.testMurmur2.
    assert murmur2(b"21") == -973932308
    assert murmur2(b"foobar") == -790332482
    assert murmur2(b"a-little-bit-long-string") == -985981536
    assert murmur2(b"a-little-bit-longer-string") == -1486304829
    assert murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == -58897971
    assert murmur2(b"abc") == 479470107


def test_same_partition_as_the_java_client(tmp_path: Path):
    jars = list(default_libs().glob("kafka-clients-*.jar"))
    if not jars or shutil.which("java") is None:
        pytest.skip("kafka-clients jar or java missing (run scripts/setup)")
    rnd = random.Random(7)
    keys = [rnd.randbytes(rnd.randrange(0, 40)) for _ in range(2000)]
    keys += [f"user-{i}".encode() for i in range(1000)]
    src = tmp_path / "Murmur.java"
    src.write_text(JAVA)
    out = subprocess.run(
        ["java", "-cp", f"{jars[0].parent}/*", str(src)],
        input="".join(k.hex() + "\n" for k in keys), capture_output=True, text=True, check=True,
    ).stdout.split("\n")
    for key, line in zip(keys, out, strict=False):
        java_hash, java_part = map(int, line.split())
        assert murmur2(key) == java_hash, key
        assert kafka_partition(key, 12) == java_part, key


def test_round_robin_and_producer_key_are_pure():
    rr = Partitioner("round_robin")
    assert [rr.partition(None, 4) for _ in range(8)] == [0, 1, 2, 3, 0, 1, 2, 3]
    pk = Partitioner("producer_key", b"producer-7")
    assert {pk.partition(k, 6) for k in (None, b"a", b"b")} == {kafka_partition(b"producer-7", 6)}
    with pytest.raises(ValueError, match="unknown partitioner"):
        Partitioner("hash")  # type: ignore[arg-type]


def _counts(bootstrap: str, topic: str, partitions: int) -> Counter[int]:
    # Admin.offsets asks again while a leader is still settling: a consumer's one-shot
    # watermark query met NOT_LEADER_FOR_PARTITION from Apache Kafka once under load.
    latest = Admin({"bootstrap.servers": bootstrap}, 30).offsets(topic, list(range(partitions)))
    return Counter({p: hi for p, (_, hi) in latest.items()})


@pytest.mark.parametrize("strategy", ["round_robin", "producer_key", "sticky", "murmur2"])
def test_placement_on_a_broker(kafka, topic_name, strategy):
    # Apache Kafka answers CreateTopics before every partition has a leader in the metadata.
    Admin({"bootstrap.servers": kafka.bootstrap_servers}, 30).create_topic(
        topic_name, 6, wait_for_leaders=True)
    # A long linger: the sticky window (sticky.partitioning.linger.ms = linger.ms) must outlast
    # the burst even on a loaded machine.
    producer = PartitionedProducer(
        {"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 1000}, strategy, b"me")
    keyed = strategy == "murmur2"
    warm: list[int] = []
    if strategy == "sticky":
        # librdkafka leaves a sticky partition whose leader it is not yet connected to, and
        # picks one at random per record meanwhile (on a loaded machine the connection can
        # take longer than the burst): one record acknowledged first, then the burst.
        producer.produce(topic_name, b"w", on_delivery=lambda err, msg: warm.append(
            msg.partition()))
        assert producer.flush(30) == 0 and len(warm) == 1
    for i in range(600):
        producer.produce(topic_name, b"v", key=f"k{i}".encode() if keyed else None)
    assert producer.flush(30) == 0
    counts = _counts(kafka.bootstrap_servers, topic_name, 6)
    counts.subtract(warm)
    assert sum(counts.values()) == 600
    if strategy == "round_robin":
        assert set(counts.values()) == {100}
    elif strategy == "producer_key":
        assert counts[kafka_partition(b"me", 6)] == 600
    elif strategy == "murmur2":
        expected = Counter(kafka_partition(f"k{i}".encode(), 6) for i in range(600))
        assert counts == expected
    else:  # sticky: 600 records sent in one burst fill few partitions, not all six evenly
        assert max(counts.values()) >= 200


def test_hayase_keys_leave_the_librdkafka_config():
    producer = PartitionedProducer(
        {"bootstrap.servers": "127.0.0.1:1", "hayase.partitioner": "round_robin",
         "hayase.producer.key": "mine"}, partitioner="producer_key")
    assert producer.partitioner.strategy == "producer_key"
    assert producer.partitioner.producer_key == b"mine"
    configured = PartitionedProducer({"bootstrap.servers": "127.0.0.1:1",
                                      "hayase.partitioner": "round_robin"})
    assert configured.partitioner.strategy == "round_robin"
