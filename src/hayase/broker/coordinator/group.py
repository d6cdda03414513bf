"""One classic consumer group: its members, its state machine and its timers.

Names follow Apache Kafka's ClassicGroup / ClassicGroupMember. The group holds plain data;
the rules of each API live in coordinator.py. Deadlines are absolute milliseconds on the clock
the caller injects (`now_ms`), checked by `GroupCoordinator.tick`.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Any


class GroupState(enum.Enum):
    """Kafka's classic group states; `.value` is the name Kafka shows in DescribeGroups."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


_VALID_PREVIOUS: dict[GroupState, frozenset[GroupState]] = {
    GroupState.PREPARING_REBALANCE: frozenset(
        {GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY}
    ),
    GroupState.COMPLETING_REBALANCE: frozenset({GroupState.PREPARING_REBALANCE}),
    GroupState.STABLE: frozenset({GroupState.COMPLETING_REBALANCE}),
    GroupState.EMPTY: frozenset({GroupState.PREPARING_REBALANCE}),
    GroupState.DEAD: frozenset(GroupState),
}

Protocols = tuple[tuple[str, bytes], ...]
"""A member's supported (protocol name, metadata) pairs, in its order of preference."""

# What a member is and how long it may stay silent, under the same names in a JoinRequest, a
# Member and a persisted MemberValue (GroupMetadataValue's member): copied by name from one form
# to the next so that the three can never disagree about which fields travel.
SHARED_MEMBER_FIELDS = ("member_id", "group_instance_id", "client_id", "client_host",
                        "rebalance_timeout_ms", "session_timeout_ms")


def shared_member_fields(source: object) -> dict[str, Any]:
    """`source`'s SHARED_MEMBER_FIELDS as keyword arguments for building another form."""
    return {name: getattr(source, name) for name in SHARED_MEMBER_FIELDS}


def subscription_topics(metadata: bytes) -> list[str]:
    """The topics of a ConsumerProtocolSubscription (every version starts with an int16
    version and the topics as an int32-counted array of int16-sized strings); a malformed one
    names none, as Kafka ignores an unreadable subscription."""
    try:
        (count,) = struct.unpack_from(">i", metadata, 2)
        pos, topics = 6, []
        if count < 0 or count * 2 > len(metadata) - pos:
            return []
        for _ in range(count):
            (size,) = struct.unpack_from(">h", metadata, pos)
            end = pos + 2 + size
            if size < 0 or end > len(metadata):
                return []
            topics.append(metadata[pos + 2:end].decode())
            pos = end
        return topics
    except (struct.error, UnicodeDecodeError):
        return []


@dataclass
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: Protocols
    assignment: bytes = b""
    # A parked JoinGroup / SyncGroup: the shell's reply token, answered later.
    awaiting_join: bool = False
    join_token: Any = None
    join_version: int = 0
    awaiting_sync: bool = False
    sync_token: Any = None
    is_new: bool = False
    heartbeat_deadline: int | None = None

    @property
    def is_static(self) -> bool:
        return self.group_instance_id is not None

    def metadata(self, protocol_name: str | None) -> bytes:
        for name, data in self.protocols:
            if name == protocol_name:
                return data
        return b""

    def vote(self, candidates: set[str]) -> str:
        """The member's most preferred protocol among those every member supports."""
        for name, _ in self.protocols:
            if name in candidates:
                return name
        raise ValueError(f"member {self.member_id} supports none of {sorted(candidates)}")

    def matches(self, protocols: Protocols) -> bool:
        return self.protocols == protocols

    def protocol_names(self) -> set[str]:
        return {name for name, _ in self.protocols}


