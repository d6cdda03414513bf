"""Kafka Streams' record choice in a multi-topic task: smallest timestamp first, waiting for a
partition that still has records on the broker."""

from __future__ import annotations

from hayase.engine.ordering import MAX_IDLE_S, TimestampMerger

Rec = tuple[str, int, int]  # topic, partition, timestamp


def _merger(lag: dict[tuple[str, int], bool | None]) -> TimestampMerger:
    return TimestampMerger(["a", "b"], lambda t, p: lag.get((t, p), False),
                           timestamp=lambda r: r[2], topic_of=lambda r: r[0],
                           partition_of=lambda r: r[1])


def test_records_of_a_task_go_in_timestamp_order() -> None:
    m = _merger({})
    m.add([("a", 0, 5), ("a", 0, 9), ("b", 0, 1), ("b", 0, 7), ("a", 1, 3)])
    assert m.ready(0.0) == [("b", 0, 1), ("a", 0, 5), ("b", 0, 7), ("a", 0, 9), ("a", 1, 3)]
    assert m.buffered() == 0


def test_a_task_waits_for_a_lagging_partition_then_enforces() -> None:
    lag: dict[tuple[str, int], bool | None] = {("b", 0): True}
    m = _merger(lag)
    m.add([("a", 0, 100)])
    assert m.ready(0.0) == []  # b-0 has records on the broker: wait for them
    m.add([("b", 0, 50)])
    lag[("b", 0)] = False
    assert m.ready(0.1) == [("b", 0, 50), ("a", 0, 100)]
    lag[("b", 0)] = True
    m.add([("a", 0, 200)])
    assert m.ready(1.0) == []
    assert m.ready(1.0 + MAX_IDLE_S) == [("a", 0, 200)]  # enforced processing


def test_forgotten_tasks_drop_their_buffers() -> None:
    m = _merger({("b", 0): True})
    m.add([("a", 0, 1)])
    m.forget([0])
    assert m.buffered() == 0
