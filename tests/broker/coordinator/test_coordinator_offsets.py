"""OffsetCommit / OffsetFetch, replay of __consumer_offsets, Describe/List/DeleteGroups."""

from __future__ import annotations

import itertools

import pytest
from coordinator_harness import E, Harness, make_config

from hayase.broker.coordinator import records as rec
from hayase.broker.coordinator.coordinator import GroupCoordinator
from hayase.broker.coordinator.group import GroupState


def topics(name: str) -> int | None:
    return {"t": 3, "u": 1}.get(name)


def harness(**config: int) -> Harness:
    ids = itertools.count(1)
    c = GroupCoordinator(
        make_config(**config),
        partitions_of=topics,
        member_id_factory=lambda p: f"{p}-m{next(ids)}",
    )
    return Harness(c)


# -- commit and fetch ----------------------------------------------------------------------------


def test_commit_and_fetch_with_metadata_strings() -> None:
    h = harness()
    ids, gen, _ = h.stable_group(1)
    errors = h.commit(ids[0], gen, {("t", 0): 5, ("t", 2): 9}, metadata="ckpt-7")
    assert set(errors.values()) == {E.none}
    f = h.c.fetch_offsets("g", [("t", [0, 1, 2])])
    assert f.error is E.none
    assert [(p.partition, p.offset, p.metadata) for p in f.partitions] == [
        (0, 5, "ckpt-7"),
        (1, -1, ""),
        (2, 9, "ckpt-7"),
    ]
    everything = h.c.fetch_offsets("g", None)
    assert [(p.topic, p.partition, p.offset) for p in everything.partitions] == [
        ("t", 0, 5),
        ("t", 2, 9),
    ]


def test_commit_writes_records_before_its_reply_in_the_same_output() -> None:
    h = harness()
    ids, gen, _ = h.stable_group(1)
    out = h.c.commit_offsets(
        "tok", "g", gen, ids[0],
        [rec_partition("t", 1, 42)], h.now,
    )
    assert len(out.records) == 1 and out.replies[0][0] == "tok"
    key, value = out.records[0]
    assert rec.decode_key(key) == rec.OffsetKey("g", "t", 1)
    assert value is not None and rec.decode_offset_value(value).offset == 42


def rec_partition(topic: str, partition: int, offset: int):  # type: ignore[no-untyped-def]
    from hayase.broker.coordinator.coordinator import CommitPartition

    return CommitPartition(topic, partition, offset, "")


def test_commit_to_unknown_topic_or_partition_and_too_large_metadata() -> None:
    h = harness(max_metadata_bytes=8)
    ids, gen, _ = h.stable_group(1)
    errors = h.commit(ids[0], gen, {("t", 3): 1, ("nope", 0): 1, ("u", 0): 1})
    assert errors == {
        ("t", 3): E.unknown_topic_or_partition,
        ("nope", 0): E.unknown_topic_or_partition,
        ("u", 0): E.none,
    }
    assert h.commit(ids[0], gen, {("u", 0): 2}, metadata="x" * 9)[("u", 0)] is (
        E.offset_metadata_too_large
    )
    assert h.c.fetch_offsets("g", [("u", [0])]).partitions[0].offset == 1


def test_unknown_partitions_are_answered_before_the_group_is_checked() -> None:
    h = harness()
    ids, gen, _ = h.stable_group(1)
    errors = h.commit("ghost", gen, {("nope", 0): 1, ("t", 0): 1})
    assert errors == {("nope", 0): E.unknown_topic_or_partition, ("t", 0): E.unknown_member_id}
    # Only unknown partitions: the group is never looked at, nor created.
    assert h.commit("", -1, {("nope", 0): 1}, group="fresh") == {
        ("nope", 0): E.unknown_topic_or_partition}
    assert "fresh" not in h.c.groups


def test_commit_from_stale_generation_or_unknown_member_is_rejected() -> None:
    h = harness()
    ids, gen, leader = h.stable_group(2)
    assert h.commit(ids[0], gen - 1, {("t", 0): 1})[("t", 0)] is E.illegal_generation
    assert h.commit("ghost", gen, {("t", 0): 1})[("t", 0)] is E.unknown_member_id
    # No member id and no generation: only for an Empty group.
    assert h.commit("", -1, {("t", 0): 1})[("t", 0)] is E.unknown_member_id
    # During CompletingRebalance the member must finish syncing first.
    for m in ids:
        h.join(member_id=m)
    assert h.c.groups["g"].state is GroupState.COMPLETING_REBALANCE
    assert h.commit(ids[0], gen + 1, {("t", 0): 1})[("t", 0)] is E.rebalance_in_progress
    assert h.c.fetch_offsets("g", [("t", [0])]).partitions[0].offset == -1


