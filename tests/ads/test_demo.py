"""The newcomer's path: `hayase demo` starts everything, its dashboard answers and fills with
data, and Ctrl-C (SIGINT) stops it cleanly with every generated record acknowledged. Then the
same application with --bootstrap-servers on Apache Kafka."""

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
from pathlib import Path
from typing import Any

import pytest

from hayase.testing.apache_kafka import free_port
from hayase.testing.brokers import Backend

STARTUP_S = 120
DATA_S = 90


class Demo:
    def __init__(self, cwd: Path, *args: str) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hayase", "demo", "--port", str(free_port()),
             "--server-port", str(free_port()), "--speedup", "5", *args],
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
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


def _check_run(demo: Demo) -> dict[str, Any]:
    try:
        base = demo.wait_for(r"dashboard:\s+(http://127\.0\.0\.1:\d+)/dashboard", STARTUP_S)[1]
        status, page = _get(base + "/dashboard")
        assert status == 200 and b"CTR per campaign" in page
        assert _get(base + "/info")[0] == 200  # the server's REST API on the same port
        state = _wait_for_data(base)
    finally:
        rc = demo.stop()
    out = demo.output
    assert rc == 0, out
    assert "stopped cleanly" in out, out
    sent = re.search(r"generator: (\d+) records sent, (\d+) acknowledged, 0 failed", out)
    assert sent and sent[1] == sent[2], out
    assert "Traceback" not in out, out
    return state


def test_demo_newcomer_path(tmp_path: Path) -> None:
    demo = Demo(tmp_path)
    state = _check_run(demo)
    assert (tmp_path / ".hayase" / "demo" / "broker").is_dir()  # the default data folder
    if "SKIPPED: redis-server" not in demo.output:
        assert "segment updater" in state["lag"]
    assert "handler_idle" in state["series"] and "open_fds" in state["series"]


def test_demo_on_apache_kafka(apache_kafka: Backend, tmp_path: Path) -> None:
    if apache_kafka.kind != "apache":
        pytest.skip("Apache Kafka only")
    demo = Demo(tmp_path, "--bootstrap-servers", apache_kafka.bootstrap_servers, "--no-redis")
    state = _check_run(demo)
    assert "SKIPPED: --no-redis" in demo.output
    assert state["campaigns"]
