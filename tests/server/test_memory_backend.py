"""The in-memory backend places records in partitions as Kafka's Java producer does, with
offsets counted per partition, so that ROWPARTITION and ROWOFFSET read as on Kafka."""

from __future__ import annotations

from hayase.client.partitioners import kafka_partition
from hayase.server.backend import MemoryBackend


def test_records_go_to_the_key_hash_partition_with_their_own_offsets() -> None:
    backend = MemoryBackend()
    backend.ensure_topic("t", 4, 1)
    for key in (b"x", b"11", b"x", None):
        backend.produce("t", key, b"{}", 0)
    placed = [(r.key, r.partition, r.offset) for r in backend.scan("t")]
    x, eleven = kafka_partition(b"x", 4), kafka_partition(b"11", 4)
    assert (x, eleven) == (2, 0)  # as the Java client places them (ksqlDB's test corpus)
    # Partition 0: "11" then the record without a key; partition 2: both "x".
    assert placed == [(b"x", 2, 0), (b"11", 0, 0), (b"x", 2, 1), (None, 0, 1)]


def test_deleting_a_topic_restarts_its_offsets() -> None:
    backend = MemoryBackend()
    backend.produce("t", None, b"{}", 0)
    backend.delete_topic("t")
    backend.produce("t", None, b"{}", 0)
    assert [(r.partition, r.offset) for r in backend.scan("t")] == [(0, 0)]
