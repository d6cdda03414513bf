"""DescribeLogDirs: the one log directory (the data dir) and each partition's size in it."""

from __future__ import annotations

import os
from typing import Any

from hayase.broker.apis.common import NONE
from hayase.broker.context import RequestContext


def _wanted(body: Any, topics: dict[str, int]) -> dict[str, list[int]]:
    """The existing partitions the request asks about (topics null = all), as Kafka
    answers: partitions this broker does not have are left out, not errors."""
    if body.topics is None:
        return {name: list(range(count)) for name, count in sorted(topics.items())}
    wanted: dict[str, list[int]] = {}
    for t in body.topics:
        count = topics.get(t.topic)
        if count is None:
            continue
        parts = wanted.setdefault(t.topic, [])
        parts.extend(p for p in t.partitions if 0 <= p < count and p not in parts)
    return wanted


def handle_describe_log_dirs(ctx: RequestContext, body: Any) -> dict[str, Any]:
    lm = ctx.broker.log_manager
    log_dir = os.path.abspath(lm.data_dir)
    topics = []
    for name, partitions in _wanted(body, lm.topics()).items():
        topics.append({
            "name": name,
            "partitions": [
                {"partition_index": p, "partition_size": lm.log(name, p).size_bytes(),
                 "offset_lag": 0, "is_future_key": False}
                for p in partitions
            ],
        })
    st = os.statvfs(log_dir)
    return {
        "throttle_time": 0,
        "error_code": NONE,
        "results": [{
            "error_code": NONE,
            "log_dir": log_dir,
            "topics": topics,
            "total_bytes": st.f_blocks * st.f_frsize,
            "usable_bytes": st.f_bavail * st.f_frsize,
        }],
    }
