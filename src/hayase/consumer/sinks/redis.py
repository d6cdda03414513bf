"""The Redis sink: each record's value under its key (SET), a batch in one pipeline round trip."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from hayase.consumer.record import Record


class RedisConnection:
    """The open/close life cycle of the Redis sinks: one connection, checked with PING at open
    (a wrong URL fails at start, not at the first record), closed deterministically."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._redis: aioredis.Redis | None = None

    async def open(self) -> None:
        self._redis = aioredis.from_url(self.redis_url)
        await self._redis.ping()

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            raise RuntimeError("sink not open")
        return self._redis

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


class RedisSetSink(RedisConnection):
    """SET {prefix}{key} value for every record; a record without a key cannot be stored and
    raises (so it is retried and then dead-lettered, not dropped). `ttl` seconds, if given,
    expire the keys. A tombstone (value None) deletes the key."""

    def __init__(self, redis_url: str = "redis://127.0.0.1:6379/0", prefix: str = "",
                 ttl: int | None = None) -> None:
        super().__init__(redis_url)
        self.prefix, self.ttl = prefix, ttl

    async def write(self, records: Sequence[Record]) -> None:
        redis = self.redis
        missing = [r.offset for r in records if r.key is None]
        if missing:
            raise ValueError(f"records without a key cannot be stored: offsets {missing}")
        pipe = redis.pipeline(transaction=False)
        for r in records:
            name = self.prefix.encode() + (r.key or b"")
            if r.value is None:
                pipe.delete(name)
            else:
                pipe.set(name, r.value, ex=self.ttl)
        await pipe.execute()