def test_commit_to_missing_group_depends_on_generation_and_version() -> None:
    h = harness()
    assert h.commit("m", 3, {("t", 0): 1}, group="none", version=8)[("t", 0)] is (
        E.illegal_generation
    )
    assert h.commit("m", 3, {("t", 0): 1}, group="none", version=9)[("t", 0)] is (
        E.group_id_not_found
    )
    # Simple consumers and admin tools commit with generation -1: a group appears.
    assert h.commit("", -1, {("t", 0): 7}, group="simple")[("t", 0)] is E.none
    assert h.c.groups["simple"].state is GroupState.EMPTY
    assert h.c.fetch_offsets("simple", [("t", [0])]).partitions[0].offset == 7


def test_fetch_for_unknown_group_answers_minus_one() -> None:
    h = harness()
    f = h.c.fetch_offsets("nobody", [("t", [0])])
    assert f.error is E.none and f.partitions[0].offset == -1


# -- replay --------------------------------------------------------------------------------------


def replayed(h: Harness, now: int = 0) -> GroupCoordinator:
    c = GroupCoordinator(make_config(), partitions_of=topics)
    c.replay(h.records, now)
    return c


def test_replay_restores_offsets_and_stable_group() -> None:
    h = harness()
    ids, gen, leader = h.stable_group(2)
    h.commit(ids[0], gen, {("t", 0): 5}, metadata="m0")
    h.commit(ids[1], gen, {("t", 0): 6, ("t", 1): 3}, metadata="m1")
    c = replayed(h, now=1_000)
    assert c.committed("g") == h.c.committed("g")
    g, original = c.groups["g"], h.c.groups["g"]
    assert g.state is GroupState.STABLE
    assert (g.generation_id, g.leader_id, g.protocol_name) == (gen, leader, "range")
    assert {m: x.assignment for m, x in g.members.items()} == original.assignments()
    # The members carry on after the restart with their member id and generation.
    h2 = Harness(c)
    h2.now = 1_000
    assert h2.heartbeat(ids[0], gen) is E.none
    assert h2.commit(ids[1], gen, {("t", 2): 1})[("t", 2)] is E.none
    # A member that is gone for good times out as usual; the one that heartbeats stays.
    h2.advance(5_000)
    assert h2.heartbeat(ids[0], gen) is E.none
    h2.advance(5_000)
    assert ids[1] not in c.groups["g"].members
    assert h2.heartbeat(ids[0], gen) is E.rebalance_in_progress


def test_replay_restores_empty_group_deletions_and_static_members() -> None:
    h = harness()
    t = h.join(instance="i1")
    h.advance(0)
    r = h.reply(t)
    h.sync(r.member_id, r.generation_id, {r.member_id: b"x"}, instance="i1")
    c = replayed(h)
    assert c.groups["g"].static_members == {"i1": r.member_id}
    h.leave((r.member_id, "i1"))
    h.commit("", -1, {("u", 0): 4}, group="other")
    h.run(h.c.delete_groups(h.token(), ["other"]))
    c = replayed(h)
    assert c.groups["g"].state is GroupState.EMPTY
    assert c.groups["g"].generation_id == r.generation_id + 1
    assert "other" not in c.groups and c.committed("other") == {}


def test_replay_of_snapshot_equals_replay_of_full_log() -> None:
    h = harness()
    ids, gen, _ = h.stable_group(2)
    for i in range(5):
        h.commit(ids[0], gen, {("t", 0): i, ("t", 1): 10 + i})
    full = replayed(h)
    compacted = GroupCoordinator(make_config())
    compacted.replay(full.snapshot_records(), 0)
    assert compacted.committed("g") == full.committed("g")
    assert compacted.groups["g"].assignments() == full.groups["g"].assignments()
    assert len(full.snapshot_records()) == 3


def test_replay_skips_unknown_key_versions_and_rejects_corrupt_values() -> None:
    c = GroupCoordinator(make_config())
    assert c.replay([(b"\x00\x09junk", b"")], 0) == 0
    with pytest.raises(rec.CorruptRecordError):
        c.replay([(rec.offset_key("g", "t", 0), b"\x00\x03\x00")], 0)


def test_record_codec_round_trip_and_partition_for() -> None:
    v = rec.GroupValue(
        "consumer", 4, "range", "m1", 77,
        (rec.MemberValue("m1", None, "c", "/127.0.0.1", 100, 200, b"s", b"a"),),
    )
    assert rec.decode_group_value(rec.group_value(v)) == v
    o = rec.OffsetValue(5, 2, "meta", 9)
    assert rec.decode_offset_value(rec.offset_value(o)) == o
    assert rec.java_string_hash("group") == 98629247  # "group".hashCode() in Java
    assert 0 <= rec.partition_for("group", 50) < 50


