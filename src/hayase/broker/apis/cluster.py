"""ApiVersions, Metadata, DescribeCluster: what the cluster looks like (one node)."""

from __future__ import annotations

from typing import Any

from hayase.broker.apis.common import (
    INVALID_TOPIC_EXCEPTION,
    LEADER_EPOCH,
    NONE,
    UNKNOWN_TOPIC_OR_PARTITION,
    ensure_topic,
    topic_exists,
    topic_name_error,
)
from hayase.broker.context import BrokerState, RequestContext
from hayase.broker.protocol.frames import api_versions_body

_UNKNOWN_OPS = -2147483648
LEADER_NOT_AVAILABLE = 5
MAX_AUTO_CREATE_PER_REQUEST = 20
_UNKNOWN_TOPIC_ID_ERROR = 100  # UNKNOWN_TOPIC_ID


def handle_api_versions(ctx: RequestContext, body: Any) -> dict[str, Any]:
    return api_versions_body(ctx.broker.supported)


def _broker_entry(broker: BrokerState) -> dict[str, Any]:
    adv = broker.advertised
    return {"node_id": broker.node_id, "broker_id": broker.node_id, "host": adv.host,
            "port": adv.port, "rack": None}


def topic_metadata(broker: BrokerState, name: str, partitions: int) -> dict[str, Any]:
    node = broker.node_id
    return {
        "error_code": NONE,
        "name": name,
        "topic_id": broker.log_manager.topic_id(name),
        "is_internal": name.startswith("__"),
        "partitions": [
            {"error_code": NONE, "partition_index": p, "leader_id": node,
             "leader_epoch": LEADER_EPOCH, "replica_nodes": (node,), "isr_nodes": (node,),
             "offline_replicas": ()}
            for p in range(partitions)
        ],
        "topic_authorized_operations": _UNKNOWN_OPS,
    }


def _error_topic(name: str | None, code: int, topic_id: Any = None) -> dict[str, Any]:
    return {"error_code": code, "name": name, "topic_id": topic_id, "is_internal": False,
            "partitions": (), "topic_authorized_operations": _UNKNOWN_OPS}


def handle_metadata(ctx: RequestContext, body: Any) -> dict[str, Any]:
    broker = ctx.broker
    lm = broker.log_manager
    requested = body.topics
    version = ctx.api_version
    allow_auto = bool(getattr(body, "allow_auto_topic_creation", True))
    topics: list[dict[str, Any]] = []
    if requested is None or (version == 0 and not requested):
        for name, count in sorted(lm.topics().items()):
            topics.append(topic_metadata(broker, name, count))
    else:
        by_id = None
        counts: dict[str, int] | None = None
        created = 0
        for t in requested:
            name = t.name
            if name is None:
                topic_id = getattr(t, "topic_id", None)
                if by_id is None:
                    by_id = {lm.topic_id(n): n for n in lm.topics()}
                name = by_id.get(topic_id)
                if name is None:
                    topics.append(_error_topic(None, _UNKNOWN_TOPIC_ID_ERROR, topic_id))
                    continue
            if topic_name_error(name) is not None:
                topics.append(_error_topic(name, INVALID_TOPIC_EXCEPTION))
                continue
            exists = topic_exists(broker, name)
            if not exists and allow_auto and created >= MAX_AUTO_CREATE_PER_REQUEST:
                # Bound the time one request holds the loop (a producer's periodic refresh can
                # name thousands of deleted topics); the client retries, as Kafka's clients do
                # while a topic is being created.
                topics.append(_error_topic(name, LEADER_NOT_AVAILABLE))
                continue
            if not exists:
                if not ensure_topic(broker, name, allow_auto):
                    topics.append(_error_topic(name, UNKNOWN_TOPIC_OR_PARTITION))
                    continue
                created += 1
            if counts is None or name not in counts:
                counts = lm.topics()
            topics.append(topic_metadata(broker, name, counts[name]))
    return {
        "throttle_time": 0,
        "brokers": [_broker_entry(broker)],
        "cluster_id": broker.cluster_id,
        "controller_id": broker.node_id,
        "topics": topics,
        "cluster_authorized_operations": _UNKNOWN_OPS,
    }


def handle_describe_cluster(ctx: RequestContext, body: Any) -> dict[str, Any]:
    broker = ctx.broker
    return {
        "throttle_time": 0,
        "error_code": NONE,
        "error_message": None,
        "endpoint_type": 1,
        "cluster_id": broker.cluster_id,
        "controller_id": broker.node_id,
        "brokers": [_broker_entry(broker)],
        "cluster_authorized_operations": _UNKNOWN_OPS,
    }


# The most partitions one DescribeTopicPartitions response holds (Kafka's
# max.request.partition.size.limit default); the client pages on with the cursor.
MAX_PARTITIONS_PER_DESCRIBE = 2000


def handle_describe_topic_partitions(ctx: RequestContext, body: Any) -> dict[str, Any]:
    """KIP-966's describe (what kafka-topics --describe asks first): topics in name order, every
    topic when none is named, at most `response_partition_limit` partitions, then a cursor
    where the next response starts. No partition has eligible leader replicas beyond its
    leader: the ELR lists are empty (not unknown), as Kafka answers with ELR disabled."""
    broker = ctx.broker
    counts = broker.log_manager.topics()
    names = sorted({t.name for t in body.topics}) if body.topics else sorted(counts)
    cursor = body.cursor
    if cursor is not None:
        names = [n for n in names if n >= cursor.topic_name]
    room = max(1, min(int(body.response_partition_limit), MAX_PARTITIONS_PER_DESCRIBE))
    topics: list[dict[str, Any]] = []
    next_cursor = None
    for name in names:
        if name not in counts:
            topics.append(_error_topic(name, UNKNOWN_TOPIC_OR_PARTITION))
            continue
        if room == 0:
            next_cursor = {"topic_name": name, "partition_index": 0}
            break
        start = cursor.partition_index if cursor is not None and name == cursor.topic_name else 0
        entry = topic_metadata(broker, name, counts[name])
        entry["partitions"] = [{**p, "eligible_leader_replicas": (), "last_known_elr": ()}
                               for p in entry["partitions"][start:start + room]]
        topics.append(entry)
        room -= len(entry["partitions"])
        if start + len(entry["partitions"]) < counts[name]:
            next_cursor = {"topic_name": name,
                           "partition_index": start + len(entry["partitions"])}
            break
    return {"throttle_time": 0, "topics": topics, "next_cursor": next_cursor}
