"""Durability modes (broker config `hayase.durability`).

* `none` (default, Kafka's own default): appends go to the page cache and the broker answers at
  once; the OS writes them back. A broker *process* crash (kill -9) loses nothing acknowledged,
  because the data is in the kernel; a machine crash or power loss can lose the last seconds.
* `interval`: as `none`, plus every `log.flush.interval.ms` (default 1000) a background thread
  fsyncs every partition written since the previous flush. A machine crash loses at most about
  that interval.
* `always`: a Produce with acks=all (-1) is answered only after its data is fsynced. Group commit:
  all partitions appended while no fsync is running are flushed together by one pass in a
  thread, and every request waiting at that moment is answered when it ends; requests arriving
  during a flush wait for the next pass. acks=0 and acks=1 are answered without waiting (as in
  Kafka, acks=1 promises the leader's log, not the disk). Nothing acknowledged with acks=all is
  lost even on power loss (given a disk that honours fsync).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

log = logging.getLogger(__name__)


class Flushable(Protocol):
    def flush(self) -> None: ...


class FlushFailedError(Exception):
    """An fsync failed: the data may not be on disk (answered as KAFKA_STORAGE_ERROR)."""


def _flush_all(logs: list[Flushable]) -> list[BaseException]:
    errors: list[BaseException] = []
    for plog in logs:
        try:
            plog.flush()
        except Exception as e:  # noqa: BLE001 - a deleted topic's closed log, a disk error
            errors.append(e)
    return errors


class GroupCommit:
    """Collects written partitions; `await sync()` returns once everything written before the
    call is fsynced. One flush pass (in a worker thread) serves all callers waiting for it."""

    def __init__(self) -> None:
        self._dirty: dict[int, Flushable] = {}
        self._next: asyncio.Future[None] | None = None
        self._runner: asyncio.Task[None] | None = None
        self.flushes = 0

    def mark(self, plog: Flushable) -> None:
        self._dirty[id(plog)] = plog

    async def sync(self) -> None:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        fut = self._next
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        await asyncio.shield(fut)

    async def _run(self) -> None:
        while self._next is not None:
            fut, self._next = self._next, None
            logs, self._dirty = list(self._dirty.values()), {}
            errors = await asyncio.to_thread(_flush_all, logs)
            self.flushes += 1
            if errors:
                log.error("fsync failed for %d partition(s): %s", len(errors), errors[0])
                fut.set_exception(FlushFailedError(str(errors[0])))
                fut.exception()  # mark retrieved: waiters may be gone
            else:
                fut.set_result(None)

    async def flush_now(self) -> None:
        """Flush whatever is dirty (used by the `interval` mode's timer)."""
        if self._dirty:
            await self.sync()

    async def close(self) -> None:
        if self._runner is not None:
            try:
                await self._runner
            except Exception:  # noqa: BLE001
                log.exception("final flush failed")
