"""The event loop ParallelConsumer.run() creates: asyncio's selector loop with timers that fire on
time.

Why: asyncio's EpollSelector hands epoll_wait() its timeout in whole milliseconds rounded *up*
(selectors.EpollSelector.select: math.ceil(timeout * 1e3)), so a timer due in 0.3 ms is woken
after 1 ms and every asyncio.sleep(), retry backoff or rate-limit delay ends on average about
half a millisecond late, more when the loop is busy. A consumer whose records each await a few
milliseconds of I/O loses that share of its throughput (bench/parallel_consumer.py (b): 10 ms
sleeps took ~11.1 ms in the consumer, ~10.3-10.5 ms with this selector). The fix here: when
the loop must wait for a finite time, wait for the epoll descriptor itself to become readable
with select(), whose timeout has microsecond resolution, then collect the events with a
non-blocking epoll_wait(). Readiness is exactly epoll's (select()
on an epoll descriptor reports whether epoll_wait() would return events); a wait without a
timeout (None) or a poll (0) goes straight to epoll as before.

select() only takes descriptors below FD_SETSIZE (1024): if the epoll descriptor is above it,
the selector falls back to asyncio's own millisecond waits.
"""

from __future__ import annotations

import asyncio
import select
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class PreciseTimeoutEpollSelector(selectors.EpollSelector):
    """selectors.EpollSelector whose finite timeouts have microsecond, not millisecond,
    resolution (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._precise = True

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout > 0 and self._precise:
            try:
                readable, _, _ = select.select([self.fileno()], [], [], timeout)
            except ValueError:  # descriptor >= FD_SETSIZE: wait the millisecond way
                self._precise = False
                return super().select(timeout)
            if not readable:
                return []  # the timeout passed and nothing was ready
            timeout = 0
        return super().select(timeout)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop for ParallelConsumer.run(): on Linux (epoll) a selector loop with
    PreciseTimeoutEpollSelector, elsewhere asyncio's default loop."""
    if not hasattr(select, "epoll"):
        return asyncio.new_event_loop()
    selector: Any = PreciseTimeoutEpollSelector()
    return asyncio.SelectorEventLoop(selector)


def run_precise(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main) on a loop from :func:`new_event_loop`, closed on return: for every
    entry point that runs a ParallelConsumer's run_async() (its run(), the command-line runner,
    the ads platform's segment updater)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
