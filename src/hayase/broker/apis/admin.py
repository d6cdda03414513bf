"""CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs, InitProducerId."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from hayase.broker import dynamic_configs
from hayase.broker.apis.common import (
    INTERNAL_TOPICS,
    INVALID_CONFIG,
    INVALID_PARTITIONS,
    INVALID_REPLICA_ASSIGNMENT,
    INVALID_REPLICATION_FACTOR,
    INVALID_REQUEST,
    INVALID_TOPIC_EXCEPTION,
    NONE,
    TOPIC_ALREADY_EXISTS,
    TOPIC_DELETION_DISABLED,
    UNKNOWN_TOPIC_OR_PARTITION,
    error_code_of,
    log,
    partition_limit_error,
    topic_name_error,
)
from hayase.broker.context import BrokerState, RequestContext
from hayase.broker.topic_configs import broker_config_entries, topic_config_entries

T = TypeVar("T")

RESOURCE_TOPIC = 2
RESOURCE_BROKER = 4
RESOURCE_BROKER_LOGGER = 8
_TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
_MAX_EPOCH = 32767


class _Rejected(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = code


def _answer_each(
    items: Iterable[T], entry_of: Callable[[T], dict[str, Any]],
    answer: Callable[[T, dict[str, Any]], None],
) -> list[dict[str, Any]]:
    """One result entry per item of an admin request (a topic, a config resource): `entry_of`
    gives its fields with error_code NONE and no message, `answer` does the work and fills them.
    A failure (a _Rejected, a storage error) becomes that item's error code and message: one
    bad item never fails the others, as in Kafka."""
    results = []
    for item in items:
        entry = {"error_code": NONE, "error_message": None, **entry_of(item)}
        try:
            answer(item, entry)
        except Exception as e:  # noqa: BLE001 - storage errors carry their Kafka code
            entry.update(error_code=error_code_of(e), error_message=str(e))
        results.append(entry)
    return results


def _validate_new_topic(broker: BrokerState, t: Any) -> int:
    """The partition count to create `t` with; raises _Rejected."""
    problem = topic_name_error(t.name)
    if problem:
        raise _Rejected(INVALID_TOPIC_EXCEPTION, problem)
    if t.name in broker.log_manager.topics():
        raise _Rejected(TOPIC_ALREADY_EXISTS, f"Topic '{t.name}' already exists.")
    if t.assignments:
        if t.num_partitions != -1 or t.replication_factor != -1:
            raise _Rejected(INVALID_REQUEST, "Both numPartitions or replicationFactor and "
                                             "replicasAssignments were set.")
        for a in t.assignments:
            if list(a.broker_ids) != [broker.node_id]:
                raise _Rejected(INVALID_REPLICA_ASSIGNMENT,
                                f"Replica assignment {list(a.broker_ids)} names brokers other "
                                f"than the only one, {broker.node_id}.")
        count = len(t.assignments)
    else:
        count = broker.config.num_partitions if t.num_partitions == -1 else t.num_partitions
    if count <= 0:
        raise _Rejected(INVALID_PARTITIONS, "Number of partitions must be larger than 0.")
    problem = partition_limit_error(broker, count)
    if problem is not None:
        raise _Rejected(INVALID_PARTITIONS, problem)
    if t.assignments:
        return int(count)
    rf = t.replication_factor
    if rf == -1:
        rf = broker.config.get_int("default.replication.factor")
    if rf <= 0:
        raise _Rejected(INVALID_REPLICATION_FACTOR, "Replication factor must be larger than 0.")
    if rf > 1:
        raise _Rejected(INVALID_REPLICATION_FACTOR,
                        f"Unable to replicate the partition {rf} time(s): The target "
                        f"replication factor of {rf} cannot be reached because only 1 "
                        f"broker(s) are registered.")
    return int(count)


def _resource(r: Any) -> dict[str, Any]:
    """The fields that name a config resource in DescribeConfigs and AlterConfigs results."""
    return {"resource_type": r.resource_type, "resource_name": r.resource_name}


def handle_create_topics(ctx: RequestContext, body: Any) -> dict[str, Any]:
    broker = ctx.broker
    lm = broker.log_manager
    names = [t.name for t in body.topics]

    def answer(t: Any, entry: dict[str, Any]) -> None:
        configs = {c.name: c.value for c in t.configs}
        if names.count(t.name) > 1:
            raise _Rejected(INVALID_REQUEST, f"Create topics request from client contains "
                                             f"duplicate topic {t.name}.")
        count = _validate_new_topic(broker, t)
        if body.validate_only:
            from hayase.broker.storage import TopicConfig

            TopicConfig.from_kafka({k: v for k, v in configs.items() if v is not None},
                                   broker.config.storage_props())
        else:
            lm.create_topic(t.name, count, {k: v for k, v in configs.items() if v is not None})
            log.info("created topic %s with %d partition(s)", t.name, count)
        entry.update(num_partitions=count, replication_factor=1)
        if not body.validate_only:
            entry["configs"] = [
                {k: c[k] for k in ("name", "value", "read_only", "config_source",
                                   "is_sensitive")}
                for c in topic_config_entries(broker, t.name, None)
            ]

    results = _answer_each(body.topics, lambda t: {"name": t.name, "num_partitions": -1,
                                                   "replication_factor": -1, "configs": ()},
                           answer)
    return {"throttle_time": 0, "topics": results}


def handle_delete_topics(ctx: RequestContext, body: Any) -> dict[str, Any]:
    broker = ctx.broker
    names = list(body.topic_names) if hasattr(body, "topic_names") else [
        t.name for t in body.topics]

    def answer(name: str, entry: dict[str, Any]) -> None:
        if not broker.config.get_bool("delete.topic.enable"):
            entry["error_code"] = TOPIC_DELETION_DISABLED
        elif name in INTERNAL_TOPICS:
            entry.update(error_code=INVALID_TOPIC_EXCEPTION,
                         error_message=f"Cannot delete internal topic {name}")
        elif name not in broker.log_manager.topics():
            entry["error_code"] = UNKNOWN_TOPIC_OR_PARTITION
        else:
            broker.log_manager.delete_topic(name)
            broker.waiters.notify_topic(name)
            for listener in broker.topic_deleted_listeners:
                try:
                    listener(name)
                except Exception:  # noqa: BLE001 - a listener bug must not fail the delete
                    log.exception("topic deletion listener failed for %s", name)
            log.info("deleted topic %s", name)

    responses = _answer_each(names, lambda name: {"name": name}, answer)
    return {"throttle_time": 0, "responses": responses}


def handle_create_partitions(ctx: RequestContext, body: Any) -> dict[str, Any]:
    broker = ctx.broker
    lm = broker.log_manager

    def answer(t: Any, _entry: dict[str, Any]) -> None:
        current = lm.topics().get(t.name)
        if current is None:
            raise _Rejected(UNKNOWN_TOPIC_OR_PARTITION, f"Topic {t.name} does not exist.")
        if t.count <= current:
            raise _Rejected(INVALID_PARTITIONS,
                            f"Topic currently has {current} partitions, which is higher "
                            f"than or equal to the requested {t.count}.")
        problem = partition_limit_error(broker, t.count - current)
        if problem is not None:
            raise _Rejected(INVALID_PARTITIONS, problem)
        for a in t.assignments or ():
            if list(a.broker_ids) != [broker.node_id]:
                raise _Rejected(INVALID_REPLICA_ASSIGNMENT,
                                f"Replica assignment {list(a.broker_ids)} is not possible "
                                f"on a single broker {broker.node_id}.")
        if not body.validate_only:
            lm.create_partitions(t.name, t.count)
            log.info("topic %s now has %d partitions", t.name, t.count)

    results = _answer_each(body.topics, lambda t: {"name": t.name}, answer)
    return {"throttle_time": 0, "results": results}


def handle_describe_configs(ctx: RequestContext, body: Any) -> dict[str, Any]:
    broker = ctx.broker
    include_synonyms = bool(getattr(body, "include_synonyms", False))
    include_docs = bool(getattr(body, "include_documentation", False))

    def answer(r: Any, entry: dict[str, Any]) -> None:
        keys = None if r.configuration_keys is None else set(r.configuration_keys)
        if r.resource_type == RESOURCE_TOPIC:
            if r.resource_name not in broker.log_manager.topics():
                raise _Rejected(UNKNOWN_TOPIC_OR_PARTITION,
                                f"Topic {r.resource_name} does not exist.")
            configs = topic_config_entries(broker, r.resource_name, keys)
        elif r.resource_type == RESOURCE_BROKER:
            try:
                scope = dynamic_configs.scope_of(broker, r.resource_name)
            except dynamic_configs.DynamicConfigError as e:
                raise _Rejected(INVALID_REQUEST, str(e)) from None
            configs = broker_config_entries(broker, keys, scope == "default")
        else:
            raise _Rejected(INVALID_REQUEST,
                            f"Unsupported resource type {r.resource_type}")
        for c in configs:
            if not include_synonyms:
                c["synonyms"] = ()
            if not include_docs:
                c["documentation"] = None
        entry["configs"] = configs

    results = _answer_each(body.resources, lambda r: {**_resource(r), "configs": ()}, answer)
    return {"throttle_time": 0, "results": results}


def handle_init_producer_id(ctx: RequestContext, body: Any) -> dict[str, Any]:
    broker = ctx.broker
    response = {"throttle_time": 0, "error_code": NONE, "producer_id": -1, "producer_epoch": -1}
    if body.transactional_id is not None:
        log.warning("client %s asked for transactional id %r: transactions are not supported",
                    ctx.header.client_id, body.transactional_id)
        response["error_code"] = _TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        return response
    pid = getattr(body, "producer_id", -1)
    epoch = getattr(body, "producer_epoch", -1)
    if pid >= 0 and 0 <= epoch < _MAX_EPOCH - 1:
        # KIP-360: an idempotent producer bumps its epoch to recover from a sequence error.
        response.update(producer_id=pid, producer_epoch=epoch + 1)
    else:
        response.update(producer_id=broker.producer_ids.allocate(), producer_epoch=0)
    return response


SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


def _new_overrides(current: dict[str, str], changes: Any, incremental: bool) -> dict[str, str]:
    """The topic's configs after an AlterConfigs (replace all) or IncrementalAlterConfigs."""
    if not incremental:
        return {c.name: c.value for c in changes if c.value is not None}
    out = dict(current)
    for c in changes:
        op = c.config_operation
        if op == SET:
            if c.value is None:
                raise _Rejected(INVALID_REQUEST, f"Null value not supported for {c.name}")
            out[c.name] = c.value
        elif op == DELETE:
            out.pop(c.name, None)
        elif op in (APPEND, SUBTRACT):
            items = [v for v in out.get(c.name, "").split(",") if v]
            given = [v for v in (c.value or "").split(",") if v]
            if op == APPEND:
                items += [v for v in given if v not in items]
            else:
                items = [v for v in items if v not in given]
            out[c.name] = ",".join(items)
        else:
            raise _Rejected(INVALID_REQUEST, f"Unknown config operation {op} for {c.name}")
    return out


