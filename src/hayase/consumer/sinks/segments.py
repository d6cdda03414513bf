"""The ads platform's segment updater (the worked example of the LINE talk): events say that a
user entered or left an audience segment; the sink keeps user -> set of segments in Redis.

Record key: the user id. Value: JSON {"add": ["seg1", ...], "remove": ["seg2", ...]} (either
list may be absent). With ordering="key" one user's events are applied one batch at a time in
offset order, so a later "remove" is never overtaken by an earlier "add". SADD and SREM are
idempotent, so replays after a crash are harmless."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from hayase.consumer.record import Record
from hayase.consumer.sinks.redis import RedisConnection


class SegmentUpdateError(ValueError):
    """A record that is not a segment update (it is dead-lettered after its retries)."""


def parse_update(r: Record) -> tuple[bytes, list[str], list[str]]:
    """(user, segments to add, segments to remove) of a record, or SegmentUpdateError."""
    if not r.key:
        raise SegmentUpdateError(f"offset {r.offset}: no user id in the key")
    try:
        doc: Any = orjson.loads(r.value or b"")
    except orjson.JSONDecodeError as e:
        raise SegmentUpdateError(f"offset {r.offset}: value is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise SegmentUpdateError(f"offset {r.offset}: value must be a JSON object")
    add, remove = doc.get("add", []), doc.get("remove", [])
    for name, v in (("add", add), ("remove", remove)):
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            raise SegmentUpdateError(f"offset {r.offset}: {name!r} must be a list of strings")
    return r.key, add, remove


class SegmentUpdater(RedisConnection):
    def __init__(self, redis_url: str = "redis://127.0.0.1:6379/0",
                 prefix: str = "segments:") -> None:
        super().__init__(redis_url)
        self.prefix = prefix

    async def write(self, records: Sequence[Record]) -> None:
        redis = self.redis
        updates = [parse_update(r) for r in records]  # all or nothing: validate first
        pipe = redis.pipeline(transaction=False)
        for user, add, remove in updates:
            name = self.prefix.encode() + user
            # In record order: an add then a remove of one segment in a batch ends removed.
            if add:
                pipe.sadd(name, *add)
            if remove:
                pipe.srem(name, *remove)
        await pipe.execute()

    async def segments(self, user: bytes) -> set[str]:
        members = await self.redis.smembers(self.prefix.encode() + user)
        return {m.decode() if isinstance(m, bytes) else m for m in members}
