"""Helpers shared by the API handlers: error codes, topic names, auto-creation."""

from __future__ import annotations

import logging
import re
from typing import Any

from hayase.broker.context import BrokerState

log = logging.getLogger("hayase.broker")

# Kafka error codes used by the handlers (names as in Kafka's Errors enum).
NONE = 0
OFFSET_OUT_OF_RANGE = 1
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_FETCH_SIZE = 4
MESSAGE_TOO_LARGE = 10
INVALID_TOPIC_EXCEPTION = 17
RECORD_LIST_TOO_LARGE = 18
INVALID_REQUIRED_ACKS = 21
UNSUPPORTED_VERSION = 35
TOPIC_ALREADY_EXISTS = 36
INVALID_PARTITIONS = 37
INVALID_REPLICATION_FACTOR = 38
INVALID_REPLICA_ASSIGNMENT = 39
INVALID_CONFIG = 40
INVALID_REQUEST = 42
UNKNOWN_SERVER_ERROR = -1
KAFKA_STORAGE_ERROR = 56
TOPIC_DELETION_DISABLED = 73
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 76
INVALID_RECORD = 87
TRANSACTIONAL_ID_NOT_FOUND = 105

LEADER_EPOCH = 0
_LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]+$")
MAX_TOPIC_NAME = 249


def error_code_of(exc: BaseException) -> int:
    """A storage error's Kafka code (StorageError.error_code), else UNKNOWN_SERVER_ERROR."""
    code = getattr(exc, "error_code", None)
    return int(code) if isinstance(code, int) else UNKNOWN_SERVER_ERROR


def topic_name_error(name: str | None) -> str | None:
    """Why `name` is not a legal topic name (Kafka's rules), or None when it is."""
    if not name:
        return "Topic name is empty"
    if name in (".", ".."):
        return f"Topic name cannot be {name!r}"
    if len(name) > MAX_TOPIC_NAME:
        return f"Topic name is longer than {MAX_TOPIC_NAME} characters"
    if not _LEGAL_TOPIC.match(name):
        return f"Topic name {name!r} is illegal: only ASCII alphanumerics, '.', '_' and '-'"
    return None


INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})


def leader_epoch_error(current_leader_epoch: int) -> int:
    """Fencing check of a client's current_leader_epoch (-1 = not checked); ours is always 0."""
    if current_leader_epoch < 0 or current_leader_epoch == LEADER_EPOCH:
        return NONE
    return FENCED_LEADER_EPOCH if current_leader_epoch < LEADER_EPOCH else UNKNOWN_LEADER_EPOCH


def partition_limit_error(broker: BrokerState, extra: int) -> str | None:
    """Why adding `extra` partitions would exceed hayase.max.partitions, or None."""
    limit = broker.config.get_int("hayase.max.partitions")
    total = sum(broker.log_manager.topics().values())
    if total + extra > limit:
        return (f"{extra} more partition(s) would exceed hayase.max.partitions={limit} "
                f"({total} exist)")
    return None


def topic_exists(broker: BrokerState, name: str) -> bool:
    lm = broker.log_manager
    has_topic = getattr(lm, "has_topic", None)  # O(1) when the storage offers it
    return bool(has_topic(name)) if has_topic is not None else name in lm.topics()


def ensure_topic(broker: BrokerState, name: str, allow_auto_create: bool = True) -> bool:
    """Whether `name` exists, auto-creating it when allowed and enabled."""
    if topic_exists(broker, name):
        return True
    if not (allow_auto_create and broker.config.auto_create_topics):
        return False
    if topic_name_error(name) is not None or name.startswith("__"):
        return False
    problem = partition_limit_error(broker, broker.config.num_partitions)
    if problem is not None:
        log.warning("not auto-creating topic %s: %s", name, problem)
        return False
    try:
        broker.log_manager.create_topic(name, broker.config.num_partitions, {})
        log.info("auto-created topic %s with %d partition(s)", name, broker.config.num_partitions)
    except Exception as e:  # noqa: BLE001 - a concurrent creation (exists) is fine
        if error_code_of(e) != TOPIC_ALREADY_EXISTS:
            log.warning("auto-creation of topic %s failed: %s", name, e)
            return False
    return True


def ms(value: Any) -> int:
    """kio timedelta fields as milliseconds."""
    total = getattr(value, "total_seconds", None)
    if total is not None:
        return round(total() * 1000)
    return int(value)
