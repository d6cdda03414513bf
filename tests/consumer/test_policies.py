"""Pure policies: retry backoff, token buckets, dead-letter headers."""

from __future__ import annotations

import random

import pytest

from hayase.consumer.deadletter import dead_letter_headers
from hayase.consumer.ratelimit import KeyedRateLimiter, TokenBucket
from hayase.consumer.record import Record
from hayase.consumer.retry import RetryPolicy


def test_backoff_grows_exponentially_with_jitter_and_cap() -> None:
    p = RetryPolicy(max_retries=5, initial_backoff=0.1, max_backoff=1.0, multiplier=2)
    rng = random.Random(7)
    for retry, base in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        values = [p.backoff(retry, rng) for _ in range(200)]
        assert all(base / 2 <= v <= base for v in values)
        assert len(set(values)) > 100  # jittered, not constant
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)


def test_token_bucket_spaces_reservations() -> None:
    b = TokenBucket(rate=10, burst=2, now=0.0)
    assert b.reserve(0.0) == 0 and b.reserve(0.0) == 0  # the burst
    assert b.reserve(0.0) == pytest.approx(0.1)
    assert b.reserve(0.0) == pytest.approx(0.2)  # queued behind the previous reservation
    assert b.reserve(1.0) == 0  # refilled (capped at burst)
    assert not b.full(1.0)
    assert b.full(10.0)
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_keyed_limiter_is_per_key_and_bounded() -> None:
    k = KeyedRateLimiter(rate=1, burst=1, max_keys=3)
    assert k.reserve(b"a", 0.0) == 0
    assert k.reserve(b"a", 0.0) == pytest.approx(1.0)
    assert k.reserve(b"b", 0.0) == 0  # another key has its own bucket
    for key in (b"c", b"d", b"e"):
        k.reserve(key, 0.0)
    assert len(k) == 3


def test_dead_letter_headers_name_origin_error_attempts() -> None:
    r = Record("orders", 2, 41, b"k", b"v", (("trace", b"x"),), 123)
    h = dict(dead_letter_headers(r, ValueError("bad json"), 4))
    assert h["trace"] == b"x"
    assert h["hayase.dlq.topic"] == b"orders"
    assert h["hayase.dlq.partition"] == b"2"
    assert h["hayase.dlq.offset"] == b"41"
    assert h["hayase.dlq.error"] == b"ValueError: bad json"
    assert h["hayase.dlq.attempts"] == b"4"