@dataclass
class ClassicGroup:
    group_id: str
    state: GroupState = GroupState.EMPTY
    previous_state: GroupState = GroupState.DEAD
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    state_timestamp_ms: int = -1
    members: dict[str, Member] = field(default_factory=dict)  # insertion ordered
    static_members: dict[str, str] = field(default_factory=dict)  # instance id -> member id
    # Member ids handed out with MEMBER_ID_REQUIRED, waiting for the second JoinGroup.
    pending_members: dict[str, int] = field(default_factory=dict)  # member id -> deadline
    pending_sync: set[str] = field(default_factory=set)
    new_member_added: bool = False
    # Timers. join_deadline completes (or extends) the join phase; initial_delay holds
    # (delay, remaining) while the initial delayed rebalance of an Empty group runs.
    join_deadline: int | None = None
    initial_delay: tuple[int, int] | None = None
    sync_deadline: int | None = None
    sync_generation: int = -1

    # -- queries -----------------------------------------------------------------------------

    def is_in(self, *states: GroupState) -> bool:
        return self.state in states

    def has_member(self, member_id: str) -> bool:
        return member_id in self.members

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id is not None and self.leader_id == member_id

    def subscribed_topics(self) -> frozenset[str]:
        """The topics the members of a "consumer" group subscribe to (Kafka's
        ClassicGroup.subscribedTopics, read from each member's ConsumerProtocolSubscription);
        empty for other protocol types and for an Empty group."""
        if self.protocol_type != "consumer" or self.protocol_name is None:
            return frozenset()
        topics: set[str] = set()
        for m in self.members.values():
            topics.update(subscription_topics(m.metadata(self.protocol_name)))
        return frozenset(topics)

    def num_awaiting_join(self) -> int:
        return sum(1 for m in self.members.values() if m.awaiting_join)

    def has_all_members_joined(self) -> bool:
        return self.num_awaiting_join() == len(self.members) and not self.pending_members

    def not_yet_rejoined(self) -> list[Member]:
        return [m for m in self.members.values() if not m.awaiting_join]

    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def can_rebalance(self) -> bool:
        return self.state in _VALID_PREVIOUS[GroupState.PREPARING_REBALANCE]

    def candidate_protocols(self) -> set[str]:
        if not self.members:
            return set()
        sets = [m.protocol_names() for m in self.members.values()]
        return set.intersection(*sets)

    def supports_protocols(self, protocol_type: str, names: set[str]) -> bool:
        """Kafka's supportsProtocols: an Empty group takes any non-empty type and protocol list;
        otherwise the type must match and one protocol must be supported by every member."""
        if self.state is GroupState.EMPTY:
            return bool(protocol_type) and bool(names)
        return self.protocol_type == protocol_type and bool(names & self.candidate_protocols())

    def select_protocol(self) -> str:
        """Every member votes for its preferred candidate; most votes wins (first on a tie)."""
        candidates = self.candidate_protocols()
        votes: dict[str, int] = {}
        for member in self.members.values():
            name = member.vote(candidates)
            votes[name] = votes.get(name, 0) + 1
        return max(votes, key=lambda n: votes[n])

    def static_member_id(self, group_instance_id: str | None) -> str | None:
        if group_instance_id is None:
            return None
        return self.static_members.get(group_instance_id)

    def is_static_member_fenced(self, group_instance_id: str | None, member_id: str) -> bool:
        existing = self.static_member_id(group_instance_id)
        return existing is not None and existing != member_id

    def assignments(self) -> dict[str, bytes]:
        return {mid: m.assignment for mid, m in self.members.items()}

    # -- mutations ---------------------------------------------------------------------------

    def transition_to(self, state: GroupState, now_ms: int) -> None:
        if self.state not in _VALID_PREVIOUS[state]:
            raise AssertionError(
                f"group {self.group_id}: invalid transition {self.state.value} -> {state.value}"
            )
        self.previous_state = self.state
        self.state = state
        self.state_timestamp_ms = now_ms

    def add(self, member: Member) -> None:
        if member.group_instance_id is not None:
            if member.group_instance_id in self.static_members:
                raise AssertionError(f"static member {member.group_instance_id} already present")
            self.static_members[member.group_instance_id] = member.member_id
        if not self.members:
            self.protocol_type = member.protocol_type
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member
        self.pending_members.pop(member.member_id, None)

    def remove(self, member_id: str) -> Member | None:
        member = self.members.pop(member_id, None)
        if member is not None and member.group_instance_id is not None:
            self.static_members.pop(member.group_instance_id, None)
        if self.is_leader(member_id):
            self.leader_id = next(iter(self.members), None)
        self.pending_members.pop(member_id, None)
        self.pending_sync.discard(member_id)
        return member

    def replace_static_member(self, instance_id: str, old_id: str, new_id: str) -> Member:
        """Give a static member a new member id, everything else kept (KIP-345)."""
        old = self.members.pop(old_id)
        # Only what the member declared and its assignment: a parked JoinGroup or SyncGroup and
        # the timers belong to the old id (the coordinator fences and reschedules them).
        new = Member(
            **shared_member_fields(old) | {"member_id": new_id},
            protocol_type=old.protocol_type,
            protocols=old.protocols,
            assignment=old.assignment,
        )
        self.members[new_id] = new
        if self.is_leader(old_id):
            self.leader_id = new_id
        self.static_members[instance_id] = new_id
        if old_id in self.pending_sync:
            self.pending_sync.discard(old_id)
            self.pending_sync.add(new_id)
        return new

    def maybe_elect_new_joined_leader(self) -> bool:
        """Keep the leader if it rejoined, else pick a member that did. False if none did."""
        if self.leader_id is None:
            return False
        leader = self.members.get(self.leader_id)
        if leader is not None and leader.awaiting_join:
            return True
        for member in self.members.values():
            if member.awaiting_join:
                self.leader_id = member.member_id
                return True
        return False

    def init_next_generation(self, now_ms: int) -> None:
        self.generation_id += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.transition_to(GroupState.COMPLETING_REBALANCE, now_ms)
        else:
            self.protocol_name = None
            self.transition_to(GroupState.EMPTY, now_ms)
        self.pending_sync.clear()
