"""Sends generated events to Kafka: topic creation, a bounded send (check mode) and a paced,
endless send (the demo). Keys are placed like the Java client (murmur2), so the pipeline's
co-partitioned joins see an impression and its clicks in the same partition number."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import orjson
from confluent_kafka import KafkaError, Message, Producer

from hayase.ads.generator import APP_EVENTS, CAMPAIGNS, TOPICS, Event
from hayase.client.admin import Admin
from hayase.client.config import quiet_logger
from hayase.client.errors import ClientError

PARTITIONS = 3
# The campaign master data is a compacted topic: the table is a view of the log.
TOPIC_CONFIGS: dict[str, dict[str, str]] = {CAMPAIGNS: {"cleanup.policy": "compact"}}


def cluster_replicas(client_conf: Mapping[str, object]) -> int:
    """The replication factor of every topic the ads platform creates: min(3, brokers), as a
    production ksqlDB sets ksql.internal.topic.replicas (1 on a one-broker cluster, where a
    larger factor cannot be placed)."""
    return max(1, min(3, len(Admin(dict(client_conf)).metadata().brokers)))


def create_topics(client_conf: Mapping[str, object], prefix: str = "",
                  replicas: int = 1, topics: Iterable[str] = TOPICS) -> None:
    admin = Admin(dict(client_conf))
    existing = admin.metadata().topics
    for t in topics:
        name = prefix + t
        if name in existing and existing[name].error is None:
            continue
        try:
            admin.create_topic(name, PARTITIONS, replicas, TOPIC_CONFIGS.get(t))
        except ClientError as e:
            if "already exists" not in str(e):
                raise


@dataclass
class SendStats:
    sent: dict[str, int]
    acked: int = 0
    failed: int = 0
    last_event_ms: int = 0


class EventSender:
    """Produces events (idempotent, acks=all); counts per topic; raises on a failed delivery
    at flush time, so a check never compares against data that was not written."""

    def __init__(self, client_conf: Mapping[str, object], prefix: str = "",
                 skip_topics: Iterable[str] = ()) -> None:
        self.prefix = prefix
        self.skip = set(skip_topics)
        self.producer = Producer({**client_conf, "enable.idempotence": True, "acks": "all",
                                  "linger.ms": 5, "partitioner": "murmur2_random",
                                  "logger": quiet_logger()})
        self.stats = SendStats({t: 0 for t in TOPICS})
        self._errors: list[str] = []

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.stats.acked += 1
        else:
            self.stats.failed += 1
            self._errors.append(f"{msg.topic()}: {err.str()}")

    def send(self, e: Event) -> None:
        if e.topic in self.skip:
            return
        value = orjson.dumps(e.value) if e.value is not None else None
        while True:
            try:
                self.producer.produce(self.prefix + e.topic, value, e.key.encode(),
                                      timestamp=e.timestamp, on_delivery=self._delivered)
                break
            except BufferError:
                self.producer.poll(0.05)
        self.producer.poll(0)
        self.stats.sent[e.topic] += 1
        self.stats.last_event_ms = e.timestamp

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self.producer.flush(timeout)
        if remaining or self._errors:
            raise ClientError(f"{remaining} records not acknowledged; errors: "
                              f"{self._errors[:3]}")


def send_all(sender: EventSender, events: Iterable[Event]) -> None:
    for e in events:
        sender.send(e)
    sender.flush()


def send_paced(sender: EventSender, events: Iterable[Event], stop: threading.Event,
               clock: Callable[[], float] = time.time, speedup: float = 1.0) -> None:
    """Send each event when the wall clock reaches its send time. ``speedup`` > 1 compresses
    time, but an event is never sent before the wall clock reaches its own send time: event
    time catches up with the clock (events generated from start_ms in the past) and then runs
    in real time. Why: a broker refuses records from the future (Apache Kafka 4:
    message.timestamp.after.max.ms, 1 hour by default), and a late click carries a timestamp
    up to hours after its impression. Returns when ``stop`` is set; what was produced is
    flushed (nothing handed to the producer is lost)."""
    t0 = clock()
    first: int | None = None
    try:
        for e in events:
            if first is None:
                first = e.send_ms
            due = max(t0 + (e.send_ms - first) / 1000.0 / speedup, e.send_ms / 1000.0)
            while not stop.is_set():
                wait = due - clock()
                if wait <= 0:
                    break
                sender.producer.poll(min(wait, 0.2))
            if stop.is_set():
                return
            sender.send(e)
    finally:
        sender.flush(30)


__all__ = ["APP_EVENTS", "EventSender", "cluster_replicas", "create_topics", "send_all",
           "send_paced"]
