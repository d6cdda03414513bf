"""Which records of a partition may run now. Plain synchronous code: the runner submits records
in offset order and asks for units of work (one record, or a batch) to start; it reports each
unit's end.

Orderings (Confluent Parallel Consumer's and Decaton's vocabulary):

- "key": a key maps to one of `max_in_flight` lanes with a salted hash; a lane runs one unit at a
  time, in offset order, so two records of one key never run at once and run in offset order.
  Records without a key go round-robin over the lanes (as in Decaton).
- "partition": one lane: the partition's records run one unit at a time, in offset order.
- "unordered": up to `max_in_flight` units at once, in any order.

The hash is CRC-32 over salt + key, deliberately not Kafka's murmur2 partitioner: every key of
partition p already has murmur2(key) % P == p, and the same hash modulo the lane count would crowd
them onto a few lanes whenever gcd(lanes, P) > 1.
"""

from __future__ import annotations

import zlib
from collections import deque
from typing import Generic, Literal, TypeVar

T = TypeVar("T")
Ordering = Literal["key", "partition", "unordered"]
ORDERINGS: tuple[Ordering, ...] = ("key", "partition", "unordered")
DEFAULT_SALT = b"hayase-lane:"
UNORDERED_LANE = -1


def lane_of(key: bytes, lanes: int, salt: bytes = DEFAULT_SALT) -> int:
    """The lane of a key: CRC-32 of salt + key, modulo the lane count."""
    return zlib.crc32(key, zlib.crc32(salt)) % lanes


class PartitionScheduler(Generic[T]):
    """The runnable work of one partition. `take()` returns (lane, items) units to start;
    `finish(lane)` frees the lane when the unit ends (successfully or not: retries happen inside
    the unit, so the lane stays busy across them and order is kept)."""

    def __init__(self, ordering: Ordering = "key", max_in_flight: int = 1, batch_size: int = 1,
                 salt: bytes = DEFAULT_SALT) -> None:
        if ordering not in ORDERINGS:
            raise ValueError(f"ordering must be one of {ORDERINGS}, not {ordering!r}")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.ordering = ordering
        self.max_in_flight = max_in_flight
        self.batch_size = batch_size
        self._salt = salt
        lanes = 1 if ordering == "partition" else max_in_flight
        self._lanes: list[deque[T]] = [deque() for _ in range(lanes)]
        self._busy = [False] * lanes
        self._ready: deque[int] = deque()  # lanes with work and not busy, each at most once
        self._in_ready = [False] * lanes
        self._unordered: deque[T] = deque()
        self._running = 0
        self._queued = 0
        self._round_robin = 0

    # -- input ------------------------------------------------------------------------------
    def submit(self, item: T, key: bytes | None) -> None:
        """Queue a record; records must be submitted in offset order."""
        self._queued += 1
        if self.ordering == "unordered":
            self._unordered.append(item)
            return
        n = len(self._lanes)
        if n == 1:
            lane = 0
        elif key is None:
            lane = self._round_robin
            self._round_robin = (lane + 1) % n
        else:
            lane = lane_of(key, n, self._salt)
        self._lanes[lane].append(item)
        self._mark_ready(lane)

    def _mark_ready(self, lane: int) -> None:
        if not self._busy[lane] and not self._in_ready[lane] and self._lanes[lane]:
            self._in_ready[lane] = True
            self._ready.append(lane)

    # -- output -----------------------------------------------------------------------------
    def take(self) -> list[tuple[int, list[T]]]:
        """Units that may start now (possibly none)."""
        units: list[tuple[int, list[T]]] = []
        if self.ordering == "unordered":
            q = self._unordered
            while q and self._running < self.max_in_flight:
                units.append((UNORDERED_LANE, self._pop(q)))
                self._running += 1
            return units
        while self._ready:
            lane = self._ready.popleft()
            self._in_ready[lane] = False
            self._busy[lane] = True
            self._running += 1
            units.append((lane, self._pop(self._lanes[lane])))
        return units

    def _pop(self, q: deque[T]) -> list[T]:
        n = min(self.batch_size, len(q))
        self._queued -= n
        return [q.popleft() for _ in range(n)]

    def next_for(self, lane: int) -> list[T] | None:
        """The next unit of a running `lane` (it stays busy), or None: then the lane is
        finished, as with finish(lane)."""
        q = self._unordered if lane == UNORDERED_LANE else self._lanes[lane]
        if q:
            return self._pop(q)
        self.finish(lane)
        return None

    def finish(self, lane: int) -> None:
        """A unit of `lane` (as returned by take) ended."""
        self._running -= 1
        if lane != UNORDERED_LANE:
            self._busy[lane] = False
            self._mark_ready(lane)

    # -- state ------------------------------------------------------------------------------
    @property
    def queued(self) -> int:
        """Records submitted and not yet started."""
        return self._queued

    @property
    def running(self) -> int:
        """Units started and not finished."""
        return self._running

    def drop_queued(self) -> list[T]:
        """Remove every record not yet started (revocation): they will be fetched again by the
        partition's next owner from the committed offset."""
        dropped = list(self._unordered)
        self._unordered.clear()
        for q in self._lanes:
            dropped.extend(q)
            q.clear()
        self._ready.clear()
        self._in_ready = [False] * len(self._lanes)
        self._queued = 0
        return dropped
