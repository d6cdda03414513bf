"""The Kafka shell around the operators: `hayase run` (ksqlDB's headless mode).

Each persistent query is a consumer-group member (group ``_confluent-ksql-<service id>query_<id>``)
reading its source topic and producing to its sink through confluent-kafka. Delivery is
at-least-once: a batch's offsets are committed only after the producer has had every record of
the batch acknowledged. Records that fail go to the processing log (Python logging and the
processing-log topic) and processing continues. ``stop()`` (SIGTERM in the CLI) finishes the
current batch, commits it, and leaves the group.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from hayase.client.admin import Admin
from hayase.client.config import quiet_logger
from hayase.client.errors import ClientError
from hayase.client.partitioners import kafka_partition
from hayase.engine.aggregate import AggregateQuery
from hayase.engine.changelog import (
    CHANGELOG_NEXT,
    ChangelogError,
    ChangelogWriter,
    changelog_topic,
    restore,
)
from hayase.engine.joins import JoinQuery
from hayase.engine.ordering import TimestampMerger
from hayase.engine.processing_log import DEFAULT_TOPIC
from hayase.engine.query import StatelessQuery
from hayase.engine.record import OutputRecord, Record
from hayase.formats import key_serde, value_serde
from hayase.sql.plan import DdlResult, InsertValues, QueryPlan

log = logging.getLogger("hayase.engine.runtime")

REBALANCE_ERRORS = frozenset({KafkaError.UNKNOWN_MEMBER_ID, KafkaError.ILLEGAL_GENERATION,
                              KafkaError.REBALANCE_IN_PROGRESS})

# A group coordinator moving (broker restart): OffsetFetch is asked again, not fatal.
COORDINATOR_ERRORS = frozenset({KafkaError.NOT_COORDINATOR,
                                KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                                KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError._WAIT_COORD,
                                KafkaError._TIMED_OUT})
COMMITTED_RETRY_S = 60.0
COMMITTED_RETRY_INTERVAL_S = 0.5

# Queries with state stores (changelog, restore, offsets kept in state).
STATEFUL = (AggregateQuery, JoinQuery)

SERVICE_ID = "ksql.service.id"
STATE_DIR = "ksql.streams.state.dir"  # Kafka Streams' state.dir, as ksqlDB passes it through
DEFAULT_STATE_DIR = "/tmp/hayase-streams"
# Stateful queries commit outputs, state and offsets together this often (ksqlDB's default).
COMMIT_INTERVAL = "ksql.streams.commit.interval.ms"
PURGE_INTERVAL = "ksql.streams.repartition.purge.interval.ms"
PROCESSING_LOG_TOPIC = "ksql.logging.processing.topic.name"
INTERNAL_REPLICAS = "ksql.internal.topic.replicas"
BATCH_SIZE = 500
FETCH_QUEUE_BACKOFF_MS = 50
# Kafka Streams' repartition topics keep records regardless of their (event) timestamps; the
# records a query has consumed and committed are purged (RepartitionPurge) every 30 s, as
# Kafka Streams' repartition.purge.interval.ms.
REPARTITION_CONFIGS = {"cleanup.policy": "delete", "retention.ms": "-1"}
PURGE_INTERVAL_S = 30.0


# Python's cyclic GC for a streaming process: with the default first-generation threshold (700
# allocations) state entries that live a few thousand records (a window's counts) are promoted to
# the oldest generation, whose full collections then scan the whole state again and again (about
# 15% of a windowed count's time). 50,000 lets them die young; the process keeps the setting.
GC_THRESHOLDS = (50_000, 20, 10)


def tune_gc() -> None:
    if gc.get_threshold()[0] < GC_THRESHOLDS[0]:
        gc.set_threshold(*GC_THRESHOLDS)


class DeliveryFailed(Exception):
    pass


def _as_bytes(data: Any) -> bytes | None:
    if data is None or isinstance(data, bytes):
        return data
    return str(data).encode("utf-8")


def _record_factory() -> Callable[..., Record]:
    """``Record(topic, partition, offset, timestamp, key, value, headers)`` for the consume
    loop, without the frozen dataclass's ``__init__`` (an ``object.__setattr__`` per field: a
    tenth of a windowed count's time): the slots are set through their descriptors. The same
    object; falls back to the class if its fields ever change."""
    names = ("topic", "partition", "offset", "timestamp", "key", "value", "headers")
    if tuple(f.name for f in fields(Record)) != names or "__slots__" not in vars(Record):
        return Record
    new = object.__new__
    s_topic, s_partition, s_offset, s_timestamp, s_key, s_value, s_headers = (
        vars(Record)[n].__set__ for n in names)

    def make(topic: str, partition: int, offset: int, timestamp: int, key: bytes | None,
             value: bytes | None, headers: tuple[tuple[str, bytes | None], ...]) -> Record:
        r = new(Record)
        s_topic(r, topic)
        s_partition(r, partition)
        s_offset(r, offset)
        s_timestamp(r, timestamp)
        s_key(r, key)
        s_value(r, value)
        s_headers(r, headers)
        return r

    return make


_new_record = _record_factory()


def _partition_task(_topic: str, partition: int) -> int:
    return partition


def group_id(service_id: str, query_id: str) -> str:
    return f"_confluent-ksql-{service_id}query_{query_id}"


@dataclass
class QueryStats:
    consumed: int = 0
    produced: int = 0
    committed_batches: int = 0
    errors: list[str] = field(default_factory=list)


class RepartitionPurge:
    """Kafka Streams' repartition purge: records of repartition topics below the offsets a
    stateful query committed are deleted (DeleteRecords), at most every ``interval_s``. The
    state reflects them and keeps their offsets: no task reads them again."""

    def __init__(self, conf: Mapping[str, object], topics: set[str],
                 interval_s: float = PURGE_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic, admin: Any = None) -> None:
        self.conf = dict(conf)
        self.topics = topics
        self.interval_s = interval_s
        self.clock = clock
        self._due: dict[tuple[str, int], int] = {}
        self._next = clock() + interval_s
        self._admin: Any = admin  # an AdminClient, made at the first purge

    def committed(self, offsets: Mapping[tuple[str, int], int]) -> None:
        for tp, offset in offsets.items():
            if tp[0] in self.topics:
                self._due[tp] = offset
        if not self._due or self.clock() < self._next:
            return
        self._next = self.clock() + self.interval_s
        due, self._due = self._due, {}
        if self._admin is None:
            self._admin = AdminClient(self.conf)  # type: ignore[arg-type]
        futures = self._admin.delete_records([TopicPartition(t, p, o) for (t, p), o in
                                              due.items()], request_timeout=30)
        for future in futures.values():
            future.add_done_callback(self._done)

    @staticmethod
    def _done(future: Any) -> None:
        try:
            future.result()
        except Exception as e:  # noqa: BLE001 - a purge failing only delays the next one
            log.info("repartition purge failed: %s", e)


class QueryWorker:
    """One persistent query on Kafka: poll a batch, process, produce, flush, commit."""

    def __init__(self, query: StatelessQuery | AggregateQuery | JoinQuery, client_conf: Mapping[str, object],
                 service_id: str, processing_log_topic: str,
                 stop: threading.Event, include_rows: bool = False,
                 commit_interval_ms: int = 2000,
                 purge_interval_ms: float = PURGE_INTERVAL_S * 1000) -> None:
        self.query = query
        self.include_rows = include_rows
        self.stop_event = stop
        self.log_topic = processing_log_topic
        self.stats = QueryStats()
        self.client_conf = dict(client_conf)
        base = dict(client_conf)
        base.setdefault("logger", quiet_logger())
        self.consumer = Consumer({
            **base,
            "group.id": group_id(service_id, query.query_id),
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            # librdkafka postpones the next fetch by fetch.queue.backoff.ms (1 s by default)
            # once queued.min.messages are waiting; a query that drains them in less than that
            # then idles: bare consumption of 1M records on one partition took 2.4-3.6 s with
            # the default and 0.9 s with 50 ms.
            "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS,
            # Partition p of every topic with the same partition count to one member: a task
            # (state store, changelog partition) spans partition p of the topics of its
            # sub-topology, which are co-partitioned (see JoinQuery.task_of).
            "partition.assignment.strategy": "range",
        })
        self.producer = Producer({
            **base,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "partitioner": "murmur2_random",  # the Java client's placement of keyed records
        })
        self._failure: str | None = None
        self._pending: dict[tuple[str, int], int] = {}  # offsets processed, not committed
        self._partition_counts: dict[str, int] = {}
        self.commit_interval_s = commit_interval_ms / 1000.0
        self._next_commit = time.monotonic() + self.commit_interval_s
        self.changelog: ChangelogWriter | None = None
        if isinstance(query, STATEFUL):
            self.changelog = ChangelogWriter(self.producer,
                                             changelog_topic(service_id, query.query_id))
        # Internal topics this query reads (repartition): named after its group.
        internal = {t for t in query.source_topics
                    if t.startswith(group_id(service_id, query.query_id) + "-")}
        self._purge = RepartitionPurge(base, internal, purge_interval_ms / 1000.0) \
            if internal else None
        # The query's own loop over a batch's plain records (aggregations: see batch_path).
        self._batch_path = query.batch_path() if isinstance(query, AggregateQuery) else None
        # Task of a consumed partition: a join's (sub-topology, partition), else the partition.
        self._task_of: Callable[[str, int], int] = query.task_of \
            if isinstance(query, JoinQuery) else _partition_task
        # Joins: one timestamp merger per sub-topology (a task reads only its own topics).
        self._mergers: list[TimestampMerger] = []
        self._merger_of: dict[str, TimestampMerger] = {}
        if isinstance(query, JoinQuery):
            for topics in query.subtopologies():
                merger = TimestampMerger(
                    topics, self._lag, timestamp=lambda m: m.timestamp()[1],
                    topic_of=lambda m: m.topic(), partition_of=lambda m: m.partition())
                self._mergers.append(merger)
                self._merger_of.update(dict.fromkeys(topics, merger))
        self.thread = threading.Thread(target=self._run, name=f"query-{query.query_id}",
                                       daemon=True)

    def start(self) -> None:
        tune_gc()
        self.thread.start()

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._failure = f"delivery to {msg.topic()} failed: {err.str()}"

    def _partition_for(self, topic: str, key: bytes) -> int:
        n = self._partition_counts.get(topic)
        if n is None:
            md = self.producer.list_topics(topic, timeout=10).topics.get(topic)
            n = len(md.partitions) if md is not None and md.partitions else 1
            self._partition_counts[topic] = n
        return 0 if n == 1 else kafka_partition(key, n)

    def _produce(self, out: OutputRecord) -> None:
        partition = out.partition
        if partition is None and out.partition_key is not None:
            partition = self._partition_for(out.topic, out.partition_key)
        while True:
            try:
                if out.headers or partition is not None:
                    kwargs: dict[str, Any] = {"headers": list(out.headers)}
                    if partition is not None:
                        kwargs["partition"] = partition
                    self.producer.produce(out.topic, out.value, out.key, timestamp=out.timestamp,
                                          on_delivery=self._on_delivery, **kwargs)
                else:
                    self.producer.produce(out.topic, out.value, out.key, timestamp=out.timestamp,
                                          on_delivery=self._on_delivery)
                return
            except BufferError:
                self.producer.poll(0.1)

    def _record(self, msg: Message) -> Record:
        _, ts = msg.timestamp()
        raw: Any = msg.headers()
        headers = tuple((str(h[0]), _as_bytes(h[1])) for h in raw) if raw else ()
        key: Any = msg.key()
        value: Any = msg.value()
        if key is not None and type(key) is not bytes:
            key = _as_bytes(key)
        if value is not None and type(value) is not bytes:
            value = _as_bytes(value)
        return _new_record(msg.topic() or "", msg.partition() or 0, msg.offset() or 0, ts,
                           key, value, headers)

    def process_batch(self, messages: list[Message]) -> None:
        offsets = self._pending
        process, produce, record = self.query.process, self._produce, self._record
        batch_path = self._batch_path
        consumed = produced = 0
        i, n = 0, len(messages)
        while i < n:
            if batch_path is not None:  # the plain records in one call; the others below
                j = batch_path(messages, i, offsets)
                consumed += j - i
                if j >= n:
                    break
                i = j
            msg = messages[i]
            i += 1
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("%s: consumer error: %s", self.query.query_id, err.str())
                continue
            rec = record(msg)
            outputs = process(rec)
            if outputs:
                for out in outputs:
                    produce(out)
                produced += len(outputs)
            offsets[(rec.topic, rec.partition)] = rec.offset + 1
            consumed += 1
        self.stats.consumed += consumed
        self.stats.produced += produced
        for entry in self.query.log.drain():
            self._produce(OutputRecord(self.log_topic, None, entry.to_json(self.include_rows),
                                       entry.time_ms))
        if self.changelog is not None and time.monotonic() < self._next_commit:
            # Stateful: outputs, state and offsets are committed together every
            # commit.interval.ms (fewer changelog records: a key updated many times in an
            # interval is logged once).
            return
        self.commit_pending()

    def commit_pending(self) -> None:
        """Outputs acknowledged, then the state (changelog first, then the local store) with
        the input offsets it reflects, then those offsets in the consumer group."""
        offsets = self._pending
        self._pending = {}
        self._next_commit = time.monotonic() + self.commit_interval_s
        remaining = self.producer.flush(30)
        if remaining or self._failure:
            raise DeliveryFailed(self._failure or f"{remaining} records not acknowledged")
        task_of = self._task_of
        tasks = sorted({task_of(t, p) for t, p in offsets})
        for task in tasks:
            self._commit_state(task)
        if isinstance(self.query, STATEFUL):
            for task in tasks:  # what the query sends once a commit is durable (markers)
                for out in self.query.after_commit(task):
                    self._produce(out)
        if offsets:
            try:
                self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in
                                              offsets.items()], asynchronous=False)
            except KafkaException as e:
                if e.args[0].code() not in REBALANCE_ERRORS:
                    raise
                # The group moved on (a member joined or died): the partitions go to their
                # new owner, which resumes from the offsets kept in the state (stateful
                # queries) or from the last commit (at-least-once). Not fatal.
                log.info("%s: commit skipped during a rebalance: %s", self.query.query_id,
                         e.args[0].str())
                return
            self.stats.committed_batches += 1
            if self._purge is not None:
                self._purge.committed(offsets)

    def _commit_state(self, partition: int) -> None:  # partition: the task (changelog's)
        query, writer = self.query, self.changelog
        if writer is None or not isinstance(query, STATEFUL):
            return

        store = query.state(partition).store

        def write_changelog(changes: list[tuple[Any, Any]]) -> None:
            # The metadata entry (last) learns where the changelog now ends: local only.
            # Before images come from the store before it writes (the last commit).
            changes[-1][1][CHANGELOG_NEXT] = writer.write(partition, changes, store.committed)

        query.commit(partition, write_changelog)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Restore each assigned partition's state from its changelog before processing, and
        resume from the offsets that state reflects; a stateless query resumes from the
        group's committed offsets, read here and assigned explicitly."""
        query = self.query
        if isinstance(query, STATEFUL) and self.changelog is not None:
            topic = self.changelog.topic
            # A task spans partition p of several topics (a join's sides, a repartition
            # topic, the topics of one sub-topology): restore once. Its changelog partition
            # is its number.
            restored: dict[int, Any] = {}
            for tp in partitions:
                task = self._task_of(tp.topic, tp.partition)
                if task in restored:
                    applied = restored[task].offsets.get((tp.topic, tp.partition))
                    tp.offset = OFFSET_BEGINNING if applied is None else applied
                    continue
                st = query.state(task)

                def progress(done: int, total: int, t: int = task) -> None:
                    log.info("%s: restoring partition %d of %s: %d/%d records",
                             query.query_id, t, topic, done, total)

                n = restore(self.client_conf, topic, task, st.store, progress,
                            writer=self.changelog)
                if n:
                    query.close_partition(task)  # reopen: offsets, index from store
                    st = query.state(task)
                log.info("%s: task %d state ready (%d changelog records restored)",
                         query.query_id, task, n)
                restored[task] = st
                for out in query.after_restore(task):  # before anything is processed
                    self._produce(out)
                # The state is the truth about positions: a group offset the restored state
                # does not reflect was committed by a member that lost the partition before
                # its changelog reached us; resuming there would skip records.
                applied = st.offsets.get((tp.topic, tp.partition))
                tp.offset = OFFSET_BEGINNING if applied is None else applied
            if isinstance(query, JoinQuery):
                self._replay_ends(consumer, query, partitions)
        else:
            # Explicit offsets for stateless queries too: librdkafka's own OffsetFetch can
            # leave a partition waiting for good after a request-level NOT_COORDINATOR
            # (librdkafka#5586, seen after a broker restart).
            for tp, got in zip(partitions, self._committed(consumer, partitions), strict=True):
                # No committed offset: the consumer's auto.offset.reset (earliest).
                tp.offset = got.offset if got.offset >= 0 else OFFSET_BEGINNING
        consumer.assign(partitions)

    def _replay_ends(self, consumer: Consumer, query: JoinQuery,
                     partitions: list[TopicPartition]) -> None:
        """Tell an FK join where its registration partitions end now (JoinQuery.replay_until);
        unknown: all of it may be a replay."""
        registrations = set(query.registration_topics())
        for tp in partitions:
            if tp.topic in registrations:
                try:
                    end = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition),
                                                         timeout=10)[1]
                except KafkaException as e:
                    log.warning("%s: end of %s-%d unknown (%s): its subscriptions are all "
                                "answered", query.query_id, tp.topic, tp.partition, e)
                    end = 2**63 - 1
                query.replay_until(tp.topic, tp.partition, end)

    def _committed(self, consumer: Consumer,
                   partitions: list[TopicPartition]) -> list[TopicPartition]:
        """The group's committed offsets of these partitions, asking again while the group
        coordinator moves (bounded by COMMITTED_RETRY_S; then the KafkaException stops the
        query with a clear error instead of a silent stall)."""
        asked = [TopicPartition(tp.topic, tp.partition) for tp in partitions]
        deadline = time.monotonic() + COMMITTED_RETRY_S
        while True:
            try:
                got: list[TopicPartition] = consumer.committed(asked, timeout=10)
                failed = next((tp.error for tp in got if tp.error is not None), None)
                if failed is None:
                    return got
                raise KafkaException(failed)
            except KafkaException as e:
                code = e.args[0].code() if e.args and isinstance(e.args[0], KafkaError) \
                    else None
                if code not in COORDINATOR_ERRORS or time.monotonic() >= deadline:
                    raise
                log.info("%s: committed offsets not available yet (%s), asking again",
                         self.query.query_id, e.args[0].str())
                time.sleep(COMMITTED_RETRY_INTERVAL_S)

    def _lag(self, topic: str, partition: int) -> bool | None:
        """Whether the broker has records of this partition not yet returned by the consumer
        (None: cannot tell yet). Uses the watermarks cached from fetch responses."""
        tp = TopicPartition(topic, partition)
        try:
            low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            position = self.consumer.position([tp])[0].offset
        except KafkaException:
            return None
        if high < 0:
            return None
        if position < 0:
            return None if high > low else False
        return position < high

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        query = self.query
        for tp in partitions:
            merger = self._merger_of.get(tp.topic)
            if merger is not None:
                merger.forget((tp.partition,))
        if isinstance(query, STATEFUL):
            if self._pending:
                self.commit_pending()  # the state of what was processed goes with the task
            for task in {self._task_of(tp.topic, tp.partition) for tp in partitions}:
                query.close_partition(task)

    def _in_task_order(self, batch: list[Message]) -> list[Message]:
        """What may be processed now, each task's records in timestamp order."""
        if len(self._mergers) == 1:
            self._mergers[0].add(m for m in batch if m.error() is None)
            return self._mergers[0].ready(time.monotonic())
        merger_of = self._merger_of
        for m in batch:
            if m.error() is None:
                merger_of[m.topic() or ""].add((m,))
        now = time.monotonic()
        return [m for merger in self._mergers for m in merger.ready(now)]

    def _run(self) -> None:
        try:
            self.consumer.subscribe(list(self.query.source_topics), on_assign=self._on_assign,
                                    on_revoke=self._on_revoke)
            while not self.stop_event.is_set():
                batch = self.consumer.consume(num_messages=BATCH_SIZE, timeout=0.2)
                if self._mergers:  # joins: Kafka Streams' timestamp order
                    batch = self._in_task_order(batch)
                if batch:
                    self.process_batch(batch)
                elif self._pending and time.monotonic() >= self._next_commit:
                    self.commit_pending()  # idle: commit what the last batches did
        except (KafkaException, DeliveryFailed, ChangelogError) as e:
            self.stats.errors.append(str(e))
            log.error("%s stopped: %s", self.query.query_id, e)
            self.stop_event.set()
        finally:
            if self._pending and not self.stats.errors:
                try:
                    self.commit_pending()
                except (KafkaException, DeliveryFailed, ChangelogError) as e:
                    log.warning("%s: final commit failed: %s", self.query.query_id, e)
            self.producer.flush(10)
            self.consumer.close()
            if isinstance(self.query, STATEFUL):
                self.query.close()


