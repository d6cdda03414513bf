"""The offset tracker: committable offset = smallest incomplete fetched offset; never backwards;
regression detected; reset rebuilds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hayase.consumer.offsets import OffsetRegressionError, PartitionOffsets


def expected_committable(fetched: list[int], done: set[int]) -> int | None:
    """The specification, computed from scratch: the smallest fetched offset not done, or one
    past the last fetched offset when all are done."""
    if not fetched:
        return None
    for o in fetched:
        if o not in done:
            return o
    return fetched[-1] + 1


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[int], list[tuple[str, int]]]:
    """Fetched offsets with gaps, and an interleaving of fetches and completions in any order."""
    start = draw(st.integers(0, 1000))
    gaps = draw(st.lists(st.integers(1, 4), min_size=0, max_size=60))
    fetched = []
    o = start
    for g in gaps:
        fetched.append(o)
        o += g
    order = draw(st.permutations(fetched))
    ops: list[tuple[str, int]] = []
    fi = 0
    pending: list[int] = []
    completions = list(order)
    # Interleave: a completion may only happen after its fetch.
    while fi < len(fetched) or completions:
        can_complete = [c for c in completions if c in pending]
        if fi < len(fetched) and (not can_complete or draw(st.booleans())):
            ops.append(("fetch", fetched[fi]))
            pending.append(fetched[fi])
            fi += 1
        else:
            c = can_complete[0]
            completions.remove(c)
            ops.append(("complete", c))
    return fetched, ops


@settings(max_examples=300, deadline=None)
@given(scenario())
def test_committable_is_smallest_incomplete_and_never_regresses(
        sc: tuple[list[int], list[tuple[str, int]]]) -> None:
    _, ops = sc
    t = PartitionOffsets()
    fetched: list[int] = []
    done: set[int] = set()
    previous: int | None = None
    for kind, offset in ops:
        if kind == "fetch":
            t.register(offset)
            fetched.append(offset)
        else:
            assert t.complete(offset)
            done.add(offset)
        c = t.committable
        assert c == expected_committable(fetched, done)
        if previous is not None:
            assert c is not None and c >= previous
        previous = c
        assert t.pending == len(fetched) - len(
            [o for o in fetched if o < (c if c is not None else 0) and o in done])
    if fetched:
        assert t.committable == fetched[-1] + 1
        assert t.pending == 0


@settings(max_examples=100, deadline=None)
@given(scenario(), st.data())
def test_duplicate_and_unknown_completions_change_nothing(
        sc: tuple[list[int], list[tuple[str, int]]], data: st.DataObject) -> None:
    fetched, ops = sc
    t = PartitionOffsets()
    for kind, offset in ops:
        if kind == "fetch":
            t.register(offset)
        else:
            t.complete(offset)
            before = (t.committable, t.pending)
            assert not t.complete(offset)  # twice
            stranger = data.draw(st.integers(-5, 5000))
            if stranger not in fetched:
                assert not t.complete(stranger)
            assert (t.committable, t.pending) == before


def test_regression_is_detected_and_reset_rebuilds() -> None:
    t = PartitionOffsets()
    for o in (10, 11, 12):
        t.register(o)
    t.complete(10)
    assert t.committable == 11
    with pytest.raises(OffsetRegressionError):
        t.register(11)
    with pytest.raises(OffsetRegressionError):
        t.register(5)
    t.reset(start_offset=5)  # a seek back to 5
    assert t.committable == 5 and t.pending == 0
    t.register(5)
    assert t.committable == 5
    assert t.complete(5)
    assert t.committable == 6
    # A completion for an offset of the old state is not taken.
    assert not t.complete(12)


def test_start_offset_and_off_by_one_on_restore() -> None:
    # Restored from a committed offset of 100: offset 100 is the next to process, not done.
    t = PartitionOffsets(start_offset=100)
    assert t.committable == 100
    t.register(100)
    assert t.committable == 100
    t.register(101)
    t.complete(101)
    assert t.committable == 100
    t.complete(100)
    assert t.committable == 102
    with pytest.raises(OffsetRegressionError):
        PartitionOffsets(start_offset=100).register(99)


def test_oldest_pending_reports_head_and_its_time() -> None:
    t = PartitionOffsets()
    assert t.oldest_pending() is None
    t.register(1, now=10.0)
    t.register(2, now=11.0)
    t.complete(2)
    assert t.oldest_pending() == (1, 10.0)
    assert list(t.incomplete()) == [1]
    assert t.in_progress == 1
    t.complete(1)
    assert t.oldest_pending() is None
