"""ListOffsets and OffsetForLeaderEpoch (leader epoch is 0 everywhere on one node)."""

from __future__ import annotations

from collections.abc import Callable
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
EARLIEST_LOCAL = -4  # v8+: the first offset on local disk (no tiered storage: the log start)
LATEST_TIERED = -5  # v9+: the last offset in remote storage (none here: -1, as Kafka answers)


def _list_one(plog: Any, timestamp: int) -> tuple[int, int]:
    """(offset, timestamp) answering one ListOffsets partition query."""
    if timestamp == LATEST:
        return plog.high_watermark, -1
    if timestamp in (EARLIEST, EARLIEST_LOCAL):
        return plog.log_start_offset, -1
    if timestamp == LATEST_TIERED:
        return -1, -1
    if timestamp == MAX_TIMESTAMP:
        # The first record holding the largest timestamp, as Kafka answers since KAFKA-16310;
        # the segments know the largest timestamp, a lookup by that timestamp finds its record.
        best = plog.max_timestamp_and_offset()
        if best is None or plog.high_watermark <= plog.log_start_offset:
            return -1, -1
        found = plog.offset_for_timestamp(best[0])
        return (int(found[0]), int(found[1])) if found is not None else (-1, -1)
    found = plog.offset_for_timestamp(timestamp)
    if found is None:
        return -1, -1
    return int(found[0]), int(found[1])


def handle_list_offsets(ctx: RequestContext, body: Any) -> dict[str, Any]:
    lm = ctx.broker.log_manager

    def answer(topic: str, p: Any) -> dict[str, Any]:
        offset, ts = _list_one(lm.log(topic, p.partition_index), p.timestamp)
        return {"offset": offset, "timestamp": ts, "leader_epoch": LEADER_EPOCH}

    return _answer_partitions(body, "name", "partition_index", answer,
                              {"timestamp": -1, "offset": -1, "leader_epoch": -1,
                               "old_style_offsets": ()})


def handle_offset_for_leader_epoch(ctx: RequestContext, body: Any) -> dict[str, Any]:
    lm = ctx.broker.log_manager

    def answer(topic: str, p: Any) -> dict[str, Any]:
        plog = lm.log(topic, p.partition)
        # Every record has epoch 0: epoch 0 (or older) ends at the log end; a newer epoch is
        # undefined (-1, -1), as Kafka answers.
        if p.leader_epoch <= LEADER_EPOCH:
            return {"leader_epoch": LEADER_EPOCH, "end_offset": plog.high_watermark}
        return {}

    return _answer_partitions(body, "topic", "partition", answer,
                              {"leader_epoch": -1, "end_offset": -1})


def handle_delete_records(ctx: RequestContext, body: Any) -> dict[str, Any]:
    """Raise each partition's log start offset (-1 = up to the high watermark)."""
    lm = ctx.broker.log_manager

    def answer(topic: str, p: Any) -> dict[str, Any]:
        return {"low_watermark": lm.log(topic, p.partition_index).delete_records(p.offset)}

    return _answer_partitions(body, "name", "partition_index", answer, {"low_watermark": -1})


def _answer_partitions(
    body: Any,
    topic_key: str,
    partition_key: str,
    answer: Callable[[str, Any], dict[str, Any]],
    defaults: dict[str, Any],
) -> dict[str, Any]:
    """The response of a request that names partitions topic by topic (ListOffsets,
    OffsetForLeaderEpoch, DeleteRecords; their versions name the keys differently): each
    partition's entry is `defaults` updated with `answer(topic, partition)`. A stale
    current_leader_epoch (where the request has one) fences that partition alone, and a storage
    error becomes that partition's error code: one bad partition never fails the others."""
    topics = []
    for t in body.topics:
        topic = getattr(t, topic_key)
        parts = []
        for p in t.partitions:
            entry = {partition_key: getattr(p, partition_key), "error_code": NONE, **defaults}
            code = leader_epoch_error(getattr(p, "current_leader_epoch", -1))
            if code != NONE:
                entry["error_code"] = code
            else:
                try:
                    entry.update(answer(topic, p))
                except Exception as e:  # noqa: BLE001 - storage errors carry their Kafka code
                    entry["error_code"] = error_code_of(e)
            parts.append(entry)
        topics.append({topic_key: topic, "partitions": parts})
    return {"throttle_time": 0, "topics": topics}
