"""The consumer's event loop (hayase.consumer.loop): the precise-timeout selector reports exactly
the readiness epoll reports, honours timeout None and 0, falls back when select() cannot take
the descriptor, and ParallelConsumer.run() runs on such a loop and closes it."""

from __future__ import annotations

import asyncio
import select
import selectors
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from tests.consumer.helpers import consumer_config, create_topic, produce_keyed

from hayase.consumer import ParallelConsumer, Record
from hayase.consumer import loop as consumer_loop
from hayase.consumer.loop import PreciseTimeoutEpollSelector, new_event_loop
from hayase.testing.brokers import Backend

pytestmark = pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll is Linux-only")


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


@pytest.fixture
def sel() -> Iterator[PreciseTimeoutEpollSelector]:
    s = PreciseTimeoutEpollSelector()
    try:
        yield s
    finally:
        s.close()


def events(ready: list[tuple[selectors.SelectorKey, int]]) -> dict[int, int]:
    return {key.fd: ev for key, ev in ready}


@pytest.mark.parametrize("timeout", [None, 0, 0.0004, 5.0])
def test_ready_descriptor_reported_with_any_timeout(
        sel: PreciseTimeoutEpollSelector, pair: tuple[socket.socket, socket.socket],
        timeout: float | None) -> None:
    a, b = pair
    sel.register(a, selectors.EVENT_READ, data="a")
    b.send(b"x")
    ready = sel.select(timeout)
    assert events(ready) == {a.fileno(): selectors.EVENT_READ}
    assert ready[0][0].data == "a"


@pytest.mark.parametrize("timeout", [0, 0.0004, 0.02])
def test_nothing_ready_returns_nothing(sel: PreciseTimeoutEpollSelector,
                                       pair: tuple[socket.socket, socket.socket],
                                       timeout: float) -> None:
    a, _b = pair
    sel.register(a, selectors.EVENT_READ)
    assert sel.select(timeout) == []


def test_read_and_write_readiness_as_epoll_reports_them(
        sel: PreciseTimeoutEpollSelector, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    sel.register(a, selectors.EVENT_READ | selectors.EVENT_WRITE)
    sel.register(b, selectors.EVENT_READ)
    assert events(sel.select(1.0)) == {a.fileno(): selectors.EVENT_WRITE}
    b.send(b"x")
    assert events(sel.select(1.0)) == {a.fileno(): selectors.EVENT_READ | selectors.EVENT_WRITE}
    # The same answer as asyncio's own EpollSelector.
    with selectors.EpollSelector() as plain:
        plain.register(a, selectors.EVENT_READ | selectors.EVENT_WRITE)
        plain.register(b, selectors.EVENT_READ)
        assert events(plain.select(1.0)) == events(sel.select(1.0))


def test_readiness_during_a_finite_wait_ends_it(
        sel: PreciseTimeoutEpollSelector, pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    sel.register(a, selectors.EVENT_READ)
    writer = threading.Timer(0.05, b.send, args=(b"x",))
    writer.start()
    try:
        # Far longer than the test may take: only the write can end this wait.
        assert events(sel.select(60.0)) == {a.fileno(): selectors.EVENT_READ}
    finally:
        writer.join()


def test_falls_back_to_epoll_when_select_rejects_the_descriptor(
        sel: PreciseTimeoutEpollSelector, pair: tuple[socket.socket, socket.socket],
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def too_high(*args: object) -> None:
        calls.append(args)
        raise ValueError("filedescriptor out of range in select()")

    monkeypatch.setattr(consumer_loop.select, "select", too_high)
    a, b = pair
    sel.register(a, selectors.EVENT_READ)
    b.send(b"x")
    assert events(sel.select(1.0)) == {a.fileno(): selectors.EVENT_READ}
    assert events(sel.select(1.0)) == {a.fileno(): selectors.EVENT_READ}
    assert len(calls) == 1  # tried once, then epoll only
    a.recv(1)
    assert sel.select(0.001) == []


def test_new_event_loop_runs_timers_in_order_and_closes_its_selector() -> None:
    loop = new_event_loop()
    selector = loop._selector  # type: ignore[attr-defined]
    assert isinstance(selector, PreciseTimeoutEpollSelector)
    order: list[str] = []

    async def main() -> None:
        loop.call_later(0.003, order.append, "3 ms")
        loop.call_later(0.0015, order.append, "1.5 ms")
        loop.call_soon(order.append, "soon")
        await asyncio.sleep(0.01)
        order.append("slept")

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert order == ["soon", "1.5 ms", "3 ms", "slept"]
    with pytest.raises(ValueError):
        selector.fileno()  # closed with the loop


def test_consumer_runs_on_the_precise_loop_and_closes_it(
        kafka: Backend, topic_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[asyncio.AbstractEventLoop] = []

    def factory() -> asyncio.AbstractEventLoop:
        made.append(new_event_loop())
        return made[-1]

    monkeypatch.setattr(consumer_loop, "new_event_loop", factory)  # what run_precise calls
    bs = kafka.bootstrap_servers
    create_topic(bs, topic_name)
    produce_keyed(bs, topic_name, 30, keys=5)
    loops = set()
    done = 0

    async def process(r: Record) -> None:
        nonlocal done
        loops.add(asyncio.get_running_loop())
        await asyncio.sleep(0.002)  # a timer on the precise selector
        done += 1
        if done == 30:
            pc.stop()

    pc = ParallelConsumer(consumer_config(bs, f"g-{topic_name}"), [topic_name], process,
                          max_in_flight_per_partition=4, handle_signals=False)
    t = threading.Thread(target=pc.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 60
    while t.is_alive() and time.monotonic() < deadline:
        t.join(0.5)
    assert not t.is_alive(), f"only {done} of 30 processed"
    assert done == 30
    assert len(made) == 1 and loops == set(made)
    assert made[0].is_closed()
