"""JoinGroup / SyncGroup / Heartbeat / LeaveGroup on the sans-IO coordinator."""

from __future__ import annotations

from coordinator_harness import PROTOCOLS, REBALANCE, SESSION, E, Harness

from hayase.broker.coordinator.group import GroupState
from hayase.broker.coordinator.results import JoinResult, SyncResult


def state(h: Harness, group: str = "g") -> GroupState:
    return h.c.groups[group].state


# -- join and sync -------------------------------------------------------------------------------


def test_first_join_v4_plus_requires_member_id_then_one_member_generation() -> None:
    h = Harness()
    first = h.join(version=9)
    r = h.reply(first)
    assert r.error is E.member_id_required and r.member_id == "c-m1"
    parked = h.join(member_id="c-m1")
    assert h.reply(parked) is None  # waits for the (zero) initial delay
    h.advance(0)
    r = h.reply(parked)
    assert r.error is E.none
    assert (r.generation_id, r.leader, r.member_id) == (1, "c-m1", "c-m1")
    assert r.protocol_type == "consumer" and r.protocol_name == "range"
    assert [(m.member_id, m.metadata) for m in r.members] == [("c-m1", b"sub-range")]
    assert state(h) is GroupState.COMPLETING_REBALANCE
    s = h.sync("c-m1", 1, {"c-m1": b"A"})
    assert h.reply(s) == SyncResult(E.none, b"A", "consumer", "range")
    assert state(h) is GroupState.STABLE
    assert h.records, "the settled assignment is written to __consumer_offsets"


def test_join_before_v4_gets_a_member_id_at_once() -> None:
    h = Harness()
    t = h.join(version=3)
    assert h.reply(t) is None
    h.advance(0)
    r = h.reply(t)
    assert r.error is E.none and r.member_id == "c-m1" and r.leader == "c-m1"


def test_three_members_one_generation_one_leader_followers_get_assignment_from_leader() -> None:
    h = Harness()
    members = [h.new_member() for _ in range(3)]
    h.advance(0)
    results = [h.reply(t) for _, t in members]
    assert {r.generation_id for r in results} == {1}
    leaders = {r.leader for r in results}
    assert len(leaders) == 1
    leader = leaders.pop()
    with_members = [r for r in results if r.members]
    assert [r.member_id for r in with_members] == [leader]
    assert {m.member_id for m in with_members[0].members} == {m for m, _ in members}
    followers = [m for m, _ in members if m != leader]
    waiting = {m: h.sync(m, 1) for m in followers}
    assert all(h.reply(t) is None for t in waiting.values())  # parked until the leader syncs
    assignment = {m: m.encode() for m, _ in members}
    h.sync(leader, 1, assignment)
    for m, t in waiting.items():
        assert h.reply(t).assignment == m.encode()
    assert state(h) is GroupState.STABLE


def test_initial_rebalance_delay_collects_members_and_extends() -> None:
    h = Harness(initial_rebalance_delay_ms=3000)
    a, ta = h.new_member()
    h.advance(2000)
    b, tb = h.new_member()  # a new member during the delay extends it
    h.advance(1000)
    assert h.reply(ta) is None
    h.advance(3000)
    assert h.reply(ta).generation_id == h.reply(tb).generation_id == 1


def test_follower_rejoin_in_stable_with_same_metadata_does_not_rebalance() -> None:
    h = Harness()
    ids, gen, leader = h.stable_group(2)
    follower = next(m for m in ids if m != leader)
    t = h.join(member_id=follower)
    r = h.reply(t)
    assert r.error is E.none and r.generation_id == gen and r.members == ()
    assert state(h) is GroupState.STABLE


def test_leader_rejoin_in_stable_forces_rebalance() -> None:
    h = Harness()
    ids, gen, leader = h.stable_group(2)
    h.join(member_id=leader)
    assert state(h) is GroupState.PREPARING_REBALANCE


