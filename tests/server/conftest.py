"""Fixtures: `hayase server` apps on real sockets over the in-memory backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from server_helpers import Running, serve

from hayase.server.app import ServerConfig
from hayase.server.backend import Backend, MemoryBackend


@pytest.fixture
def make_server() -> Iterator[Callable[..., Running]]:
    stops: list[Callable[[], None]] = []

    def make(config: ServerConfig | None = None, backend: Backend | None = None) -> Running:
        running, stop = serve(backend or MemoryBackend(), config)
        stops.append(stop)
        return running

    yield make
    for stop in stops:
        stop()


@pytest.fixture
def running(make_server: Callable[..., Running]) -> Running:
    return make_server()
