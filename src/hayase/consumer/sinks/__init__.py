"""Sinks: where a ParallelConsumer writes records. A sink gets batches of records of one lane
(one key's records in offset order in "key" ordering) and must be idempotent: after a crash the
records since the last commit are written again. Raising from write() means "retry this batch";
after the last retry the records go to the dead-letter topic, never silently away."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from hayase.consumer.record import Record


class Sink(Protocol):
    async def open(self) -> None: ...

    async def write(self, records: Sequence[Record]) -> None: ...

    async def close(self) -> None: ...


def sink_factories() -> dict[str, Callable[..., Sink]]:
    """Sinks by the name the command line uses."""
    from hayase.consumer.sinks.redis import RedisSetSink
    from hayase.consumer.sinks.segments import SegmentUpdater

    return {"redis-set": RedisSetSink, "segments": SegmentUpdater}


def make_sink(name: str, **options: Any) -> Sink:
    factories = sink_factories()
    if name not in factories:
        raise ValueError(f"unknown sink {name!r}; known: {', '.join(sorted(factories))}")
    return factories[name](**options)