def test_inconsistent_protocol_and_bad_session_timeout_and_empty_group_id() -> None:
    h = Harness()
    h.stable_group(1)
    t = h.join(protocols=(("other", b""),))
    assert h.reply(t).error is E.inconsistent_group_protocol
    t = h.join(protocol_type="connect")
    assert h.reply(t).error is E.inconsistent_group_protocol
    t = h.join(session=5)
    assert h.reply(t).error is E.invalid_session_timeout
    t = h.join(group="")
    assert h.reply(t).error is E.invalid_group_id
    t = h.join(group="nope", member_id="ghost")
    assert h.reply(t).error is E.unknown_member_id


def test_protocol_vote_picks_the_protocol_every_member_supports() -> None:
    h = Harness()
    a, ta = h.new_member(protocols=(("range", b"a"), ("roundrobin", b"a2")))
    b, tb = h.new_member(protocols=(("roundrobin", b"b"),))
    h.advance(0)
    assert h.reply(ta).protocol_name == h.reply(tb).protocol_name == "roundrobin"


# -- rebalances ----------------------------------------------------------------------------------


def test_new_member_triggers_rebalance_existing_members_learn_it_by_heartbeat() -> None:
    h = Harness()
    ids, gen, leader = h.stable_group(2)
    newcomer, tn = h.new_member()
    assert state(h) is GroupState.PREPARING_REBALANCE
    for m in ids:
        assert h.heartbeat(m, gen) is E.rebalance_in_progress
    rejoin = [h.join(member_id=m) for m in ids]
    # Not the initial rebalance: completes as soon as everyone is in, without a tick.
    results = [h.reply(t) for t in [*rejoin, tn]]
    assert all(r.error is E.none and r.generation_id == gen + 1 for r in results)
    assert sum(1 for r in results if r.members) == 1


def test_member_leaving_triggers_rebalance_of_the_rest() -> None:
    h = Harness()
    ids, gen, leader = h.stable_group(3)
    leaving = ids[1]
    r = h.leave((leaving, None))
    assert r.error is E.none and r.members[0].error is E.none
    assert state(h) is GroupState.PREPARING_REBALANCE
    remaining = [m for m in ids if m != leaving]
    tokens = [h.join(member_id=m) for m in remaining]
    results = [h.reply(t) for t in tokens]
    assert {r.generation_id for r in results} == {gen + 1}
    leader_result = next(r for r in results if r.members)
    assert {m.member_id for m in leader_result.members} == set(remaining)


def test_last_member_leaving_empties_the_group_and_writes_it() -> None:
    h = Harness()
    ids, gen, _ = h.stable_group(1)
    before = len(h.records)
    h.leave((ids[0], None))
    assert state(h) is GroupState.EMPTY
    assert h.c.groups["g"].generation_id == gen + 1
    assert len(h.records) == before + 1


def test_last_member_leaving_with_a_pending_member_empties_the_group_at_the_next_tick() -> None:
    # Kafka's hasAllMembersJoined counts pending members: the group waits in PreparingRebalance
    # for the join timer (the rebalance timeout of no members, 0 ms), not in the LeaveGroup
    # step. Apache Kafka 4.1 shows the same PreparingRebalance to a DescribeGroups sent at once.
    h = Harness()
    ids, gen, _ = h.stable_group(1)
    pending = h.reply(h.join()).member_id
    assert state(h) is GroupState.STABLE  # a pending member does not start a rebalance
    assert h.leave((ids[0], None)).members[0].error is E.none
    assert state(h) is GroupState.PREPARING_REBALANCE
    assert h.c.next_deadline() == h.now
    before = len(h.records)
    h.advance(0)
    assert state(h) is GroupState.EMPTY
    assert h.c.groups["g"].generation_id == gen + 1
    assert len(h.records) == before + 1
    assert pending in h.c.groups["g"].pending_members  # it may still join, until its session ends


