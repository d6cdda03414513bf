"""Records of the internal compacted topic `__consumer_offsets`.

The layouts are Apache Kafka's (OffsetCommitKey v1 / OffsetCommitValue v3, GroupMetadataKey v2 /
GroupMetadataValue v3, all non-flexible), so the log reads like Kafka's own. Only hayase reads it;
the format is stable from here on. A None value is a tombstone: compaction drops the key.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

OFFSETS_TOPIC = "__consumer_offsets"

_OFFSET_KEY_VERSION = 1
_GROUP_KEY_VERSION = 2
_OFFSET_VALUE_VERSION = 3
_GROUP_VALUE_VERSION = 3


class CorruptRecordError(ValueError):
    """A `__consumer_offsets` record that cannot be decoded."""


@dataclass(frozen=True)
class OffsetKey:
    group_id: str
    topic: str
    partition: int


@dataclass(frozen=True)
class GroupKey:
    group_id: str


@dataclass(frozen=True)
class OffsetValue:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp_ms: int


@dataclass(frozen=True)
class MemberValue:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True)
class GroupValue:
    protocol_type: str
    generation_id: int
    protocol_name: str | None
    leader_id: str | None
    state_timestamp_ms: int
    members: tuple[MemberValue, ...]


# -- writer ------------------------------------------------------------------------------------


class _Writer:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def i16(self, v: int) -> _Writer:
        self.parts.append(struct.pack(">h", v))
        return self

    def i32(self, v: int) -> _Writer:
        self.parts.append(struct.pack(">i", v))
        return self

    def i64(self, v: int) -> _Writer:
        self.parts.append(struct.pack(">q", v))
        return self

    def string(self, v: str | None) -> _Writer:
        if v is None:
            return self.i16(-1)
        data = v.encode()
        self.i16(len(data))
        self.parts.append(data)
        return self

    def bytes_(self, v: bytes | None) -> _Writer:
        if v is None:
            return self.i32(-1)
        self.i32(len(v))
        self.parts.append(bytes(v))
        return self

    def build(self) -> bytes:
        return b"".join(self.parts)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def _take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise CorruptRecordError(f"record truncated at byte {self.pos} (needs {n} more)")
        view = self.data[self.pos : self.pos + n]
        self.pos += n
        return view

    def i16(self) -> int:
        return int(struct.unpack(">h", self._take(2))[0])

    def i32(self) -> int:
        return int(struct.unpack(">i", self._take(4))[0])

    def i64(self) -> int:
        return int(struct.unpack(">q", self._take(8))[0])

    def nullable_string(self) -> str | None:
        n = self.i16()
        if n == -1:
            return None
        try:
            return bytes(self._take(n)).decode()
        except UnicodeDecodeError as e:
            raise CorruptRecordError(f"invalid UTF-8 string at byte {self.pos}") from e

    def string(self) -> str:
        s = self.nullable_string()
        if s is None:
            raise CorruptRecordError(f"null where a string is required at byte {self.pos}")
        return s

    def bytes_(self) -> bytes:
        n = self.i32()
        return b"" if n == -1 else bytes(self._take(n))


# -- encode ------------------------------------------------------------------------------------


def offset_key(group_id: str, topic: str, partition: int) -> bytes:
    return (
        _Writer().i16(_OFFSET_KEY_VERSION).string(group_id).string(topic).i32(partition).build()
    )


def group_key(group_id: str) -> bytes:
    return _Writer().i16(_GROUP_KEY_VERSION).string(group_id).build()


def offset_value(v: OffsetValue) -> bytes:
    return (
        _Writer()
        .i16(_OFFSET_VALUE_VERSION)
        .i64(v.offset)
        .i32(v.leader_epoch)
        .string(v.metadata)
        .i64(v.commit_timestamp_ms)
        .build()
    )


def group_value(v: GroupValue) -> bytes:
    w = _Writer().i16(_GROUP_VALUE_VERSION)
    w.string(v.protocol_type).i32(v.generation_id).string(v.protocol_name).string(v.leader_id)
    w.i64(v.state_timestamp_ms).i32(len(v.members))
    for m in v.members:
        w.string(m.member_id).string(m.group_instance_id).string(m.client_id)
        w.string(m.client_host).i32(m.rebalance_timeout_ms).i32(m.session_timeout_ms)
        w.bytes_(m.subscription).bytes_(m.assignment)
    return w.build()


# -- decode ------------------------------------------------------------------------------------


def decode_key(data: bytes) -> OffsetKey | GroupKey | None:
    """The key's meaning, or None for a key version hayase does not write (skipped on replay)."""
    r = _Reader(data)
    version = r.i16()
    if version in (0, 1):
        return OffsetKey(r.string(), r.string(), r.i32())
    if version == 2:
        return GroupKey(r.string())
    return None


def decode_offset_value(data: bytes) -> OffsetValue:
    r = _Reader(data)
    version = r.i16()
    if version not in (1, 3):
        raise CorruptRecordError(f"unknown offset commit value version {version}")
    offset = r.i64()
    leader_epoch = r.i32() if version >= 3 else -1
    metadata = r.string()
    commit_ts = r.i64()
    return OffsetValue(offset, leader_epoch, metadata, commit_ts)


def decode_group_value(data: bytes) -> GroupValue:
    r = _Reader(data)
    version = r.i16()
    if version != _GROUP_VALUE_VERSION:
        raise CorruptRecordError(f"unknown group metadata value version {version}")
    protocol_type = r.string()
    generation = r.i32()
    protocol = r.nullable_string()
    leader = r.nullable_string()
    ts = r.i64()
    count = r.i32()
    if count < 0:
        raise CorruptRecordError(f"negative member count {count}")
    members = []
    for _ in range(count):
        members.append(
            MemberValue(
                member_id=r.string(),
                group_instance_id=r.nullable_string(),
                client_id=r.string(),
                client_host=r.string(),
                rebalance_timeout_ms=r.i32(),
                session_timeout_ms=r.i32(),
                subscription=r.bytes_(),
                assignment=r.bytes_(),
            )
        )
    return GroupValue(protocol_type, generation, protocol, leader, ts, tuple(members))


def java_string_hash(s: str) -> int:
    """Java's String.hashCode over UTF-16 code units, as a signed 32-bit int."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(group_id: str, num_partitions: int) -> int:
    """Kafka's choice of `__consumer_offsets` partition for a group (Utils.abs(hash) % n)."""
    return (java_string_hash(group_id) & 0x7FFFFFFF) % num_partitions
