"""Rate limits: a token bucket (global) and a bounded set of per-key buckets. Pure: callers pass
the current time and sleep for the returned delay themselves."""

from __future__ import annotations

from collections import OrderedDict


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up. `reserve` takes tokens now and returns
    how long the caller must wait before using them (0 when available): reservations queue up,
    so waiting callers are served in the order they asked."""

    __slots__ = ("rate", "burst", "_tokens", "_at")

    def __init__(self, rate: float, burst: float | None = None, now: float = 0.0) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._tokens = self.burst
        self._at = now

    def reserve(self, now: float, tokens: float = 1.0) -> float:
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
        self._tokens -= tokens
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def full(self, now: float) -> bool:
        return self._tokens + (now - self._at) * self.rate >= self.burst


class KeyedRateLimiter:
    """One bucket per key; at most `max_keys` buckets are kept (least recently used go first,
    which at worst lets an evicted key start again with a full burst)."""

    def __init__(self, rate: float, burst: float | None = None, max_keys: int = 100_000) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: OrderedDict[bytes | None, TokenBucket] = OrderedDict()

    def reserve(self, key: bytes | None, now: float, tokens: float = 1.0) -> float:
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return b.reserve(now, tokens)

    def __len__(self) -> int:
        return len(self._buckets)
