"""kafka-topics (TopicCommand) against both backends: create, list, describe, alter
--partitions, the health filters, delete; each checked through a confluent-kafka AdminClient."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource
from tests.broker.tools.apache_tools import TOPIC_COMMAND, Tool

from hayase.testing.brokers import Backend

pytestmark = pytest.mark.integration


def _partitions(admin: AdminClient, topic: str) -> int | None:
    t = admin.list_topics(topic, timeout=30).topics.get(topic)
    if t is None or t.error is not None:
        return None
    return len(t.partitions)


def _expect_partitions(admin: AdminClient, topic: str, count: int) -> None:
    """Apache Kafka's tools return once the controller has committed a change; the broker's
    metadata follows a moment later."""
    deadline = time.monotonic() + 15
    while _partitions(admin, topic) != count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _partitions(admin, topic) == count


def _topic_exists(admin: AdminClient, topic: str) -> bool:
    return topic in admin.list_topics(timeout=30).topics


def test_topic_lifecycle(kafka: Backend, kafka_tool: Tool) -> None:
    bs = ["--bootstrap-server", kafka.bootstrap_servers]
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    topic = f"tools-topic-{uuid.uuid4().hex[:8]}"

    out = kafka_tool(TOPIC_COMMAND, *bs, "--create", "--topic", topic, "--partitions", "3",
                     "--replication-factor", "1", "--config", "retention.ms=123456").stdout
    assert f"Created topic {topic}." in out
    _expect_partitions(admin, topic, 3)
    res = ConfigResource("topic", topic)
    configs = admin.describe_configs([res])[res].result(30)
    assert configs["retention.ms"].value == "123456"

    # Creating it again fails with Kafka's message and a non-zero exit.
    again = kafka_tool(TOPIC_COMMAND, *bs, "--create", "--topic", topic, "--partitions", "1",
                       check=False)
    assert again.returncode != 0
    assert "already exists" in again.stdout + again.stderr

    assert topic in kafka_tool(TOPIC_COMMAND, *bs, "--list").stdout.split()
    internal_free = kafka_tool(TOPIC_COMMAND, *bs, "--list", "--exclude-internal").stdout.split()
    assert topic in internal_free
    assert not any(name.startswith("__") for name in internal_free)

    described = kafka_tool(TOPIC_COMMAND, *bs, "--describe", "--topic", topic).stdout
    lines = described.strip().splitlines()
    assert f"Topic: {topic}" in lines[0]
    assert "PartitionCount: 3" in lines[0] and "ReplicationFactor: 1" in lines[0]
    assert "retention.ms=123456" in lines[0]
    partition_lines = [line for line in lines[1:] if "Partition:" in line]
    assert [line.split("Partition:")[1].split()[0] for line in partition_lines] == ["0", "1", "2"]
    leader = admin.list_topics(topic, timeout=30).topics[topic].partitions[0].leader
    assert all(f"Leader: {leader}" in line and f"Isr: {leader}" in line
               for line in partition_lines)
    # Described with DescribeTopicPartitions (KIP-966), not the Metadata fallback, whose
    # unknown eligible leader replicas print as N/A.
    assert "N/A" not in described

    kafka_tool(TOPIC_COMMAND, *bs, "--alter", "--topic", topic, "--partitions", "5")
    _expect_partitions(admin, topic, 5)
    # Two partitions per response: the tool follows the cursor to the fifth.
    paged = kafka_tool(TOPIC_COMMAND, *bs, "--describe", "--topic", topic,
                       "--partition-size-limit-per-response", "2").stdout
    assert "PartitionCount: 5" in paged
    assert [line.split("Partition:")[1].split()[0] for line in paged.splitlines()
            if "Partition:" in line] == ["0", "1", "2", "3", "4"]
    shrink = kafka_tool(TOPIC_COMMAND, *bs, "--alter", "--topic", topic, "--partitions", "2",
                        check=False)
    assert shrink.returncode != 0
    assert _partitions(admin, topic) == 5

    # A healthy single-replica topic has no under-replicated, unavailable or under-min-ISR
    # partitions; with min.insync.replicas=1 every partition is at its minimum ISR.
    for flag in ("--under-replicated-partitions", "--unavailable-partitions",
                 "--under-min-isr-partitions"):
        listed = kafka_tool(TOPIC_COMMAND, *bs, "--describe", "--topic", topic, flag).stdout
        assert topic not in listed, flag
    at_min = kafka_tool(TOPIC_COMMAND, *bs, "--describe", "--topic", topic,
                        "--at-min-isr-partitions").stdout
    assert at_min.count(f"Topic: {topic}") == 5

    overrides = kafka_tool(TOPIC_COMMAND, *bs, "--describe", "--topics-with-overrides").stdout
    assert f"Topic: {topic}" in overrides

    kafka_tool(TOPIC_COMMAND, *bs, "--delete", "--topic", topic)
    deadline = time.monotonic() + 30
    while _topic_exists(admin, topic) and time.monotonic() < deadline:
        time.sleep(0.2)  # Apache Kafka deletes asynchronously
    assert not _topic_exists(admin, topic)
    missing = kafka_tool(TOPIC_COMMAND, *bs, "--describe", "--topic", topic, check=False)
    assert missing.returncode != 0
