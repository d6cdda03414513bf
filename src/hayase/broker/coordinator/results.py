"""What the coordinator answers, independent of any protocol version.

`Output` is what every coordinator call returns: records for `__consumer_offsets` and replies.
The shell must append `records` (and flush them when the durability mode asks for it) before it
sends any of `replies`: an answered OffsetCommit or SyncGroup is then always in the log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kio.schema.errors import ErrorCode

Record = tuple[bytes, bytes | None]


@dataclass(frozen=True)
class JoinedMember:
    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True)
class JoinResult:
    error: ErrorCode
    member_id: str
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    skip_assignment: bool = False
    members: tuple[JoinedMember, ...] = ()


@dataclass(frozen=True)
class SyncResult:
    error: ErrorCode
    assignment: bytes = b""
    protocol_type: str | None = None
    protocol_name: str | None = None


@dataclass(frozen=True)
class HeartbeatResult:
    error: ErrorCode


@dataclass(frozen=True)
class LeftMember:
    member_id: str
    group_instance_id: str | None
    error: ErrorCode


@dataclass(frozen=True)
class LeaveResult:
    error: ErrorCode
    members: tuple[LeftMember, ...] = ()


@dataclass(frozen=True)
class PartitionError:
    topic: str
    partition: int
    error: ErrorCode


@dataclass(frozen=True)
class CommitResult:
    partitions: tuple[PartitionError, ...]


@dataclass(frozen=True)
class FetchedOffset:
    topic: str
    partition: int
    offset: int
    leader_epoch: int
    metadata: str
    error: ErrorCode = ErrorCode.none


@dataclass(frozen=True)
class FetchResult:
    group_id: str
    error: ErrorCode
    partitions: tuple[FetchedOffset, ...] = ()


@dataclass(frozen=True)
class DescribedMember:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True)
class GroupDescription:
    group_id: str
    error: ErrorCode
    state: str
    protocol_type: str
    protocol_data: str
    members: tuple[DescribedMember, ...] = ()
    error_message: str | None = None


@dataclass(frozen=True)
class DescribeResult:
    groups: tuple[GroupDescription, ...]


@dataclass(frozen=True)
class ListedGroup:
    group_id: str
    protocol_type: str
    state: str


@dataclass(frozen=True)
class ListResult:
    error: ErrorCode
    groups: tuple[ListedGroup, ...]


@dataclass(frozen=True)
class DeleteResult:
    results: tuple[tuple[str, ErrorCode], ...]


@dataclass(frozen=True)
class OffsetDeleteResult:
    error: ErrorCode
    partitions: tuple[PartitionError, ...] = ()


@dataclass
class Output:
    """Records to append to `__consumer_offsets`, then replies to send (token, result)."""

    records: list[Record] = field(default_factory=list)
    replies: list[tuple[Any, Any]] = field(default_factory=list)

    def extend(self, other: Output) -> None:
        self.records.extend(other.records)
        self.replies.extend(other.replies)
