"""ListOffsets and OffsetForLeaderEpoch (leader epoch is 0 everywhere on one node)."""

from __future__ import annotations

from typing import Any

from hayase.broker.apis.common import (
    LEADER_EPOCH,
    NONE,
    error_code_of,
    leader_epoch_error,
)
from hayase.broker.context import RequestContext

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3


def _list_one(plog: Any, timestamp: int) -> tuple[int, int]:
    """(offset, timestamp) answering one ListOffsets partition query."""
    if timestamp == LATEST:
        return plog.high_watermark, -1
    if timestamp == EARLIEST:
        return plog.log_start_offset, -1
    if timestamp == MAX_TIMESTAMP:
        # Approximation: the last offset (the record with the largest timestamp is usually the
        # newest with CreateTime from one producer clock); -1 when the log is empty.
        hw = plog.high_watermark
        return (hw - 1, -1) if hw > plog.log_start_offset else (-1, -1)
    found = plog.offset_for_timestamp(timestamp)
    if found is None:
        return -1, -1
    return int(found[0]), int(found[1])


def handle_list_offsets(ctx: RequestContext, body: Any) -> dict[str, Any]:
    lm = ctx.broker.log_manager
    topics = []
    for t in body.topics:
        parts = []
        for p in t.partitions:
            entry = {"partition_index": p.partition_index, "error_code": NONE, "timestamp": -1,
                     "offset": -1, "leader_epoch": -1, "old_style_offsets": ()}
            code = leader_epoch_error(getattr(p, "current_leader_epoch", -1))
            if code != NONE:
                entry["error_code"] = code
            else:
                try:
                    offset, ts = _list_one(lm.log(t.name, p.partition_index), p.timestamp)
                    entry.update(offset=offset, timestamp=ts, leader_epoch=LEADER_EPOCH)
                except Exception as e:  # noqa: BLE001
                    entry["error_code"] = error_code_of(e)
            parts.append(entry)
        topics.append({"name": t.name, "partitions": parts})
    return {"throttle_time": 0, "topics": topics}


def handle_offset_for_leader_epoch(ctx: RequestContext, body: Any) -> dict[str, Any]:
    lm = ctx.broker.log_manager
    topics = []
    for t in body.topics:
        parts = []
        for p in t.partitions:
            entry = {"partition": p.partition, "error_code": NONE, "leader_epoch": -1,
                     "end_offset": -1}
            code = leader_epoch_error(getattr(p, "current_leader_epoch", -1))
            if code != NONE:
                entry["error_code"] = code
            else:
                try:
                    plog = lm.log(t.topic, p.partition)
                    # Every record has epoch 0: epoch 0 (or older) ends at the log end; a newer
                    # epoch is undefined (-1, -1), as Kafka answers.
                    if p.leader_epoch <= LEADER_EPOCH:
                        entry.update(leader_epoch=LEADER_EPOCH, end_offset=plog.high_watermark)
                except Exception as e:  # noqa: BLE001
                    entry["error_code"] = error_code_of(e)
            parts.append(entry)
        topics.append({"topic": t.topic, "partitions": parts})
    return {"throttle_time": 0, "topics": topics}


def handle_delete_records(ctx: RequestContext, body: Any) -> dict[str, Any]:
    """Raise each partition's log start offset (-1 = up to the high watermark)."""
    lm = ctx.broker.log_manager
    topics = []
    for t in body.topics:
        parts = []
        for p in t.partitions:
            entry = {"partition_index": p.partition_index, "low_watermark": -1,
                     "error_code": NONE}
            try:
                entry["low_watermark"] = lm.log(t.name, p.partition_index).delete_records(p.offset)
            except Exception as e:  # noqa: BLE001 - storage errors carry their Kafka code
                entry["error_code"] = error_code_of(e)
            parts.append(entry)
        topics.append({"name": t.name, "partitions": parts})
    return {"throttle_time": 0, "topics": topics}
