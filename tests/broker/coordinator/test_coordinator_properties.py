"""Random sequences of joins, syncs, heartbeats, leaves, restarts and clock ticks against the
coordinator, checking its invariants after every step:

- every reply token is answered at most once, and every unanswered JoinGroup/SyncGroup is one
  the coordinator holds parked (nothing leaks, nothing is answered twice);
- the generation never goes back;
- one leader (one client) per generation;
- every member of a Stable group has the assignment its leader gave it;
- the group's bookkeeping agrees with itself (leader is a member, static ids map to members).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coordinator_harness import E, Harness
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hayase.broker.coordinator.group import GroupState
from hayase.broker.coordinator.results import JoinResult, LeaveResult, SyncResult

CLIENTS = 4
STATIC = {2: "inst-2", 3: "inst-3"}  # clients 2 and 3 use group.instance.id


@dataclass
class Client:
    index: int
    member_id: str = ""
    generation: int = -1
    leader: bool = False
    members: tuple[str, ...] = ()
    parked: set[int] = field(default_factory=set)

    @property
    def instance(self) -> str | None:
        return STATIC.get(self.index)


class Model:
    def __init__(self, initial_delay_ms: int = 0) -> None:
        self.h = Harness(initial_rebalance_delay_ms=initial_delay_ms)
        self.clients = [Client(i) for i in range(CLIENTS)]
        self.owner: dict[int, Client] = {}  # token -> client
        self.kind: dict[int, str] = {}
        self.leader_of_generation: dict[int, int] = {}
        self.given_assignment: dict[str, bytes] = {}
        self.last_generation = 0

    # -- driving --------------------------------------------------------------------------------

    def settle(self) -> None:
        """Route every new reply to its client."""
        for token, result in list(self.h.replies.items()):
            client = self.owner.pop(token, None)
            if client is None:
                continue
            client.parked.discard(token)
            if isinstance(result, JoinResult):
                self.on_join(client, result)
            elif isinstance(result, SyncResult) and result.error is not E.none:
                client.generation = -1

    def on_join(self, client: Client, r: JoinResult) -> None:
        if r.error is E.member_id_required:
            client.member_id = r.member_id
            self.send_join(client)
        elif r.error is E.none:
            client.member_id = r.member_id
            client.generation = r.generation_id
            client.members = tuple(m.member_id for m in r.members)
            client.leader = bool(r.members) and not r.skip_assignment
            if r.members or r.leader == r.member_id:
                leader_client = self.leader_of_generation.setdefault(r.generation_id, client.index)
                assert leader_client == client.index, (
                    f"generation {r.generation_id} has two leaders: "
                    f"clients {leader_client} and {client.index}"
                )
        elif r.error in (E.unknown_member_id, E.fenced_instance_id):
            client.member_id = "" if client.instance is None else client.member_id
            client.generation = -1

    def send(self, client: Client, token: int, kind: str) -> None:
        if token not in self.h.replies:
            client.parked.add(token)
        self.owner[token] = client
        self.kind[token] = kind
        self.settle()

    def send_join(self, client: Client) -> None:
        t = self.h.join(member_id=client.member_id, instance=client.instance)
        self.send(client, t, "join")

    def step(self, op: str, index: int, ms: int) -> None:
        client = self.clients[index]
        if op == "join" and not client.parked:
            self.send_join(client)
        elif op == "restart" and client.instance is not None:
            client.member_id, client.generation, client.parked = "", -1, set()
            self.send_join(client)
        elif op == "sync" and client.generation >= 0 and not client.parked:
            assignments = None
            if client.leader:
                assignments = {m: f"{m}@{client.generation}".encode() for m in client.members}
                self.given_assignment.update(assignments)
            t = self.h.sync(client.member_id, client.generation, assignments,
                            instance=client.instance)
            self.send(client, t, "sync")
        elif op == "heartbeat" and client.member_id:
            error = self.h.heartbeat(client.member_id, max(client.generation, 0),
                                     instance=client.instance)
            if error in (E.unknown_member_id, E.fenced_instance_id):
                client.member_id = "" if client.instance is None else client.member_id
                client.generation = -1
        elif op == "leave" and client.member_id:
            r = self.h.leave((client.member_id, client.instance))
            assert isinstance(r, LeaveResult)
            client.member_id, client.generation = "", -1
            self.settle()
        elif op == "tick":
            self.h.advance(ms)
            self.settle()
        elif op == "round":  # every live client takes its natural next step
            for c in self.clients:
                if c.parked:
                    continue
                if c.generation >= 0 and c.member_id:
                    self.step("sync", c.index, 0)
                    if not c.parked and c.member_id:
                        self.step("heartbeat", c.index, 0)
                elif c.index % 2 == 0 or ms:
                    self.step("join", c.index, 0)
            self.h.advance(min(ms, 4_000))
            self.settle()

    # -- invariants -----------------------------------------------------------------------------

    def check(self) -> None:
        group = self.h.c.groups.get("g")
        if group is None:
            return
        assert group.generation_id >= self.last_generation
        self.last_generation = group.generation_id
        parked = {m.join_token for m in group.members.values() if m.awaiting_join}
        parked |= {m.sync_token for m in group.members.values() if m.awaiting_sync}
        unanswered = {t for t in self.owner if t not in self.h.replies}
        assert unanswered == parked, (unanswered, parked)
        if group.members:
            assert group.leader_id in group.members
        for instance, member_id in group.static_members.items():
            assert group.members[member_id].group_instance_id == instance
        assert len(group.static_members) == sum(1 for m in group.members.values() if m.is_static)
        if group.state is GroupState.STABLE:
            for member_id, member in group.members.items():
                assert member.assignment, f"Stable member {member_id} without assignment"
                assert member.assignment.startswith(member.assignment.split(b"@")[0])
        if group.state is GroupState.EMPTY:
            assert not group.members


ops = st.lists(
    st.tuples(
        st.sampled_from(
            ["join", "sync", "heartbeat", "leave", "tick", "restart"] + ["round"] * 4
        ),
        st.integers(0, CLIENTS - 1),
        st.sampled_from([0, 1_000, 4_000, 11_000, 31_000]),
    ),
    max_size=80,
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops, st.sampled_from([0, 3_000]))
def test_random_sequences_keep_the_invariants(
    sequence: list[tuple[str, int, int]], initial_delay_ms: int
) -> None:
    model = Model(initial_delay_ms)
    reached_stable = False
    for op, index, ms in sequence:
        model.step(op, index, ms)
        model.check()
        group = model.h.c.groups.get("g")
        reached_stable |= group is not None and group.state is GroupState.STABLE
    event(f"reached Stable: {reached_stable}")
    event(f"generations: {min(model.last_generation, 5)}+")
    # Left alone long enough, every member times out and every parked request is answered.
    for _ in range(5):
        model.h.advance(400_000)
        model.settle()
        model.check()
    group = model.h.c.groups.get("g")
    assert group is None or (group.state is GroupState.EMPTY and not group.members)
    assert all(t in model.h.replies for t in model.owner)
