"""Consumer group administration over confluent-kafka's AdminClient: list, describe (members,
committed offsets, lag), reset offsets the way kafka-consumer-groups.sh does, and delete.

The reset plan (`plan_reset`) is a pure function of the committed offsets, the partitions'
watermarks and the offsets found for a timestamp; `GroupAdmin` is the I/O shell around it."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import OffsetSpec

from hayase.client.admin import (
    DEFAULT_TIMEOUT,
    Admin,
    kafka_error,
    kafka_error_code,
    raise_unreachable_or,
)
from hayase.client.errors import BrokerUnreachable, ClientError, TopicNotFound

# librdkafka's "no committed offset" (OFFSET_INVALID)
NO_OFFSET = -1001
# States in which a group has no members, so its offsets may be changed from outside.
INACTIVE_STATES = frozenset({"Empty", "Dead"})

TopicPartition = tuple[str, int]


class GroupNotFound(ClientError):
    def __init__(self, group: str) -> None:
        super().__init__(f"consumer group {group!r} does not exist")
        self.group = group


class GroupNotEmpty(ClientError):
    pass


@dataclass(frozen=True)
class GroupSummary:
    group_id: str
    state: str
    simple: bool


@dataclass(frozen=True)
class Member:
    member_id: str
    client_id: str
    host: str
    group_instance_id: str | None
    assignment: tuple[TopicPartition, ...]


@dataclass(frozen=True)
class PartitionLag:
    """One partition a group has committed to or is assigned: offsets and lag (None when the
    group has no committed offset for it)."""

    topic: str
    partition: int
    committed_offset: int | None
    log_end_offset: int
    client_id: str | None = None

    @property
    def lag(self) -> int | None:
        if self.committed_offset is None:
            return None
        return max(self.log_end_offset - self.committed_offset, 0)


@dataclass
class GroupDescription:
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    coordinator: int
    members: list[Member] = field(default_factory=list)
    partitions: list[PartitionLag] = field(default_factory=list)


# ---------------------------------------------------------------- reset-offsets (pure)


@dataclass(frozen=True)
class ResetSpec:
    """Exactly one of kafka-consumer-groups.sh's scenarios: "earliest", "latest", "offset"
    (value = N), "datetime" (value = epoch ms), "shift" (value = N, may be negative)."""

    scenario: str
    value: int = 0


@dataclass(frozen=True)
class Watermarks:
    earliest: int
    latest: int


def plan_reset(spec: ResetSpec, partitions: Iterable[TopicPartition],
               committed: Mapping[TopicPartition, int],
               watermarks: Mapping[TopicPartition, Watermarks],
               offsets_for_time: Mapping[TopicPartition, int] | None = None,
               ) -> dict[TopicPartition, int]:
    """The new offset of every partition. As in Kafka, an offset outside the log is clamped to
    the earliest or latest offset, and a timestamp after the last record resets to the end."""
    plan: dict[TopicPartition, int] = {}
    for tp in sorted(partitions):
        wm = watermarks[tp]
        if spec.scenario == "earliest":
            target = wm.earliest
        elif spec.scenario == "latest":
            target = wm.latest
        elif spec.scenario == "offset":
            target = spec.value
        elif spec.scenario == "datetime":
            found = (offsets_for_time or {}).get(tp, -1)
            target = wm.latest if found < 0 else found
        elif spec.scenario == "shift":
            if tp not in committed:
                raise ClientError(f"cannot shift the offset of {tp[0]}:{tp[1]}: the group has "
                                  "no committed offset for it (use --to-earliest, --to-latest "
                                  "or --to-offset)")
            target = committed[tp] + spec.value
        else:
            raise ValueError(f"unknown reset scenario {spec.scenario!r}")
        plan[tp] = min(max(target, wm.earliest), wm.latest)
    return plan


def parse_topic_partitions(text: str) -> tuple[str, list[int] | None]:
    """`TOPIC` or `TOPIC:0,1,2` (kafka-consumer-groups.sh's --topic) -> (topic, partitions or
    None for all of them)."""
    topic, sep, parts = text.rpartition(":")
    if not sep:
        return text, None
    try:
        numbers = sorted({int(p) for p in parts.split(",") if p.strip()})
    except ValueError:
        raise ClientError(f"--topic expects TOPIC or TOPIC:P[,P...], got {text!r}") from None
    if not topic or not numbers or min(numbers) < 0:
        raise ClientError(f"--topic expects TOPIC or TOPIC:P[,P...], got {text!r}")
    return topic, numbers


def parse_datetime_ms(text: str) -> int:
    """kafka-consumer-groups.sh's --to-datetime ('YYYY-MM-DDTHH:mm:SS.sss', optionally with a
    zone such as Z or +09:00; without one, the local time zone) -> epoch milliseconds."""
    raw = text.strip()
    if raw.endswith("Z"):
        raw = raw[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise ClientError(f"--to-datetime expects YYYY-MM-DDTHH:mm:SS.sss[zone], got {text!r}"
                          ) from None
    if when.tzinfo is None:
        when = when.astimezone()  # Kafka's tool reads a zone-less time as local time
    return int(when.timestamp() * 1000)


# ---------------------------------------------------------------- the I/O shell


class GroupAdmin:
    """Group operations over one AdminClient (shared with topic administration)."""

    def __init__(self, conf: Mapping[str, object], timeout: float = DEFAULT_TIMEOUT) -> None:
        self.admin = Admin(conf, timeout)
        self.client = self.admin.client
        self.timeout = timeout

    def _wait(self, future: object, what: str) -> object:
        try:
            return future.result(timeout=self.timeout)  # type: ignore[attr-defined]
        except TimeoutError:
            raise BrokerUnreachable(self.admin.bootstrap, f"{what} timed out") from None

    def list_groups(self) -> list[GroupSummary]:
        """Every broker's groups. A broker still loading its share of __consumer_offsets (just
        started, or the topic just created) answers with a retriable error: asked again until
        the timeout, as Kafka's admin client does."""
        self.admin.metadata()  # fail fast and clearly when no broker answers
        deadline = time.monotonic() + self.timeout
        while True:
            future = self.client.list_consumer_groups(request_timeout=self.timeout)
            try:
                result = self._wait(future, "listing consumer groups")
            except KafkaException as e:
                raise_unreachable_or(e, self.admin.bootstrap, "listing consumer groups")
            errors = list(getattr(result, "errors", None) or [])
            if not errors:
                break
            if not all(_retriable(e) for e in errors) or time.monotonic() > deadline:
                raise ClientError(f"listing consumer groups failed: {errors[0]}")
            time.sleep(0.2)
        return sorted((GroupSummary(g.group_id, _state_name(g.state),
                                    bool(g.is_simple_consumer_group))
                       for g in getattr(result, "valid", None) or []),
                      key=lambda g: g.group_id)

    def _describe(self, group: str) -> object:
        self.admin.metadata()
        futures = self.client.describe_consumer_groups([group], request_timeout=self.timeout)
        try:
            return self._wait(futures[group], f"describing group {group!r}")
        except KafkaException as e:
            if kafka_error_code(e) == KafkaError.GROUP_ID_NOT_FOUND:
                raise GroupNotFound(group) from None
            raise_unreachable_or(e, self.admin.bootstrap, f"describing group {group!r}")
            raise

    def committed(self, group: str,
                  partitions: Iterable[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """The group's committed offsets (all of them, or of `partitions`)."""
        tps = None if partitions is None else [KafkaTopicPartition(t, p) for t, p in partitions]
        req = [ConsumerGroupTopicPartitions(group, tps)]
        futures = self.client.list_consumer_group_offsets(req, request_timeout=self.timeout)
        try:
            result = self._wait(futures[group], f"fetching offsets of group {group!r}")
        except KafkaException as e:
            if kafka_error_code(e) == KafkaError.GROUP_ID_NOT_FOUND:
                return {}
            raise_unreachable_or(e, self.admin.bootstrap, f"fetching offsets of {group!r}")
            raise
        return {(tp.topic, tp.partition): tp.offset
                for tp in getattr(result, "topic_partitions", None) or []
                if tp.error is None and tp.offset >= 0}

    def watermarks(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, Watermarks]:
        by_topic: dict[str, list[int]] = {}
        for t, p in partitions:
            by_topic.setdefault(t, []).append(p)
        marks: dict[TopicPartition, Watermarks] = {}
        for topic, parts in sorted(by_topic.items()):
            for p, (lo, hi) in self.admin.offsets(topic, sorted(set(parts))).items():
                marks[(topic, p)] = Watermarks(lo, hi)
        return marks

    def describe_group(self, group: str) -> GroupDescription:
        d = self._describe(group)
        state = _state_name(getattr(d, "state", None))
        members = [Member(m.member_id, m.client_id, m.host, m.group_instance_id,
                          tuple(sorted((tp.topic, tp.partition)
                                       for tp in (m.assignment.topic_partitions or []))))
                   for m in getattr(d, "members", None) or []]
        committed = self.committed(group)
        if state == "Dead" and not members and not committed:
            raise GroupNotFound(group)
        owner = {tp: m.client_id for m in members for tp in m.assignment}
        tps = set(committed) | set(owner)
        marks = self.watermarks(tps)
        coordinator = getattr(getattr(d, "coordinator", None), "id", -1)
        simple = bool(getattr(d, "is_simple_consumer_group", False))
        desc = GroupDescription(group, state, "" if simple else "consumer",
                                getattr(d, "partition_assignor", "") or "", coordinator,
                                sorted(members, key=lambda m: (m.client_id, m.member_id)))
        desc.partitions = [PartitionLag(t, p, committed.get((t, p)), marks[(t, p)].latest,
                                        owner.get((t, p)))
                           for t, p in sorted(tps)]
        return desc

    def topic_lag(self, topic: str, log_end: Mapping[int, int]) -> list[tuple[str, PartitionLag]]:
        """(group, lag) for every group with a committed offset on `topic`: the lag per
        partition that `hayase topic describe` shows."""
        rows: list[tuple[str, PartitionLag]] = []
        tps = [(topic, p) for p in sorted(log_end)]
        for g in self.list_groups():
            committed = self.committed(g.group_id, tps)
            rows += [(g.group_id, PartitionLag(topic, p, committed[(topic, p)], log_end[p]))
                     for _, p in tps if (topic, p) in committed]
        return rows

    def reset_partitions(self, group: str, topics: list[tuple[str, list[int] | None]],
                         all_topics: bool) -> list[TopicPartition]:
        """The partitions --topic/--all-topics select. --all-topics means the topics the group
        has committed offsets for, as in Kafka's tool."""
        if all_topics:
            names = sorted({t for t, _ in self.committed(group)})
            if not names:
                raise ClientError(f"consumer group {group!r} has no committed offsets; name "
                                  "the topics with --topic")
            topics = [(t, None) for t in names]
        selected: set[TopicPartition] = set()
        for topic, parts in topics:
            existing = self.admin.partitions_of(topic)
            for p in parts if parts is not None else existing:
                if p not in existing:
                    raise ClientError(f"topic {topic!r} has no partition {p} "
                                      f"(partitions 0..{len(existing) - 1})")
                selected.add((topic, p))
        return sorted(selected)

    def plan_reset(self, group: str, spec: ResetSpec,
                   partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.require_inactive(group)
        committed = self.committed(group, partitions)
        marks = self.watermarks(partitions)
        found = self.offsets_for_time(partitions, spec.value) if spec.scenario == "datetime" \
            else None
        return plan_reset(spec, partitions, committed, marks, found)

    def require_inactive(self, group: str) -> None:
        """Kafka's rule: offsets are reset only while the group has no members."""
        try:
            d = self._describe(group)
        except GroupNotFound:
            return
        state = _state_name(getattr(d, "state", None))
        members = getattr(d, "members", None) or []
        if state not in INACTIVE_STATES or members:
            raise GroupNotEmpty(
                f"offsets of group {group!r} can only be reset while it is inactive, but its "
                f"state is {state} with {len(members)} member(s); stop its consumers first")

    def offsets_for_time(self, partitions: list[TopicPartition],
                         timestamp_ms: int) -> dict[TopicPartition, int]:
        req = {KafkaTopicPartition(t, p): OffsetSpec.for_timestamp(timestamp_ms)
               for t, p in partitions}
        futures = self.client.list_offsets(req, request_timeout=self.timeout)
        found: dict[TopicPartition, int] = {}
        for tp, fut in futures.items():
            try:
                info = self._wait(fut, "ListOffsets by timestamp")
            except KafkaException as e:
                raise_unreachable_or(e, self.admin.bootstrap, "ListOffsets by timestamp")
            found[(tp.topic, tp.partition)] = info.offset  # type: ignore[attr-defined]
        return found

    def alter_offsets(self, group: str, plan: Mapping[TopicPartition, int]) -> None:
        tps = [KafkaTopicPartition(t, p, o) for (t, p), o in sorted(plan.items())]
        req = [ConsumerGroupTopicPartitions(group, tps)]
        futures = self.client.alter_consumer_group_offsets(req, request_timeout=self.timeout)
        try:
            result = self._wait(futures[group], f"committing offsets of group {group!r}")
        except KafkaException as e:
            if kafka_error_code(e) in (KafkaError.UNKNOWN_MEMBER_ID,
                                       KafkaError.REBALANCE_IN_PROGRESS):
                raise GroupNotEmpty(f"group {group!r} became active while resetting its "
                                    "offsets; nothing was changed") from None
            raise_unreachable_or(e, self.admin.bootstrap, f"committing offsets of {group!r}")
        failed = [tp for tp in getattr(result, "topic_partitions", None) or []
                  if tp.error is not None]
        if failed:
            tp = failed[0]
            raise ClientError(f"committing {tp.topic}:{tp.partition} for group {group!r} "
                              f"failed: {tp.error.str()}")

    def delete_group(self, group: str) -> None:
        self.admin.metadata()
        futures = self.client.delete_consumer_groups([group], request_timeout=self.timeout)
        try:
            self._wait(futures[group], f"deleting group {group!r}")
        except KafkaException as e:
            code = kafka_error_code(e)
            if code == KafkaError.GROUP_ID_NOT_FOUND:
                raise GroupNotFound(group) from None
            if code == KafkaError.NON_EMPTY_GROUP:
                raise GroupNotEmpty(f"consumer group {group!r} is not empty: it has active "
                                    "members; stop its consumers first") from None
            raise_unreachable_or(e, self.admin.bootstrap, f"deleting group {group!r}")


def _retriable(error: object) -> bool:
    """An error list_consumer_groups reports per broker (a KafkaException or KafkaError)."""
    err = kafka_error(error) if isinstance(error, BaseException) else error
    return isinstance(err, KafkaError) and (err.retriable() or err.code() in (
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE))


_KAFKA_STATE_NAMES = {
    "STABLE": "Stable", "EMPTY": "Empty", "DEAD": "Dead",
    "PREPARING_REBALANCING": "PreparingRebalance",
    "COMPLETING_REBALANCING": "CompletingRebalance",
}


def _state_name(state: object) -> str:
    """ConsumerGroupState -> the name Kafka uses (Stable, Empty, PreparingRebalance, ...)."""
    name = str(getattr(state, "name", None) or state or "UNKNOWN").upper()
    return _KAFKA_STATE_NAMES.get(name, "Unknown")


__all__ = ["GroupAdmin", "GroupDescription", "GroupNotEmpty", "GroupNotFound", "GroupSummary",
           "Member", "PartitionLag", "ResetSpec", "TopicNotFound", "Watermarks",
           "parse_datetime_ms", "parse_topic_partitions", "plan_reset"]
