"""kafka-log-dirs, kafka-cluster cluster-id and the performance tools (producer-perf-test,
consumer-perf-test) against both backends."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from tests.broker.tools.apache_tools import (
    CLUSTER_TOOL,
    CONSUMER_PERFORMANCE,
    LEADER_ELECTION,
    LOG_DIRS,
    PRODUCER_PERFORMANCE,
    REASSIGN,
    Tool,
    node_id,
    write,
)

from hayase.testing.brokers import Backend

pytestmark = pytest.mark.integration

RECORDS = 5000
RECORD_SIZE = 100


def test_perf_tools_log_dirs_and_cluster_id(kafka: Backend, kafka_tool: Tool,
                                            admin: AdminClient,
                                            new_topic: Callable[[int], str]) -> None:
    bs = ["--bootstrap-server", kafka.bootstrap_servers]
    topic = new_topic(2)

    out = kafka_tool(PRODUCER_PERFORMANCE, "--topic", topic, "--num-records", str(RECORDS),
                     "--record-size", str(RECORD_SIZE), "--throughput", "-1",
                     "--producer-props", f"bootstrap.servers={kafka.bootstrap_servers}",
                     "acks=all").stdout
    assert f"{RECORDS} records sent" in out.splitlines()[-1]
    low_high = [_watermarks(kafka.bootstrap_servers, topic, p) for p in (0, 1)]
    assert sum(high - low for low, high in low_high) == RECORDS

    out = kafka_tool(CONSUMER_PERFORMANCE, *bs, "--topic", topic, "--messages", str(RECORDS),
                     "--timeout", "60000").stdout
    header, values = out.strip().splitlines()[-2:]
    stats = dict(zip([h.strip() for h in header.split(",")],
                     [v.strip() for v in values.split(",")], strict=True))
    assert int(stats["data.consumed.in.nMsg"]) == RECORDS

    out = kafka_tool(LOG_DIRS, *bs, "--describe", "--topic-list", topic).stdout
    report = json.loads(out.strip().splitlines()[-1])
    (broker,) = report["brokers"]
    assert broker["broker"] == node_id(admin)
    (log_dir,) = broker["logDirs"]
    assert log_dir["error"] is None and log_dir["logDir"].startswith("/")
    sizes = {p["partition"]: p["size"] for p in log_dir["partitions"]}
    assert set(sizes) == {f"{topic}-0", f"{topic}-1"}
    assert sum(sizes.values()) > RECORDS * RECORD_SIZE  # records plus batch overhead
    assert all(p["offsetLag"] == 0 and not p["isFuture"] for p in log_dir["partitions"])

    out = kafka_tool(CLUSTER_TOOL, "cluster-id", *bs).stdout
    cluster_id = admin.describe_cluster().result(30).cluster_id
    assert out.strip() == f"Cluster ID: {cluster_id}"


def _watermarks(bootstrap: str, topic: str, partition: int) -> tuple[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "tools-watermarks"})
    try:
        low, high = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
        return int(low), int(high)
    finally:
        c.close()


def test_leader_election_and_reassignment(kafka: Backend, kafka_tool: Tool, admin: AdminClient,
                                          tmp_path: Path,
                                          new_topic: Callable[[int], str]) -> None:
    """A one-replica partition always has its preferred leader, and the only reassignment is
    to the replica it has: the tools say so, as Kafka's do on any healthy cluster."""
    bs = ["--bootstrap-server", kafka.bootstrap_servers]
    topic = new_topic(2)
    out = kafka_tool(LEADER_ELECTION, *bs, "--election-type", "preferred",
                     "--all-topic-partitions").stdout
    assert topic not in out
    out = kafka_tool(LEADER_ELECTION, *bs, "--election-type", "preferred", "--topic", topic,
                     "--partition", "1").stdout
    assert f"Valid replica already elected for partitions {topic}-1" in out

    assert "No partition reassignments found." in kafka_tool(REASSIGN, *bs, "--list").stdout
    node = node_id(admin)
    plan = {"version": 1, "partitions": [{"topic": topic, "partition": p, "replicas": [node],
                                          "log_dirs": ["any"]} for p in (0, 1)]}
    plan_file = write(tmp_path / "plan.json", json.dumps(plan))
    out = kafka_tool(REASSIGN, *bs, "--execute", "--reassignment-json-file", plan_file).stdout
    assert f"Successfully started partition reassignments for {topic}-0,{topic}-1" in out
    out = kafka_tool(REASSIGN, *bs, "--verify", "--reassignment-json-file", plan_file).stdout
    assert f"Reassignment of partition {topic}-0 is completed." in out
    assert f"Reassignment of partition {topic}-1 is completed." in out
    leaders = admin.list_topics(topic, timeout=30).topics[topic].partitions
    assert [leaders[p].replicas for p in (0, 1)] == [[node], [node]]
