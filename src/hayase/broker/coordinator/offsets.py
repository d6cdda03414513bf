"""Committed offsets: what each group committed per topic-partition, and the records that say so.

Validation (is this member allowed to commit?) is the coordinator's business; this module only
keeps the offsets and turns every change into a `__consumer_offsets` record (Kafka's
OffsetMetadataManager, minus the group rules).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from hayase.broker.coordinator import records as rec
from hayase.broker.coordinator.results import FetchedOffset, Record

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class CommittedOffset:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp_ms: int


class OffsetStore:
    def __init__(self) -> None:
        self._by_group: dict[str, dict[TopicPartition, CommittedOffset]] = {}

    def __len__(self) -> int:
        """The number of groups with committed offsets."""
        return len(self._by_group)

    def __contains__(self, group_id: object) -> bool:
        return group_id in self._by_group

    def group_ids(self) -> list[str]:
        return list(self._by_group)

    def items(self) -> Iterator[tuple[str, dict[TopicPartition, CommittedOffset]]]:
        for group_id, committed in self._by_group.items():
            yield group_id, dict(committed)

    def of(self, group_id: str) -> dict[TopicPartition, CommittedOffset]:
        return dict(self._by_group.get(group_id, {}))

    # -- changes, each with its record ----------------------------------------------------------

    def commit(
        self,
        group_id: str,
        tp: TopicPartition,
        offset: int,
        leader_epoch: int,
        metadata: str,
        now_ms: int,
    ) -> Record:
        self._by_group.setdefault(group_id, {})[tp] = CommittedOffset(
            offset, leader_epoch, metadata, now_ms
        )
        value = rec.OffsetValue(offset, leader_epoch, metadata, now_ms)
        return rec.offset_key(group_id, tp[0], tp[1]), rec.offset_value(value)

    def expire(
        self, group_id: str, expired: Callable[[CommittedOffset], bool]
    ) -> list[Record]:
        """Delete the group's offsets for which `expired` holds; their tombstones."""
        committed = self._by_group.get(group_id, {})
        return self._remove(group_id, [tp for tp, c in committed.items() if expired(c)])

    def delete(self, group_id: str, tps: Sequence[TopicPartition]) -> list[Record]:
        """Delete the group's offsets of these partitions (OffsetDelete); the tombstones of
        those it had."""
        committed = self._by_group.get(group_id, {})
        return self._remove(group_id, [tp for tp in set(tps) if tp in committed])

    def _remove(self, group_id: str, tps: list[TopicPartition]) -> list[Record]:
        committed = self._by_group.get(group_id, {})
        gone = sorted(tps)
        for tp in gone:
            del committed[tp]
        if not committed:
            self._by_group.pop(group_id, None)
        return [(rec.offset_key(group_id, t, p), None) for t, p in gone]

    def delete_group(self, group_id: str) -> list[Record]:
        return self.expire(group_id, lambda _: True)

    def delete_topic(self, topic: str) -> list[Record]:
        """Forget every group's offsets of a deleted topic; their tombstones."""
        out: list[Record] = []
        for group_id in list(self._by_group):
            committed = self._by_group[group_id]
            gone = sorted(tp for tp in committed if tp[0] == topic)
            for tp in gone:
                del committed[tp]
                out.append((rec.offset_key(group_id, tp[0], tp[1]), None))
            if not committed:
                del self._by_group[group_id]
        return out

    # -- queries --------------------------------------------------------------------------------

    def fetch(
        self, group_id: str, topics: Sequence[tuple[str, Sequence[int]]] | None
    ) -> tuple[FetchedOffset, ...]:
        """Committed offsets; `topics=None` asks for all of them. Partitions without a
        committed offset answer offset -1 with no error, as Kafka does."""
        committed = self._by_group.get(group_id, {})
        if topics is None:
            wanted = sorted(committed)
        else:
            wanted = [(topic, p) for topic, partitions in topics for p in partitions]
        found: list[FetchedOffset] = []
        for topic, partition in wanted:
            c = committed.get((topic, partition))
            if c is None:
                found.append(FetchedOffset(topic, partition, -1, -1, ""))
            else:
                found.append(FetchedOffset(topic, partition, c.offset, c.leader_epoch, c.metadata))
        return tuple(found)

    # -- log ------------------------------------------------------------------------------------

    def replay(self, key: rec.OffsetKey, value: bytes | None) -> None:
        if value is None:
            committed = self._by_group.get(key.group_id, {})
            committed.pop((key.topic, key.partition), None)
            if not committed:
                self._by_group.pop(key.group_id, None)
            return
        v = rec.decode_offset_value(value)
        self._by_group.setdefault(key.group_id, {})[(key.topic, key.partition)] = (
            CommittedOffset(v.offset, v.leader_epoch, v.metadata, v.commit_timestamp_ms)
        )

    def snapshot(self) -> list[Record]:
        out: list[Record] = []
        for group_id, committed in self._by_group.items():
            for (topic, partition), c in sorted(committed.items()):
                value = rec.OffsetValue(c.offset, c.leader_epoch, c.metadata, c.commit_timestamp_ms)
                out.append((rec.offset_key(group_id, topic, partition), rec.offset_value(value)))
        return out
