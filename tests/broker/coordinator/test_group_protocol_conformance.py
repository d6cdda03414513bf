"""Raw group-protocol requests, byte for byte the same to every backend, and the answers Apache
Kafka 4.1 gives (recorded from it; the `apache` parameter keeps checking that they still hold).
Covers the error codes of the edge cases clients rely on: unknown groups and members,
KIP-394's MEMBER_ID_REQUIRED, generation and protocol checks, commit validation order."""

from __future__ import annotations

import itertools
import socket
import time
import uuid
from typing import Any

import pytest
from tests.broker.wire import roundtrip

from hayase.broker.protocol.frames import decode_response, encode_request
from hayase.testing.brokers import Backend

pytestmark = pytest.mark.integration

SUBSCRIPTION = b"\x00\x00\x00\x00\x00\x01\x00\x01t\x00\x00\x00\x00"


class Connection:
    def __init__(self, bootstrap: str) -> None:
        host, port = bootstrap.split(",")[0].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.ids = itertools.count(1)

    def call(self, api_key: int, version: int, body: dict[str, Any]) -> Any:
        frame = encode_request(api_key, version, next(self.ids), "probe", body)
        return decode_response(api_key, version, roundtrip(self.sock, frame))[1]

    def close(self) -> None:
        self.sock.close()


def join(group: str, member_id: str = "", session: int = 30_000) -> dict[str, Any]:
    # Generous timeouts: a slow, shared machine must not expire the member mid-test.
    return {"group_id": group, "session_timeout": session, "rebalance_timeout": 30_000,
            "member_id": member_id, "group_instance_id": None, "protocol_type": "consumer",
            "protocols": [{"name": "range", "metadata": SUBSCRIPTION}], "reason": None}


def commit(group: str, topic: str, generation: int, member_id: str) -> dict[str, Any]:
    return {"group_id": group, "generation_id_or_member_epoch": generation,
            "member_id": member_id, "group_instance_id": None,
            "topics": [{"name": topic, "partitions": [
                {"partition_index": 0, "committed_offset": 1, "committed_leader_epoch": -1,
                 "committed_metadata": ""}]}]}


def fresh_group(conn: Connection, prefix: str) -> str:
    """A new group id whose coordinator has finished loading (Apache Kafka answers
    COORDINATOR_LOAD_IN_PROGRESS, and a blind NONE to Heartbeat, while its offsets partition
    loads after start-up)."""
    group = f"{prefix}-{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + 60
    while True:
        d = conn.call(15, 5, {"groups": [group], "include_authorized_operations": False})
        if int(d.groups[0].error_code) not in (14, 15, 16):
            return group
        assert time.monotonic() < deadline, f"coordinator of {group} never loaded"
        time.sleep(0.2)


def create_topic(conn: Connection, name: str) -> None:
    """One partition of topic `name`, by a raw CreateTopics v5 (that must succeed)."""
    created = conn.call(19, 5, {"topics": [{"name": name, "num_partitions": 1,
                                            "replication_factor": 1, "assignments": [],
                                            "configs": []}],
                                "timeout": 10_000, "validate_only": False})
    assert int(created.topics[0].error_code) == 0
    # Apache Kafka answers CreateTopics before its broker's metadata has the topic, and commits
    # to a topic the broker does not know yet get UNKNOWN_TOPIC_OR_PARTITION: wait for a leader.
    deadline = time.monotonic() + 60
    while True:
        t = conn.call(3, 4, {"topics": [{"name": name}],
                             "allow_auto_topic_creation": False}).topics[0]
        if int(t.error_code) == 0 and t.partitions and all(int(p.leader_id) >= 0
                                                           for p in t.partitions):
            return
        assert time.monotonic() < deadline, f"{name} never got a leader"
        time.sleep(0.1)


def settled_state(conn: Connection, group: str) -> Any:
    """The group's description once it has left PreparingRebalance. After the last member
    leaves while a KIP-394 pending member exists, both backends complete the join from a 0 ms
    join timer, after the LeaveGroup answer: an immediate DescribeGroups can still see
    PreparingRebalance (Apache Kafka does, now and then, on a loaded machine)."""
    deadline = time.monotonic() + 60
    while True:
        d = conn.call(15, 5, {"groups": [group], "include_authorized_operations": False})
        if d.groups[0].group_state != "PreparingRebalance":
            return d.groups[0]
        assert time.monotonic() < deadline, f"{group} never left PreparingRebalance"
        time.sleep(0.05)


def codes(response: Any) -> list[int]:
    return [int(p.error_code) for t in response.topics for p in t.partitions]


@pytest.fixture
def conn(kafka: Backend) -> Any:
    c = Connection(kafka.bootstrap_servers)
    deadline = time.monotonic() + 60
    while int(c.call(10, 3, {"key": "probe", "key_type": 0}).error_code) != 0:
        assert time.monotonic() < deadline, "no group coordinator"
        time.sleep(0.2)
    yield c
    c.close()


