"""OffsetDelete (KIP-496) in the sans-IO coordinator, and reading a member's subscribed topics
from its ConsumerProtocolSubscription."""

from __future__ import annotations

import itertools
import struct

from coordinator_harness import E, Harness, make_config

from hayase.broker.coordinator import records as rec
from hayase.broker.coordinator.coordinator import GroupCoordinator
from hayase.broker.coordinator.group import subscription_topics
from hayase.broker.coordinator.results import OffsetDeleteResult


def subscription(*topics: str, version: int = 1) -> bytes:
    body = struct.pack(">hi", version, len(topics))
    for t in topics:
        body += struct.pack(">h", len(t)) + t.encode()
    return body + struct.pack(">i", -1)  # null user data


def harness() -> Harness:
    ids = itertools.count(1)
    c = GroupCoordinator(make_config(), partitions_of=lambda t: {"t": 3, "u": 2}.get(t),
                         member_id_factory=lambda p: f"{p}-m{next(ids)}")
    return Harness(c)


def delete(h: Harness, group: str, *tps: tuple[str, int]) -> OffsetDeleteResult:
    t = h.token()
    h.run(h.c.delete_offsets(t, group, list(tps)))
    result = h.reply(t)
    assert isinstance(result, OffsetDeleteResult)
    return result


def test_subscription_topics_of_every_version_and_garbage() -> None:
    assert subscription_topics(subscription("t", "u")) == ["t", "u"]
    assert subscription_topics(subscription("orders", version=3)) == ["orders"]
    assert subscription_topics(b"") == []
    assert subscription_topics(b"sub-range") == []  # not a consumer subscription
    assert subscription_topics(struct.pack(">hih", 0, 1, -5)) == []
    assert subscription_topics(struct.pack(">hi", 0, 2**30)) == []  # count beyond the bytes


def test_empty_group_deletes_offsets_with_tombstones() -> None:
    h = harness()
    ids, gen, _ = h.stable_group(1)
    h.commit(ids[0], gen, {("t", 0): 5, ("t", 1): 6, ("u", 0): 7})
    h.leave((ids[0], None))
    t = h.token()
    out = h.c.delete_offsets(t, "g", [("t", 0), ("u", 0), ("u", 1)])
    assert [rec.decode_key(k) for k, v in out.records if v is None] == [
        rec.OffsetKey("g", "t", 0), rec.OffsetKey("g", "u", 0)]
    result = out.replies[0][1]
    assert result.error is E.none
    assert {(p.topic, p.partition): p.error for p in result.partitions} == {
        ("t", 0): E.none, ("u", 0): E.none, ("u", 1): E.none}  # none committed: still fine
    f = h.c.fetch_offsets("g", [("t", [0, 1])])
    assert [p.offset for p in f.partitions] == [-1, 6]


def test_active_consumer_group_keeps_subscribed_topics() -> None:
    h = harness()
    protocols = (("range", subscription("t")),)
    member, token = h.new_member("g", protocols=protocols)
    h.advance(0)
    gen = h.reply(token).generation_id
    h.sync(member, gen, {member: b""})
    h.commit(member, gen, {("t", 0): 5, ("u", 0): 7})
    result = delete(h, "g", ("t", 0), ("u", 0))
    assert result.error is E.none
    assert {(p.topic, p.partition): p.error for p in result.partitions} == {
        ("t", 0): E.group_subscribed_to_topic, ("u", 0): E.none}
    assert [p.offset for p in h.c.fetch_offsets("g", [("t", [0]), ("u", [0])]).partitions] == [
        5, -1]


def test_active_group_of_another_protocol_type_is_refused() -> None:
    h = harness()
    member, token = h.new_member("g", protocol_type="connect")
    h.advance(0)
    assert h.reply(token).error is E.none
    assert delete(h, "g", ("t", 0)).error is E.non_empty_group


def test_unknown_group() -> None:
    assert delete(harness(), "nope", ("t", 0)).error is E.group_id_not_found
