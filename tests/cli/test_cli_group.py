"""`hayase group list|describe|reset-offsets|delete` and the lag in `hayase topic describe`,
against both backends."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from hayase.testing.apache_kafka import free_port


@pytest.fixture
def group_id() -> str:
    return f"g-{uuid.uuid4().hex[:10]}"


def _produce(kafka, topic: str, counts: dict[int, int], timestamp_ms: int | None = None) -> None:
    p = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    for partition, n in counts.items():
        for i in range(n):
            p.produce(topic, value=f"v{i}".encode(), partition=partition,
                      timestamp=timestamp_ms or 0)
    assert p.flush(30) == 0


def _commit(kafka, group: str, offsets: dict[tuple[str, int], int]) -> None:
    """Commit offsets for `group` without joining it (the group stays Empty)."""
    c = Consumer({"bootstrap.servers": kafka.bootstrap_servers, "group.id": group,
                  "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                 asynchronous=False)
    finally:
        c.close()


@pytest.fixture
def active_member(kafka, group_id: str) -> Iterator[Consumer]:
    """A subscribed member of `group_id` (call .subscribe + poll via _join)."""
    c = Consumer({"bootstrap.servers": kafka.bootstrap_servers, "group.id": group_id,
                  "client.id": "member-one", "enable.auto.commit": False,
                  "session.timeout.ms": 10000, "auto.offset.reset": "earliest"})
    yield c
    c.close()


def _join(c: Consumer, topic: str) -> None:
    c.subscribe([topic])
    deadline = time.monotonic() + 60
    while not c.assignment():
        assert time.monotonic() < deadline, "the consumer never got an assignment"
        c.poll(0.2)


def _rows(out: str, width: int) -> list[list[str]]:
    return [line.split() for line in out.splitlines() if len(line.split()) == width]


def _offsets_table(out: str, topic: str) -> dict[int, list[str]]:
    """partition -> [current offset, log end offset, lag, client id] from `group describe`."""
    section = out.split("Offsets:", 1)[1]
    return {int(r[1]): r[2:] for r in _rows(section, 6) if r[0] == topic}


def test_describe_list_reset_delete(hayase, kafka, topic_name: str, group_id: str) -> None:
    assert hayase("topic", "create", topic_name, "--partitions", "3").exit_code == 0
    _produce(kafka, topic_name, {0: 5, 1: 3, 2: 0})
    _commit(kafka, group_id, {(topic_name, 0): 2, (topic_name, 1): 3})

    r = hayase("group", "list")
    assert r.exit_code == 0, r.output
    states = {row[0]: row[1] for row in _rows(r.stdout, 2)}
    assert states[group_id] == "Empty"

    r = hayase("group", "describe", group_id)
    assert r.exit_code == 0, r.output
    assert f"Group: {group_id}  state: Empty" in r.stdout
    assert "members: 0" in r.stdout
    parts = _offsets_table(r.stdout, topic_name)
    assert parts == {0: ["2", "5", "3", "-"], 1: ["3", "3", "0", "-"]}

    r = hayase("topic", "describe", topic_name)
    assert r.exit_code == 0, r.output
    lag = {(row[0], int(row[1])): row[2:] for row in _rows(r.stdout, 5) if row[0] == group_id}
    assert lag == {(group_id, 0): ["2", "5", "3"], (group_id, 1): ["3", "3", "0"]}

    # --dry-run is the default: the plan is shown, nothing changes
    r = hayase("group", "reset-offsets", group_id, "--topic", topic_name, "--to-earliest")
    assert r.exit_code == 0, r.output
    assert "Dry run" in r.stdout
    plan = {int(row[2]): int(row[3]) for row in _rows(r.stdout, 4) if row[0] == group_id}
    assert plan == {0: 0, 1: 0, 2: 0}
    parts = _offsets_table(hayase("group", "describe", group_id).stdout, topic_name)
    assert parts[0][0] == "2"

    r = hayase("group", "reset-offsets", group_id, "--topic", f"{topic_name}:0,2",
               "--to-latest", "--execute")
    assert r.exit_code == 0, r.output
    assert "Committed 2 offset(s)" in r.stdout
    parts = _offsets_table(hayase("group", "describe", group_id).stdout, topic_name)
    assert parts == {0: ["5", "5", "0", "-"], 1: ["3", "3", "0", "-"], 2: ["0", "0", "0", "-"]}

    r = hayase("group", "reset-offsets", group_id, "--all-topics", "--shift-by", "-2",
               "--execute")
    assert r.exit_code == 0, r.output
    parts = _offsets_table(hayase("group", "describe", group_id).stdout, topic_name)
    assert {p: v[0] for p, v in parts.items()} == {0: "3", 1: "1", 2: "0"}  # clamped at 0

    r = hayase("group", "reset-offsets", group_id, "--topic", f"{topic_name}:0",
               "--to-offset", "99", "--execute")
    assert r.exit_code == 0, r.output
    parts = _offsets_table(hayase("group", "describe", group_id).stdout, topic_name)
    assert parts[0][0] == "5"  # clamped to the log end offset

    r = hayase("group", "delete", group_id)
    assert r.exit_code == 0, r.output
    assert f"Deleted consumer group {group_id}." in r.stdout
    r = hayase("group", "describe", group_id)
    assert r.exit_code == 1
    assert f"consumer group '{group_id}' does not exist" in r.output
    assert group_id not in hayase("group", "list").stdout


def test_reset_to_datetime(hayase, kafka, topic_name: str, group_id: str) -> None:
    assert hayase("topic", "create", topic_name).exit_code == 0
    base = int(datetime(2024, 5, 1, tzinfo=UTC).timestamp() * 1000)
    for minute in range(4):  # offsets 0..3 at 00:00, 00:01, 00:02, 00:03
        _produce(kafka, topic_name, {0: 1}, timestamp_ms=base + minute * 60_000)
    _commit(kafka, group_id, {(topic_name, 0): 0})

    r = hayase("group", "reset-offsets", group_id, "--topic", topic_name,
               "--to-datetime", "2024-05-01T00:01:30.000Z", "--execute")
    assert r.exit_code == 0, r.output
    parts = _offsets_table(hayase("group", "describe", group_id).stdout, topic_name)
    assert parts[0][:3] == ["2", "4", "2"]

    r = hayase("group", "reset-offsets", group_id, "--topic", topic_name,
               "--to-datetime", "2030-01-01T00:00:00+09:00", "--execute")
    assert r.exit_code == 0, r.output  # after the last record: the log end
    assert _offsets_table(hayase("group", "describe", group_id).stdout, topic_name)[0][0] == "4"


def test_active_group_is_described_and_protected(hayase, kafka, topic_name: str,
                                                 group_id: str, active_member) -> None:
    assert hayase("topic", "create", topic_name, "--partitions", "2").exit_code == 0
    _produce(kafka, topic_name, {0: 2, 1: 1})
    _join(active_member, topic_name)

    r = hayase("group", "describe", group_id)
    assert r.exit_code == 0, r.output
    assert f"Group: {group_id}  state: Stable  protocol type: consumer" in r.stdout
    assert "members: 1" in r.stdout
    members = r.stdout.split("Members:", 1)[1].split("Offsets:", 1)[0]
    row = next(line.split() for line in members.splitlines() if "member-one" in line)
    assert row[-1] == f"{topic_name}:0,{topic_name}:1"
    parts = _offsets_table(r.stdout, topic_name)
    assert parts == {0: ["-", "2", "-", "member-one"], 1: ["-", "1", "-", "member-one"]}

    r = hayase("group", "reset-offsets", group_id, "--topic", topic_name, "--to-earliest",
               "--execute")
    assert r.exit_code == 1
    assert "can only be reset while it is inactive" in r.output
    assert "Stable" in r.output

    r = hayase("group", "delete", group_id)
    assert r.exit_code == 1
    assert "is not empty" in r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize("args, message", [
    (("--to-earliest", "--to-latest"), "give exactly one of"),
    (("--to-earliest",), "give --topic (repeatable) or --all-topics"),
    (("--shift-by", "1", "--topic", "{topic}"), "no committed offset"),
    (("--to-offset", "1", "--topic", "{topic}:7"), "has no partition 7"),
    (("--to-earliest", "--topic", "{topic}:x"), "--topic expects TOPIC"),
    (("--to-datetime", "yesterday", "--topic", "{topic}"), "--to-datetime expects"),
])
def test_reset_bad_input_is_a_clear_error(hayase, topic_name: str, group_id: str,
                                          args: tuple[str, ...], message: str) -> None:
    assert hayase("topic", "create", topic_name).exit_code == 0
    r = hayase("group", "reset-offsets", group_id,
               *(a.format(topic=topic_name) for a in args))
    assert r.exit_code == 1
    assert message in r.output
    assert "Traceback" not in r.output


def test_missing_group_is_a_clear_error(hayase, group_id: str) -> None:
    for args in (("describe", group_id), ("delete", group_id)):
        r = hayase("group", *args)
        assert r.exit_code == 1
        assert f"consumer group '{group_id}' does not exist" in r.output


def test_unreachable_broker_is_a_clear_error(hayase) -> None:
    r = hayase("group", "list", "--timeout", "2", "--bootstrap-servers",
               f"127.0.0.1:{free_port()}", bootstrap=False)
    assert r.exit_code == 1
    assert "cannot reach a Kafka broker at 127.0.0.1:" in r.output
