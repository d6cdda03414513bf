"""QueryWorker._on_assign for a stateless query: explicit offsets from the group's commits
(librdkafka#5586: its own OffsetFetch can stall after NOT_COORDINATOR)."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from hayase.engine import runtime
from hayase.engine.runtime import QueryWorker


class FakeConsumer:
    def __init__(self, committed: dict[int, int], failures: list[int]) -> None:
        self.offsets = committed
        self.failures = failures  # error codes raised by the first committed() calls
        self.calls = 0
        self.assigned: list[tuple[int, int]] = []

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[Any]:
        self.calls += 1
        if self.failures:
            raise KafkaException(KafkaError(self.failures.pop(0)))
        return [TopicPartition(tp.topic, tp.partition, self.offsets.get(tp.partition, -1001))
                for tp in partitions]

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = [(tp.partition, tp.offset) for tp in partitions]


def worker() -> Any:
    w = object.__new__(QueryWorker)
    w.query = SimpleNamespace(query_id="CSAS_OUT_1")  # not stateful
    w.changelog = None
    return w


@pytest.fixture(autouse=True)
def no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "COMMITTED_RETRY_INTERVAL_S", 0.0)


def test_committed_offsets_assigned_and_earliest_where_none() -> None:
    consumer = FakeConsumer({0: 42}, failures=[KafkaError.NOT_COORDINATOR,
                                               KafkaError.COORDINATOR_LOAD_IN_PROGRESS])
    worker()._on_assign(consumer, [TopicPartition("in", 0), TopicPartition("in", 1)])
    assert consumer.calls == 3
    assert consumer.assigned == [(0, 42), (1, OFFSET_BEGINNING)]


def test_other_errors_are_not_retried() -> None:
    consumer = FakeConsumer({}, failures=[KafkaError.GROUP_AUTHORIZATION_FAILED])
    with pytest.raises(KafkaException):
        worker()._on_assign(consumer, [TopicPartition("in", 0)])
    assert consumer.calls == 1 and consumer.assigned == []


def test_retry_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "COMMITTED_RETRY_S", 0.0)
    consumer = FakeConsumer({}, failures=[KafkaError.NOT_COORDINATOR] * 5)
    with pytest.raises(KafkaException):
        worker()._on_assign(consumer, [TopicPartition("in", 0)])
    assert consumer.calls == 1
