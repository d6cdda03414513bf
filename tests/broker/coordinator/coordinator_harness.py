"""A driver for the sans-IO coordinator: a fake clock, numbered member ids, reply tokens that
must each be answered exactly once, and the `__consumer_offsets` records it appended."""

from __future__ import annotations

import itertools
from typing import Any

from kio.schema.errors import ErrorCode

from hayase.broker.coordinator.config import CoordinatorConfig
from hayase.broker.coordinator.coordinator import (
    CommitPartition,
    GroupCoordinator,
    JoinRequest,
    SyncRequest,
)
from hayase.broker.coordinator.results import (
    CommitResult,
    JoinResult,
    LeaveResult,
    Output,
    SyncResult,
)

E = ErrorCode
SESSION = 10_000
REBALANCE = 30_000
PROTOCOLS = (("range", b"sub-range"), ("roundrobin", b"sub-rr"))


def make_config(**overrides: int) -> CoordinatorConfig:
    values = dict(initial_rebalance_delay_ms=0, min_session_timeout_ms=10)
    values.update(overrides)
    return CoordinatorConfig(**values)



class Harness:
    def __init__(self, coordinator: GroupCoordinator | None = None, **config: int) -> None:
        ids = itertools.count(1)
        self.c = coordinator or GroupCoordinator(
            make_config(**config), member_id_factory=lambda prefix: f"{prefix}-m{next(ids)}"
        )
        self.now = 0
        self.tokens = itertools.count(1)
        self.replies: dict[int, Any] = {}
        self.records: list[tuple[bytes, bytes | None]] = []

    # -- plumbing -------------------------------------------------------------------------------

    def token(self) -> int:
        return next(self.tokens)

    def run(self, out: Output) -> Output:
        self.records.extend(out.records)
        for token, result in out.replies:
            assert token not in self.replies, f"token {token} answered twice"
            self.replies[token] = result
        return out

    def reply(self, token: int) -> Any:
        return self.replies.get(token)

    def advance(self, ms: int) -> Output:
        self.now += ms
        return self.run(self.c.tick(self.now))

    # -- APIs -----------------------------------------------------------------------------------

    def join(
        self,
        group: str = "g",
        member_id: str = "",
        instance: str | None = None,
        protocols: tuple[tuple[str, bytes], ...] = PROTOCOLS,
        version: int = 9,
        session: int = SESSION,
        rebalance: int = REBALANCE,
        protocol_type: str = "consumer",
        client_id: str = "c",
    ) -> int:
        """Send a JoinGroup; returns its token (the answer may come later)."""
        t = self.token()
        req = JoinRequest(
            group_id=group,
            member_id=member_id,
            protocol_type=protocol_type,
            protocols=protocols,
            session_timeout_ms=session,
            rebalance_timeout_ms=rebalance,
            group_instance_id=instance,
            client_id=client_id,
            version=version,
        )
        self.run(self.c.join_group(t, req, self.now))
        return t

    def new_member(self, group: str = "g", **kw: Any) -> tuple[str, int]:
        """KIP-394 two-step join: returns (member id, token of the parked JoinGroup)."""
        first = self.join(group, **kw)
        r = self.reply(first)
        assert isinstance(r, JoinResult) and r.error is E.member_id_required, r
        return r.member_id, self.join(group, member_id=r.member_id, **kw)

    def sync(
        self,
        member_id: str,
        generation: int,
        assignments: dict[str, bytes] | None = None,
        group: str = "g",
        instance: str | None = None,
    ) -> int:
        t = self.token()
        req = SyncRequest(
            group_id=group,
            generation_id=generation,
            member_id=member_id,
            assignments=tuple((assignments or {}).items()),
            group_instance_id=instance,
        )
        self.run(self.c.sync_group(t, req, self.now))
        return t

    def heartbeat(
        self, member_id: str, generation: int, group: str = "g", instance: str | None = None
    ) -> ErrorCode:
        t = self.token()
        self.run(self.c.heartbeat(t, group, member_id, generation, self.now, instance))
        return self.replies[t].error  # type: ignore[no-any-return]

    def leave(self, *members: tuple[str, str | None], group: str = "g") -> LeaveResult:
        t = self.token()
        self.run(self.c.leave_group(t, group, list(members), self.now))
        result = self.replies[t]
        assert isinstance(result, LeaveResult)
        return result

    def commit(
        self,
        member_id: str,
        generation: int,
        offsets: dict[tuple[str, int], int],
        group: str = "g",
        metadata: str = "",
        version: int = 8,
        instance: str | None = None,
    ) -> dict[tuple[str, int], ErrorCode]:
        t = self.token()
        parts = [CommitPartition(tp[0], tp[1], off, metadata) for tp, off in offsets.items()]
        self.run(
            self.c.commit_offsets(
                t, group, generation, member_id, parts, self.now, instance, version
            )
        )
        result = self.replies[t]
        assert isinstance(result, CommitResult)
        return {(p.topic, p.partition): p.error for p in result.partitions}

    # -- scenarios ------------------------------------------------------------------------------

    def stable_group(self, n: int, group: str = "g") -> tuple[list[str], int, str]:
        """n members joined in one generation and synced: (member ids, generation, leader)."""
        members = [self.new_member(group) for _ in range(n)]
        self.advance(0)
        results = [self.reply(t) for _, t in members]
        assert all(isinstance(r, JoinResult) and r.error is E.none for r in results), results
        generation = results[0].generation_id
        leader = results[0].leader
        ids = [m for m, _ in members]
        assignment = {m: f"assign-{m}".encode() for m in ids}
        sync_tokens = [self.sync(m, generation, assignment if m == leader else None, group)
                       for m in ids if m != leader]
        sync_tokens.append(self.sync(leader, generation, assignment, group))
        for t in sync_tokens:
            r = self.reply(t)
            assert isinstance(r, SyncResult) and r.error is E.none, r
        return ids, generation, leader