def _alter_broker_configs(broker: BrokerState, r: Any, incremental: bool,
                          validate_only: bool) -> None:
    """Dynamic broker configs: "" is the cluster-wide default, the node id this broker."""
    try:
        scope = dynamic_configs.scope_of(broker, r.resource_name)
    except dynamic_configs.DynamicConfigError as e:
        raise _Rejected(INVALID_REQUEST, str(e)) from None
    new = _new_overrides(broker.config.dynamic[scope], r.configs or (), incremental)
    try:
        dynamic_configs.apply(broker, scope, new, validate_only)
    except dynamic_configs.DynamicConfigError as e:
        raise _Rejected(INVALID_CONFIG, str(e)) from None
    if not validate_only:
        log.info("altered dynamic configs of broker resource %r: %s", r.resource_name, new)


def _alter_configs(ctx: RequestContext, body: Any, incremental: bool) -> dict[str, Any]:
    broker = ctx.broker
    lm = broker.log_manager

    def answer(r: Any, _entry: dict[str, Any]) -> None:
        if r.resource_type == RESOURCE_BROKER:
            _alter_broker_configs(broker, r, incremental, body.validate_only)
            return
        if r.resource_type != RESOURCE_TOPIC:
            raise _Rejected(INVALID_REQUEST, f"Unsupported resource type {r.resource_type}: "
                                             f"topic and broker configs can be altered")
        if r.resource_name not in lm.topics():
            raise _Rejected(UNKNOWN_TOPIC_OR_PARTITION,
                            f"Topic {r.resource_name} does not exist.")
        current = dict(getattr(lm.topic_config(r.resource_name), "overrides", {}) or {})
        new = _new_overrides(current, r.configs or (), incremental)
        if body.validate_only:
            from hayase.broker.storage import TopicConfig

            TopicConfig.from_kafka(new, broker.config.storage_props())
        else:
            lm.alter_topic_config(r.resource_name, new)
            log.info("altered configs of topic %s: %s", r.resource_name, new)

    responses = _answer_each(body.resources, _resource, answer)
    return {"throttle_time": 0, "responses": responses}


def handle_alter_configs(ctx: RequestContext, body: Any) -> dict[str, Any]:
    return _alter_configs(ctx, body, incremental=False)


def handle_incremental_alter_configs(ctx: RequestContext, body: Any) -> dict[str, Any]:
    return _alter_configs(ctx, body, incremental=True)
