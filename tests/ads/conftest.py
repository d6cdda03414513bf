"""Helpers for the `hayase demo` tests: the command in a subprocess, its output lines, SIGINT."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hayase.testing.apache_kafka import free_port

STARTUP_S = 120
DATA_S = 90


class Demo:
    def __init__(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hayase", "demo", "--port", str(free_port()),
             "--server-port", str(free_port()), "--speedup", "5", *args],
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                m = re.search(pattern, line)
                if m:
                    return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no line matching {pattern!r}:\n{self.output}")

    def stop(self, timeout: float = 90) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)
        return rc


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read()


def _wait_for_data(base: str) -> dict[str, Any]:
    deadline = time.monotonic() + DATA_S
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = json.loads(_get(base + "/dashboard/api/state")[1])
        if state["attributed_total"] > 0 and state["campaigns"] and state.get("lag"):
            return state
        time.sleep(1)
    raise AssertionError(f"the dashboard got no pipeline data in {DATA_S} s: {state}")




@pytest.fixture
def start_demo(tmp_path: Path) -> Iterator[Callable[..., Demo]]:
    """Start `hayase demo` (extra arguments allowed) in tmp_path; killed at teardown if alive."""
    started: list[Demo] = []

    def start(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Demo:
        demo = Demo(cwd or tmp_path, *args, env=env)
        started.append(demo)
        return demo

    yield start
    for demo in started:
        if demo.proc.poll() is None:
            demo.stop()


@pytest.fixture
def wait_for_data() -> Callable[[str], dict[str, Any]]:
    return _wait_for_data
