"""Dynamic broker configs on the embedded broker: set through IncrementalAlterConfigs on the
broker resource, applied to topics, kept across a restart, refused for names hayase cannot
change at run time. (librdkafka cannot name the cluster-default resource ""; kafka-configs
--entity-default does it in tests/broker/tools/test_tools_configs.py.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from hayase.testing.brokers import EmbeddedBroker

pytestmark = pytest.mark.integration

DYNAMIC_BROKER_CONFIG = 2
DYNAMIC_DEFAULT_BROKER_CONFIG = 3  # the cluster-wide default's source


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def _alter(admin: AdminClient, name: str, config: str, value: str | None,
           validate_only: bool = False) -> None:
    op = AlterConfigOpType.SET if value is not None else AlterConfigOpType.DELETE
    res = ConfigResource(ResourceType.BROKER, name,
                         incremental_configs=[ConfigEntry(config, value,
                                                          incremental_operation=op)])
    admin.incremental_alter_configs([res], validate_only=validate_only)[res].result(30)


def _topic_config(admin: AdminClient, topic: str, name: str) -> tuple[str, int]:
    res = ConfigResource("topic", topic)
    entry = admin.describe_configs([res])[res].result(30)[name]
    return entry.value, int(entry.source)


def test_dynamic_configs_apply_to_topics_and_survive_a_restart(broker: EmbeddedBroker) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic("before", 1, 1)])["before"].result(30)
    _alter(admin, "0", "log.retention.ms", "7200000")
    _alter(admin, "0", "log.segment.bytes", "1048576")
    _alter(admin, "0", "log.segment.bytes", "2097152", validate_only=True)  # changes nothing
    admin.create_topics([NewTopic("after", 1, 1)])["after"].result(30)
    for topic in ("before", "after"):
        assert _topic_config(admin, topic, "retention.ms") == ("7200000", DYNAMIC_BROKER_CONFIG)
        assert _topic_config(admin, topic, "segment.bytes") == ("1048576", DYNAMIC_BROKER_CONFIG)

    broker.restart()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    assert _topic_config(admin, "before", "retention.ms") == ("7200000", DYNAMIC_BROKER_CONFIG)
    assert _topic_config(admin, "after", "segment.bytes") == ("1048576", DYNAMIC_BROKER_CONFIG)
    res = ConfigResource(ResourceType.BROKER, "0")
    described = admin.describe_configs([res])[res].result(30)
    assert described["log.retention.ms"].value == "7200000"
    assert int(described["log.retention.ms"].source) == DYNAMIC_BROKER_CONFIG

    _alter(admin, "0", "log.retention.ms", None)
    assert _topic_config(admin, "before", "retention.ms") == ("604800000", 5)


def test_refused_changes_change_nothing(broker: EmbeddedBroker) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic("t", 1, 1)])["t"].result(30)
    with pytest.raises(KafkaException, match="Cannot update these configs dynamically"):
        _alter(admin, "0", "log.cleaner.threads", "2")
    with pytest.raises(KafkaException, match="log.retention.ms"):
        _alter(admin, "0", "log.retention.ms", "soon")
    assert _topic_config(admin, "t", "retention.ms") == ("604800000", 5)
    res = ConfigResource(ResourceType.BROKER, "0")
    described = admin.describe_configs([res])[res].result(30)
    assert all(e.source not in (DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG)
               for e in described.values())
