"""kafka-get-offsets (GetOffsetShell) and kafka-delete-records against both backends."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Producer
from tests.broker.tools.apache_tools import DELETE_RECORDS, GET_OFFSET_SHELL, Tool, write

from hayase.testing.brokers import Backend

pytestmark = pytest.mark.integration

# Record timestamps start an hour ago: older than retention.ms (7 days), Apache Kafka's
# retention check would delete the records' segments in the middle of a test.
T0 = (int(time.time()) - 3600) * 1000
# Partition 0's timestamps, offset by offset: the largest (T0 + 9 s) first appears at offset 2.
TIMESTAMPS = [T0 + 1000, T0 + 5000, T0 + 9000, T0 + 3000, T0 + 9000, T0 + 4000]


def _offsets(tool: Tool, bs: list[str], topic: str, *args: str) -> dict[str, int]:
    out = tool(GET_OFFSET_SHELL, *bs, "--topic", topic, *args).stdout
    found = {}
    for line in out.split():
        name, partition, offset = line.rsplit(":", 2)
        assert name == topic
        found[partition] = int(offset)
    return found


def test_get_offsets_and_delete_records(kafka: Backend, kafka_tool: Tool, tmp_path: Path,
                                        new_topic: Callable[[int], str]) -> None:
    bs = ["--bootstrap-server", kafka.bootstrap_servers]
    topic = new_topic(2)
    p = Producer({"bootstrap.servers": kafka.bootstrap_servers, "linger.ms": 0})
    for i, ts in enumerate(TIMESTAMPS):
        p.produce(topic, f"r{i}".encode(), partition=0, timestamp=ts)
        if i < 3:
            p.flush(30)  # a batch per record first, then one batch of the last three
    p.produce(topic, b"other", partition=1, timestamp=T0)
    assert p.flush(30) == 0

    assert _offsets(kafka_tool, bs, topic) == {"0": 6, "1": 1}  # --time -1 (latest)
    assert _offsets(kafka_tool, bs, topic, "--time", "-1") == {"0": 6, "1": 1}
    assert _offsets(kafka_tool, bs, topic, "--time", "earliest") == {"0": 0, "1": 0}
    assert _offsets(kafka_tool, bs, topic, "--time", "-3") == {"0": 2, "1": 0}  # max timestamp
    # By timestamp: the first record at or after it; partitions with none are left out.
    assert _offsets(kafka_tool, bs, topic, "--time", str(T0 + 3500)) == {"0": 1}
    assert _offsets(kafka_tool, bs, topic, "--time", str(T0 + 60_000)) == {}
    assert _offsets(kafka_tool, bs, topic, "--partitions", "1", "--time", "-2") == {"1": 0}
    # Tiered-storage specs: the earliest local offset is the log start, no tiered offset.
    assert _offsets(kafka_tool, bs, topic, "--time", "-4") == {"0": 0, "1": 0}
    assert _offsets(kafka_tool, bs, topic, "--time", "-5") == {}

    spec = {"version": 1, "partitions": [{"topic": topic, "partition": 0, "offset": 3},
                                         {"topic": topic, "partition": 1, "offset": -1}]}
    out = kafka_tool(DELETE_RECORDS, *bs, "--offset-json-file",
                     write(tmp_path / "delete.json", json.dumps(spec))).stdout
    assert f"partition: {topic}-0\tlow_watermark: 3" in out
    assert f"partition: {topic}-1\tlow_watermark: 1" in out
    assert _offsets(kafka_tool, bs, topic, "--time", "-2") == {"0": 3, "1": 1}
    assert _offsets(kafka_tool, bs, topic, "--time", str(T0)) == {"0": 3}

    beyond = {"version": 1, "partitions": [{"topic": topic, "partition": 0, "offset": 99}]}
    out = kafka_tool(DELETE_RECORDS, *bs, "--offset-json-file",
                     write(tmp_path / "beyond.json", json.dumps(beyond)), check=False)
    assert "OffsetOutOfRangeException" in out.stdout + out.stderr
    assert _offsets(kafka_tool, bs, topic, "--time", "-2") == {"0": 3, "1": 1}