def test_answers_for_groups_that_do_not_exist(conn: Connection, topic_name: str) -> None:
    g = fresh_group(conn, "nog")
    hb = {"group_id": g, "generation_id": 1, "member_id": "x", "group_instance_id": None}
    assert int(conn.call(12, 4, hb).error_code) == 25  # UNKNOWN_MEMBER_ID
    sync = {"group_id": g, "generation_id": 1, "member_id": "x", "group_instance_id": None,
            "protocol_type": None, "protocol_name": None, "assignments": []}
    assert int(conn.call(14, 5, sync).error_code) == 23  # v5 needs protocol type and name
    assert int(conn.call(11, 7, join(g, "x")).error_code) == 25
    r = conn.call(13, 4, {"group_id": g, "members": [{"member_id": "x",
                                                      "group_instance_id": None}]})
    assert (int(r.error_code), [int(m.error_code) for m in r.members]) == (0, [25])
    d = conn.call(15, 5, {"groups": [g], "include_authorized_operations": False}).groups[0]
    assert (int(d.error_code), d.group_state, d.protocol_type) == (0, "Dead", "")
    assert int(conn.call(42, 2, {"groups_names": [g]}).results[0].error_code) == 69
    f = conn.call(9, 7, {"group_id": g, "topics": [{"name": topic_name,
                                                    "partition_indexes": [0]}],
                         "require_stable": False})
    assert [(int(p.committed_offset), p.metadata, int(p.error_code))
            for t in f.topics for p in t.partitions] == [(-1, "", 0)]
    assert int(conn.call(11, 7, join("")).error_code) == 24  # INVALID_GROUP_ID
    assert int(conn.call(11, 7, join(g, session=1000)).error_code) == 26  # session too short


def test_commit_validation(conn: Connection, topic_name: str) -> None:
    create_topic(conn, topic_name)
    g = fresh_group(conn, "nog")
    assert codes(conn.call(8, 8, commit(g, topic_name, 3, "x"))) == [22]  # ILLEGAL_GENERATION
    assert codes(conn.call(8, 9, commit(g, topic_name, 3, "x"))) == [69]  # GROUP_ID_NOT_FOUND
    # An unknown topic is answered first, and the group is not created.
    assert codes(conn.call(8, 8, commit(g, f"{topic_name}-none", -1, ""))) == [3]
    assert int(conn.call(42, 2, {"groups_names": [g]}).results[0].error_code) == 69


def test_a_group_from_join_to_empty(conn: Connection, topic_name: str) -> None:
    create_topic(conn, topic_name)
    g = fresh_group(conn, "pg")
    first = conn.call(11, 7, join(g))
    assert (int(first.error_code), first.generation_id, first.protocol_name) == (79, -1, None)
    member = first.member_id
    assert member
    joined = conn.call(11, 7, join(g, member))
    assert (int(joined.error_code), joined.generation_id, joined.protocol_name,
            joined.protocol_type, joined.leader, len(joined.members)) == (
        0, 1, "range", "consumer", member, 1)
    hb = {"group_id": g, "generation_id": 1, "member_id": member, "group_instance_id": None}
    assert int(conn.call(12, 4, hb).error_code) == 0  # heartbeats are fine while syncing
    assert codes(conn.call(8, 8, commit(g, topic_name, 1, member))) == [27]
    d = conn.call(15, 5, {"groups": [g], "include_authorized_operations": False}).groups[0]
    assert (d.group_state, d.protocol_type, d.protocol_data) == (
        "CompletingRebalance", "consumer", "")
    assert [(m.member_metadata, m.member_assignment, m.client_id) for m in d.members] == [
        (b"", b"", "probe")]
    sync = {"group_id": g, "generation_id": 1, "member_id": member, "group_instance_id": None,
            "protocol_type": "consumer", "protocol_name": "range",
            "assignments": [{"member_id": member, "assignment": b"AS"}]}
    s = conn.call(14, 5, sync)
    assert (int(s.error_code), s.assignment, s.protocol_type, s.protocol_name) == (
        0, b"AS", "consumer", "range")
    wrong = dict(sync, protocol_name="roundrobin", assignments=[])
    assert int(conn.call(14, 5, wrong).error_code) == 23
    d = conn.call(15, 5, {"groups": [g], "include_authorized_operations": False}).groups[0]
    assert (d.group_state, d.protocol_data, [m.member_assignment for m in d.members]) == (
        "Stable", "range", [b"AS"])
    listed = conn.call(16, 5, {"states_filter": ["stable"], "types_filter": []}).groups
    assert [(x.protocol_type, x.group_state, x.group_type)
            for x in listed if x.group_id == g] == [("consumer", "Stable", "classic")]
    assert codes(conn.call(8, 8, commit(g, topic_name, 1, member))) == [0]
    # A second member's first JoinGroup gets MEMBER_ID_REQUIRED; a pending member does not
    # start a rebalance.
    assert int(conn.call(11, 7, join(g)).error_code) == 79
    assert int(conn.call(12, 4, hb).error_code) == 0
    left = conn.call(13, 4, {"group_id": g, "members": [
        {"member_id": member, "group_instance_id": None},
        {"member_id": "", "group_instance_id": "nobody"}]})
    assert (int(left.error_code), [int(m.error_code) for m in left.members]) == (0, [0, 25])
    d = settled_state(conn, g)
    assert (d.group_state, d.protocol_type) == ("Empty", "consumer")
    fetched = conn.call(9, 7, {"group_id": g, "topics": None, "require_stable": False})
    assert [(t.name, [int(p.committed_offset) for p in t.partitions])
            for t in fetched.topics] == [(topic_name, [1])]
    assert int(conn.call(42, 2, {"groups_names": [g]}).results[0].error_code) == 0


def test_find_coordinator(conn: Connection) -> None:
    v0 = conn.call(10, 0, {"key": "any"})
    assert int(v0.error_code) == 0 and v0.port > 0
    txn = conn.call(10, 3, {"key": "any", "key_type": 1})
    assert int(txn.error_code) == 15  # no transaction coordinator (Kafka: not yet loaded)
