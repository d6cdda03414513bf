"""Fetch: sessionless (session id 0 always), long poll with max_wait_ms and min_bytes.

Byte limits as Kafka applies them (KIP-74): each partition gets at most partition_max_bytes and
the whole response at most max_bytes, except that the first non-empty partition always returns
at least one whole batch so that a consumer can never get stuck behind a big batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from hayase.broker.apis.common import (
    NONE,
    UNKNOWN_TOPIC_OR_PARTITION,
    error_code_of,
    leader_epoch_error,
    log,
    ms,
)
from hayase.broker.context import BrokerState, RequestContext

FETCH_SESSION_ID_NOT_FOUND = 70


@dataclass(frozen=True, slots=True)
class _Wanted:
    topic: str
    partition: int
    offset: int
    max_bytes: int
    current_leader_epoch: int


def _plan(body: Any) -> list[_Wanted]:
    return [
        _Wanted(t.topic, p.partition, p.fetch_offset, p.partition_max_bytes,
                getattr(p, "current_leader_epoch", -1))
        for t in body.topics or () for p in t.partitions or ()
    ]


def _partition(index: int, code: int, hw: int = -1, lso: int = -1, start: int = -1,
               records: bytes | None = None) -> dict[str, Any]:
    return {"partition_index": index, "error_code": code, "high_watermark": hw,
            "last_stable_offset": lso, "log_start_offset": start, "aborted_transactions": (),
            "preferred_read_replica": -1, "records": records}


def read_partitions(broker: BrokerState, plan: list[_Wanted],
                    max_bytes: int) -> tuple[dict[str, Any], int, bool]:
    """One pass over the wanted partitions: (response body, record bytes, any error)."""
    lm = broker.log_manager
    total = 0
    errors = False
    topics: dict[str, list[dict[str, Any]]] = {}
    for w in plan:
        parts = topics.setdefault(w.topic, [])
        code = leader_epoch_error(w.current_leader_epoch)
        if code != NONE:
            parts.append(_partition(w.partition, code))
            errors = True
            continue
        try:
            plog = lm.log(w.topic, w.partition)
            remaining = max_bytes - total
            if remaining <= 0 and total > 0:
                parts.append(_partition(w.partition, NONE, plog.high_watermark,
                                        plog.high_watermark, plog.log_start_offset, b""))
                continue
            result = plog.read(w.offset, max(1, min(w.max_bytes, remaining)))
        except Exception as e:  # noqa: BLE001 - storage errors carry their Kafka code
            code = error_code_of(e)
            if code == -1:
                log.exception("read of %s-%d at %d failed", w.topic, w.partition, w.offset)
            hw = start = -1
            try:
                plog = lm.log(w.topic, w.partition)
                hw, start = plog.high_watermark, plog.log_start_offset
            except Exception:  # noqa: BLE001
                code = code if code != -1 else UNKNOWN_TOPIC_OR_PARTITION
            parts.append(_partition(w.partition, code, hw, hw, start))
            errors = True
            continue
        records = result.records
        if total > 0 and len(records) > max_bytes - total:
            records = b""  # only the first non-empty partition may exceed the response limit
        total += len(records)
        parts.append(_partition(w.partition, NONE, result.high_watermark,
                                result.last_stable_offset, result.log_start_offset, records))
    response = {
        "throttle_time": 0,
        "error_code": NONE,
        "session_id": 0,
        "responses": [{"topic": t, "partitions": ps} for t, ps in topics.items()],
    }
    return response, total, errors


def handle_fetch(ctx: RequestContext, body: Any) -> dict[str, Any] | Awaitable[dict[str, Any]]:
    broker = ctx.broker
    if getattr(body, "session_id", 0) != 0:
        return {"throttle_time": 0, "error_code": FETCH_SESSION_ID_NOT_FOUND, "session_id": 0,
                "responses": ()}
    plan = _plan(body)
    # the broker's fetch.max.bytes caps what a client may ask for (Kafka's rule)
    limit = broker.config.get_int("fetch.max.bytes")
    max_bytes = min(body.max_bytes, limit) if body.max_bytes > 0 else limit
    response, total, errors = read_partitions(broker, plan, max_bytes)
    max_wait = ms(body.max_wait)
    if errors or total >= body.min_bytes or max_wait <= 0 or not plan:
        return response
    return _long_poll(broker, plan, max_bytes, body.min_bytes, max_wait)


async def _long_poll(broker: BrokerState, plan: list[_Wanted], max_bytes: int, min_bytes: int,
                     max_wait_ms: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_wait_ms / 1000
    tps = [(w.topic, w.partition) for w in plan]
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        woken = await broker.waiters.wait(tps, remaining)
        if not woken:
            break
        response, total, errors = read_partitions(broker, plan, max_bytes)
        if errors or total >= min_bytes:
            return response
    return read_partitions(broker, plan, max_bytes)[0]
