"""Starting a persistent query on Kafka: one path for `hayase run` and `hayase server`.

plan -> sink topic -> operator (with ksqlDB's repartition topics named after the query's
consumer group) -> join co-partitioning check -> internal topics (join repartition and FK
subscription topics, the GROUP BY repartition topic, the compacted changelog) -> a started
:class:`~hayase.engine.runtime.QueryWorker`. Both hosts pass their own topic administration
(:class:`Topics`), service id, processing-log topic, state folder and stop event; the query's
semantics are the same in both.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from hayase.client.admin import Admin
from hayase.client.errors import ClientError
from hayase.engine.aggregate import AggregateQuery
from hayase.engine.changelog import CHANGELOG_CONFIGS, changelog_topic
from hayase.engine.joins import JoinQuery, make_query
from hayase.engine.processing_log import INCLUDE_ROWS, ProcessingLog
from hayase.engine.runtime import (
    COMMIT_INTERVAL,
    INTERNAL_REPLICAS,
    PURGE_INTERVAL,
    PURGE_INTERVAL_S,
    REPARTITION_CONFIGS,
    STATEFUL,
    QueryWorker,
    group_id,
)
from hayase.engine.state import RocksDBStore
from hayase.sql.plan import QueryPlan

log = logging.getLogger("hayase.engine.launch")

TOPIC_TIMEOUT_S = 30.0


class Topics(Protocol):
    """The topic administration a launch needs (KafkaTopics, or a server backend)."""

    def ensure_topic(self, name: str, partitions: int | None, replicas: int | None,
                     configs: Mapping[str, str] | None = None) -> None: ...

    def partitions(self, topic: str) -> int | None: ...


class KafkaTopics:
    """Topics on a Kafka cluster through one Admin, with the metadata's lag absorbed: a topic
    created (or seen) here is waited for until every partition has a leader, and its partition
    count is remembered, so that a later metadata answer from a broker that does not know it yet
    (a just-created sink on a three-node cluster) is asked again instead of read as "absent"."""

    def __init__(self, admin: Admin, timeout_s: float = TOPIC_TIMEOUT_S,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.admin = admin
        self.timeout_s = timeout_s
        self.clock = clock
        self.sleep = sleep
        self.known: dict[str, int] = {}  # topics created or seen: partition count

    def _count(self, name: str) -> int | None:
        md = self.admin.metadata().topics.get(name)
        return None if md is None or md.error is not None else len(md.partitions)

    def partitions(self, topic: str) -> int | None:
        """The topic's partition count, None when it does not exist. For a topic known to
        exist, an answer without it is asked again (bounded) before believing it."""
        n = self._count(topic)
        if n is not None or topic not in self.known:
            if n is not None:
                self.known[topic] = n
            return n
        deadline = self.clock() + self.timeout_s
        while n is None and self.clock() < deadline:
            self.sleep(0.1)
            n = self._count(topic)
        if n is None:
            self.known.pop(topic, None)  # deleted by someone else: believe it now
        return n

    def replication_factor(self, topic: str) -> int | None:
        """The topic's replication factor (its partitions' largest replica count), None when
        the metadata does not show it."""
        md = self.admin.metadata().topics.get(topic)
        if md is None or md.error is not None or not md.partitions:
            return None
        return max(len(p.replicas) for p in md.partitions.values()) or None

    def ensure_topic(self, name: str, partitions: int | None, replicas: int | None,
                     configs: Mapping[str, str] | None = None) -> None:
        """Create the topic unless it exists; return once the metadata shows it complete."""
        existing = self._count(name)
        if existing is not None:
            self.known[name] = existing
            return
        expected = partitions or 1
        try:
            self.admin.create_topic(name, expected, replicas or 1, configs)
        except ClientError as e:
            if "already exists" not in str(e):
                raise
            expected = 1  # someone else's topic: its own partition count
        self._await_topic(name, expected)

    def _await_topic(self, name: str, partitions: int) -> None:
        """Wait (bounded) until a just-created topic shows in the metadata with all its
        partitions and their leaders: on Apache Kafka the metadata lags the CreateTopics
        answer, and a query reading it too early would see no topic (a 1-partition sink, an
        unknown changelog partition)."""
        deadline = self.clock() + self.timeout_s
        while True:
            md = self.admin.metadata().topics.get(name)
            if md is not None and md.error is None and len(md.partitions) >= partitions and \
                    all(p.leader >= 0 for p in md.partitions.values()) and \
                    self._leaders_answer(name, sorted(md.partitions)):
                self.known[name] = len(md.partitions)
                return
            if self.clock() >= deadline:
                log.warning("topic %s not complete in the metadata after %.0f s", name,
                            self.timeout_s)
                self.known[name] = partitions
                return
            self.sleep(0.1)

    def _leaders_answer(self, name: str, partitions: list[int]) -> bool:
        """Whether every partition's leader answers ListOffsets: on a fresh Apache Kafka
        cluster a leader named in the metadata may still refuse ("Leader epoch is newer than
        broker epoch", "Not leader for partition") and a first scan of the topic would fail."""
        try:
            self.admin.offsets(name, partitions)
            return True
        except ClientError:
            return False

    def delete_topic(self, name: str) -> None:
        self.known.pop(name, None)
        self.admin.delete_topic(name)


def internal_replicas(properties: Mapping[str, Any]) -> int | None:
    """ksqlDB's ``ksql.internal.topic.replicas``: replication factor of the changelog,
    repartition and processing-log topics (default 1, as in ksqlDB)."""
    value = properties.get(INTERNAL_REPLICAS)
    return int(value) if value not in (None, "") else None


def ensure_sink(plan: QueryPlan, topics: Topics) -> None:
    """The sink topic: PARTITIONS / REPLICAS as given, else the first source's partitions and
    replication factor (ksqlDB's TopicCreateInjector)."""
    sink = plan.sink
    source = plan.sources[0].topic
    partitions = sink.partitions or sink.source.partitions or topics.partitions(source)
    replicas = sink.replicas or sink.source.replicas
    if replicas is None:
        # Optional on a Topics host: one without it keeps the broker's/our default (1).
        source_replicas = getattr(topics, "replication_factor", None)
        replicas = source_replicas(source) if source_replicas is not None else None
    topics.ensure_topic(sink.topic, partitions, replicas)


def store_factory(state_dir: Path, service_id: str,
                  query_id: str) -> Callable[[int], RocksDBStore]:
    base = state_dir / service_id / query_id
    return lambda partition: RocksDBStore(base / str(partition))


def build_query(plan: QueryPlan, properties: Mapping[str, Any], topics: Topics,
                service_id: str, state_dir: Path) -> Any:
    """The query's operator with every topic it reads or writes created (sink, repartition,
    FK subscription, changelog). Raises StatementError for joins ksqlDB (or hayase run) refuses
    (partition counts)."""
    props = dict(properties)
    internal = internal_replicas(props)
    ensure_sink(plan, topics)
    prefix = group_id(service_id, plan.query_id)
    # One processing log per query: each worker drains and produces its own entries.
    query = make_query(plan, ProcessingLog(), props,
                       store_factory(state_dir, service_id, plan.query_id),
                       repartition_prefix=prefix)
    if isinstance(query, JoinQuery):
        if query.aggregate is not None and \
                any((topics.partitions(t) or 1) > 1 for t in query.source_topics):
            # GROUP BY over the join: joined rows move to their group's partition first.
            query.repartition_aggregate(prefix)
        query.check_copartitioning(topics.partitions)
        for name, like in query.internal_topics():  # repartition, FK subscriptions
            topics.ensure_topic(name, topics.partitions(like), internal, REPARTITION_CONFIGS)
    if isinstance(query, AggregateQuery) and not query.groups_by_source_key() and \
            (topics.partitions(query.source_topic) or 1) > 1:
        # Rows move to the partition of their group first (one partition: every group is in
        # the one task already, no topic needed).
        name = query.repartition_through(prefix)
        topics.ensure_topic(name, topics.partitions(query.source_topic), internal,
                            REPARTITION_CONFIGS)
    if isinstance(query, STATEFUL):
        # Task n logs to changelog partition n. A join's tasks are (sub-topology, partition)
        # numbered one sub-topology after the other (an FK join's right table has its own);
        # an aggregation's task p reads partition p of its topics.
        tasks = query.plan_tasks(topics.partitions) if isinstance(query, JoinQuery) else \
            max((topics.partitions(t) or 1) for t in query.source_topics)
        topics.ensure_topic(changelog_topic(service_id, plan.query_id), tasks, internal,
                            CHANGELOG_CONFIGS)
    return query


def launch_query(plan: QueryPlan, properties: Mapping[str, Any], topics: Topics, *,
                 client_conf: Mapping[str, object], service_id: str, log_topic: str,
                 state_dir: Path, stop: threading.Event) -> QueryWorker:
    """Create the query's topics, build it and start its worker (a thread); ``stop`` ends
    it (`hayase run` shares one event between its queries, the server has one per query)."""
    topics.ensure_topic(log_topic, 1, internal_replicas(properties))
    query = build_query(plan, properties, topics, service_id, state_dir)
    include_rows = str(properties.get(INCLUDE_ROWS, "false")).lower() == "true"
    interval = int(properties.get(COMMIT_INTERVAL, 2000))
    purge = float(properties.get(PURGE_INTERVAL, PURGE_INTERVAL_S * 1000))
    worker = QueryWorker(query, client_conf, service_id, log_topic, stop, include_rows,
                         interval, purge)
    worker.start()
    log.info("started %s: %s -> %s", plan.query_id, ", ".join(query.source_topics),
             query.sink_topic)
    return worker
