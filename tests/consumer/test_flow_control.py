"""The poll thread's pause/resume decisions, with a fake consumer (no broker)."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from hayase.consumer import ParallelConsumer
from hayase.consumer.runner import _Flow


class FakeConsumer:
    def __init__(self, fail_watermarks: bool = False) -> None:
        self.calls: list[tuple[str, list[tuple[str, int]]]] = []
        self.fail_watermarks = fail_watermarks

    def pause(self, tps: list[TopicPartition]) -> None:
        self.calls.append(("pause", [(tp.topic, tp.partition) for tp in tps]))

    def resume(self, tps: list[TopicPartition]) -> None:
        self.calls.append(("resume", [(tp.topic, tp.partition) for tp in tps]))

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float, cached: bool
                              ) -> tuple[int, int]:
        self.calls.append(("watermarks", [(tp.topic, tp.partition)]))
        assert not cached  # a cached answer sends no request, and wakes nothing
        if self.fail_watermarks:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT))
        return 0, 0


def consumer_with(flows: dict[tuple[str, int], _Flow]) -> ParallelConsumer:
    pc = ParallelConsumer({"group.id": "g"}, ["t"], lambda r: None,
                          max_pending_per_partition=100, handle_signals=False)
    pc._flows = flows
    return pc


def test_pause_at_the_limit_and_resume_at_half_then_wake_the_fetcher() -> None:
    flows = {("t", 0): _Flow(pending=100), ("t", 1): _Flow(pending=10, paused=True),
             ("t", 2): _Flow(pending=60, paused=True)}
    fake: Any = FakeConsumer()
    consumer_with(flows)._flow_control(fake)
    assert fake.calls == [("pause", [("t", 0)]), ("resume", [("t", 1)]),
                          ("watermarks", [("t", 1)])]
    assert flows[("t", 0)].paused and not flows[("t", 1)].paused and flows[("t", 2)].paused


def test_a_failed_wake_up_only_slows_the_resume() -> None:
    flows = {("t", 0): _Flow(pending=0, paused=True)}
    fake: Any = FakeConsumer(fail_watermarks=True)
    consumer_with(flows)._flow_control(fake)
    assert fake.calls == [("resume", [("t", 0)]), ("watermarks", [("t", 0)])]
    assert not flows[("t", 0)].paused
