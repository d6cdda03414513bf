import pytest

from hayase.broker.storage import InvalidConfigError, TopicConfig
from hayase.broker.storage.config import DEFAULT_CONFIG, STATIC_BROKER_CONFIG, TOPIC_CONFIG


def test_kafka_defaults() -> None:
    c = TopicConfig.from_kafka({}, {})
    assert c.segment_bytes == 1073741824
    assert c.segment_ms == c.retention_ms == 168 * 3_600_000
    assert c.retention_bytes == -1
    assert c.index_interval_bytes == 4096
    assert c.max_message_bytes == 1048588
    assert c.cleanup_policy == ("delete",) and not c.log_append_time
    assert c.sources["segment.bytes"] == DEFAULT_CONFIG
    assert c.overrides == {}


def test_broker_synonyms_and_precedence() -> None:
    broker = {"log.retention.hours": "2", "log.retention.minutes": "30", "log.roll.hours": "1",
              "log.segment.bytes": "5000", "message.max.bytes": "999", "unrelated.broker.prop": "x"}
    c = TopicConfig.from_kafka({}, broker)
    assert c.retention_ms == 30 * 60_000  # minutes win over hours, as in Kafka
    assert c.segment_ms == 3_600_000
    assert c.segment_bytes == 5000 and c.max_message_bytes == 999
    assert c.sources["retention.ms"] == STATIC_BROKER_CONFIG
    assert TopicConfig.from_kafka({}, {"log.retention.ms": "7", **broker}).retention_ms == 7


def test_topic_configs_override_broker() -> None:
    c = TopicConfig.from_kafka({"retention.ms": "1000", "message.timestamp.type": "LogAppendTime",
                                "cleanup.policy": "compact,delete"}, {"log.retention.ms": "5"})
    assert c.retention_ms == 1000 and c.sources["retention.ms"] == TOPIC_CONFIG
    assert c.log_append_time and c.delete_enabled and "compact" in c.cleanup_policy
    assert c.overrides == {"retention.ms": "1000", "message.timestamp.type": "LogAppendTime",
                           "cleanup.policy": "compact,delete"}
    assert ("retention.ms", "1000", TOPIC_CONFIG) in c.entries()


@pytest.mark.parametrize("configs", [
    {"no.such.config": "1"},
    {"segment.bytes": "abc"},
    {"segment.bytes": "10"},
    {"retention.ms": "-5"},
    {"cleanup.policy": "shred"},
    {"message.timestamp.type": "Now"},
    {"preallocate": "maybe"},
    {"segment.bytes": str(2**31)},
])
def test_invalid_topic_configs(configs) -> None:
    with pytest.raises(InvalidConfigError) as err:
        TopicConfig.from_kafka(configs, {})
    assert err.value.error_code == 40


def test_invalid_broker_default() -> None:
    with pytest.raises(InvalidConfigError, match="log.segment.bytes"):
        TopicConfig.from_kafka({}, {"log.segment.bytes": "huge"})
