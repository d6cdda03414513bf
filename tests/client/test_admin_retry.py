"""Admin.offsets asks again (bounded) when ListOffsets answers that a partition's leader is
moving (a broker restarting): NOT_LEADER_OR_FOLLOWER, fenced / unknown leader epoch."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from hayase.client import admin as admin_module
from hayase.client.admin import Admin
from hayase.client.errors import ClientError


class FakeAdminClient:
    """list_offsets fails with the given error codes first, then answers offset 7."""

    def __init__(self, failures: list[int]) -> None:
        self.failures = failures
        self.calls = 0

    def list_offsets(self, req: dict[TopicPartition, Any], request_timeout: float) -> Any:
        self.calls += 1
        code = self.failures.pop(0) if self.failures else None
        futures: dict[TopicPartition, Future[Any]] = {}
        for tp in req:
            fut: Future[Any] = Future()
            if code is None:
                fut.set_result(SimpleNamespace(offset=7))
            else:
                fut.set_exception(KafkaException(KafkaError(code)))
            futures[tp] = fut
        return futures


def _admin(failures: list[int], timeout: float = 10.0) -> tuple[Admin, FakeAdminClient]:
    admin = Admin({"bootstrap.servers": "127.0.0.1:1"}, timeout=timeout)
    fake = FakeAdminClient(failures)
    admin.client = fake  # type: ignore[assignment]
    return admin, fake


@pytest.fixture(autouse=True)
def no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admin_module, "OFFSETS_RETRY_INTERVAL_S", 0.0)


def test_moving_leader_answers_are_retried() -> None:
    admin, fake = _admin([KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.FENCED_LEADER_EPOCH,
                          KafkaError.UNKNOWN_LEADER_EPOCH])
    assert admin.offsets("t", [0, 1]) == {0: (7, 7), 1: (7, 7)}
    assert fake.calls == 5  # three failed earliest requests, then earliest and latest


def test_retry_is_bounded() -> None:
    admin, fake = _admin([KafkaError.NOT_LEADER_FOR_PARTITION] * 1000, timeout=0.0)
    with pytest.raises(ClientError, match="Not leader"):
        admin.offsets("t", [0])
    assert fake.calls <= 2


def test_other_errors_are_not_retried() -> None:
    admin, fake = _admin([KafkaError.TOPIC_AUTHORIZATION_FAILED])
    with pytest.raises(ClientError):
        admin.offsets("t", [0])
    assert fake.calls == 1
