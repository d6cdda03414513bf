"""Retry policy: exponential backoff with jitter. Pure: the caller supplies the random source."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """`max_retries` retries after the first attempt (so max_retries + 1 attempts in all), then
    the record goes to the dead-letter topic. Backoff before retry n (1-based) is
    min(max_backoff, initial_backoff * multiplier**(n-1)), half of it fixed and half random
    ("equal jitter", so retries of many records spread out but never fire at once)."""

    max_retries: int = 3
    initial_backoff: float = 0.1
    max_backoff: float = 10.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("backoffs must be >= 0 and multiplier >= 1")

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number `retry` (1 for the first retry)."""
        base = min(self.max_backoff, self.initial_backoff * self.multiplier ** max(0, retry - 1))
        r = (rng or random).random()
        return base / 2 + r * base / 2
