"""Group commit for durability `always`: one fsync pass serves every request waiting for it."""

from __future__ import annotations

import asyncio
import threading

import pytest

from hayase.broker.durability import FlushFailedError, GroupCommit


class GatedLog:
    """A partition log whose flush blocks until the test opens the gate."""

    def __init__(self, gate: threading.Event | None = None, fail: bool = False) -> None:
        self.gate = gate
        self.fail = fail
        self.flushes = 0

    def flush(self) -> None:
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail:
            raise OSError("disk gone")
        self.flushes += 1


def test_waiters_during_a_flush_share_the_next_pass() -> None:
    async def run() -> tuple[GroupCommit, GatedLog, GatedLog]:
        gc = GroupCommit()
        gate = threading.Event()
        first, second = GatedLog(gate), GatedLog()
        gc.mark(first)
        w1 = asyncio.create_task(gc.sync())
        await asyncio.sleep(0.01)  # pass 1 is now blocked inside first.flush()
        gc.mark(second)
        w2 = asyncio.create_task(gc.sync())
        w3 = asyncio.create_task(gc.sync())
        await asyncio.sleep(0)
        assert not w2.done()
        gate.set()
        await asyncio.gather(w1, w2, w3)
        return gc, first, second

    gc, first, second = asyncio.run(run())
    assert gc.flushes == 2  # three waiters, two passes
    assert first.flushes == 1
    assert second.flushes == 1  # written during pass 1, flushed by pass 2 only


def test_a_failed_fsync_fails_its_waiters() -> None:
    async def run() -> None:
        gc = GroupCommit()
        gc.mark(GatedLog(fail=True))
        with pytest.raises(FlushFailedError):
            await gc.sync()
        gc.mark(GatedLog())
        await gc.sync()  # the next pass is unaffected

    asyncio.run(run())


def test_flush_now_without_dirty_logs_does_nothing() -> None:
    async def run() -> int:
        gc = GroupCommit()
        await gc.flush_now()
        return gc.flushes

    assert asyncio.run(run()) == 0
