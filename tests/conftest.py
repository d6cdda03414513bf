"""Shared fixtures. `kafka` is parametrized over the embedded hayase broker and Apache Kafka
(KRaft on loopback); each is started once per test session and shared by the tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from hayase.testing.brokers import ApacheBackend, Backend, EmbeddedBroker, apache_available

BACKENDS = ["embedded", "apache"]
_started: dict[str, Backend] = {}


def _backend(kind: str) -> Backend:
    if kind not in _started:
        if kind == "embedded":
            _started[kind] = EmbeddedBroker().start()
        else:
            reason = apache_available()
            if reason:
                if os.environ.get("CI"):
                    raise RuntimeError(f"CI needs Apache Kafka: {reason}")
                pytest.skip(reason)
            _started[kind] = ApacheBackend(nodes=1).start()
    return _started[kind]


@pytest.fixture(scope="session", params=BACKENDS)
def kafka(request: pytest.FixtureRequest) -> Backend:
    """A running broker: the embedded hayase broker or Apache Kafka. Same tests, both backends."""
    return _backend(request.param)


@pytest.fixture(scope="session")
def embedded_kafka() -> Backend:
    return _backend("embedded")


@pytest.fixture(scope="session")
def apache_kafka() -> Backend:
    return _backend("apache")


@pytest.fixture(scope="module")
def kafka3() -> Iterator[ApacheBackend]:
    """A three-node Apache Kafka cluster (KRaft, replication factor 3) for one test module."""
    reason = apache_available()
    if reason:
        pytest.skip(reason)
    # Three JVMs starting at once take about a minute on a busy 2-core machine.
    backend = ApacheBackend(nodes=3).start(timeout=300)
    try:
        yield backend
    finally:
        backend.kill()  # nothing to keep: SIGKILL is much faster than three clean stops
        backend.cleanup()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for backend in _started.values():
        cleanup = getattr(backend, "cleanup", None)
        if cleanup:
            cleanup()
    _started.clear()


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A topic name unique to this test (and to the backend parameter)."""
    yield f"t-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}".replace("[", "-").replace("]", "")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CI a skipped test fails: every skip here means something is not installed (Apache
    Kafka's jars, redis-server, kcat, chromium), and CI's command must have installed it, so a
    green run cannot hide a missing install step. Expected failures (xfail) stay as they are."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"CI must not skip (install what it needs in scripts/setup): " \
                          f"{report.longrepr}"
