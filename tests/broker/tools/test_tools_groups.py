"""kafka-consumer-groups (ConsumerGroupCommand) against both backends: list, describe
(--offsets, --members, --state), reset-offsets in its modes (dry run and execute),
delete-offsets (refused while subscribed) and delete; effects read back with confluent-kafka."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from tests.broker.tools.apache_tools import GROUP_COMMAND, Tool, table

from hayase.testing.brokers import Backend

pytestmark = pytest.mark.integration

# Record timestamps start an hour ago: older than retention.ms (7 days), Apache Kafka's
# retention check would delete the records' segments in the middle of a test.
T0 = (int(time.time()) - 3600) * 1000


def _produce(bootstrap: str, topic: str, per_partition: int) -> None:
    p = Producer({"bootstrap.servers": bootstrap})
    for partition in (0, 1):
        for i in range(per_partition):
            p.produce(topic, f"v{i}".encode(), partition=partition, timestamp=T0 + i * 1000)
    assert p.flush(30) == 0


def _consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "enable.auto.commit": False, "auto.offset.reset": "earliest",
                     "session.timeout.ms": 10000})


def _committed(bootstrap: str, group: str, topic: str) -> list[int]:
    c = _consumer(bootstrap, group)
    try:
        got = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=30)
        return [tp.offset for tp in got]
    finally:
        c.close()


def _commit(bootstrap: str, group: str, topic: str, offsets: list[int]) -> None:
    c = _consumer(bootstrap, group)
    try:
        c.commit(offsets=[TopicPartition(topic, p, o) for p, o in enumerate(offsets)],
                 asynchronous=False)
    finally:
        c.close()


def _reset(tool: Tool, bs: list[str], group: str, target: str, *mode: str) -> dict[str, str]:
    out = tool(GROUP_COMMAND, *bs, "--reset-offsets", "--group", group, "--topic", target,
               *mode).stdout
    return {row["PARTITION"]: row["NEW-OFFSET"] for row in table(out, "GROUP")}


def test_reset_and_delete_offsets(kafka: Backend, kafka_tool: Tool,
                                  new_topic: Callable[[int], str]) -> None:
    bootstrap = kafka.bootstrap_servers
    bs = ["--bootstrap-server", bootstrap]
    topic = new_topic(2)
    group = f"tools-group-{uuid.uuid4().hex[:8]}"
    _produce(bootstrap, topic, 10)
    _commit(bootstrap, group, topic, [7, 4])

    assert group in kafka_tool(GROUP_COMMAND, *bs, "--list").stdout.split()
    states = table(kafka_tool(GROUP_COMMAND, *bs, "--list", "--state").stdout, "GROUP")
    assert {"GROUP": group, "STATE": "Empty"} in states

    described = kafka_tool(GROUP_COMMAND, *bs, "--describe", "--group", group,
                           "--offsets").stdout
    rows = {r["PARTITION"]: r for r in table(described, "GROUP")}
    assert {p: (r["CURRENT-OFFSET"], r["LOG-END-OFFSET"], r["LAG"])
            for p, r in rows.items()} == {"0": ("7", "10", "3"), "1": ("4", "10", "6")}
    state = table(kafka_tool(GROUP_COMMAND, *bs, "--describe", "--group", group,
                             "--state").stdout, "GROUP")
    assert state[0]["STATE"] == "Empty" and state[0]["#MEMBERS"] == "0"

    # --dry-run shows the plan and changes nothing; --execute commits it.
    assert _reset(kafka_tool, bs, group, topic, "--to-earliest", "--dry-run") == {
        "0": "0", "1": "0"}
    assert _committed(bootstrap, group, topic) == [7, 4]
    _reset(kafka_tool, bs, group, topic, "--to-earliest", "--execute")
    assert _committed(bootstrap, group, topic) == [0, 0]
    _reset(kafka_tool, bs, group, f"{topic}:1", "--to-offset", "5", "--execute")
    assert _committed(bootstrap, group, topic) == [0, 5]
    _reset(kafka_tool, bs, group, topic, "--shift-by", "3", "--execute")
    assert _committed(bootstrap, group, topic) == [3, 8]
    _reset(kafka_tool, bs, group, topic, "--shift-by", "-5", "--execute")  # clamped at 0
    assert _committed(bootstrap, group, topic) == [0, 3]
    _reset(kafka_tool, bs, group, topic, "--to-latest", "--execute")
    assert _committed(bootstrap, group, topic) == [10, 10]
    # The first record at or after T0 + 6 s is offset 6 in both partitions.
    when = dt.datetime.fromtimestamp((T0 + 6000) / 1000, dt.UTC)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000+00:00")
    _reset(kafka_tool, bs, group, topic, "--to-datetime", stamp, "--execute")
    assert _committed(bootstrap, group, topic) == [6, 6]
    # Past every record: Kafka falls back to the log end.
    _reset(kafka_tool, bs, group, topic, "--to-datetime", "2099-01-01T00:00:00.000",
           "--execute")
    assert _committed(bootstrap, group, topic) == [10, 10]

    deleted = kafka_tool(GROUP_COMMAND, *bs, "--delete-offsets", "--group", group,
                         "--topic", f"{topic}:0").stdout
    assert "Request succeeded for deleting offsets" in deleted
    assert _committed(bootstrap, group, topic) == [-1001, 10]  # OFFSET_INVALID: none committed
    unknown = kafka_tool(GROUP_COMMAND, *bs, "--delete-offsets", "--group",
                         f"no-such-group-{uuid.uuid4().hex[:6]}", "--topic", topic, check=False)
    assert "GroupIdNotFoundException" in unknown.stdout + unknown.stderr

    out = kafka_tool(GROUP_COMMAND, *bs, "--delete", "--group", group).stdout
    assert f"Deletion of requested consumer groups ('{group}') was successful." in out
    assert group not in kafka_tool(GROUP_COMMAND, *bs, "--list").stdout.split()
    assert _committed(bootstrap, group, topic) == [-1001, -1001]
    gone = kafka_tool(GROUP_COMMAND, *bs, "--describe", "--group", group, check=False)
    assert f"GroupIdNotFoundException: Group {group} not found." in gone.stdout + gone.stderr


def test_describe_active_group(kafka: Backend, kafka_tool: Tool,
                               new_topic: Callable[[int], str]) -> None:
    """A live member: --members shows it with its assignment, the group is Stable, and its
    offsets cannot be reset or deleted while it subscribes to the topic."""
    bootstrap = kafka.bootstrap_servers
    bs = ["--bootstrap-server", bootstrap]
    topic = new_topic(2)
    group = f"tools-live-{uuid.uuid4().hex[:8]}"
    _produce(bootstrap, topic, 3)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "client.id": "tools-member", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        while len(consumer.assignment()) < 2 and time.monotonic() < deadline:
            consumer.poll(0.2)
        assert len(consumer.assignment()) == 2
        consumer.commit(offsets=[TopicPartition(topic, 0, 2), TopicPartition(topic, 1, 1)],
                        asynchronous=False)

        members = table(kafka_tool(GROUP_COMMAND, *bs, "--describe", "--group", group,
                                   "--members", "--verbose").stdout, "GROUP")
        assert len(members) == 1
        assert members[0]["CLIENT-ID"] == "tools-member"
        assert members[0]["#PARTITIONS"] == "2"
        assert members[0]["CURRENT-ASSIGNMENT"] == f"{topic}:0,1"
        state = table(kafka_tool(GROUP_COMMAND, *bs, "--describe", "--group", group,
                                 "--state").stdout, "GROUP")
        assert state[0]["STATE"] == "Stable" and state[0]["#MEMBERS"] == "1"
        assert state[0]["ASSIGNMENT-STRATEGY"] == "range"
        offsets = table(kafka_tool(GROUP_COMMAND, *bs, "--describe", "--group", group).stdout,
                        "GROUP")
        assert {(r["PARTITION"], r["CURRENT-OFFSET"], r["CLIENT-ID"]) for r in offsets} == {
            ("0", "2", "tools-member"), ("1", "1", "tools-member")}

        reset = kafka_tool(GROUP_COMMAND, *bs, "--reset-offsets", "--group", group,
                           "--topic", topic, "--to-earliest", "--execute", check=False)
        assert "can only be reset if the group" in reset.stdout + reset.stderr
        refused = kafka_tool(GROUP_COMMAND, *bs, "--delete-offsets", "--group", group,
                             "--topic", topic, check=False)
        assert "GroupSubscribedToTopicException" in refused.stdout
        busy = kafka_tool(GROUP_COMMAND, *bs, "--delete", "--group", group, check=False)
        assert "GroupNotEmptyException" in busy.stdout + busy.stderr
        got = consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], 30)
        assert [tp.offset for tp in got] == [2, 1]
    finally:
        consumer.close()
