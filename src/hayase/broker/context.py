"""What request handlers see: the broker's state and the request's context."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hayase.broker.config import BrokerConfig, Listener
from hayase.broker.durability import GroupCommit
from hayase.broker.meta import ProducerIdAllocator, load_or_create_cluster_id
from hayase.broker.protocol.frames import RequestHeader
from hayase.broker.protocol.versions import CORE_API_VERSIONS, GROUP_API_KEYS
from hayase.broker.waiters import AppendWaiters

if TYPE_CHECKING:
    from hayase.broker.groups import GroupApiHandler


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class CloseConnection(Exception):  # noqa: N818 - it is an instruction, not an error
    """Raised by a handler to close the client's connection without a response, as Kafka does
    for an acks=0 Produce that failed (the client then refreshes its metadata)."""


class BrokerState:
    """Everything the API handlers share. Owns neither sockets nor tasks."""

    def __init__(self, config: BrokerConfig, log_manager: Any,
                 group_handler: GroupApiHandler | None = None,
                 clock: Callable[[], int] = wall_clock_ms) -> None:
        self.config = config
        self.log_manager = log_manager
        self.clock = clock
        self.node_id = config.node_id
        self.cluster_id = load_or_create_cluster_id(config.data_dir, self.node_id)
        self.producer_ids = ProducerIdAllocator(config.data_dir)
        self.waiters = AppendWaiters()
        self.group_commit = GroupCommit()
        self.group_handler: GroupApiHandler | None = None
        self.supported: dict[int, tuple[int, int]] = dict(CORE_API_VERSIONS)
        # metrics hook: (client_id, [(topic, partition)], batches, records) per Produce request
        self.produce_observer: Callable[[str | None, list[tuple[str, int]], int, int], None] | \
            None = None
        # called with the topic name after DeleteTopics removed a topic
        self.topic_deleted_listeners: list[Callable[[str], None]] = []
        self.bound_port: int | None = None  # set by the server once listening (port 0 = any)
        if group_handler is not None:
            self.install_group_handler(group_handler)

    def install_group_handler(self, handler: GroupApiHandler) -> None:
        versions = handler.api_versions()
        unknown = set(versions) - GROUP_API_KEYS
        if unknown:
            raise ValueError(f"group handler declares non-group API keys {sorted(unknown)}")
        self.group_handler = handler
        self.supported.update(versions)
        from hayase.broker.dispatch import warm_codecs

        warm_codecs(versions)

    @property
    def advertised(self) -> Listener:
        adv = self.config.advertised
        if not self.config.props.get("advertised.listeners") and self.bound_port:
            return Listener(adv.host, self.bound_port)
        return adv


@dataclass
class RequestContext:
    broker: BrokerState
    header: RequestHeader
    peer: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def api_version(self) -> int:
        return self.header.api_version
