"""kafka-configs (ConfigCommand) against both backends: topic configs added, described and
deleted; dynamic broker configs, this broker's and the cluster-wide default, seen by a topic
that does not set the config itself."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource
from tests.broker.tools.apache_tools import ACL_COMMAND, CONFIG_COMMAND, Tool, node_id

from hayase.testing.brokers import Backend

pytestmark = pytest.mark.integration

# A broker default whose change cannot disturb other tests sharing the broker: the retention
# of compacted topics' tombstones (topic config delete.retention.ms).
BROKER_CONFIG = "log.cleaner.delete.retention.ms"
TOPIC_CONFIG = "delete.retention.ms"
DYNAMIC_BROKER_CONFIG = 2
DYNAMIC_DEFAULT_BROKER_CONFIG = 3
DEFAULT_CONFIG = 5


def _topic_config(admin: AdminClient, topic: str, name: str) -> tuple[str, int]:
    res = ConfigResource("topic", topic)
    entry = admin.describe_configs([res])[res].result(30)[name]
    return entry.value, int(entry.source)


def _expect(admin: AdminClient, topic: str, name: str, value: str,
            source: int | None = None) -> None:
    """The topic's config reaches `value` (and `source`). Apache Kafka answers an alter once
    its controller has committed it; the broker that describes applies it a moment later."""
    deadline = time.monotonic() + 15
    while True:
        got = _topic_config(admin, topic, name)
        if got[0] == value and source in (None, got[1]):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{topic} {name} is {got}, expected {value} ({source})")
        time.sleep(0.1)


def test_topic_configs(kafka: Backend, kafka_tool: Tool, admin: AdminClient,
                       new_topic: Callable[[int], str]) -> None:
    bs = ["--bootstrap-server", kafka.bootstrap_servers]
    topic = new_topic(1)
    entity = ["--entity-type", "topics", "--entity-name", topic]
    out = kafka_tool(CONFIG_COMMAND, *bs, *entity, "--alter", "--add-config",
                     "retention.ms=86400000,cleanup.policy=[compact,delete]").stdout
    assert f"Completed updating config for topic {topic}." in out
    _expect(admin, topic, "retention.ms", "86400000")
    _expect(admin, topic, "cleanup.policy", "compact,delete")

    described = kafka_tool(CONFIG_COMMAND, *bs, *entity, "--describe").stdout
    assert f"Dynamic configs for topic {topic} are:" in described
    assert "retention.ms=86400000 sensitive=false" in described
    assert "cleanup.policy=compact,delete sensitive=false" in described

    kafka_tool(CONFIG_COMMAND, *bs, *entity, "--alter", "--delete-config", "retention.ms")
    _expect(admin, topic, "retention.ms", "604800000", DEFAULT_CONFIG)
    described = kafka_tool(CONFIG_COMMAND, *bs, *entity, "--describe").stdout
    assert "retention.ms=" not in described and "cleanup.policy=compact,delete" in described
    every = kafka_tool(CONFIG_COMMAND, *bs, *entity, "--describe", "--all").stdout
    assert f"All configs for topic {topic} are:" in every
    for line in ("retention.ms=604800000", "segment.bytes=1073741824",
                 "max.message.bytes=1048588", "cleanup.policy=compact,delete"):
        assert f"  {line} sensitive=false" in every, line

    bad = kafka_tool(CONFIG_COMMAND, *bs, *entity, "--alter", "--add-config",
                     "retention.ms=soon", check=False)
    assert bad.returncode != 0
    _expect(admin, topic, "cleanup.policy", "compact,delete")


def test_dynamic_broker_configs(kafka: Backend, kafka_tool: Tool, admin: AdminClient,
                                new_topic: Callable[[int], str]) -> None:
    bs = ["--bootstrap-server", kafka.bootstrap_servers]
    node = str(node_id(admin))
    this_broker = ["--entity-type", "brokers", "--entity-name", node]
    cluster_default = ["--entity-type", "brokers", "--entity-default"]
    topic = new_topic(1)
    try:
        out = kafka_tool(CONFIG_COMMAND, *bs, *cluster_default, "--alter", "--add-config",
                         f"{BROKER_CONFIG}=7200000").stdout
        assert "Completed updating default config for brokers in the cluster." in out
        _expect(admin, topic, TOPIC_CONFIG, "7200000", DYNAMIC_DEFAULT_BROKER_CONFIG)
        described = kafka_tool(CONFIG_COMMAND, *bs, *cluster_default, "--describe").stdout
        assert (f"{BROKER_CONFIG}=7200000 sensitive=false synonyms="
                f"{{DYNAMIC_DEFAULT_BROKER_CONFIG:{BROKER_CONFIG}=7200000}}") in described

        # This broker's own value wins over the cluster default.
        out = kafka_tool(CONFIG_COMMAND, *bs, *this_broker, "--alter", "--add-config",
                         f"{BROKER_CONFIG}=3600000").stdout
        assert f"Completed updating config for broker {node}." in out
        _expect(admin, topic, TOPIC_CONFIG, "3600000", DYNAMIC_BROKER_CONFIG)
        described = kafka_tool(CONFIG_COMMAND, *bs, *this_broker, "--describe").stdout
        assert f"Dynamic configs for broker {node} are:" in described
        assert (f"{BROKER_CONFIG}=3600000 sensitive=false synonyms="
                f"{{DYNAMIC_BROKER_CONFIG:{BROKER_CONFIG}=3600000, "
                f"DYNAMIC_DEFAULT_BROKER_CONFIG:{BROKER_CONFIG}=7200000") in described
        every = kafka_tool(CONFIG_COMMAND, *bs, *this_broker, "--describe", "--all").stdout
        assert f"  {BROKER_CONFIG}=3600000 sensitive=false" in every
        assert "  advertised.listeners=PLAINTEXT://127.0.0.1:" in every
        # A topic's own value still beats both.
        kafka_tool(CONFIG_COMMAND, *bs, "--entity-type", "topics", "--entity-name", topic,
                   "--alter", "--add-config", f"{TOPIC_CONFIG}=1000")
        _expect(admin, topic, TOPIC_CONFIG, "1000", 1)
        kafka_tool(CONFIG_COMMAND, *bs, "--entity-type", "topics", "--entity-name", topic,
                   "--alter", "--delete-config", TOPIC_CONFIG)
    finally:
        kafka_tool(CONFIG_COMMAND, *bs, *this_broker, "--alter", "--delete-config",
                   BROKER_CONFIG, check=False)
        kafka_tool(CONFIG_COMMAND, *bs, *cluster_default, "--alter", "--delete-config",
                   BROKER_CONFIG, check=False)
    _expect(admin, topic, TOPIC_CONFIG, "86400000", DEFAULT_CONFIG)
    assert BROKER_CONFIG not in kafka_tool(CONFIG_COMMAND, *bs, *this_broker,
                                           "--describe").stdout


def test_acls_and_quotas_of_a_cluster_without_security(kafka: Backend, kafka_tool: Tool) -> None:
    """No authorizer: kafka-acls says so; no quotas and no SCRAM users: kafka-configs lists
    none for clients and users."""
    bs = ["--bootstrap-server", kafka.bootstrap_servers]
    acls = kafka_tool(ACL_COMMAND, *bs, "--list", check=False)
    assert acls.returncode != 0
    assert "SecurityDisabledException: No Authorizer is configured on the broker" in acls.stdout
    for entity in ("clients", "users"):
        listed = kafka_tool(CONFIG_COMMAND, *bs, "--entity-type", entity, "--describe")
        assert listed.stdout.strip() == "", entity
    named = kafka_tool(CONFIG_COMMAND, *bs, "--entity-type", "users", "--entity-name", "alice",
                       "--describe")
    assert named.stdout.strip() == ""
