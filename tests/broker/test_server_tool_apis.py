"""The APIs Apache Kafka's tools need beyond the clients' (DescribeTopicPartitions,
ElectLeaders, partition reassignments, DescribeLogDirs, ListOffsets -4/-5), without sockets,
over the in-memory storage stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_storage import FakeLogManager
from test_server_dispatch import call

from hayase.broker.config import BrokerConfig
from hayase.broker.context import BrokerState

DESCRIBE_TOPIC_PARTITIONS, ELECT_LEADERS, DESCRIBE_LOG_DIRS, LIST_OFFSETS = 75, 43, 35, 2
ALTER_REASSIGNMENTS, LIST_REASSIGNMENTS = 45, 46


@pytest.fixture
def state(tmp_path: Path) -> BrokerState:
    lm = FakeLogManager()
    lm.data_dir = tmp_path  # type: ignore[attr-defined]
    lm.create_topic("a", 3, {})
    lm.create_topic("b", 2, {})
    return BrokerState(BrokerConfig.build(tmp_path, port=0), lm, clock=lambda: 5_000)


def _page(state: BrokerState, limit: int, cursor: dict | None = None,
          topics: tuple[str, ...] = ()) -> tuple[list[tuple[str, int]], object]:
    res = call(state, DESCRIBE_TOPIC_PARTITIONS, 0, {
        "topics": [{"name": t} for t in topics], "response_partition_limit": limit,
        "cursor": cursor})
    got = [(t.name, p.partition_index) for t in res.topics for p in t.partitions]
    assert all(p.eligible_leader_replicas == () and p.last_known_elr == ()
               for t in res.topics for p in t.partitions)
    nxt = res.next_cursor
    return got, None if nxt is None else {"topic_name": nxt.topic_name,
                                          "partition_index": nxt.partition_index}


def test_describe_topic_partitions_pages_with_a_cursor(state: BrokerState) -> None:
    first, cursor = _page(state, 2)
    assert first == [("a", 0), ("a", 1)] and cursor == {"topic_name": "a", "partition_index": 2}
    second, cursor = _page(state, 2, cursor)
    assert second == [("a", 2), ("b", 0)] and cursor == {"topic_name": "b", "partition_index": 1}
    third, cursor = _page(state, 2, cursor)
    assert third == [("b", 1)] and cursor is None
    everything, cursor = _page(state, 2000)
    assert len(everything) == 5 and cursor is None


def test_describe_topic_partitions_of_named_and_unknown_topics(state: BrokerState) -> None:
    res = call(state, DESCRIBE_TOPIC_PARTITIONS, 0, {
        "topics": [{"name": "b"}, {"name": "zz"}], "response_partition_limit": 2000,
        "cursor": None})
    assert [(t.name, t.error_code, len(t.partitions)) for t in res.topics] == [
        ("b", 0, 2), ("zz", 3, 0)]


def test_elect_leaders_is_never_needed(state: BrokerState) -> None:
    everything = call(state, ELECT_LEADERS, 2, {"election_type": 0, "topic_partitions": None,
                                                "timeout": 1000})
    assert everything.error_code == 0 and everything.replica_election_results == ()
    named = call(state, ELECT_LEADERS, 2, {"election_type": 1, "timeout": 1000,
                                           "topic_partitions": [{"topic": "a",
                                                                 "partitions": [0, 7]}]})
    (result,) = named.replica_election_results
    assert [(p.partition_id, p.error_code) for p in result.partition_result] == [(0, 84), (7, 3)]


def test_reassignments_only_to_the_current_replica(state: BrokerState) -> None:
    listed = call(state, LIST_REASSIGNMENTS, 0, {"timeout": 1000, "topics": None})
    assert listed.error_code == 0 and listed.topics == ()
    res = call(state, ALTER_REASSIGNMENTS, 0, {"timeout": 1000, "topics": [
        {"name": "a", "partitions": [
            {"partition_index": 0, "replicas": [state.node_id]},
            {"partition_index": 1, "replicas": [state.node_id, 5]},
            {"partition_index": 2, "replicas": None},
        ]},
        {"name": "zz", "partitions": [{"partition_index": 0, "replicas": [state.node_id]}]},
    ]})
    assert [[(p.partition_index, p.error_code) for p in t.partitions] for t in res.responses] == [
        [(0, 0), (1, 39), (2, 85)], [(0, 3)]]


def test_describe_log_dirs(state: BrokerState, tmp_path: Path) -> None:
    every = call(state, DESCRIBE_LOG_DIRS, 4, {"topics": None})
    (result,) = every.results
    assert result.log_dir == str(tmp_path) and result.error_code == 0
    assert result.total_bytes >= result.usable_bytes > 0
    assert {(t.name, p.partition_index) for t in result.topics for p in t.partitions} == {
        ("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1)}
    some = call(state, DESCRIBE_LOG_DIRS, 4, {"topics": [
        {"topic": "b", "partitions": [1, 9]}, {"topic": "zz", "partitions": [0]}]})
    assert [(t.name, [p.partition_index for p in t.partitions])
            for t in some.results[0].topics] == [("b", [1])]


def test_list_offsets_tiered_storage_specs(state: BrokerState) -> None:
    def offsets(spec: int) -> int:
        res = call(state, LIST_OFFSETS, 10, {"replica_id": -1, "isolation_level": 0,
                                             "timeout": 1000, "topics": [
            {"name": "a", "partitions": [{"partition_index": 0, "timestamp": spec,
                                          "current_leader_epoch": -1}]}]})
        p = res.topics[0].partitions[0]
        assert p.error_code == 0
        return int(p.offset)

    assert offsets(-4) == 0  # earliest local: the log start
    assert offsets(-5) == -1  # latest tiered: nothing is tiered


def test_quotas_are_refused_not_silently_ignored(state: BrokerState) -> None:
    described = call(state, 48, 1, {"components": [], "strict": False})
    assert described.error_code == 0 and described.entries == ()
    altered = call(state, 49, 1, {"validate_only": False, "entries": [
        {"entity": [{"entity_type": "client-id", "entity_name": "c1"}],
         "ops": [{"key": "producer_byte_rate", "value": 1024.0, "remove": False}]}]})
    (entry,) = altered.entries
    assert entry.error_code == 42 and "does not enforce client quotas" in entry.error_message


def test_acls_answer_security_disabled(state: BrokerState) -> None:
    described = call(state, 29, 3, {"resource_type_filter": 1, "resource_name_filter": None,
                                    "pattern_type_filter": 1, "principal_filter": None,
                                    "host_filter": None, "operation": 1,
                                    "permission_type": 1})
    assert described.error_code == 54
    created = call(state, 30, 3, {"creations": [
        {"resource_type": 2, "resource_name": "t", "resource_pattern_type": 3,
         "principal": "User:a", "host": "*", "operation": 3, "permission_type": 3}]})
    assert [r.error_code for r in created.results] == [54]
