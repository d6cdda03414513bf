"""The reset-offsets plan and the option parsers: pure functions, no broker."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hayase.client.errors import ClientError
from hayase.client.groups import (
    PartitionLag,
    ResetSpec,
    Watermarks,
    parse_datetime_ms,
    parse_topic_partitions,
    plan_reset,
)

TPS = [("t", 0), ("t", 1)]
MARKS = {("t", 0): Watermarks(10, 50), ("t", 1): Watermarks(0, 5)}


@pytest.mark.parametrize("spec, expected", [
    (ResetSpec("earliest"), {("t", 0): 10, ("t", 1): 0}),
    (ResetSpec("latest"), {("t", 0): 50, ("t", 1): 5}),
    (ResetSpec("offset", 20), {("t", 0): 20, ("t", 1): 5}),   # clamped to the log end
    (ResetSpec("offset", 3), {("t", 0): 10, ("t", 1): 3}),    # clamped to the log start
    (ResetSpec("shift", -15), {("t", 0): 15, ("t", 1): 0}),
    (ResetSpec("shift", 40), {("t", 0): 50, ("t", 1): 5}),
])
def test_plan_reset(spec: ResetSpec, expected: dict) -> None:
    committed = {("t", 0): 30, ("t", 1): 4}
    assert plan_reset(spec, TPS, committed, MARKS) == expected


def test_datetime_after_the_last_record_resets_to_the_end() -> None:
    found = {("t", 0): 12, ("t", 1): -1}
    assert plan_reset(ResetSpec("datetime", 0), TPS, {}, MARKS, found) == {("t", 0): 12,
                                                                           ("t", 1): 5}


def test_shift_needs_a_committed_offset() -> None:
    with pytest.raises(ClientError, match="no committed offset for it"):
        plan_reset(ResetSpec("shift", 1), TPS, {("t", 0): 1}, MARKS)


def test_parse_topic_partitions() -> None:
    assert parse_topic_partitions("orders") == ("orders", None)
    assert parse_topic_partitions("orders:2,0,2") == ("orders", [0, 2])
    for bad in ("orders:", "orders:a", ":1", "orders:-1"):
        with pytest.raises(ClientError):
            parse_topic_partitions(bad)


def test_parse_datetime_ms() -> None:
    utc = int(datetime(2024, 5, 1, 0, 1, 30, tzinfo=UTC).timestamp() * 1000)
    assert parse_datetime_ms("2024-05-01T00:01:30.000Z") == utc
    assert parse_datetime_ms("2024-05-01T09:01:30+09:00") == utc
    with pytest.raises(ClientError):
        parse_datetime_ms("yesterday")


def test_lag_never_negative_and_unknown_without_commit() -> None:
    assert PartitionLag("t", 0, 7, 5).lag == 0
    assert PartitionLag("t", 0, None, 5).lag is None
    assert PartitionLag("t", 0, 2, 5).lag == 3
