"""Wake-ups for long-polling Fetch requests.

A Fetch that has not reached min_bytes registers one future on every partition it reads; an
append to a partition resolves that partition's futures. Pure asyncio, no I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

TopicPartition = tuple[str, int]


class AppendWaiters:
    def __init__(self) -> None:
        self._waiting: dict[TopicPartition, set[asyncio.Future[None]]] = {}

    def notify(self, topic: str, partition: int) -> None:
        futures = self._waiting.pop((topic, partition), None)
        if futures:
            for fut in futures:
                if not fut.done():
                    fut.set_result(None)

    def notify_topic(self, topic: str) -> None:
        for tp in [tp for tp in self._waiting if tp[0] == topic]:
            self.notify(*tp)

    async def wait(self, partitions: Iterable[TopicPartition], timeout: float) -> bool:
        """Wait until one of `partitions` gets an append or `timeout` seconds pass.
        True when woken by an append."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        tps = list(partitions)
        for tp in tps:
            self._waiting.setdefault(tp, set()).add(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            for tp in tps:
                s = self._waiting.get(tp)
                if s is not None:
                    s.discard(fut)
                    if not s:
                        del self._waiting[tp]
            if not fut.done():
                fut.cancel()
