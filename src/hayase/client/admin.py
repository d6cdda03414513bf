"""Topic administration over confluent-kafka's AdminClient: create, list, describe, delete.
Results are plain dataclasses so the CLI (or a test) can render them however it likes."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    ClusterMetadata,
    ConfigResource,
    NewTopic,
    OffsetSpec,
)

from hayase.client.config import quiet_logger
from hayase.client.errors import BrokerUnreachable, ClientError, TopicNotFound

DEFAULT_TIMEOUT = 10.0
_UNREACHABLE = {KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN,
                KafkaError._RESOLVE}
# ListOffsets answers while a partition's leadership moves (a broker restarting, a fresh
# cluster): librdkafka does not flag them retriable there, yet asking again succeeds.
_LEADER_MOVING = {KafkaError.NOT_LEADER_FOR_PARTITION,  # NOT_LEADER_OR_FOLLOWER
                  KafkaError.LEADER_NOT_AVAILABLE,
                  KafkaError.FENCED_LEADER_EPOCH,  # "Leader epoch is older than broker epoch"
                  KafkaError.UNKNOWN_LEADER_EPOCH}  # "... newer than broker epoch"
OFFSETS_RETRY_INTERVAL_S = 0.2
LEADER_WAIT_INTERVAL_S = 0.1


@dataclass(frozen=True)
class TopicSummary:
    name: str
    partitions: int
    internal: bool


@dataclass(frozen=True)
class PartitionDescription:
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    earliest_offset: int
    latest_offset: int


@dataclass(frozen=True)
class ConfigValue:
    name: str
    value: str | None
    is_default: bool
    source: str


@dataclass
class TopicDescription:
    name: str
    partitions: list[PartitionDescription] = field(default_factory=list)
    configs: list[ConfigValue] = field(default_factory=list)

    @property
    def replication_factor(self) -> int:
        return len(self.partitions[0].replicas) if self.partitions else 0


def kafka_error(exc: BaseException) -> KafkaError | None:
    """The KafkaError inside a KafkaException (or None)."""
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def kafka_error_code(exc: BaseException) -> int | None:
    """The code of the KafkaError inside a KafkaException (or None): what a caller compares
    with one KafkaError constant to turn a known refusal into its own exception."""
    err = kafka_error(exc)
    return None if err is None else int(err.code())


def raise_unreachable_or(exc: BaseException, bootstrap: object, what: str) -> None:
    """Turn a librdkafka failure into the ClientError a user should read."""
    err = kafka_error(exc)
    if err is not None and err.code() in _UNREACHABLE:
        raise BrokerUnreachable(bootstrap, err.str()) from None
    detail = err.str() if err is not None else str(exc)
    raise ClientError(f"{what} failed: {detail}") from None


class Admin:
    """A thin owner of one AdminClient; `timeout` bounds every request in seconds."""

    def __init__(self, conf: Mapping[str, object], timeout: float = DEFAULT_TIMEOUT) -> None:
        self.conf = dict(conf)
        self.conf.setdefault("logger", quiet_logger())
        self.bootstrap = self.conf.get("bootstrap.servers")
        self.timeout = timeout
        try:
            self.client = AdminClient(self.conf)  # type: ignore[arg-type]
        except (KafkaException, ValueError, TypeError) as e:
            raise ClientError(f"invalid client configuration: {e}") from None

    def metadata(self) -> ClusterMetadata:
        """All topics' metadata. Asks for every topic (never one by name) so that a broker with
        auto topic creation does not create the topic we only asked about."""
        try:
            return self.client.list_topics(timeout=self.timeout)
        except KafkaException as e:
            raise_unreachable_or(e, self.bootstrap, "metadata request")
            raise  # unreachable: raise_unreachable_or always raises

    def partitions_of(self, topic: str) -> list[int]:
        md = self.metadata().topics.get(topic)
        if md is None or (md.error is not None
                          and md.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
            raise TopicNotFound(topic)
        if md.error is not None:
            raise ClientError(f"topic {topic!r}: {md.error.str()}")
        return sorted(md.partitions)

    def _result(self, future: Any, what: str) -> Any:
        try:
            return future.result(timeout=self.timeout)
        except KafkaException as e:
            raise_unreachable_or(e, self.bootstrap, what)
        except TimeoutError:
            raise BrokerUnreachable(self.bootstrap, f"{what} timed out") from None

    def create_topic(self, name: str, partitions: int = 1, replication_factor: int = 1,
                     configs: Mapping[str, str] | None = None, *,
                     wait_for_leaders: bool = False) -> None:
        """Create topic `name`; with `wait_for_leaders`, return only once every partition has a
        leader (see `wait_for_leaders`)."""
        self.metadata()  # fail fast and clearly when no broker answers
        new = NewTopic(name, num_partitions=partitions, replication_factor=replication_factor,
                       config=dict(configs or {}))
        futures = self.client.create_topics([new], request_timeout=self.timeout)
        try:
            futures[name].result(timeout=self.timeout)
        except KafkaException as e:
            if kafka_error_code(e) == KafkaError.TOPIC_ALREADY_EXISTS:
                raise ClientError(f"topic {name!r} already exists") from None
            raise_unreachable_or(e, self.bootstrap, f"creating topic {name!r}")
        if wait_for_leaders:
            self.wait_for_leaders(name, partitions)

    def wait_for_leaders(self, name: str, partitions: int) -> None:
        """Wait (up to the timeout) until the metadata shows `partitions` partitions of topic
        `name`, each with a leader. Apache Kafka answers CreateTopics before every broker's
        metadata has the topic, so a producer or an assignment made at once may find an unknown
        partition or none to lead it."""
        deadline = time.monotonic() + self.timeout
        while True:
            md = self.metadata().topics.get(name)
            if md is not None and md.error is None and len(md.partitions) == partitions and all(
                    p.leader >= 0 for p in md.partitions.values()):
                return
            if time.monotonic() > deadline:
                raise ClientError(f"topic {name!r}: not all {partitions} partition(s) have a "
                                  f"leader after {self.timeout:g} s")
            time.sleep(LEADER_WAIT_INTERVAL_S)

    def delete_topic(self, name: str) -> None:
        self.partitions_of(name)  # a clear "does not exist" before asking for deletion
        futures = self.client.delete_topics([name], request_timeout=self.timeout)
        try:
            futures[name].result(timeout=self.timeout)
        except KafkaException as e:
            if kafka_error_code(e) == KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise TopicNotFound(name) from None
            raise_unreachable_or(e, self.bootstrap, f"deleting topic {name!r}")

    def list_topics(self, include_internal: bool = True) -> list[TopicSummary]:
        topics = [
            TopicSummary(str(t.topic), len(t.partitions), str(t.topic).startswith("__"))
            for t in self.metadata().topics.values()
            if t.error is None or t.error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART
        ]
        return sorted((t for t in topics if include_internal or not t.internal),
                      key=lambda t: t.name)

    def offsets(self, topic: str, partitions: list[int]) -> dict[int, tuple[int, int]]:
        """partition -> (earliest, latest) offsets, via ListOffsets. Right after a topic is
        created its leaders may not be elected yet, and while a broker restarts its partitions'
        leadership moves: retriable errors and those of a moving leader are retried until the
        timeout."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return self._offsets_once(topic, partitions)
            except KafkaException as e:
                err = kafka_error(e)
                retry = err is not None and (err.retriable() or err.code() in _LEADER_MOVING)
                if not retry or time.monotonic() > deadline:
                    raise_unreachable_or(e, self.bootstrap, f"listing offsets of {topic}")
                time.sleep(OFFSETS_RETRY_INTERVAL_S)

    def _offsets_once(self, topic: str, partitions: list[int]) -> dict[int, tuple[int, int]]:
        result: dict[int, list[int]] = {p: [-1, -1] for p in partitions}
        for slot, spec in enumerate((OffsetSpec.earliest(), OffsetSpec.latest())):
            req = {TopicPartition(topic, p): spec for p in partitions}
            futures = self.client.list_offsets(req, request_timeout=self.timeout)
            for tp, fut in futures.items():
                try:
                    info = fut.result(timeout=self.timeout)
                except TimeoutError:
                    raise BrokerUnreachable(self.bootstrap, "ListOffsets timed out") from None
                result[tp.partition][slot] = info.offset
        return {p: (lo, hi) for p, (lo, hi) in result.items()}

    def topic_configs(self, topic: str) -> list[ConfigValue]:
        res = ConfigResource(ConfigResource.Type.TOPIC, topic)
        futures = self.client.describe_configs([res], request_timeout=self.timeout)
        entries = self._result(futures[res], f"describing configs of {topic}")
        return sorted(
            (ConfigValue(e.name, e.value, bool(e.is_default), _source_name(e.source))
             for e in entries.values()),
            key=lambda c: c.name,
        )

    def describe_topic(self, name: str, with_configs: bool = True) -> TopicDescription:
        md = self.metadata().topics.get(name)
        if md is None or (md.error is not None
                          and md.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
            raise TopicNotFound(name)
        parts = sorted(md.partitions.values(), key=lambda p: p.id)
        offsets = self.offsets(name, [p.id for p in parts])
        desc = TopicDescription(name)
        for p in parts:
            lo, hi = offsets[p.id]
            desc.partitions.append(PartitionDescription(
                p.id, p.leader, tuple(p.replicas), tuple(p.isrs), lo, hi))
        if with_configs:
            desc.configs = self.topic_configs(name)
        return desc


def _source_name(source: object) -> str:
    """ConfigSource enum value -> Kafka's name for it (e.g. DYNAMIC_TOPIC_CONFIG)."""
    from confluent_kafka.admin import ConfigSource

    try:
        return ConfigSource(source).name
    except ValueError:
        return str(source)
