"""Produce: append each partition's record batches to its log.

Records stay opaque bytes: the storage validates batch framing and CRC-32C and assigns offsets by
patching the base offset in place; nothing here decompresses or parses records.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable
from typing import Any

from hayase.broker.apis.common import (
    CORRUPT_MESSAGE,
    INTERNAL_TOPICS,
    INVALID_REQUIRED_ACKS,
    INVALID_TOPIC_EXCEPTION,
    KAFKA_STORAGE_ERROR,
    NONE,
    UNKNOWN_TOPIC_OR_PARTITION,
    ensure_topic,
    error_code_of,
    log,
    topic_name_error,
)
from hayase.broker.context import BrokerState, CloseConnection, RequestContext
from hayase.broker.durability import FlushFailedError

_TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
_INT32 = struct.Struct(">i")


def _error(index: int, code: int, message: str | None = None) -> dict[str, Any]:
    return {"index": index, "error_code": code, "base_offset": -1, "log_append_time": -1,
            "log_start_offset": -1, "record_errors": (), "error_message": message}


def _append_partition(broker: BrokerState, topic: str, index: int, records: bytes | None,
                      now_ms: int, written: list[Any]) -> dict[str, Any]:
    if not records:
        return _error(index, CORRUPT_MESSAGE, "empty records")
    # Batch validation (CRC, framing, max.message.bytes of the topic) is the storage's job.
    try:
        plog = broker.log_manager.log(topic, index)
        result = plog.append(records, now_ms)
    except Exception as e:  # noqa: BLE001 - storage errors carry their Kafka code
        code = error_code_of(e)
        if code == -1:
            log.exception("append to %s-%d failed", topic, index)
        return _error(index, code, str(e))
    written.append(plog)
    if not result.duplicate:
        broker.waiters.notify(topic, index)
    return {"index": index, "error_code": NONE, "base_offset": result.base_offset,
            "log_append_time": result.log_append_time,
            "log_start_offset": result.log_start_offset, "record_errors": (),
            "error_message": None}


def handle_produce(ctx: RequestContext, body: Any) -> dict[str, Any] | Awaitable[Any] | None:
    broker = ctx.broker
    acks = body.acks
    now_ms = broker.clock()
    written: list[Any] = []
    responses = []
    for td in body.topic_data or ():
        name = td.name
        partition_data = td.partition_data or ()
        parts: list[dict[str, Any]] = []
        if acks not in (0, 1, -1):
            parts = [_error(p.index, INVALID_REQUIRED_ACKS) for p in partition_data]
        elif body.transactional_id is not None:
            parts = [_error(p.index, _TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                            "transactions are not supported") for p in partition_data]
        elif name in INTERNAL_TOPICS:
            parts = [_error(p.index, INVALID_TOPIC_EXCEPTION,
                            f"Cannot append to internal topic {name}") for p in partition_data]
        elif topic_name_error(name) is not None:
            parts = [_error(p.index, INVALID_TOPIC_EXCEPTION, topic_name_error(name))
                     for p in partition_data]
        elif not ensure_topic(broker, name):
            parts = [_error(p.index, UNKNOWN_TOPIC_OR_PARTITION) for p in partition_data]
        else:
            for p in partition_data:
                parts.append(_append_partition(broker, name, p.index, p.records, now_ms, written))
        responses.append({"name": name, "partition_responses": parts})
    response = {"responses": responses, "throttle_time": 0}
    if broker.produce_observer is not None:
        _observe(broker, ctx.header.client_id, body)
    mode = broker.config.durability
    if mode != "none":
        for plog in written:
            broker.group_commit.mark(plog)
    if acks == 0:
        failed = [f"{t['name']}-{p['index']}: error {p['error_code']}"
                  for t in responses for p in t["partition_responses"] if p["error_code"]]
        if failed:
            raise CloseConnection(f"acks=0 produce failed ({', '.join(failed[:3])})")
        return None
    if acks == -1 and mode == "always" and written:
        return _after_fsync(broker, response)
    return response


def batch_shape(records: bytes | None) -> tuple[int, int]:
    """(batches, records) from the RecordBatch headers only (recordsCount at byte 57)."""
    batches = count = pos = 0
    n = len(records or b"")
    while records and pos + 61 <= n:
        (length,) = _INT32.unpack_from(records, pos + 8)
        (in_batch,) = _INT32.unpack_from(records, pos + 57)
        batches += 1
        count += max(in_batch, 0)
        if length <= 0:
            break
        pos += length + 12
    return batches, count


def _observe(broker: BrokerState, client_id: str | None, body: Any) -> None:
    partitions: list[tuple[str, int]] = []
    batches = records = 0
    for td in body.topic_data or ():
        for p in td.partition_data or ():
            partitions.append((td.name, p.index))
            b, r = batch_shape(p.records)
            batches += b
            records += r
    assert broker.produce_observer is not None
    broker.produce_observer(client_id, partitions, batches, records)


async def _after_fsync(broker: BrokerState, response: dict[str, Any]) -> dict[str, Any]:
    try:
        await broker.group_commit.sync()
    except FlushFailedError as e:
        for topic in response["responses"]:
            topic["partition_responses"] = [
                _error(p["index"], KAFKA_STORAGE_ERROR, f"fsync failed: {e}")
                if p["error_code"] == NONE else p
                for p in topic["partition_responses"]
            ]
    return response
