"""Dynamic broker configs: AlterConfigs / IncrementalAlterConfigs on a broker resource.

As in Kafka, resource name "" is the cluster-wide default and the node id is this broker; a
broker's own value beats the default, which beats the static (file, --config) value. hayase
accepts the broker-level defaults of topic configs (Kafka's DynamicLogConfig set: the
`log.*` synonyms such as `log.retention.ms`, `log.segment.bytes`, `log.cleanup.policy`,
`message.max.bytes`): a change applies at once to every topic that does not set the config
itself, and persists in the data dir (`config.DYNAMIC_CONFIGS_FILE`). Other names are refused
with INVALID_REQUEST, as Kafka refuses configs it cannot update dynamically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from hayase.broker.config import DYNAMIC_CONFIGS_FILE
from hayase.broker.topic_configs import LOG_DEFAULTS

if TYPE_CHECKING:
    from hayase.broker.context import BrokerState

DYNAMIC_BROKER_CONFIGS: frozenset[str] = frozenset(LOG_DEFAULTS)


class DynamicConfigError(ValueError):
    """A dynamic broker config change that cannot be made (names the reason, Kafka style)."""


def scope_of(broker: BrokerState, resource_name: str) -> str:
    """"default" for the cluster-wide resource "", "node" for this broker's id."""
    if resource_name == "":
        return "default"
    if resource_name == str(broker.node_id):
        return "node"
    raise DynamicConfigError(f"Unexpected broker id, expected {broker.node_id} or empty "
                             f"string, but received {resource_name}")


def check(new: dict[str, str]) -> None:
    refused = sorted(set(new) - DYNAMIC_BROKER_CONFIGS)
    if refused:
        raise DynamicConfigError(
            f"Cannot update these configs dynamically: {', '.join(refused)} (hayase updates "
            f"the broker defaults of topic configs, e.g. log.retention.ms, dynamically; set "
            f"other broker configs with --config and restart)")


def apply(broker: BrokerState, scope: str, new: dict[str, str], validate_only: bool) -> None:
    """Make `new` the scope's dynamic configs: validated against every topic first (a bad
    value fails the whole resource, nothing changed), then persisted and applied."""
    from hayase.broker.storage import TopicConfig

    check(new)
    config = broker.config
    previous = config.dynamic[scope]
    config.dynamic[scope] = dict(new)
    applied = False
    try:
        props = config.storage_props()
        TopicConfig.from_kafka({}, props)  # raises InvalidConfigError
        if not validate_only:
            save(config.data_dir, config.dynamic)
            broker.log_manager.set_broker_config(props)
            applied = True
    finally:
        if not applied:  # validate only, or refused: the previous configs stay
            config.dynamic[scope] = previous


def save(data_dir: Path, dynamic: dict[str, dict[str, str]]) -> None:
    """Write the dynamic configs atomically (temporary file, fsync, rename)."""
    path = data_dir / DYNAMIC_CONFIGS_FILE
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        json.dump(dynamic, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
