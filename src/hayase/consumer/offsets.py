"""The offset tracker: which offsets of a partition may be committed when records complete out of
order. Plain synchronous code, no clock unless one is passed in (the model is Decaton's
OutOfOrderCommitControl: a queue of fetched offsets whose completed head is popped).

Kafka's committed offset is the *next* offset to consume, so the committable offset is the
smallest fetched offset that has not completed yet (every offset before it is done), or the
last fetched offset + 1 when everything fetched has completed.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Iterable


class OffsetRegressionError(Exception):
    """An offset was registered at or below one already registered: the partition was seeked or
    reset. The owner must rebuild the tracker (`PartitionOffsets.reset`)."""


class PartitionOffsets:
    """Offsets of one partition, registered in fetch order, completed in any order.

    Memory is one entry per pending (registered, not yet popped) offset; the owner keeps that
    bounded by pausing the partition at its pending limit (`pending`).
    """

    __slots__ = ("_queue", "_done", "_times", "_committable", "_last_registered")

    def __init__(self, start_offset: int | None = None) -> None:
        self._queue: deque[int] = deque()
        self._times: deque[float] = deque()
        self._done: set[int] = set()
        # Next offset that is safe to commit; None until something was fetched or given.
        self._committable: int | None = start_offset
        self._last_registered: int | None = None

    # -- registration and completion -------------------------------------------------------
    def register(self, offset: int, now: float = 0.0) -> None:
        """Record that `offset` was fetched and handed out for processing."""
        if self._last_registered is not None and offset <= self._last_registered:
            raise OffsetRegressionError(
                f"offset {offset} registered after {self._last_registered}")
        if self._committable is not None and offset < self._committable:
            raise OffsetRegressionError(
                f"offset {offset} is below the committable offset {self._committable}")
        if not self._queue:
            # Offsets below the first fetched one were not fetched (gaps) or already done.
            self._committable = offset
        self._queue.append(offset)
        self._times.append(now)
        self._last_registered = offset

    def complete(self, offset: int) -> bool:
        """Mark `offset` done. False (and no change) if it is not pending here: a completion for
        an offset this tracker never registered, or one already completed."""
        if offset in self._done or not self._is_pending(offset):
            return False
        self._done.add(offset)
        self._advance()
        return True

    def _is_pending(self, offset: int) -> bool:
        q = self._queue
        if not q or offset < q[0] or offset > q[-1]:
            return False
        # Offsets are increasing, but may have gaps (compaction, transaction markers):
        # a binary search over the deque (bisect's, in C) keeps this O(log n) per lookup.
        i = bisect_left(q, offset)
        return q[i] == offset

    def _advance(self) -> None:
        q, done = self._queue, self._done
        while q and q[0] in done:
            done.discard(q.popleft())
            self._times.popleft()
        # The committable offset is the head of the queue, or past the last fetched offset.
        if q:
            self._committable = q[0]
        elif self._last_registered is not None:
            self._committable = self._last_registered + 1

    # -- queries ----------------------------------------------------------------------------
    @property
    def committable(self) -> int | None:
        """The offset to commit (next to consume), or None if nothing was fetched yet."""
        return self._committable

    @property
    def pending(self) -> int:
        """Registered offsets not yet committable (completed ones behind an incomplete head
        included): this is what a pending limit bounds."""
        return len(self._queue)

    @property
    def in_progress(self) -> int:
        """Registered offsets not completed."""
        return len(self._queue) - len(self._done)

    @property
    def last_registered(self) -> int | None:
        return self._last_registered

    def oldest_pending(self) -> tuple[int, float] | None:
        """(offset, registration time) of the smallest incomplete offset, or None."""
        if not self._queue:
            return None
        return self._queue[0], self._times[0]

    def incomplete(self) -> Iterable[int]:
        return (o for o in self._queue if o not in self._done)

    # -- rebuild ----------------------------------------------------------------------------
    def reset(self, start_offset: int | None = None) -> None:
        """Forget everything (seek, reset, new assignment). `start_offset` is the position the
        consumer resumes from, if known."""
        self._queue.clear()
        self._times.clear()
        self._done.clear()
        self._committable = start_offset
        self._last_registered = None