def test_leave_unknown_member_and_batch_with_instance_ids() -> None:
    h = Harness()
    ids, _, _ = h.stable_group(1)
    r = h.leave(("ghost", None), (ids[0], None))
    assert [m.error for m in r.members] == [E.unknown_member_id, E.none]
    # A group that does not exist: each member is unknown (Apache Kafka 4.1 answers the same).
    missing = h.leave(("x", None), group="missing")
    assert missing.error is E.none and missing.members[0].error is E.unknown_member_id


def test_session_timeout_removes_silent_member_and_rebalances() -> None:
    h = Harness()
    ids, gen, leader = h.stable_group(2)
    alive, dead = ids
    h.advance(SESSION // 2)
    assert h.heartbeat(alive, gen) is E.none
    h.advance(SESSION // 2)  # `dead` never heartbeat: its session is over
    assert dead not in h.c.groups["g"].members
    assert h.heartbeat(alive, gen) is E.rebalance_in_progress
    t = h.join(member_id=alive)
    r = h.reply(t)
    assert r.generation_id == gen + 1 and r.leader == alive
    assert h.heartbeat(dead, gen) is E.unknown_member_id


def test_member_that_does_not_rejoin_within_rebalance_timeout_is_dropped() -> None:
    h = Harness()
    ids, gen, _ = h.stable_group(2)
    a, b = ids
    t = h.join(member_id=a)  # a rejoins (rebalance starts); b keeps heartbeating only
    for _ in range(REBALANCE // (SESSION // 2)):
        h.advance(SESSION // 2)
        h.heartbeat(b, gen)
    r = h.reply(t)
    assert r is not None and r.error is E.none and r.generation_id == gen + 1
    assert list(h.c.groups["g"].members) == [a]


def test_leader_that_never_syncs_is_removed_after_rebalance_timeout() -> None:
    h = Harness()
    members = [h.new_member() for _ in range(2)]
    h.advance(0)
    leader = h.reply(members[0][1]).leader
    follower = next(m for m, _ in members if m != leader)
    ts = h.sync(follower, 1)
    h.advance(REBALANCE)
    assert h.reply(ts).error is E.rebalance_in_progress
    assert leader not in h.c.groups["g"].members


def test_pending_member_that_never_rejoins_expires() -> None:
    h = Harness()
    t = h.join()
    pending = h.reply(t).member_id
    assert pending in h.c.groups["g"].pending_members
    h.advance(SESSION)
    assert pending not in h.c.groups["g"].pending_members


# -- generation fencing --------------------------------------------------------------------------


def test_stale_generation_and_unknown_member_are_fenced() -> None:
    h = Harness()
    ids, gen, leader = h.stable_group(2)
    assert h.heartbeat(ids[0], gen - 1) is E.illegal_generation
    assert h.heartbeat("ghost", gen) is E.unknown_member_id
    assert h.heartbeat(ids[0], gen, group="nope") is E.unknown_member_id
    assert h.reply(h.sync(ids[0], gen + 1)).error is E.illegal_generation
    assert h.reply(h.sync("ghost", gen)).error is E.unknown_member_id
    # A new generation: the old one's sync is refused.
    h.join(member_id=leader)
    other = next(m for m in ids if m != leader)
    h.join(member_id=other)
    assert h.reply(h.sync(other, gen)).error is E.illegal_generation


def test_sync_during_preparing_rebalance_and_protocol_mismatch() -> None:
    h = Harness()
    ids, gen, leader = h.stable_group(2)
    h.new_member()
    assert h.reply(h.sync(ids[0], gen)).error is E.rebalance_in_progress


def test_retried_join_answers_the_superseded_one() -> None:
    h = Harness()
    ids, gen, leader = h.stable_group(2)
    t1 = h.join(member_id=leader)
    t2 = h.join(member_id=leader)
    assert h.reply(t1).error is E.rebalance_in_progress
    assert h.reply(t2) is None


# -- static membership (KIP-345) -----------------------------------------------------------------


def static_group(h: Harness, version: int = 9) -> tuple[dict[str, str], int]:
    tokens = {i: h.join(instance=i, version=version) for i in ("i1", "i2")}
    h.advance(0)
    results = {i: h.reply(t) for i, t in tokens.items()}
    gen = results["i1"].generation_id
    leader = results["i1"].leader
    ids = {i: r.member_id for i, r in results.items()}
    assignment = {m: f"a-{i}".encode() for i, m in ids.items()}
    for i, m in ids.items():
        h.sync(m, gen, assignment if m == leader else None, instance=i)
    assert state(h) is GroupState.STABLE
    return ids, gen


def test_static_member_gets_member_id_without_member_id_required() -> None:
    h = Harness()
    t = h.join(instance="i1")
    assert h.reply(t) is None  # no MEMBER_ID_REQUIRED round trip for static members
    h.advance(0)
    assert h.reply(t).member_id.startswith("i1-")


def test_static_member_restart_keeps_assignment_and_no_rebalance() -> None:
    h = Harness()
    ids, gen = static_group(h)
    follower_instance = next(i for i, m in ids.items() if m != h.c.groups["g"].leader_id)
    old_id = ids[follower_instance]
    t = h.join(instance=follower_instance)  # restarted process: no member id
    r = h.reply(t)
    assert r.error is E.none and r.generation_id == gen and r.member_id != old_id
    assert state(h) is GroupState.STABLE
    s = h.sync(r.member_id, gen, instance=follower_instance)
    assert h.reply(s).assignment == f"a-{follower_instance}".encode()
    # The old incarnation is fenced.
    assert h.heartbeat(old_id, gen, instance=follower_instance) is E.fenced_instance_id
    # Everyone else carries on in the same generation.
    other = ids[next(i for i in ids if i != follower_instance)]
    assert h.heartbeat(other, gen, instance=next(i for i in ids if i != follower_instance)) is E.none


def test_static_leader_restart_v9_skips_assignment_older_versions_see_old_leader() -> None:
    h = Harness()
    ids, gen = static_group(h)
    leader_instance = next(i for i, m in ids.items() if m == h.c.groups["g"].leader_id)
    r = h.reply(h.join(instance=leader_instance, version=9))
    assert r.skip_assignment and r.leader == r.member_id and len(r.members) == 2
    assert state(h) is GroupState.STABLE
    old_leader = r.member_id
    r = h.reply(h.join(instance=leader_instance, version=5))
    assert not r.skip_assignment and r.leader == old_leader and r.members == ()
    assert state(h) is GroupState.STABLE


def test_static_member_with_changed_protocol_triggers_rebalance() -> None:
    h = Harness()
    ids, gen = static_group(h)
    h.join(instance="i2", protocols=(("roundrobin", b"x"),))
    assert state(h) is GroupState.PREPARING_REBALANCE


def test_fenced_instance_id_on_every_api_and_unknown_instance() -> None:
    h = Harness()
    ids, gen = static_group(h)
    assert h.heartbeat("wrong", gen, instance="i1") is E.fenced_instance_id
    assert h.reply(h.sync("wrong", gen, instance="i1")).error is E.fenced_instance_id
    assert h.commit("wrong", gen, {("t", 0): 1}, instance="i1")[("t", 0)] is E.fenced_instance_id
    assert h.reply(h.join(member_id="wrong", instance="i1")).error is E.fenced_instance_id
    assert h.heartbeat(ids["i1"], gen, instance="unknown") is E.unknown_member_id
    assert h.leave(("wrong", "i1")).members[0].error is E.fenced_instance_id


def test_static_member_restart_fences_its_parked_sync() -> None:
    h = Harness()
    tokens = {i: h.join(instance=i) for i in ("i1", "i2")}
    h.advance(0)
    results = {i: h.reply(t) for i, t in tokens.items()}
    follower = next(i for i, r in results.items() if r.member_id != r.leader)
    parked = h.sync(results[follower].member_id, 1, instance=follower)
    h.join(instance=follower)  # a second process with the same instance id
    assert h.reply(parked).error is E.fenced_instance_id
    assert state(h) is GroupState.PREPARING_REBALANCE


def test_static_member_not_removed_when_it_misses_a_rebalance_only_at_session_end() -> None:
    h = Harness()
    ids, gen = static_group(h)
    t = h.join(member_id=ids["i1"], instance="i1")
    # i2 keeps heartbeating but does not rejoin: a static member stays through the join phase.
    for _ in range(REBALANCE // (SESSION // 2)):
        h.advance(SESSION // 2)
        h.heartbeat(ids["i2"], gen, instance="i2")
    assert ids["i2"] in h.c.groups["g"].members
    r = h.reply(t)
    assert r is not None and r.generation_id == gen + 1


def test_leave_static_member_by_instance_id_only() -> None:
    h = Harness()
    ids, gen = static_group(h)
    r = h.leave(("", "i2"))
    assert r.members[0].error is E.none
    assert ids["i2"] not in h.c.groups["g"].members
    assert h.leave(("", "nobody")).members[0].error is E.unknown_member_id


# -- cooperative protocol ------------------------------------------------------------------------


def test_cooperative_members_keep_working_through_a_rebalance() -> None:
    """cooperative-sticky: the broker only carries the metadata, but a member that keeps its
    partitions must not be thrown out: it heartbeats (REBALANCE_IN_PROGRESS), commits, and its
    owned partitions reach the leader verbatim; the follow-up rebalance works too."""
    coop = (("cooperative-sticky", b"owned:t-0,t-1"),)
    h = Harness()
    a, ta = h.new_member(protocols=coop)
    h.advance(0)
    h.sync(a, 1, {a: b"t-0,t-1"})
    b, tb = h.new_member(protocols=(("cooperative-sticky", b"owned:"),))
    assert state(h) is GroupState.PREPARING_REBALANCE
    assert h.heartbeat(a, 1) is E.rebalance_in_progress
    assert h.commit(a, 1, {("t", 0): 10})[("t", 0)] is E.none  # still allowed while preparing
    owned = (("cooperative-sticky", b"owned:t-0,t-1;gen=1"),)
    ta2 = h.join(member_id=a, protocols=owned)
    r = h.reply(ta2)
    assert r.generation_id == 2 and r.protocol_name == "cooperative-sticky"
    assert {m.member_id: m.metadata for m in r.members}[a] == b"owned:t-0,t-1;gen=1"
    # Leader keeps t-0 and revokes t-1 (first cooperative round), b gets nothing yet.
    h.sync(b, 2)
    h.sync(a, 2, {a: b"t-0", b: b""})
    assert h.reply(tb).error is E.none
    # Follow-up rebalance requested by the leader after revocation.
    ta3 = h.join(member_id=a, protocols=(("cooperative-sticky", b"owned:t-0"),))
    tb3 = h.join(member_id=b, protocols=(("cooperative-sticky", b"owned:"),))
    assert h.reply(ta3).generation_id == h.reply(tb3).generation_id == 3
    assert set(h.c.groups["g"].members) == {a, b}


def test_join_result_types() -> None:
    h = Harness()
    t = h.join()
    assert isinstance(h.reply(t), JoinResult)
    assert PROTOCOLS[0][0] == "range"


def test_group_max_size_turns_away_extra_members() -> None:
    h = Harness(max_group_size=1)
    h.stable_group(1)
    r = h.reply(h.join())
    assert r.error is E.group_max_size_reached and r.member_id == ""
    assert len(h.c.groups["g"].members) == 1 and state(h) is GroupState.STABLE
