"""Leader election and partition reassignment on one node: ElectLeaders,
ListPartitionReassignments, AlterPartitionReassignments.

Every partition has one replica, this broker, which always leads it; so an election is never
needed and the only reassignment possible is to the replicas a partition already has. The
answers are Kafka's (KRaft controller) for that situation, so that kafka-leader-election and
kafka-reassign-partitions work and report it.
"""

from __future__ import annotations

from typing import Any

from hayase.broker.apis.common import (
    INVALID_REPLICA_ASSIGNMENT,
    NONE,
    UNKNOWN_TOPIC_OR_PARTITION,
)
from hayase.broker.context import RequestContext

ELECTION_NOT_NEEDED = 84
NO_REASSIGNMENT_IN_PROGRESS = 85


def _partition_error(topics: dict[str, int], topic: str, partition: int) -> tuple[int, str] | None:
    if partition < 0 or partition >= topics.get(topic, 0):
        return UNKNOWN_TOPIC_OR_PARTITION, "This server does not host this topic-partition."
    return None


def handle_elect_leaders(ctx: RequestContext, body: Any) -> dict[str, Any]:
    """No election is ever needed. Asked for every partition (null), Kafka leaves out those
    that already have their leader, so the answer is empty; asked for some, each answers
    ELECTION_NOT_NEEDED (or UNKNOWN_TOPIC_OR_PARTITION)."""
    topics = ctx.broker.log_manager.topics()
    results = []
    for t in body.topic_partitions or ():
        entries = []
        for p in t.partitions:
            error = _partition_error(topics, t.topic, p) or (
                ELECTION_NOT_NEEDED, "Leader election not needed for topic partition.")
            entries.append({"partition_id": p, "error_code": error[0],
                            "error_message": error[1]})
        results.append({"topic": t.topic, "partition_result": entries})
    return {"throttle_time": 0, "error_code": NONE, "replica_election_results": results}


def handle_list_partition_reassignments(ctx: RequestContext, body: Any) -> dict[str, Any]:
    """Nothing is ever being reassigned."""
    return {"throttle_time": 0, "error_code": NONE, "error_message": None, "topics": ()}


def handle_alter_partition_reassignments(ctx: RequestContext, body: Any) -> dict[str, Any]:
    """A reassignment to the replicas a partition has ([this broker]) completes at once; any
    other names a broker that does not exist; a cancellation finds none in progress."""
    broker = ctx.broker
    topics = broker.log_manager.topics()
    responses = []
    for t in body.topics:
        entries = []
        for p in t.partitions:
            error = _partition_error(topics, t.name, p.partition_index) or _reassignment_error(
                broker.node_id, p.replicas)
            code, message = error or (NONE, None)
            entries.append({"partition_index": p.partition_index, "error_code": code,
                            "error_message": message})
        responses.append({"name": t.name, "partitions": entries})
    return {"throttle_time": 0, "error_code": NONE, "error_message": None,
            "responses": responses}


def _reassignment_error(node_id: int, replicas: Any) -> tuple[int, str] | None:
    if replicas is None:
        return NO_REASSIGNMENT_IN_PROGRESS, "No ongoing reassignment for this partition."
    wanted = list(replicas)
    if not wanted:
        return INVALID_REPLICA_ASSIGNMENT, ("The manual partition assignment includes an "
                                            "empty replica list.")
    if len(set(wanted)) != len(wanted):
        return INVALID_REPLICA_ASSIGNMENT, ("The manual partition assignment includes "
                                            "duplicate replicas.")
    unknown = [b for b in wanted if b != node_id]
    if unknown:
        return INVALID_REPLICA_ASSIGNMENT, (f"The manual partition assignment includes broker "
                                            f"{unknown[0]}, but no such broker is registered.")
    return None