# -- describe / list / delete --------------------------------------------------------------------


def test_describe_groups_stable_preparing_and_unknown() -> None:
    h = harness()
    ids, gen, leader = h.stable_group(2)
    d = h.c.describe_groups(["g", "missing"], version=5).groups
    assert (d[0].state, d[0].protocol_type, d[0].protocol_data) == ("Stable", "consumer", "range")
    assert {m.member_id: m.assignment for m in d[0].members} == h.c.groups["g"].assignments()
    assert d[1].error is E.none and d[1].state == "Dead"
    assert h.c.describe_groups(["missing"], version=6).groups[0].error is E.group_id_not_found
    h.join(member_id=leader)
    d = h.c.describe_groups(["g"]).groups[0]
    assert d.state == "PreparingRebalance" and d.protocol_data == ""
    assert all(m.assignment == b"" for m in d.members)


def test_list_groups_with_state_and_type_filters() -> None:
    h = harness()
    h.stable_group(1, group="a")
    h.commit("", -1, {("t", 0): 1}, group="b")
    listed = {g.group_id: (g.state, g.protocol_type) for g in h.c.list_groups().groups}
    assert listed == {"a": ("Stable", "consumer"), "b": ("Empty", "")}
    assert [g.group_id for g in h.c.list_groups(states_filter=["empty"]).groups] == ["b"]
    assert h.c.list_groups(types_filter=["consumer"]).groups == ()
    assert len(h.c.list_groups(types_filter=["Classic"]).groups) == 2


def test_delete_groups_only_empty_ones() -> None:
    h = harness()
    ids, gen, _ = h.stable_group(1, group="busy")
    h.commit("", -1, {("t", 0): 1}, group="idle")
    t = h.token()
    out = h.run(h.c.delete_groups(t, ["busy", "idle", "ghost"]))
    assert dict(h.reply(t).results) == {
        "busy": E.non_empty_group,
        "idle": E.none,
        "ghost": E.group_id_not_found,
    }
    assert (rec.offset_key("idle", "t", 0), None) in out.records
    assert (rec.group_key("idle"), None) in out.records
    assert "idle" not in h.c.groups
    assert h.c.fetch_offsets("idle", [("t", [0])]).partitions[0].offset == -1


# -- offset retention ----------------------------------------------------------------------------


def test_offsets_of_an_empty_group_expire_after_retention_then_the_group_goes() -> None:
    h = harness(offsets_retention_ms=10_000, offsets_retention_check_interval_ms=1_000)
    ids, gen, _ = h.stable_group(1)
    h.commit(ids[0], gen, {("t", 0): 5})
    h.leave((ids[0], None))
    h.advance(9_000)
    assert h.c.committed("g") != {} and "g" in h.c.groups
    out = h.advance(2_000)
    assert h.c.committed("g") == {} and "g" not in h.c.groups
    assert (rec.offset_key("g", "t", 0), None) in out.records
    assert (rec.group_key("g"), None) in out.records
    assert "g" not in replayed(h).groups


def test_simple_group_offsets_expire_one_by_one_and_active_groups_keep_theirs() -> None:
    h = harness(offsets_retention_ms=10_000, offsets_retention_check_interval_ms=1_000)
    ids, gen, _ = h.stable_group(1, group="busy")
    h.commit(ids[0], gen, {("t", 0): 1}, group="busy")
    h.commit("", -1, {("t", 0): 1}, group="simple")
    h.advance(6_000)
    h.heartbeat(ids[0], gen, group="busy")
    h.commit("", -1, {("t", 1): 2}, group="simple")
    h.advance(5_000)
    h.heartbeat(ids[0], gen, group="busy")
    assert set(h.c.committed("simple")) == {("t", 1)}
    assert set(h.c.committed("busy")) == {("t", 0)}  # a Stable group's offsets stay
    h.advance(6_000)
    assert "simple" not in h.c.groups


def test_deleting_a_topic_deletes_its_committed_offsets_and_emptied_groups() -> None:
    h = harness()
    ids, gen, _ = h.stable_group(1, group="busy")
    h.commit(ids[0], gen, {("t", 0): 1, ("u", 0): 2}, group="busy")
    h.commit("", -1, {("t", 1): 3}, group="simple")
    out = h.run(h.c.delete_topic_offsets("t", h.now))
    assert set(h.c.committed("busy")) == {("u", 0)}
    assert "simple" not in h.c.groups and "busy" in h.c.groups
    assert (rec.offset_key("busy", "t", 0), None) in out.records
    assert (rec.group_key("simple"), None) in out.records
    c = replayed(h)
    assert c.committed("busy") == h.c.committed("busy") and "simple" not in c.groups
