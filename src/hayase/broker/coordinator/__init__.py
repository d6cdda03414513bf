"""hayase.broker.coordinator: consumer groups (classic protocol) and committed offsets.

`GroupCoordinator` is the sans-IO state machine; `GroupApi` maps the wire's request and
response versions onto it; `CoordinatorHandler` (shell.py) is the asyncio glue the broker
installs through `create_group_handler` (the hook described in hayase.broker.groups).
"""

from hayase.broker.coordinator.api import API_VERSIONS, GroupApi, Node
from hayase.broker.coordinator.config import CoordinatorConfig
from hayase.broker.coordinator.coordinator import GroupCoordinator, JoinRequest, SyncRequest
from hayase.broker.coordinator.offset_log import MemoryOffsetLog, OffsetLog, StorageOffsetLog
from hayase.broker.coordinator.shell import CoordinatorHandler, create_group_handler

__all__ = [
    "API_VERSIONS",
    "CoordinatorConfig",
    "CoordinatorHandler",
    "GroupApi",
    "GroupCoordinator",
    "JoinRequest",
    "MemoryOffsetLog",
    "Node",
    "OffsetLog",
    "StorageOffsetLog",
    "SyncRequest",
    "create_group_handler",
]
