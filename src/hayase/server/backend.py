"""Where the server's topics and persistent queries live.

Two implementations of one small interface:

- :class:`KafkaBackend`: any Kafka cluster through confluent-kafka; persistent queries are the
  engine runtime's :class:`~hayase.engine.runtime.QueryWorker` threads (one consumer group per
  query, as ksqlDB names them), so they resume from their committed offsets after a restart.
- :class:`MemoryBackend`: in-process topics, queries run synchronously on produce (the engine's
  own operators, like the test driver). Used by unit tests and the REST conformance runner.

Both give the server what ksqlDB's REST layer needs: create/delete/list topics, produce
(INSERT INTO ... VALUES, /inserts-stream), scan a topic to its current end (pull queries),
tail a topic from the earliest or latest offset (push queries), and start/stop persistent
queries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from hayase.client.partitioners import kafka_partition
from hayase.engine.processing_log import ProcessingLog
from hayase.engine.record import Headers, OutputRecord, Record
from hayase.sql.plan import QueryPlan

log = logging.getLogger("hayase.server.backend")


class BackendError(Exception):
    """A topic or query operation the backend could not do (message for the client)."""


class Subscription(Protocol):
    def poll(self, timeout: float) -> list[Record]: ...

    def close(self) -> None: ...


class Backend(Protocol):
    def ensure_topic(self, name: str, partitions: int | None, replicas: int | None,
                     configs: Mapping[str, str] | None = None) -> None: ...

    def delete_topic(self, name: str) -> None: ...

    def topics(self) -> dict[str, int]: ...

    def partitions(self, topic: str) -> int | None: ...

    def replication_factor(self, topic: str) -> int | None: ...

    def replica_info(self) -> dict[str, list[int]]:
        """Each topic's partitions' replica counts (SHOW TOPICS' replicaInfo)."""
        ...

    def produce(self, topic: str, key: bytes | None, value: bytes | None,
                timestamp: int | None, headers: Headers = ()) -> None: ...

    def scan(self, topic: str) -> list[Record]: ...

    def tail(self, topic: str, earliest: bool) -> Subscription: ...

    def start_query(self, plan: QueryPlan, properties: Mapping[str, Any],
                    paused: bool = False) -> None:
        """Start a persistent query; ``paused``: as PAUSE left it (a restart's replay), to
        process nothing until RESUME."""
        ...

    def stop_query(self, query_id: str) -> None: ...

    def pause_query(self, query_id: str) -> None:
        """PAUSE: the query stops processing; its position and state are kept."""
        ...

    def resume_query(self, query_id: str) -> None:
        """RESUME: the query goes on from where PAUSE left it."""
        ...

    def query_stats(self, query_id: str) -> dict[str, int]: ...

    def close(self) -> None: ...


def _now_ms() -> int:
    return int(time.time() * 1000)


# ============================================================================ memory


class _MemorySubscription:
    def __init__(self, backend: MemoryBackend, topic: str, start: int) -> None:
        self.backend = backend
        self.topic = topic
        self.position = start
        self.closed = False

    def poll(self, timeout: float) -> list[Record]:
        b = self.backend
        with b.cond:
            if len(b.logs[self.topic]) <= self.position and not self.closed:
                b.cond.wait(timeout)
            records = b.logs[self.topic][self.position:]
            self.position += len(records)
            return records

    def close(self) -> None:
        self.closed = True


class MemoryBackend:
    """Topics as in-memory lists (records placed in partitions as Kafka's Java producer
    places them, in one list per topic in write order); persistent queries process every record
    as it is produced, recursively through queries reading their sinks."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.logs: dict[str, list[Record]] = defaultdict(list)
        self.partition_counts: dict[str, int] = {}
        self.replica_counts: dict[str, int] = {}  # REPLICAS given at creation
        self.next_offsets: dict[tuple[str, int], int] = defaultdict(int)
        self.queries: dict[str, Any] = {}
        self.stats: dict[str, dict[str, int]] = {}
        # Paused queries: the records they have not processed yet, in order.
        self.paused: dict[str, list[Record]] = {}
        self.processing_log = ProcessingLog()

    def ensure_topic(self, name: str, partitions: int | None, replicas: int | None,
                     configs: Mapping[str, str] | None = None) -> None:
        with self.cond:
            if name not in self.partition_counts:
                self.replica_counts[name] = replicas or 1
            self.partition_counts.setdefault(name, partitions or 1)
            self.logs.setdefault(name, [])

    def delete_topic(self, name: str) -> None:
        with self.cond:
            self.partition_counts.pop(name, None)
            self.replica_counts.pop(name, None)
            self.logs.pop(name, None)
            for tp in [tp for tp in self.next_offsets if tp[0] == name]:
                del self.next_offsets[tp]

    def topics(self) -> dict[str, int]:
        with self.cond:
            return dict(self.partition_counts)

    def partitions(self, topic: str) -> int | None:
        with self.cond:
            return self.partition_counts.get(topic)

    def replication_factor(self, topic: str) -> int | None:
        with self.cond:
            if topic not in self.partition_counts:
                return None
            return self.replica_counts.get(topic, 1)  # created by a write: the default

    def replica_info(self) -> dict[str, list[int]]:
        with self.cond:
            return {t: [self.replica_counts.get(t, 1)] * n
                    for t, n in self.partition_counts.items()}

    def produce(self, topic: str, key: bytes | None, value: bytes | None,
                timestamp: int | None, headers: Headers = ()) -> None:
        ts = _now_ms() if timestamp is None else int(timestamp)
        self._write([OutputRecord(topic, key, value, ts, headers)])

    def _write(self, pending: list[OutputRecord]) -> None:
        """Append the records, and what the queries reading them produce, recursively."""
        with self.cond:
            while pending:
                rec = self._append(pending.pop(0))
                for qid, query in list(self.queries.items()):
                    if rec.topic in query.source_topics:
                        if qid in self.paused:
                            self.paused[qid].append(rec)
                            continue
                        pending.extend(self._process(qid, query, rec))
                self.processing_log.drain()
            self.cond.notify_all()

    def _process(self, query_id: str, query: Any, rec: Record) -> list[OutputRecord]:
        """One record through a query, counted in its stats."""
        outs = query.process(rec)
        st = self.stats[query_id]
        st["consumed"] += 1
        st["produced"] += len(outs)
        return outs

    def _append(self, out: OutputRecord) -> Record:
        """Append to the topic's log in the partition Kafka's Java producer would choose
        (murmur2 of the key bytes; a record without a key goes to partition 0), at that
        partition's next offset; the log keeps the order records were written in."""
        n = self.partition_counts.setdefault(out.topic, 1)
        partition = out.partition
        if partition is None:
            placed_by = out.partition_key if out.partition_key is not None else out.key
            partition = kafka_partition(placed_by, n) if placed_by is not None and n > 1 else 0
        offset = self.next_offsets[(out.topic, partition)]
        self.next_offsets[(out.topic, partition)] = offset + 1
        rec = Record(out.topic, partition, offset, out.timestamp, out.key, out.value,
                     out.headers)
        self.logs[out.topic].append(rec)
        return rec

    def scan(self, topic: str) -> list[Record]:
        with self.cond:
            return list(self.logs.get(topic, []))

    def tail(self, topic: str, earliest: bool) -> Subscription:
        with self.cond:
            start = 0 if earliest else len(self.logs[topic])
        return _MemorySubscription(self, topic, start)

    def start_query(self, plan: QueryPlan, properties: Mapping[str, Any],
                    paused: bool = False) -> None:
        from hayase.engine.joins import make_query
        from hayase.engine.upgrade import carry_state

        outputs = []
        with self.cond:
            query = make_query(plan, self.processing_log, dict(properties))
            old = self.queries.get(plan.query_id)
            if old is not None:
                # CREATE OR REPLACE: ksqlDB's in-place upgrade. The new plan goes on from the
                # old one's state and position (nothing consumed is read again, no earliest
                # replay); from now on records go through the new plan only, those a paused
                # query held back too.
                carry_state(old, query)
                self.queries[plan.query_id] = query
                held = self.paused.pop(plan.query_id, [])
                if paused:
                    self.paused[plan.query_id] = held
                else:
                    outputs = [out for rec in held for out in query.process(rec)]
                self._write(outputs)
                return
            self.queries[plan.query_id] = query
            self.stats[plan.query_id] = {"consumed": 0, "produced": 0}
            if paused:
                self.paused[plan.query_id] = []
            # ksqlDB's persistent queries start from the latest offsets unless
            # auto.offset.reset=earliest; then the records already there are processed too.
            if str(properties.get("auto.offset.reset", "latest")).lower() == "earliest":
                for t in query.source_topics:
                    for rec in self.logs.get(t, []):
                        if paused:
                            self.paused[plan.query_id].append(rec)
                        else:
                            outputs.extend(query.process(rec))
        self._write(outputs)

    def stop_query(self, query_id: str) -> None:
        with self.cond:
            query = self.queries.pop(query_id, None)
            self.paused.pop(query_id, None)
        if query is not None and hasattr(query, "close"):
            query.close()

    def consumer_counts(self) -> dict[str, tuple[int, int]]:
        """topic -> (consumers, groups): each persistent query is one group of one member."""
        out: dict[str, tuple[int, int]] = {}
        with self.cond:
            for query in self.queries.values():
                for t in query.source_topics:
                    n = out.get(t, (0, 0))[0] + 1
                    out[t] = (n, n)
        return out

    def pause_query(self, query_id: str) -> None:
        with self.cond:
            if query_id in self.queries:
                self.paused.setdefault(query_id, [])

    def resume_query(self, query_id: str) -> None:
        """The records that came while the query was paused are processed now, in order."""
        outputs = []
        with self.cond:
            backlog = self.paused.pop(query_id, None)
            query = self.queries.get(query_id)
            if backlog is None or query is None:
                return
            for rec in backlog:
                outputs.extend(self._process(query_id, query, rec))
            self.processing_log.drain()
        self._write(outputs)

    def query_stats(self, query_id: str) -> dict[str, int]:
        if query_id not in self.stats:
            return {}
        # Running queries process each record as it is produced: only a paused one is behind.
        return {**self.stats[query_id], "lag": len(self.paused.get(query_id, ()))}

    def close(self) -> None:
        for qid in list(self.queries):
            self.stop_query(qid)
        with self.cond:
            self.cond.notify_all()


# ============================================================================ kafka


class _KafkaSubscription:
    def __init__(self, conf: Mapping[str, object], topic: str,
                 starts: Mapping[int, int]) -> None:
        """``starts``: partition -> first offset to read."""
        from confluent_kafka import Consumer, TopicPartition

        self.consumer = Consumer({**conf, "group.id": f"_hayase-transient-{time.time_ns()}",
                                  "enable.auto.commit": False, "enable.partition.eof": False})
        self.consumer.assign([TopicPartition(topic, p, o) for p, o in starts.items()])

    def poll(self, timeout: float) -> list[Record]:
        from hayase.engine.runtime import _as_bytes

        out: list[Record] = []
        for msg in self.consumer.consume(num_messages=500, timeout=timeout):
            if msg.error() is not None:
                continue
            _, ts = msg.timestamp()
            raw: Any = msg.headers()
            headers = tuple((str(h[0]), _as_bytes(h[1])) for h in raw) if raw else ()
            key: Any = msg.key()
            value: Any = msg.value()
            out.append(Record(msg.topic() or "", msg.partition() or 0, msg.offset() or 0, ts,
                              _as_bytes(key), _as_bytes(value), headers))
        return out

    def close(self) -> None:
        self.consumer.close()


class KafkaBackend:
    """Topics on a Kafka cluster; persistent queries as the engine runtime's workers."""

    def __init__(self, client_conf: Mapping[str, object], service_id: str,
                 state_dir: Path, processing_log_topic: str) -> None:
        from confluent_kafka import Producer

        from hayase.client.admin import Admin
        from hayase.client.config import quiet_logger
        from hayase.engine.launch import KafkaTopics

        self.conf: dict[str, object] = {**client_conf, "logger": quiet_logger()}
        self.service_id = service_id
        self.state_dir = state_dir
        self.log_topic = processing_log_topic
        self.admin = Admin(self.conf)
        self.kafka_topics = KafkaTopics(self.admin)
        self.producer = Producer({**self.conf, "partitioner": "murmur2_random",
                                  "linger.ms": 0})
        self.workers: dict[str, tuple[Any, threading.Event]] = {}
        # What started each query, to start a paused one again (PAUSE stops its worker: the
        # consumer group keeps its committed offsets and the changelogs its state).
        self.launched: dict[str, tuple[QueryPlan, dict[str, Any]]] = {}
        self.paused: set[str] = set()
        self.lock = threading.Lock()

    # -------------------------------------------------------------- topics
    def ensure_topic(self, name: str, partitions: int | None, replicas: int | None,
                     configs: Mapping[str, str] | None = None) -> None:
        """Create the topic unless it exists; returns once the metadata shows it (so that a
        following scan/produce sees it)."""
        from hayase.client.errors import ClientError

        try:
            self.kafka_topics.ensure_topic(name, partitions, replicas, configs)
        except ClientError as e:
            raise BackendError(str(e)) from None

    def delete_topic(self, name: str) -> None:
        from hayase.client.errors import ClientError

        try:
            self.kafka_topics.delete_topic(name)
        except ClientError as e:
            log.warning("could not delete topic %s: %s", name, e)

    def topics(self) -> dict[str, int]:
        return {t.name: t.partitions for t in self.admin.list_topics(include_internal=False)}

    def reachable(self, timeout: float) -> bool:
        """Whether the cluster answers a metadata request within ``timeout`` seconds
        (/healthcheck's kafka check)."""
        from confluent_kafka import KafkaException

        try:
            self.admin.client.list_topics(timeout=timeout)
        except KafkaException:
            return False
        return True

    def partitions(self, topic: str) -> int | None:
        return self.kafka_topics.partitions(topic)

    def replication_factor(self, topic: str) -> int | None:
        """From the broker's metadata: DESCRIBE shows it, and a C*AS sink without REPLICAS
        gets its source topic's (hayase.engine.launch)."""
        return self.kafka_topics.replication_factor(topic)

    def replica_info(self) -> dict[str, list[int]]:
        """From one metadata answer (not one per topic); without Kafka's internal topics,
        as :meth:`topics`."""
        return {str(name): [len(md.partitions[p].replicas) for p in sorted(md.partitions)]
                for name, md in self.admin.metadata().topics.items()
                if md.error is None and not str(name).startswith("__")}

    # -------------------------------------------------------------- records
    def produce(self, topic: str, key: bytes | None, value: bytes | None,
                timestamp: int | None, headers: Headers = ()) -> None:
        kwargs: dict[str, Any] = {}
        if timestamp is not None:
            kwargs["timestamp"] = int(timestamp)
        if headers:
            kwargs["headers"] = list(headers)
        failure: list[str] = []

        def on_delivery(err: Any, msg: Any) -> None:
            if err is not None:
                failure.append(err.str())

        with self.lock:
            self.producer.produce(topic, value=value, key=key, on_delivery=on_delivery, **kwargs)
            remaining = self.producer.flush(30)
        if remaining or failure:
            raise BackendError(f"could not write to {topic}: "
                               f"{failure[0] if failure else 'not acknowledged'}")

    def scan(self, topic: str) -> list[Record]:
        """Every record of the topic up to the end offsets seen when the scan starts."""
        n = self.partitions(topic)
        if n is None:
            return []
        offsets = self.admin.offsets(topic, list(range(n)))
        ends = {p: hi for p, (_lo, hi) in offsets.items()}
        sub = _KafkaSubscription(self.conf, topic, {p: lo for p, (lo, _hi) in offsets.items()})
        out: list[Record] = []
        try:
            positions = {p: -1 for p in ends}
            deadline = time.monotonic() + 30
            while any(positions[p] + 1 < ends[p] for p in ends):
                if time.monotonic() > deadline:
                    raise BackendError(f"timed out reading {topic}")
                for rec in sub.poll(0.2):
                    if rec.offset < ends.get(rec.partition, 0):
                        out.append(rec)
                        positions[rec.partition] = rec.offset
        finally:
            sub.close()
        return out

    def tail(self, topic: str, earliest: bool) -> Subscription:
        n = self.partitions(topic)
        if n is None:
            raise BackendError(f"topic {topic} does not exist")
        # Concrete start offsets (not "latest" resolved later by the consumer): every record
        # written after this call returns is seen.
        offsets = self.admin.offsets(topic, list(range(n)))
        return _KafkaSubscription(self.conf, topic, {p: lo if earliest else hi
                                                     for p, (lo, hi) in offsets.items()})

    # -------------------------------------------------------------- queries
    def start_query(self, plan: QueryPlan, properties: Mapping[str, Any],
                    paused: bool = False) -> None:
        """The query's topics, operator and worker exactly as `hayase run` makes them
        (hayase.engine.launch), with this server's service id, processing-log topic and
        state folder; topics go through :meth:`ensure_topic` (subclasses may refine it).
        A query the engine refuses (join partition counts) raises BackendError."""
        from hayase.engine.launch import launch_query
        from hayase.sql.errors import KsqlError

        # CREATE OR REPLACE of a running query (same query id): ksqlDB's in-place upgrade. The
        # old worker stops first (it commits its offsets and its changelog); the new plan's
        # worker then runs in the same consumer group over the same state, so it goes on from
        # there: nothing consumed is read again, and only the new plan writes from now on.
        self._stop_worker(plan.query_id)
        self.paused.discard(plan.query_id)
        if paused:  # its worker starts at RESUME
            self.launched[plan.query_id] = (plan, dict(properties))
            self.paused.add(plan.query_id)
            return
        stop = threading.Event()
        try:
            worker = launch_query(plan, properties, self, client_conf=self.conf,
                                  service_id=self.service_id, log_topic=self.log_topic,
                                  state_dir=self.state_dir, stop=stop)
        except KsqlError as e:
            raise BackendError(str(e)) from None
        self.workers[plan.query_id] = (worker, stop)
        self.launched[plan.query_id] = (plan, dict(properties))

    def stop_query(self, query_id: str) -> None:
        self.launched.pop(query_id, None)
        self.paused.discard(query_id)
        self._stop_worker(query_id)

    def _stop_worker(self, query_id: str) -> None:
        entry = self.workers.pop(query_id, None)
        if entry is not None:
            worker, stop = entry
            stop.set()
            worker.join(30)

    def pause_query(self, query_id: str) -> None:
        if query_id in self.launched and query_id not in self.paused:
            self.paused.add(query_id)
            self._stop_worker(query_id)

    def resume_query(self, query_id: str) -> None:
        if query_id in self.paused:
            self.paused.discard(query_id)
            plan, properties = self.launched[query_id]
            self.start_query(plan, properties)

    def query_stats(self, query_id: str) -> dict[str, int]:
        entry = self.workers.get(query_id)
        if entry is None:
            return {}
        worker = entry[0]
        st = worker.stats
        out = {"consumed": st.consumed, "produced": st.produced}
        lag = self._lag(worker)
        if lag is not None:
            out["lag"] = lag
        return out

    def consumer_counts(self) -> dict[str, tuple[int, int]]:
        """topic -> (members assigned a partition of it, groups with such a member), over
        every consumer group of the cluster (SHOW TOPICS EXTENDED)."""
        from confluent_kafka import KafkaException

        try:
            listed = self.admin.client.list_consumer_groups(request_timeout=10).result()
            ids = [g.group_id for g in listed.valid]
            if not ids:
                return {}
            consumers: dict[str, int] = defaultdict(int)
            groups: dict[str, set[str]] = defaultdict(set)
            for gid, fut in self.admin.client.describe_consumer_groups(
                    ids, request_timeout=10).items():
                for member in fut.result().members:
                    assignment = member.assignment
                    for topic in {tp.topic for tp in (assignment.topic_partitions
                                                      if assignment else [])}:
                        consumers[topic] += 1
                        groups[topic].add(gid)
        except KafkaException as e:
            raise BackendError(f"Failed to list consumer groups: {e}") from None
        return {t: (consumers[t], len(groups[t])) for t in consumers}

    def _lag(self, worker: Any) -> int | None:
        """End offsets of the query's source topics minus its group's committed offsets."""
        from confluent_kafka import ConsumerGroupTopicPartitions

        from hayase.engine.runtime import group_id

        try:
            gid = group_id(self.service_id, worker.query.query_id)
            futures = self.admin.client.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(gid)])
            committed = {(tp.topic, tp.partition): tp.offset
                         for tp in futures[gid].result(timeout=5).topic_partitions}
            total = 0
            for topic in worker.query.source_topics:
                n = self.partitions(topic) or 0
                for p, (lo, hi) in self.admin.offsets(topic, list(range(n))).items():
                    done = committed.get((topic, p), -1)
                    total += hi - (done if done >= 0 else lo)
            return total
        except Exception:  # metrics are best effort: no lag rather than a failed overview
            return None

    def close(self) -> None:
        for qid in list(self.workers):
            self.stop_query(qid)
        self.producer.flush(10)
