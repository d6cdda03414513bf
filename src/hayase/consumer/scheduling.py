"""Which records of a partition may run now. Plain synchronous code: the runner submits records
in offset order and asks for units of work (one record, or a batch) to start on one of
`max_in_flight` concurrency slots; it reports each unit's end.

Orderings (Confluent Parallel Consumer's and Decaton's vocabulary):

- "key": two records of one key never run at once and run in offset order; records of different
  keys run concurrently. Records without a key are independent of each other (as in Decaton,
  which spreads them round-robin).
- "partition": the partition's records run one unit at a time, in offset order.
- "unordered": up to `max_in_flight` units at once, in any order.

All three are one mechanism: every record gets an ordering token (its key; one token for the
whole partition; a token of its own), each token has a FIFO queue, and a token runs on at most
one slot at a time. A free slot takes the runnable token (not in flight, with queued records)
whose oldest queued record is oldest, so no slot idles while a record that may run waits, and
the committable offset (held back by the oldest pending record) advances as fast as it can.

Why not a fixed key -> slot map (Decaton's thread-pool runtime): with it a slot owns the keys
hashed onto it, and the busiest slot bounds the partition. 100 keys over 3 partitions put about
33 keys on 20 slots: the fullest slot gets 4-5 keys while others get none, and the partition ran
at a third of its 20 slots (bench/parallel_consumer.py). Keys still map to concurrency slots with
a salted hash: a key starts on its hashed slot whenever that slot is free, and on another free
slot otherwise. The hash is CRC-32 over salt + key, deliberately not Kafka's murmur2 partitioner:
every key of partition p already has murmur2(key) % P == p, and the same hash modulo the slot
count would crowd them onto a few slots whenever gcd(slots, P) > 1.
"""

from __future__ import annotations

import heapq
import zlib
from collections import deque
from collections.abc import Hashable
from typing import Generic, Literal, TypeVar

T = TypeVar("T")
Ordering = Literal["key", "partition", "unordered"]
ORDERINGS: tuple[Ordering, ...] = ("key", "partition", "unordered")
DEFAULT_SALT = b"hayase-lane:"
_PARTITION_TOKEN = b""  # the one token of "partition" ordering


def lane_of(key: bytes, lanes: int, salt: bytes = DEFAULT_SALT) -> int:
    """The home slot of a key: CRC-32 of salt + key, modulo the slot count."""
    return zlib.crc32(key, zlib.crc32(salt)) % lanes


class PartitionScheduler(Generic[T]):
    """The runnable work of one partition. `take()` returns (slot, items) units to start;
    `next_for(slot)` ends the slot's unit and hands it the next one, `finish(slot)` ends it and
    frees the slot (a unit ends successfully or not: retries happen inside the unit, so its
    tokens stay busy across them and order is kept)."""

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
        self._salt_crc = zlib.crc32(salt)
        # Per token, its queued (sequence, item) pairs. A token has an entry while it has queued
        # records or runs on a slot; a token without one is neither queued nor running.
        self._queues: dict[Hashable, deque[tuple[int, T]]] = {}
        # Runnable tokens (queued records, not running) by their oldest sequence; each at most
        # once.
        self._runnable: list[tuple[int, Hashable]] = []
        self._slot_tokens: list[list[Hashable] | None] = [None] * max_in_flight
        self._free: set[int] = set(range(max_in_flight))
        self._seq = 0
        self._queued = 0

    # -- input ------------------------------------------------------------------------------
    def submit(self, item: T, key: bytes | None) -> None:
        """Queue a record; records must be submitted in offset order."""
        self._seq = seq = self._seq + 1
        self._queued += 1
        token: Hashable
        if self.ordering == "key" and key is not None:
            token = key
        elif self.ordering == "partition":
            token = _PARTITION_TOKEN
        else:
            token = seq  # an int: never equal to a key (bytes)
        q = self._queues.get(token)
        if q is None:
            self._queues[token] = deque(((seq, item),))
            heapq.heappush(self._runnable, (seq, token))
        else:
            q.append((seq, item))  # the token is runnable already, or running

    # -- output -----------------------------------------------------------------------------
    def take(self) -> list[tuple[int, list[T]]]:
        """Units that may start now on free slots (possibly none)."""
        units: list[tuple[int, list[T]]] = []
        free = self._free
        while self._runnable and free:
            token = self._runnable[0][1]
            home = (zlib.crc32(token, self._salt_crc) % self.max_in_flight
                    if isinstance(token, bytes) else -1)
            if home in free:
                free.remove(home)
                slot = home
            else:
                slot = free.pop()
            units.append((slot, self._start(slot)))
        return units

    def _start(self, slot: int) -> list[T]:
        """Fill a unit for `slot` from the oldest runnable tokens."""
        if self.batch_size == 1:  # the per-record form: one token, one record
            _, token = heapq.heappop(self._runnable)
            self._slot_tokens[slot] = [token]
            self._queued -= 1
            return [self._queues[token].popleft()[1]]
        tokens: list[Hashable] = []
        taken: list[tuple[int, T]] = []
        room = self.batch_size
        while room and self._runnable:
            _, token = heapq.heappop(self._runnable)
            q = self._queues[token]
            n = min(room, len(q))
            taken.extend(q.popleft() for _ in range(n))
            tokens.append(token)
            room -= n
        self._slot_tokens[slot] = tokens
        self._queued -= len(taken)
        if len(tokens) > 1:
            taken.sort(key=_first)  # a batch of several tokens is still in offset order
        return [item for _, item in taken]

    def _release(self, slot: int) -> None:
        tokens = self._slot_tokens[slot]
        assert tokens is not None, f"slot {slot} is not running"
        self._slot_tokens[slot] = None
        for token in tokens:
            q = self._queues[token]
            if q:
                heapq.heappush(self._runnable, (q[0][0], token))
            else:
                del self._queues[token]

    def next_for(self, slot: int) -> list[T] | None:
        """End the unit of a running `slot` and return the slot's next unit (the slot stays
        busy), or None: then the slot is free, as with finish(slot). Other units may have become
        runnable too: see `can_take`."""
        self._release(slot)
        if self._runnable:
            return self._start(slot)
        self._free.add(slot)
        return None

    def finish(self, slot: int) -> None:
        """The unit of `slot` (as returned by take or next_for) ended."""
        self._release(slot)
        self._free.add(slot)

    # -- state ------------------------------------------------------------------------------
    @property
    def can_take(self) -> bool:
        """Whether take() would start something now."""
        return bool(self._runnable) and bool(self._free)

    @property
    def queued(self) -> int:
        """Records submitted and not yet started."""
        return self._queued

    @property
    def running(self) -> int:
        """Units started and not finished."""
        return self.max_in_flight - len(self._free)

    def drop_queued(self) -> list[T]:
        """Remove every record not yet started (revocation), in offset order: they will be
        fetched again by the partition's next owner from the committed offset."""
        dropped = sorted((pair for q in self._queues.values() for pair in q), key=_first)
        running = {t for tokens in self._slot_tokens if tokens is not None for t in tokens}
        self._queues = {t: deque() for t in running}
        self._runnable.clear()
        self._queued = 0
        return [item for _, item in dropped]


def _first(pair: tuple[int, object]) -> int:
    return pair[0]
