"""The scheduler: key, partition and unordered modes; no slot idles while a record may run."""

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
            assert lane not in {slot for slot, _ in running}, "slot given out twice"
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
        assert_no_idle_slot(s, records[:i], started, active_keys, len(running))
        if running and (i >= len(records) or rng.random() < 0.6):
            lane, items = running.pop(rng.randrange(len(running)))
            if s.ordering == "key":
                for key in {key for _, key in items if key is not None}:
                    active_keys[key] -= 1
            s.finish(lane)
    return started


def assert_no_idle_slot(s: PartitionScheduler[Rec], submitted: list[Rec], started: list[Rec],
                        active_keys: Counter[bytes], running: int) -> None:
    """After take(): a slot is free only if every record still queued must wait (its key, or in
    "partition" mode the partition, is running)."""
    waiting = [r for r in submitted if r not in set(started)]
    assert s.queued == len(waiting)
    assert not s.can_take
    if running == s.max_in_flight or not waiting:
        return
    if s.ordering == "key":
        assert all(key is not None and active_keys[key] for _, key in waiting), \
            "a slot idles while a record of a key not in flight waits"
    else:
        assert s.ordering == "partition" and running == 1


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
    started = []
    while s.queued:
        units = s.take()
        assert len(units) == 4 or s.queued == 0
        for lane, items in units:
            started.extend(items)
            s.finish(lane)
    assert len(started) == 10 and s.running == 0


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


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 200), max_size=80), st.integers(0, 1000))
def test_partition_mode_never_idles_and_keeps_order(keys: list[int], seed: int) -> None:
    s: PartitionScheduler[Rec] = PartitionScheduler("partition", max_in_flight=5)
    records: list[Rec] = [(o, str(k).encode()) for o, k in enumerate(keys)]
    assert run_randomly(s, records, seed) == records


def test_keys_sharing_a_home_slot_still_run_at_once() -> None:
    # A fixed key -> slot map would serialize these two keys; a free slot takes any key.
    keys = [f"k{i}".encode() for i in range(200)]
    a, b = next((x, y) for x in keys for y in keys if x != y and lane_of(x, 20) == lane_of(y, 20))
    s: PartitionScheduler[Rec] = PartitionScheduler("key", max_in_flight=20)
    s.submit((0, a), a)
    s.submit((1, b), b)
    units = s.take()
    assert sorted(items[0] for _, items in units) == [(0, a), (1, b)]
    assert len({slot for slot, _ in units}) == 2
    assert lane_of(a, 20) in {slot for slot, _ in units}  # the first starts on its home slot


def test_few_hot_keys_keep_every_slot_busy() -> None:
    # 100 keys in a row, over and over (the benchmark's key pattern): every slot stays busy.
    s: PartitionScheduler[Rec] = PartitionScheduler("key", max_in_flight=20)
    for o in range(3000):
        key = f"k{o % 100}".encode()
        s.submit((o, key), key)
    started = s.take()
    running = [slot for slot, _ in started]  # equal processing times: the first started ends first
    finished = 0
    while s.queued > 100:  # (at the tail, fewer than 20 keys are left)
        assert len(running) == 20
        slot = running.pop(0)
        finished += 1
        assert s.next_for(slot) is not None
        running.append(slot)
        running.extend(other for other, _ in s.take())
    assert finished == 3000 - 100 - 20


def test_a_freed_slot_takes_the_oldest_runnable_record() -> None:
    s: PartitionScheduler[Rec] = PartitionScheduler("key", max_in_flight=2)
    for o, key in enumerate([b"a", b"a", b"b", b"c", b"d"]):
        s.submit((o, key), key)
    units = dict(s.take())
    assert sorted(u[0] for u in units.values()) == [(0, b"a"), (2, b"b")]
    slot_a = next(slot for slot, items in units.items() if items[0][1] == b"a")
    # a's next record (1) is older than c (3) and d (4): it goes first.
    assert s.next_for(slot_a) == [(1, b"a")]
    slot_b = next(slot for slot in units if slot != slot_a)
    assert s.next_for(slot_b) == [(3, b"c")]


def test_a_batch_of_several_keys_is_in_offset_order() -> None:
    s: PartitionScheduler[Rec] = PartitionScheduler("key", max_in_flight=1, batch_size=5)
    for o, key in enumerate([b"a", b"b", b"a", b"c", b"b", b"a"]):
        s.submit((o, key), key)
    (slot, items), = s.take()
    # The oldest key's queued records, then the next oldest key's: a, b, then in offset order.
    assert [o for o, _ in items] == [0, 1, 2, 4, 5]
    assert s.next_for(slot) == [(3, b"c")]
    assert s.next_for(slot) is None and s.running == 0


def test_an_ended_batch_can_free_more_keys_than_its_slot_takes() -> None:
    # The runner asks can_take after next_for and starts the other keys on free slots.
    s: PartitionScheduler[Rec] = PartitionScheduler("key", max_in_flight=3, batch_size=2)
    s.submit((0, b"a"), b"a")
    s.submit((1, b"b"), b"b")
    (slot, items), = s.take()
    assert items == [(0, b"a"), (1, b"b")]
    for o, key in [(2, b"a"), (3, b"b"), (4, b"a"), (5, b"b")]:
        s.submit((o, key), key)
    assert not s.can_take  # both keys are in flight: their records wait
    assert s.next_for(slot) == [(2, b"a"), (4, b"a")]
    assert s.can_take
    (other, more), = s.take()
    assert other != slot and more == [(3, b"b"), (5, b"b")]
