"""A C*AS sink without REPLICAS gets its source topic's replication factor (ksqlDB's
TopicCreateInjector): hayase.engine.launch.ensure_sink with fake topics, KafkaTopics reading
the factor from the metadata, and the launch path on the embedded broker."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from hayase.client.admin import Admin
from hayase.engine.launch import KafkaTopics, ensure_sink
from hayase.sql import Session  # type: ignore[attr-defined]
from hayase.sql.plan import QueryPlan
from hayase.testing.brokers import Backend


class FakeTopics:
    def __init__(self, rf: dict[str, int]) -> None:
        self.rf = rf
        self.created: dict[str, tuple[int | None, int | None]] = {}

    def ensure_topic(self, name: str, partitions: int | None, replicas: int | None,
                     configs: Mapping[str, str] | None = None) -> None:
        self.created[name] = (partitions, replicas)

    def partitions(self, topic: str) -> int | None:
        return 2

    def replication_factor(self, topic: str) -> int | None:
        return self.rf.get(topic)


def _plan(source_topic: str, with_clause: str = "") -> QueryPlan:
    sql = (f"CREATE STREAM S (ID INT KEY, V STRING) WITH (KAFKA_TOPIC='{source_topic}', "
           f"VALUE_FORMAT='JSON'); CREATE STREAM OUT {with_clause} AS SELECT * FROM S;")
    plans = [r for r in Session({}).execute(sql) if isinstance(r, QueryPlan)]
    assert len(plans) == 1
    return plans[0]


def test_sink_without_replicas_gets_the_source_topics_factor() -> None:
    topics = FakeTopics({"s": 3})
    ensure_sink(_plan("s"), topics)
    assert topics.created == {"OUT": (2, 3)}


def test_replicas_in_the_with_clause_win() -> None:
    topics = FakeTopics({"s": 3})
    ensure_sink(_plan("s", "WITH (REPLICAS=2)"), topics)
    assert topics.created == {"OUT": (2, 2)}


def test_kafka_topics_reads_the_factor_from_the_metadata() -> None:
    part = SimpleNamespace(replicas=[1, 2, 3], leader=1)
    md = {"s": SimpleNamespace(error=None, partitions={0: part, 1: part})}
    admin: Any = SimpleNamespace(metadata=lambda: SimpleNamespace(topics=md))
    topics = KafkaTopics(admin)
    assert topics.replication_factor("s") == 3
    assert topics.replication_factor("missing") is None


class Recording(KafkaTopics):
    def __init__(self, admin: Admin) -> None:
        super().__init__(admin)
        self.asked: dict[str, int | None] = {}

    def ensure_topic(self, name: str, partitions: int | None, replicas: int | None,
                     configs: Mapping[str, str] | None = None) -> None:
        self.asked[name] = replicas
        super().ensure_topic(name, partitions, replicas, configs)


def test_launch_path_on_the_embedded_broker(embedded_kafka: Backend) -> None:
    topics = Recording(Admin({"bootstrap.servers": embedded_kafka.bootstrap_servers}))
    source = f"rf-src-{uuid.uuid4().hex[:8]}"
    topics.ensure_topic(source, 2, 1)
    plan = _plan(source)
    ensure_sink(plan, topics)
    # One broker: factor 1, but read from the source topic's metadata, not defaulted.
    assert topics.asked[plan.sink.topic] == 1
    assert topics.partitions(plan.sink.topic) == 2
    assert topics.replication_factor(plan.sink.topic) == 1
    topics.delete_topic(plan.sink.topic)
    topics.delete_topic(source)


def test_server_creates_its_command_topic_with_the_internal_replicas() -> None:
    from hayase.server.backend import MemoryBackend
    from hayase.server.engine import KsqlServer, command_topic_name

    class Recording(MemoryBackend):
        asked: dict[str, int | None] = {}

        def ensure_topic(self, name: str, partitions: int | None, replicas: int | None,
                         configs: Mapping[str, str] | None = None) -> None:
            self.asked[name] = replicas
            super().ensure_topic(name, partitions, replicas, configs)

    backend = Recording()
    server = KsqlServer(backend, "svc_", {"ksql.internal.topic.replicas": "3"})
    server.start()
    server.close()
    assert backend.asked[command_topic_name("svc_")] == 3