class HeadlessRuntime:
    """Runs a SQL file's statements and persistent queries against a Kafka cluster."""

    def __init__(self, sql: str, client_conf: Mapping[str, object],
                 properties: Mapping[str, str] | None = None) -> None:
        from hayase.engine.launch import KafkaTopics  # launch imports this module
        from hayase.sql import Session  # type: ignore[attr-defined]

        self.client_conf = dict(client_conf)
        self.properties = dict(properties or {})
        self.service_id = self.properties.get(SERVICE_ID, "default_")
        self.log_topic = self.properties.get(
            PROCESSING_LOG_TOPIC,
            DEFAULT_TOPIC if self.service_id == "default_" else
            f"{self.service_id}ksql_processing_log")
        self.session = Session(dict(self.properties))
        self.sql = sql
        self.stop_event = threading.Event()
        self.workers: list[QueryWorker] = []
        self.topics = KafkaTopics(Admin(self.client_conf))

    def _delete_topic(self, name: str) -> None:
        try:
            self.topics.delete_topic(name)
        except ClientError as e:
            log.warning("could not delete topic %s: %s", name, e)

    def start(self) -> None:
        """Execute every statement; create topics; start one worker per persistent query
        (hayase.engine.launch: the same path as `hayase server`)."""
        from hayase.engine import launch

        self.topics.ensure_topic(self.log_topic, 1,
                                 launch.internal_replicas(self.session_properties()))
        pending_inserts: list[InsertValues] = []
        plans: list[QueryPlan] = []
        for result in self.session.execute(self.sql):
            if isinstance(result, DdlResult):
                for t in result.topics_to_create:
                    self.topics.ensure_topic(t.name, t.partitions, t.replicas)
                terminated = set(result.queries_to_terminate)
                plans = [p for p in plans if p.query_id not in terminated]
                for name in result.topics_to_delete:  # DROP ... DELETE TOPIC
                    self._delete_topic(name)
            elif isinstance(result, QueryPlan):
                # Now: a later statement reading this sink sizes its own sink after it.
                launch.ensure_sink(result, self.topics)
                # CREATE OR REPLACE reuses the query id: the last plan runs, in its place.
                ids = [p.query_id for p in plans]
                if result.query_id in ids:
                    plans[ids.index(result.query_id)] = result
                else:
                    plans.append(result)
            elif isinstance(result, InsertValues):
                pending_inserts.append(result)
        self._insert(pending_inserts)
        props = self.session_properties()
        state_dir = Path(str(props.get(STATE_DIR, DEFAULT_STATE_DIR)))
        for plan in plans:
            self.workers.append(launch.launch_query(
                plan, props, self.topics, client_conf=self.client_conf,
                service_id=self.service_id, log_topic=self.log_topic, state_dir=state_dir,
                stop=self.stop_event))

    def session_properties(self) -> dict[str, Any]:
        props = getattr(self.session, "properties", None)
        return dict(props) if props else dict(self.properties)

    def _insert(self, inserts: list[InsertValues]) -> None:
        if not inserts:
            return
        producer = Producer({**self.client_conf, "partitioner": "murmur2_random",
                             "logger": quiet_logger()})
        for iv in inserts:
            t = iv.target
            key = key_serde(t.key_format, t.schema.key).serialize(tuple(iv.key))
            value = value_serde(t.value_format, t.schema.value).serialize(tuple(iv.value))
            if iv.timestamp is not None:
                producer.produce(t.topic, value=value, key=key, timestamp=int(iv.timestamp))
            else:
                producer.produce(t.topic, value=value, key=key)
        if producer.flush(30):
            raise DeliveryFailed("INSERT INTO ... VALUES records were not acknowledged")

    def stop(self) -> None:
        self.stop_event.set()

    def wait(self) -> None:
        """Block until stop() (or a fatal worker error), then let every worker finish."""
        while not self.stop_event.wait(0.5):
            pass
        for w in self.workers:
            w.join(30)

    @property
    def failed(self) -> bool:
        return any(w.stats.errors for w in self.workers)
