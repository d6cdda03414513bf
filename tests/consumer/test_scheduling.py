"""The scheduler: key lanes, partition and unordered modes."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hayase.consumer.scheduling import PartitionScheduler, lane_of

Rec = tuple[int, bytes | None]  # (offset, key)


def run_randomly(s: PartitionScheduler[Rec], records: list[Rec], seed: int) -> list[Rec]:
    """Drive the scheduler with random finish order; assert per-key exclusion and order."""
    rng = random.Random(seed)
    running: list[tuple[int, list[Rec]]] = []
    started: list[Rec] = []
    active_keys: Counter[bytes] = Counter()
    last_started: dict[bytes, int] = {}
    i = 0
    while i < len(records) or running or s.queued:
        # submit a few
        for _ in range(rng.randint(0, 5)):
            if i < len(records):
                s.submit(records[i], records[i][1])
                i += 1
        for lane, items in s.take():
            assert len(running) < s.max_in_flight
            unit_keys = {key for _, key in items if key is not None}
            for off, key in items:
                if s.ordering == "key" and key is not None:
                    assert active_keys[key] == 0, "same key running twice"
                    assert last_started.get(key, -1) < off, "key out of offset order"
                    last_started[key] = off
                started.append((off, key))
            if s.ordering == "key":
                for key in unit_keys:
                    active_keys[key] += 1
            running.append((lane, items))
        if running and (i >= len(records) or rng.random() < 0.6):
            lane, items = running.pop(rng.randrange(len(running)))
            if s.ordering == "key":
                for key in {key for _, key in items if key is not None}:
                    active_keys[key] -= 1
            s.finish(lane)
    return started


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from([b"a", b"b", b"c", b"d", b"e"])),
                max_size=80),
       st.integers(1, 8), st.integers(1, 3), st.integers(0, 1000))
def test_key_mode_never_runs_a_key_twice_and_keeps_order(
        keys: list[bytes | None], lanes: int, batch: int, seed: int) -> None:
    s: PartitionScheduler[Rec] = PartitionScheduler("key", max_in_flight=lanes, batch_size=batch)
    records = list(enumerate(keys))
    started = run_randomly(s, records, seed)
    assert sorted(started) == records  # everything ran exactly once


def test_partition_mode_runs_in_offset_order_one_at_a_time() -> None:
    s: PartitionScheduler[Rec] = PartitionScheduler("partition", max_in_flight=10)
    records = [(o, bytes([o % 7])) for o in range(50)]
    for r in records:
        s.submit(r, r[1])
    order = []
    while s.queued:
        units = s.take()
        assert len(units) == 1
        lane, items = units[0]
        order.extend(items)
        assert s.take() == []  # nothing else while one runs
        s.finish(lane)
    assert order == records


def test_unordered_mode_bounds_in_flight() -> None:
    s: PartitionScheduler[Rec] = PartitionScheduler("unordered", max_in_flight=4, batch_size=2)
    for o in range(20):
        s.submit((o, b"k"), b"k")
    units = s.take()
    assert len(units) == 4 and s.running == 4 and s.queued == 12
    assert [len(items) for _, items in units] == [2, 2, 2, 2]
    assert s.take() == []
    s.finish(units[0][0])
    more = s.take()
    assert len(more) == 1 and s.queued == 10
    for lane, _ in units[1:] + more:
        s.finish(lane)
    started = run_randomly(s, [], 1)
    assert len(started) == 10 and s.queued == 0 and s.running == 0


def test_salted_lanes_spread_keys_of_one_partition() -> None:
    # Keys that murmur2 would put on one partition must not collapse onto a few lanes.
    keys = [f"user-{i}".encode() for i in range(2000)]
    lanes = Counter(lane_of(k, 20) for k in keys)
    assert len(lanes) == 20
    assert max(lanes.values()) < 2 * (2000 / 20)
    assert lane_of(b"x", 20, b"one") == lane_of(b"x", 20, b"one")


def test_drop_queued_returns_unstarted_records() -> None:
    s: PartitionScheduler[Rec] = PartitionScheduler("key", max_in_flight=2)
    for o in range(6):
        s.submit((o, b"k"), b"k")
    (lane, items), = s.take()
    assert items == [(0, b"k")]
    assert [r[0] for r in s.drop_queued()] == [1, 2, 3, 4, 5]
    assert s.queued == 0
    s.finish(lane)
    assert s.take() == []


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        PartitionScheduler("random")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PartitionScheduler("key", max_in_flight=0)


def test_next_for_continues_a_lane_then_frees_it() -> None:
    s: PartitionScheduler[Rec] = PartitionScheduler("key", max_in_flight=4)
    for o in range(3):
        s.submit((o, b"k"), b"k")
    (lane, items), = s.take()
    assert items == [(0, b"k")]
    assert s.next_for(lane) == [(1, b"k")] and s.running == 1
    assert s.next_for(lane) == [(2, b"k")]
    assert s.next_for(lane) is None and s.running == 0
    s.submit((3, b"k"), b"k")
    assert s.take() == [(lane, [(3, b"k")])]  # the freed lane is ready again
