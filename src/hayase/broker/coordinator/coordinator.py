"""The classic group coordinator as a sans-IO state machine.

Plain synchronous code: no sockets, no asyncio, no clock of its own. Every call takes `now_ms`
and returns an `Output` (records to append to `__consumer_offsets`, then (token, result)
replies). A JoinGroup or SyncGroup that must wait is parked with its token and answered by a
later call or by `tick(now_ms)`, which fires the expired timers (session timeouts, the join
phase's rebalance timeout and initial delay, the sync phase's timeout).

The rules are Apache Kafka's classic protocol (GroupMetadataManager / ClassicGroup in Kafka 4.x):
KIP-394 (member id required on the first JoinGroup from v4), KIP-345 (static membership),
KIP-814 (skip_assignment for a returning static leader, v9). The coordinator never reads the
assignor's bytes: eager and cooperative-sticky protocols are carried as they come.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode

from hayase.broker.coordinator import records as rec
from hayase.broker.coordinator.config import CoordinatorConfig
from hayase.broker.coordinator.group import (
    ClassicGroup,
    GroupState,
    Member,
    Protocols,
    shared_member_fields,
)
from hayase.broker.coordinator.offsets import CommittedOffset, OffsetStore
from hayase.broker.coordinator.results import (
    CommitResult,
    DeleteResult,
    DescribedMember,
    DescribeResult,
    FetchResult,
    GroupDescription,
    HeartbeatResult,
    JoinedMember,
    JoinResult,
    LeaveResult,
    LeftMember,
    ListedGroup,
    ListResult,
    OffsetDeleteResult,
    Output,
    PartitionError,
    SyncResult,
)

log = logging.getLogger(__name__)

E = ErrorCode
UNKNOWN_MEMBER_ID = ""  # the member id of a member that has none yet

# JoinGroup v4+ requires a known member id (KIP-394); v9 can tell a static leader to skip
# the assignment (KIP-814).
JOIN_REQUIRES_MEMBER_ID_VERSION = 4
JOIN_SKIP_ASSIGNMENT_VERSION = 9
# OffsetCommit v9+ answers GROUP_ID_NOT_FOUND for a group that does not exist.
COMMIT_GROUP_ID_NOT_FOUND_VERSION = 9


@dataclass(frozen=True)
class JoinRequest:
    group_id: str
    member_id: str
    protocol_type: str
    protocols: Protocols
    session_timeout_ms: int
    rebalance_timeout_ms: int
    group_instance_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    version: int = 9
    reason: str | None = None


@dataclass(frozen=True)
class SyncRequest:
    group_id: str
    generation_id: int
    member_id: str
    assignments: tuple[tuple[str, bytes], ...] = ()
    group_instance_id: str | None = None
    protocol_type: str | None = None
    protocol_name: str | None = None


@dataclass(frozen=True)
class CommitPartition:
    topic: str
    partition: int
    offset: int
    metadata: str | None = ""
    leader_epoch: int = -1


class _MemberError(Exception):
    def __init__(self, error: ErrorCode) -> None:
        super().__init__(error.name)
        self.error = error


class GroupCoordinator:
    """All classic groups of one broker and their committed offsets.

    `partitions_of(topic)` tells how many partitions a topic has (None: no such topic); commits
    to partitions that do not exist answer UNKNOWN_TOPIC_OR_PARTITION.
    `member_id_factory(prefix)` makes member ids (uuid4 by default; tests inject their own).
    """

    def __init__(
        self,
        config: CoordinatorConfig | None = None,
        partitions_of: Callable[[str], int | None] | None = None,
        member_id_factory: Callable[[str], str] | None = None,
    ) -> None:
        self.config = config or CoordinatorConfig()
        self.partitions_of = partitions_of
        self._member_id_factory = member_id_factory or (lambda prefix: f"{prefix}-{uuid.uuid4()}")
        self.groups: dict[str, ClassicGroup] = {}
        self.offsets = OffsetStore()
        self._next_retention_check: int | None = None

    # ==========================================================================================
    # JoinGroup
    # ==========================================================================================

    def join_group(self, token: Any, req: JoinRequest, now_ms: int) -> Output:
        out = Output()
        if not req.group_id:
            return self._join_error(out, token, req.member_id, E.invalid_group_id)
        if not (
            self.config.min_session_timeout_ms
            <= req.session_timeout_ms
            <= self.config.max_session_timeout_ms
        ):
            return self._join_error(out, token, req.member_id, E.invalid_session_timeout)
        is_unknown = req.member_id == UNKNOWN_MEMBER_ID
        group = self.groups.get(req.group_id)
        if group is None:
            if not is_unknown:
                return self._join_error(out, token, req.member_id, E.unknown_member_id)
            group = self._create_group(req.group_id, now_ms)
        if not self._accept_joining_member(group, req.member_id):
            return self._join_error(out, token, UNKNOWN_MEMBER_ID, E.group_max_size_reached)
        if is_unknown:
            self._join_new_member(group, req, token, out, now_ms)
        else:
            self._join_existing_member(group, req, token, out, now_ms)
        return out

    def _join_error(self, out: Output, token: Any, member_id: str, error: ErrorCode) -> Output:
        out.replies.append((token, JoinResult(error, member_id)))
        return out

    def _accept_joining_member(self, group: ClassicGroup, member_id: str) -> bool:
        limit = self.config.max_group_size
        if group.is_in(GroupState.EMPTY, GroupState.DEAD):
            return True
        if group.is_in(GroupState.PREPARING_REBALANCE):
            member = group.members.get(member_id)
            return (member is not None and member.awaiting_join) or (
                group.num_awaiting_join() < limit
            )
        return group.has_member(member_id) or len(group.members) < limit

    def _join_new_member(
        self, group: ClassicGroup, req: JoinRequest, token: Any, out: Output, now_ms: int
    ) -> None:
        if group.is_in(GroupState.DEAD):
            self._join_error(out, token, UNKNOWN_MEMBER_ID, E.coordinator_not_available)
        elif not group.supports_protocols(req.protocol_type, {n for n, _ in req.protocols}):
            self._join_error(out, token, UNKNOWN_MEMBER_ID, E.inconsistent_group_protocol)
        else:
            prefix = req.group_instance_id if req.group_instance_id is not None else req.client_id
            new_id = self._member_id_factory(prefix)
            if req.group_instance_id is not None:
                existing = group.static_member_id(req.group_instance_id)
                if existing is not None:
                    self._update_static_member(group, req, existing, new_id, token, out, now_ms)
                else:
                    self._add_member(group, req, new_id, token, out, now_ms)
            elif req.version >= JOIN_REQUIRES_MEMBER_ID_VERSION:
                # KIP-394: hand out the id and expect a second JoinGroup that carries it.
                group.pending_members[new_id] = now_ms + req.session_timeout_ms
                self._join_error(out, token, new_id, E.member_id_required)
            else:
                self._add_member(group, req, new_id, token, out, now_ms)

    def _join_existing_member(
        self, group: ClassicGroup, req: JoinRequest, token: Any, out: Output, now_ms: int
    ) -> None:
        member_id = req.member_id
        if group.is_in(GroupState.DEAD):
            self._join_error(out, token, member_id, E.coordinator_not_available)
            return
        if not group.supports_protocols(req.protocol_type, {n for n, _ in req.protocols}):
            self._join_error(out, token, member_id, E.inconsistent_group_protocol)
            return
        if member_id in group.pending_members:
            self._add_member(group, req, member_id, token, out, now_ms)
            return
        try:
            self._validate_member(group, member_id, req.group_instance_id)
        except _MemberError as e:
            self._join_error(out, token, member_id, e.error)
            return
        member = group.members[member_id]
        if group.is_in(GroupState.PREPARING_REBALANCE):
            self._update_member(group, member, req, token, out)
            self._maybe_prepare_rebalance_or_complete_join(group, out, now_ms)
        elif group.is_in(GroupState.COMPLETING_REBALANCE):
            if member.matches(req.protocols):
                # The member lost the first JoinGroup answer: give it the same one again.
                out.replies.append((token, self._join_result(group, member, req.version)))
            else:
                self._update_member(group, member, req, token, out)
                self._maybe_prepare_rebalance_or_complete_join(group, out, now_ms)
        elif group.is_in(GroupState.STABLE):
            if group.is_leader(member_id) or not member.matches(req.protocols):
                # A leader's JoinGroup forces a rebalance: it may have seen metadata change.
                self._update_member(group, member, req, token, out)
                self._maybe_prepare_rebalance_or_complete_join(group, out, now_ms)
            else:
                result = self._join_result(group, member, req.version, with_members=False)
                out.replies.append((token, result))
        else:
            self._join_error(out, token, member_id, E.unknown_member_id)

    def _join_result(
        self, group: ClassicGroup, member: Member, version: int, with_members: bool = True
    ) -> JoinResult:
        members: tuple[JoinedMember, ...] = ()
        if with_members and group.is_leader(member.member_id):
            members = self._current_members(group)
        return JoinResult(
            error=E.none,
            member_id=member.member_id,
            generation_id=group.generation_id,
            protocol_type=group.protocol_type,
            protocol_name=group.protocol_name,
            leader=group.leader_id or "",
            members=members,
        )

    def _current_members(self, group: ClassicGroup) -> tuple[JoinedMember, ...]:
        return tuple(
            JoinedMember(m.member_id, m.group_instance_id, m.metadata(group.protocol_name))
            for m in group.members.values()
        )

    def _add_member(
        self,
        group: ClassicGroup,
        req: JoinRequest,
        member_id: str,
        token: Any,
        out: Output,
        now_ms: int,
    ) -> None:
        member = Member(
            **shared_member_fields(req) | {"member_id": member_id},
            protocol_type=req.protocol_type,
            protocols=req.protocols,
            awaiting_join=True,
            join_token=token,
            join_version=req.version,
            is_new=True,
        )
        if group.is_in(GroupState.PREPARING_REBALANCE) and group.previous_state is GroupState.EMPTY:
            group.new_member_added = True  # lets the initial delayed rebalance wait longer
        group.add(member)
        # A new member cannot heartbeat while its JoinGroup is parked; bound its wait instead.
        member.heartbeat_deadline = now_ms + self.config.new_member_join_timeout_ms
        self._maybe_prepare_rebalance_or_complete_join(group, out, now_ms)

    def _update_member(
        self, group: ClassicGroup, member: Member, req: JoinRequest, token: Any, out: Output
    ) -> None:
        if member.awaiting_join:
            # A retried JoinGroup supersedes the parked one; answer the old so nothing leaks.
            out.replies.append(
                (member.join_token, JoinResult(E.rebalance_in_progress, member.member_id))
            )
        member.protocols = req.protocols
        member.rebalance_timeout_ms = req.rebalance_timeout_ms
        member.session_timeout_ms = req.session_timeout_ms
        member.awaiting_join = True
        member.join_token = token
        member.join_version = req.version

    def _update_static_member(
        self,
        group: ClassicGroup,
        req: JoinRequest,
        old_id: str,
        new_id: str,
        token: Any,
        out: Output,
        now_ms: int,
    ) -> None:
        """A static member came back with no member id (a restart): it takes a new id in place
        of the old one and keeps its assignment; a Stable group does not rebalance."""
        assert req.group_instance_id is not None
        current_leader = group.leader_id
        self._fence_parked(group.members[old_id], out)
        member = group.replace_static_member(req.group_instance_id, old_id, new_id)
        self._reschedule_heartbeat(member, now_ms)
        self._update_member(group, member, req, token, out)
        if group.is_in(GroupState.STABLE):
            if group.protocol_name == group.select_protocol():
                out.records.append(self._group_record(group))
                member.awaiting_join = False
                member.join_token = None
                if req.version >= JOIN_SKIP_ASSIGNMENT_VERSION:
                    is_leader = group.is_leader(new_id)
                    result = self._join_result(group, member, req.version, with_members=is_leader)
                    result = dataclasses.replace(result, skip_assignment=is_leader)
                else:
                    # Old clients: name the old leader id so that the new member does not think
                    # it leads and compute an assignment a Stable group would never send out.
                    result = JoinResult(
                        error=E.none,
                        member_id=new_id,
                        generation_id=group.generation_id,
                        protocol_type=group.protocol_type,
                        protocol_name=group.protocol_name,
                        leader=current_leader or "",
                    )
                out.replies.append((token, result))
            else:
                self._maybe_prepare_rebalance_or_complete_join(group, out, now_ms)
        elif group.is_in(GroupState.COMPLETING_REBALANCE):
            # The leader may have assigned to the old id: start over.
            self._prepare_rebalance(group, out, now_ms)
        else:
            self._maybe_complete_join_phase(group, out, now_ms)

    def _fence_parked(self, member: Member, out: Output) -> None:
        if member.awaiting_join:
            out.replies.append(
                (member.join_token, JoinResult(E.fenced_instance_id, member.member_id))
            )
            member.awaiting_join = False
            member.join_token = None
        if member.awaiting_sync:
            out.replies.append((member.sync_token, SyncResult(E.fenced_instance_id)))
            member.awaiting_sync = False
            member.sync_token = None

    # -- rebalance ------------------------------------------------------------------------------

    def _maybe_prepare_rebalance_or_complete_join(
        self, group: ClassicGroup, out: Output, now_ms: int
    ) -> None:
        if group.can_rebalance():
            self._prepare_rebalance(group, out, now_ms)
        else:
            self._maybe_complete_join_phase(group, out, now_ms)

    def _maybe_complete_join_phase(self, group: ClassicGroup, out: Output, now_ms: int) -> None:
        # The initial rebalance of an Empty group always waits for its delay.
        if (
            group.is_in(GroupState.PREPARING_REBALANCE)
            and group.has_all_members_joined()
            and group.previous_state is not GroupState.EMPTY
        ):
            self._complete_join(group, out, now_ms)

    def _prepare_rebalance(self, group: ClassicGroup, out: Output, now_ms: int) -> None:
        if group.is_in(GroupState.COMPLETING_REBALANCE):
            self._reset_and_propagate_assignment_error(group, E.rebalance_in_progress, out, now_ms)
        group.pending_sync.clear()
        group.sync_deadline = None
        initial = group.is_in(GroupState.EMPTY)
        if initial:
            delay = self.config.initial_rebalance_delay_ms
            remaining = max(group.rebalance_timeout_ms() - delay, 0)
            group.join_deadline = now_ms + delay
            group.initial_delay = (delay, remaining)
        group.transition_to(GroupState.PREPARING_REBALANCE, now_ms)
        log.info(
            "Preparing to rebalance group %s with old generation %d",
            group.group_id,
            group.generation_id,
        )
        if not initial:
            if group.has_all_members_joined():
                self._complete_join(group, out, now_ms)
            else:
                group.join_deadline = now_ms + group.rebalance_timeout_ms()
                group.initial_delay = None

    def _on_join_deadline(self, group: ClassicGroup, out: Output, now_ms: int) -> None:
        if group.initial_delay is not None:
            delay, remaining = group.initial_delay
            # With no delay configured an extension would fire at once: complete now.
            if group.new_member_added and remaining != 0 and self.config.initial_rebalance_delay_ms:
                group.new_member_added = False
                new_delay = min(self.config.initial_rebalance_delay_ms, remaining)
                group.initial_delay = (new_delay, max(remaining - delay, 0))
                group.join_deadline = now_ms + new_delay
                return
        self._complete_join(group, out, now_ms)

    def _complete_join(self, group: ClassicGroup, out: Output, now_ms: int) -> None:
        group.join_deadline = None
        group.initial_delay = None
        for member in group.not_yet_rejoined():
            if not member.is_static:  # static members keep their place until their session ends
                self._remove_member_quietly(group, member, out)
        if group.is_in(GroupState.DEAD):
            return
        if not group.maybe_elect_new_joined_leader() and group.members:
            # Only static members that have not rejoined are left: wait for them some more.
            group.join_deadline = now_ms + group.rebalance_timeout_ms()
            return
        group.init_next_generation(now_ms)
        if group.is_in(GroupState.EMPTY):
            log.info("Group %s with generation %d is now empty", group.group_id, group.generation_id)
            out.records.append(self._group_record(group))
            return
        log.info(
            "Stabilized group %s generation %d with %d members",
            group.group_id,
            group.generation_id,
            len(group.members),
        )
        for member in group.members.values():
            if member.awaiting_join:
                result = self._join_result(group, member, member.join_version)
                out.replies.append((member.join_token, result))
                member.awaiting_join = False
                member.join_token = None
            self._reschedule_heartbeat(member, now_ms)
            member.is_new = False
            group.pending_sync.add(member.member_id)
        group.sync_deadline = now_ms + group.rebalance_timeout_ms()
        group.sync_generation = group.generation_id

    def _reset_and_propagate_assignment_error(
        self, group: ClassicGroup, error: ErrorCode, out: Output, now_ms: int
    ) -> None:
        for member in group.members.values():
            member.assignment = b""
        self._propagate_assignment(group, error, out, now_ms)

    def _propagate_assignment(
        self, group: ClassicGroup, error: ErrorCode, out: Output, now_ms: int
    ) -> None:
        ok = error is E.none
        for member in group.members.values():
            if member.awaiting_sync:
                result = SyncResult(
                    error=error,
                    assignment=member.assignment if ok else b"",
                    protocol_type=group.protocol_type if ok else None,
                    protocol_name=group.protocol_name if ok else None,
                )
                out.replies.append((member.sync_token, result))
                member.awaiting_sync = False
                member.sync_token = None
                # A session that ran out while the member waited must not count against it.
                self._reschedule_heartbeat(member, now_ms)

    # ==========================================================================================
    # SyncGroup
    # ==========================================================================================

    def sync_group(self, token: Any, req: SyncRequest, now_ms: int) -> Output:
        out = Output()

        def reply(error: ErrorCode) -> Output:
            out.replies.append((token, SyncResult(error)))
            return out

        if not req.group_id:
            return reply(E.invalid_group_id)
        group = self.groups.get(req.group_id)
        if group is None:
            return reply(E.unknown_member_id)
        if group.is_in(GroupState.DEAD):
            return reply(E.coordinator_not_available)
        error = self._member_error(group, req.member_id, req.group_instance_id, req.generation_id)
        if error is not None:
            return reply(error)
        if (req.protocol_type is not None and req.protocol_type != group.protocol_type) or (
            req.protocol_name is not None and req.protocol_name != group.protocol_name
        ):
            return reply(E.inconsistent_group_protocol)
        if group.is_in(GroupState.EMPTY):
            return reply(E.unknown_member_id)
        if group.is_in(GroupState.PREPARING_REBALANCE):
            return reply(E.rebalance_in_progress)
        member = group.members[req.member_id]
        if group.is_in(GroupState.COMPLETING_REBALANCE):
            if member.awaiting_sync:
                out.replies.append((member.sync_token, SyncResult(E.rebalance_in_progress)))
            member.awaiting_sync = True
            member.sync_token = token
            self._remove_pending_sync(group, member.member_id)
            if group.is_leader(member.member_id):
                self._apply_leader_assignment(group, req, out, now_ms)
            return out
        # Stable: the assignment is settled; hand out the member's share.
        self._remove_pending_sync(group, member.member_id)
        out.replies.append(
            (
                token,
                SyncResult(E.none, member.assignment, group.protocol_type, group.protocol_name),
            )
        )
        return out

    def _apply_leader_assignment(
        self, group: ClassicGroup, req: SyncRequest, out: Output, now_ms: int
    ) -> None:
        assignment = dict(req.assignments)
        for member_id, member in group.members.items():
            member.assignment = assignment.get(member_id, b"")
        log.info(
            "Assignment received from leader %s for group %s generation %d",
            req.member_id,
            group.group_id,
            group.generation_id,
        )
        out.records.append(self._group_record(group))
        self._propagate_assignment(group, E.none, out, now_ms)
        group.transition_to(GroupState.STABLE, now_ms)

    def _remove_pending_sync(self, group: ClassicGroup, member_id: str) -> None:
        group.pending_sync.discard(member_id)
        if not group.pending_sync:
            group.sync_deadline = None

    def _on_sync_deadline(self, group: ClassicGroup, out: Output, now_ms: int) -> None:
        group.sync_deadline = None
        if group.sync_generation != group.generation_id:
            return
        if group.is_in(GroupState.COMPLETING_REBALANCE, GroupState.STABLE) and group.pending_sync:
            missing = sorted(group.pending_sync)
            log.info("Group %s removes members that did not sync: %s", group.group_id, missing)
            for member_id in missing:
                member = group.members.get(member_id)
                if member is not None:
                    self._remove_member_quietly(group, member, out)
            self._prepare_rebalance(group, out, now_ms)

    # ==========================================================================================
    # Heartbeat
    # ==========================================================================================

    def heartbeat(
        self,
        token: Any,
        group_id: str,
        member_id: str,
        generation_id: int,
        now_ms: int,
        group_instance_id: str | None = None,
    ) -> Output:
        error = self._heartbeat(group_id, member_id, generation_id, group_instance_id, now_ms)
        return Output(replies=[(token, HeartbeatResult(error))])

    def _heartbeat(
        self,
        group_id: str,
        member_id: str,
        generation_id: int,
        group_instance_id: str | None,
        now_ms: int,
    ) -> ErrorCode:
        if not group_id:
            return E.invalid_group_id
        group = self.groups.get(group_id)
        if group is None:
            return E.unknown_member_id
        if group.is_in(GroupState.DEAD):
            return E.coordinator_not_available
        error = self._member_error(group, member_id, group_instance_id, generation_id)
        if error is not None:
            return error
        if group.is_in(GroupState.EMPTY):
            return E.unknown_member_id
        self._reschedule_heartbeat(group.members[member_id], now_ms)
        if group.is_in(GroupState.PREPARING_REBALANCE):
            return E.rebalance_in_progress
        return E.none

    # ==========================================================================================
    # LeaveGroup
    # ==========================================================================================

    def leave_group(
        self,
        token: Any,
        group_id: str,
        members: Sequence[tuple[str, str | None]],
        now_ms: int,
    ) -> Output:
        """`members` are (member id, group instance id) pairs; LeaveGroup v0-2 sends one."""
        out = Output()
        group = self.groups.get(group_id) if group_id else None
        if not group_id:
            out.replies.append((token, LeaveResult(E.invalid_group_id)))
            return out
        if group is None:
            unknown = tuple(LeftMember(m, i, E.unknown_member_id) for m, i in members)
            out.replies.append((token, LeaveResult(E.none, unknown)))
            return out
        if group.is_in(GroupState.DEAD):
            out.replies.append((token, LeaveResult(E.coordinator_not_available)))
            return out
        answers = [self._leave_one(group, mid, iid, out) for mid, iid in members]
        if any(a.error is E.none for a in answers):
            if group.is_in(GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
                self._maybe_prepare_rebalance_or_complete_join(group, out, now_ms)
            elif group.is_in(GroupState.PREPARING_REBALANCE):
                self._maybe_complete_join_phase(group, out, now_ms)
        out.replies.append((token, LeaveResult(E.none, tuple(answers))))
        return out

    def _leave_one(
        self, group: ClassicGroup, member_id: str, instance_id: str | None, out: Output
    ) -> LeftMember:
        if member_id == UNKNOWN_MEMBER_ID:
            # Administrative removal of a static member by its instance id alone.
            static_id = group.static_member_id(instance_id)
            if static_id is None:
                return LeftMember(member_id, instance_id, E.unknown_member_id)
            self._remove_member_quietly(group, group.members[static_id], out)
            return LeftMember(member_id, instance_id, E.none)
        if member_id in group.pending_members:
            del group.pending_members[member_id]
            return LeftMember(member_id, instance_id, E.none)
        try:
            self._validate_member(group, member_id, instance_id)
        except _MemberError as e:
            return LeftMember(member_id, instance_id, e.error)
        log.info("Member %s has left group %s", member_id, group.group_id)
        self._remove_member_quietly(group, group.members[member_id], out)
        return LeftMember(member_id, instance_id, E.none)

    def _remove_member_quietly(self, group: ClassicGroup, member: Member, out: Output) -> None:
        """Remove a member, answering its parked requests so that they do not hang."""
        if member.awaiting_join:
            out.replies.append((member.join_token, JoinResult(E.unknown_member_id, "")))
        if member.awaiting_sync:
            out.replies.append((member.sync_token, SyncResult(E.unknown_member_id)))
        member.awaiting_join = member.awaiting_sync = False
        member.join_token = member.sync_token = None
        group.remove(member.member_id)

    # ==========================================================================================
    # Timers
    # ==========================================================================================

    def tick(self, now_ms: int) -> Output:
        """Fire every timer due at `now_ms`. Timers that the firing itself schedules for
        `now_ms` or earlier wait for the next tick (so a zero timeout cannot loop)."""
        out = Output()
        for group in list(self.groups.values()):
            self._tick_group(group, out, now_ms)
        if self._next_retention_check is None:
            self._next_retention_check = now_ms + self.config.offsets_retention_check_interval_ms
        elif self._next_retention_check <= now_ms:
            self.expire_offsets(now_ms, out)
            self._next_retention_check = now_ms + self.config.offsets_retention_check_interval_ms
        return out

    def _tick_group(self, group: ClassicGroup, out: Output, now_ms: int) -> None:
        due_pending = [mid for mid, d in group.pending_members.items() if d <= now_ms]
        due_members = [
            m.member_id
            for m in group.members.values()
            if m.heartbeat_deadline is not None and m.heartbeat_deadline <= now_ms
        ]
        join_due = group.join_deadline is not None and group.join_deadline <= now_ms
        sync_due = group.sync_deadline is not None and group.sync_deadline <= now_ms
        for member_id in due_pending:
            log.info("Pending member %s in group %s expired", member_id, group.group_id)
            group.pending_members.pop(member_id, None)
            if group.is_in(GroupState.PREPARING_REBALANCE) and group.has_all_members_joined():
                self._complete_join(group, out, now_ms)
        for member_id in due_members:
            member = group.members.get(member_id)
            deadline = member.heartbeat_deadline if member is not None else None
            if member is not None and deadline is not None and deadline <= now_ms:
                self._expire_heartbeat(group, member, out, now_ms)
        if join_due and group.join_deadline is not None and group.join_deadline <= now_ms:
            self._on_join_deadline(group, out, now_ms)
        if sync_due and group.sync_deadline is not None and group.sync_deadline <= now_ms:
            self._on_sync_deadline(group, out, now_ms)

    def _expire_heartbeat(
        self, group: ClassicGroup, member: Member, out: Output, now_ms: int
    ) -> None:
        member.heartbeat_deadline = None
        # A parked JoinGroup or SyncGroup counts as a heartbeat, except for a new member.
        if not member.is_new and (member.awaiting_join or member.awaiting_sync):
            return
        log.info("Member %s in group %s has failed, removing it", member.member_id, group.group_id)
        self._remove_member_quietly(group, member, out)
        if group.is_in(GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance_or_complete_join(group, out, now_ms)
        elif group.is_in(GroupState.PREPARING_REBALANCE) and group.has_all_members_joined():
            self._complete_join(group, out, now_ms)

    def expire_offsets(self, now_ms: int, out: Output) -> None:
        """Kafka's offset retention (KIP-211): a consumer group's offsets expire once it has
        been Empty for the retention time; a simple group's, each once not committed to for
        that long. An Empty group with no offsets left is deleted."""
        retention = self.config.offsets_retention_ms
        for group_id in list(self.groups):
            group = self.groups[group_id]
            if group.protocol_type is None:
                expired = self.offsets.expire(
                    group_id, lambda c: c.commit_timestamp_ms + retention <= now_ms
                )
            elif group.is_in(GroupState.EMPTY) and group.state_timestamp_ms + retention <= now_ms:
                expired = self.offsets.delete_group(group_id)
            else:
                expired = []
            out.records.extend(expired)
            if expired:
                log.info("Expired %d offset(s) of group %s", len(expired), group_id)
            if (
                group_id not in self.offsets
                and group.is_in(GroupState.EMPTY)
                and not group.pending_members
            ):
                out.records.append((rec.group_key(group_id), None))
                group.transition_to(GroupState.DEAD, now_ms)
                del self.groups[group_id]

    def delete_topic_offsets(self, topic: str, now_ms: int) -> Output:
        """A topic was deleted: its committed offsets go (Kafka's handleDeletedPartitions),
        and so does an Empty group left with none."""
        out = Output(records=self.offsets.delete_topic(topic))
        for group_id in list(self.groups):
            group = self.groups[group_id]
            if group_id not in self.offsets and group.is_in(GroupState.EMPTY) and (
                not group.pending_members
            ):
                out.records.append((rec.group_key(group_id), None))
                group.transition_to(GroupState.DEAD, now_ms)
                del self.groups[group_id]
        return out

    def _reschedule_heartbeat(self, member: Member, now_ms: int) -> None:
        member.heartbeat_deadline = now_ms + member.session_timeout_ms

    def next_deadline(self) -> int | None:
        """The earliest timer of any group: when the shell should call `tick` next."""
        best: int | None = self._next_retention_check
        for group in self.groups.values():
            candidates = [group.join_deadline, group.sync_deadline]
            candidates += list(group.pending_members.values())
            candidates += [m.heartbeat_deadline for m in group.members.values()]
            for d in candidates:
                if d is not None and (best is None or d < best):
                    best = d
        return best

    # ==========================================================================================
    # OffsetCommit / OffsetFetch
    # ==========================================================================================

    def commit_offsets(
        self,
        token: Any,
        group_id: str,
        generation_id: int,
        member_id: str,
        partitions: Sequence[CommitPartition],
        now_ms: int,
        group_instance_id: str | None = None,
        version: int = 8,
    ) -> Output:
        out = Output()
        # As in Kafka, partitions that do not exist are answered before the group is looked at
        # (KafkaApis filters them out), and a request with none left never reaches the group.
        errors: dict[int, ErrorCode] = {}
        for i, p in enumerate(partitions):
            if not self._partition_exists(p):
                errors[i] = E.unknown_topic_or_partition
        if len(errors) < len(partitions):
            error = self._validate_commit(
                group_id, generation_id, member_id, group_instance_id, version
            )
            if error is None and group_id not in self.groups:
                self._create_group(group_id, now_ms)  # a "simple" group: offsets, no members
            for i, p in enumerate(partitions):
                if i in errors:
                    continue
                if error is not None:
                    errors[i] = error
                elif p.metadata is not None and (
                    len(p.metadata.encode()) > self.config.max_metadata_bytes
                ):
                    errors[i] = E.offset_metadata_too_large
                else:
                    errors[i] = E.none
                    self._store_offset(group_id, p, now_ms, out)
        answers = tuple(
            PartitionError(p.topic, p.partition, errors[i]) for i, p in enumerate(partitions)
        )
        out.replies.append((token, CommitResult(answers)))
        return out

    def _validate_commit(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        instance_id: str | None,
        version: int,
    ) -> ErrorCode | None:
        group = self.groups.get(group_id)
        if group is None:
            if generation_id < 0:
                return None  # admin tools and consumers without group management
            if version >= COMMIT_GROUP_ID_NOT_FOUND_VERSION:
                return E.group_id_not_found
            return E.illegal_generation
        if group.is_in(GroupState.DEAD):
            return E.coordinator_not_available
        if generation_id < 0 and group.is_in(GroupState.EMPTY):
            return None
        if generation_id >= 0 or member_id or instance_id is not None:
            error = self._member_error(group, member_id, instance_id, generation_id)
            if error is not None:
                return error
        elif not group.is_in(GroupState.EMPTY):
            return E.unknown_member_id
        if group.is_in(GroupState.COMPLETING_REBALANCE):
            return E.rebalance_in_progress
        return None

    def _partition_exists(self, p: CommitPartition) -> bool:
        if self.partitions_of is None:
            return True
        count = self.partitions_of(p.topic)
        return count is not None and 0 <= p.partition < count

    def _store_offset(self, group_id: str, p: CommitPartition, now_ms: int, out: Output) -> None:
        out.records.append(
            self.offsets.commit(
                group_id, (p.topic, p.partition), p.offset, p.leader_epoch, p.metadata or "",
                now_ms,
            )
        )

    def fetch_offsets(
        self, group_id: str, topics: Sequence[tuple[str, Sequence[int]]] | None
    ) -> FetchResult:
        """Committed offsets of a group; `topics=None` asks for all of them. Partitions without
        a committed offset answer offset -1, as Kafka does, also for a group that does not exist."""
        group = self.groups.get(group_id)
        if group is not None and group.is_in(GroupState.DEAD):
            return FetchResult(group_id, E.group_id_not_found)
        return FetchResult(group_id, E.none, self.offsets.fetch(group_id, topics))

    def committed(self, group_id: str) -> dict[tuple[str, int], CommittedOffset]:
        return self.offsets.of(group_id)

    # ==========================================================================================
    # DescribeGroups / ListGroups / DeleteGroups
    # ==========================================================================================

    def describe_groups(self, group_ids: Iterable[str], version: int = 5) -> DescribeResult:
        return DescribeResult(tuple(self._describe(gid, version) for gid in group_ids))

    def _describe(self, group_id: str, version: int) -> GroupDescription:
        group = self.groups.get(group_id)
        if group is None or group.is_in(GroupState.DEAD):
            if version >= 6:
                return GroupDescription(
                    group_id,
                    E.group_id_not_found,
                    GroupState.DEAD.value,
                    "",
                    "",
                    error_message=f"Group {group_id} not found.",
                )
            return GroupDescription(group_id, E.none, GroupState.DEAD.value, "", "")
        stable = group.is_in(GroupState.STABLE)
        members = tuple(
            DescribedMember(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                metadata=m.metadata(group.protocol_name) if stable else b"",
                assignment=m.assignment if stable else b"",
            )
            for m in group.members.values()
        )
        return GroupDescription(
            group_id=group_id,
            error=E.none,
            state=group.state.value,
            protocol_type=group.protocol_type or "",
            protocol_data=(group.protocol_name or "") if stable else "",
            members=members,
        )

    def list_groups(
        self, states_filter: Iterable[str] = (), types_filter: Iterable[str] = ()
    ) -> ListResult:
        states = {s.lower() for s in states_filter}
        types = {t.lower() for t in types_filter}
        if types and "classic" not in types:
            return ListResult(E.none, ())
        listed = tuple(
            ListedGroup(g.group_id, g.protocol_type or "", g.state.value)
            for g in self.groups.values()
            if not g.is_in(GroupState.DEAD) and (not states or g.state.value.lower() in states)
        )
        return ListResult(E.none, listed)

    def delete_groups(self, token: Any, group_ids: Iterable[str]) -> Output:
        out = Output()
        results: list[tuple[str, ErrorCode]] = []
        for group_id in group_ids:
            group = self.groups.get(group_id)
            if group is None or group.is_in(GroupState.DEAD):
                results.append((group_id, E.group_id_not_found))
            elif not group.is_in(GroupState.EMPTY):
                results.append((group_id, E.non_empty_group))
            else:
                self._delete_group(group, out)
                results.append((group_id, E.none))
        out.replies.append((token, DeleteResult(tuple(results))))
        return out

    def delete_offsets(
        self, token: Any, group_id: str, partitions: Iterable[tuple[str, int]]
    ) -> Output:
        """OffsetDelete (KIP-496), as Kafka's OffsetMetadataManager.deleteOffsets: only an Empty
        group, or a "consumer" group for the topics its members do not subscribe to (those
        partitions answer GROUP_SUBSCRIBED_TO_TOPIC); a partition without an offset is fine."""
        out = Output()
        group = self.groups.get(group_id)
        if group is None and group_id not in self.offsets or (
            group is not None and group.is_in(GroupState.DEAD)
        ):
            out.replies.append((token, OffsetDeleteResult(E.group_id_not_found)))
            return out
        if group is not None and not group.is_in(GroupState.EMPTY) and (
            group.protocol_type != "consumer"
        ):
            out.replies.append((token, OffsetDeleteResult(E.non_empty_group)))
            return out
        subscribed = group.subscribed_topics() if group is not None else frozenset()
        results = []
        deletable = []
        for topic, partition in partitions:
            if topic in subscribed:
                results.append(PartitionError(topic, partition, E.group_subscribed_to_topic))
            else:
                deletable.append((topic, partition))
                results.append(PartitionError(topic, partition, E.none))
        out.records.extend(self.offsets.delete(group_id, deletable))
        if out.records:
            log.info("Deleted %d offset(s) of group %s", len(out.records), group_id)
        out.replies.append((token, OffsetDeleteResult(E.none, tuple(results))))
        return out

    def _delete_group(self, group: ClassicGroup, out: Output) -> None:
        out.records.extend(self.offsets.delete_group(group.group_id))
        out.records.append((rec.group_key(group.group_id), None))
        group.transition_to(GroupState.DEAD, group.state_timestamp_ms)
        del self.groups[group.group_id]
        log.info("Deleted group %s", group.group_id)

    # ==========================================================================================
    # Replay of __consumer_offsets
    # ==========================================================================================

    def replay(self, records: Iterable[tuple[bytes, bytes | None]], now_ms: int) -> int:
        """Rebuild groups and offsets from `__consumer_offsets`, oldest record first. Loaded
        groups are Stable (with members) or Empty; every member gets a fresh session. Returns
        the number of records applied."""
        applied = 0
        for key_bytes, value in records:
            key = rec.decode_key(key_bytes)
            if key is None:
                log.warning("Skipping a %s record with an unknown key version", rec.OFFSETS_TOPIC)
                continue
            if isinstance(key, rec.OffsetKey):
                self.offsets.replay(key, value)
            else:
                self._replay_group(key.group_id, value, now_ms)
            applied += 1
        for group_id in self.offsets.group_ids():
            if group_id not in self.groups:
                self.groups[group_id] = ClassicGroup(group_id, state_timestamp_ms=now_ms)
        return applied

    def _replay_group(self, group_id: str, value: bytes | None, now_ms: int) -> None:
        if value is None:
            self.groups.pop(group_id, None)
            return
        v = rec.decode_group_value(value)
        group = ClassicGroup(
            group_id=group_id,
            state=GroupState.STABLE if v.members else GroupState.EMPTY,
            generation_id=v.generation_id,
            protocol_type=v.protocol_type or None,
            protocol_name=v.protocol_name,
            leader_id=v.leader_id,
            state_timestamp_ms=v.state_timestamp_ms,
        )
        for m in v.members:
            member = Member(
                **shared_member_fields(m),
                protocol_type=v.protocol_type,
                protocols=((v.protocol_name or "", m.subscription),),
                assignment=m.assignment,
            )
            group.members[m.member_id] = member
            if m.group_instance_id is not None:
                group.static_members[m.group_instance_id] = m.member_id
            self._reschedule_heartbeat(member, now_ms)
        if group.leader_id not in group.members:
            group.leader_id = next(iter(group.members), None)
        self.groups[group_id] = group

    def snapshot_records(self) -> list[tuple[bytes, bytes | None]]:
        """The live state as records (one per key): what a compaction of the log keeps."""
        out: list[tuple[bytes, bytes | None]] = []
        for group in self.groups.values():
            if group.protocol_type is not None or group.generation_id > 0:
                out.append(self._group_record(group))
        out.extend(self.offsets.snapshot())
        return out

    # ==========================================================================================
    # helpers
    # ==========================================================================================

    def _create_group(self, group_id: str, now_ms: int) -> ClassicGroup:
        group = ClassicGroup(group_id, state_timestamp_ms=now_ms)
        self.groups[group_id] = group
        return group

    def _validate_member(
        self, group: ClassicGroup, member_id: str, group_instance_id: str | None
    ) -> None:
        if group_instance_id is not None:
            existing = group.static_member_id(group_instance_id)
            if existing is None:
                raise _MemberError(E.unknown_member_id)
            if existing != member_id:
                raise _MemberError(E.fenced_instance_id)
        if not group.has_member(member_id):
            raise _MemberError(E.unknown_member_id)

    def _member_error(
        self, group: ClassicGroup, member_id: str, group_instance_id: str | None,
        generation_id: int,
    ) -> ErrorCode | None:
        """Why a member's SyncGroup, Heartbeat or OffsetCommit is refused, if it is."""
        try:
            self._validate_member(group, member_id, group_instance_id)
        except _MemberError as e:
            return e.error
        if generation_id != group.generation_id:
            return E.illegal_generation
        return None

    def _group_record(self, group: ClassicGroup) -> tuple[bytes, bytes]:
        """The group's metadata as Kafka persists it: only settled state (generation, leader,
        members with their subscription and assignment)."""
        members = tuple(
            rec.MemberValue(
                **shared_member_fields(m),
                subscription=m.metadata(group.protocol_name),
                assignment=m.assignment,
            )
            for m in group.members.values()
        )
        value = rec.GroupValue(
            protocol_type=group.protocol_type or "",
            generation_id=group.generation_id,
            protocol_name=group.protocol_name,
            leader_id=group.leader_id,
            state_timestamp_ms=group.state_timestamp_ms,
            members=members,
        )
        return rec.group_key(group.group_id), rec.group_value(value)
