"""Rebalance fencing without a broker: the loop side of ParallelConsumer driven directly with
fake messages. A completion that arrives after its partition was revoked (and assigned again)
never touches the new assignment's offsets; revocation commits only the completed prefix."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any

from hayase.consumer import ParallelConsumer, Record
from hayase.consumer.runner import _Flow


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int, key: bytes) -> None:
        self._t, self._p, self._o, self._k = topic, partition, offset, key

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def key(self) -> bytes:
        return self._k

    def value(self) -> bytes:
        return b"v%d" % self._o

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (0, 0)


def test_late_completion_of_a_revoked_partition_is_ignored() -> None:
    gates: dict[int, asyncio.Event] = {}
    done: list[int] = []

    async def process(r: Record) -> None:
        if r.offset in gates:
            await gates[r.offset].wait()
        done.append(r.offset)

    pc = ParallelConsumer({"group.id": "g"}, ["t"], process, max_in_flight_per_partition=4,
                          ordering="unordered", revoke_timeout=0.2, handle_signals=False)

    async def scenario() -> tuple[list[Any], int | None, int | None]:
        pc._loop = asyncio.get_running_loop()
        gates[1] = asyncio.Event()
        pc._assigned([(("t", 0), 1, _Flow())])
        pc._on_messages([FakeMessage("t", 0, o, b"k%d" % o) for o in range(4)])
        await _until(lambda: sorted(done) == [0, 2, 3])  # offset 1 is stuck at its gate
        revoked = await pc._revoke([("t", 0)], wait=True)  # times out waiting for offset 1
        # Assigned again (new epoch) from the committed offset 1; offset 1 is fetched again.
        pc._assigned([(("t", 0), 2, _Flow())])
        pc._on_messages([FakeMessage("t", 0, 1, b"k1")])
        gates[1].set()  # the old attempt was cancelled; the new one runs
        p = pc._partitions[("t", 0)]
        await _until(lambda: 1 in done and p.offsets.pending == 0)
        return revoked, p.offsets.committable, p.epoch

    revoked, committable, epoch = asyncio.run(scenario())
    assert revoked == [(("t", 0), 1)]  # only the completed prefix
    assert epoch == 2 and committable == 2  # the new assignment's own progress
    assert done.count(1) == 1  # the cancelled old attempt never completed


def test_completion_after_revoke_does_not_touch_new_state() -> None:
    finished: list[int] = []
    started = threading.Event()
    release = threading.Event()

    def slow(r: Record) -> None:  # a thread-pool function: cannot be cancelled
        started.set()
        release.wait(60)  # held until the partition was revoked and assigned again
        finished.append(r.offset)

    async def scenario() -> tuple[int | None, int]:

        pc = ParallelConsumer({"group.id": "g"}, ["t"], slow, revoke_timeout=0.05,
                              handle_signals=False)
        pc._loop = asyncio.get_running_loop()
        pc._executor = concurrent.futures.ThreadPoolExecutor(2)
        pc._assigned([(("t", 0), 1, _Flow())])
        pc._on_messages([FakeMessage("t", 0, 10, b"a")])
        # The call is running in its thread (a queued one would just be cancelled).
        await _until(started.is_set)
        await pc._revoke([("t", 0)], wait=True)  # times out: offset 10 is still running
        pc._assigned([(("t", 0), 2, _Flow())])
        pc._on_messages([FakeMessage("t", 0, 20, b"a")])  # a different position now
        release.set()  # the old thread finishes now, after the revocation
        p = pc._partitions[("t", 0)]
        await _until(lambda: len(finished) == 2 and p.offsets.pending == 0)
        pc._executor.shutdown()
        return p.offsets.committable, p.offsets.pending

    committable, pending = asyncio.run(scenario())
    assert sorted(finished) == [10, 20]  # the old call did run to its end
    # Offset 20 completed in the new epoch; the old offset 10 never entered its state.
    assert committable == 21 and pending == 0


async def _until(condition: Callable[[], bool], seconds: float = 60) -> None:
    """Yield to the loop until ``condition`` holds (bounded: a hang fails, it is no deadline
    the code has to meet)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.01)
