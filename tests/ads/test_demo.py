"""The newcomer's path: `hayase demo` starts everything, its dashboard answers and fills with
data, and Ctrl-C (SIGINT) stops it cleanly, losing nothing: every generated record is in its
topic, and what the queries committed is exactly what they wrote (AD_EVENTS). Then the same
application with --bootstrap-servers on Apache Kafka."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hayase.testing.apache_kafka import free_port
from hayase.testing.brokers import Backend, EmbeddedBroker

STARTUP_S = 120


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read()


def _check_run(demo: Any, wait_for_data: Callable[..., dict[str, Any]],
               until: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    try:
        base = demo.wait_for(r"dashboard:\s+(http://127\.0\.0\.1:\d+)/dashboard", STARTUP_S)[1]
        status, page = _get(base + "/dashboard")
        assert status == 200 and b"CTR per campaign" in page
        assert _get(base + "/info")[0] == 200  # the server's REST API on the same port
        state = wait_for_data(base, until)
    finally:
        rc = demo.stop()
    out = demo.output
    assert rc == 0, out
    assert "stopped cleanly" in out, out
    sent = re.search(r"generator: (\d+) records sent, (\d+) acknowledged, 0 failed", out)
    assert sent and sent[1] == sent[2], out
    assert "Traceback" not in out, out
    return state


REPO = Path(__file__).resolve().parents[2]


def test_demo_newcomer_path(start_demo: Callable[..., Any], wait_for_data: Any,
                            accounting: Any, tmp_path: Path) -> None:
    """A fresh clone of the committed tree (its own src/ first on the path, the project's
    environment for the dependencies), `hayase demo` run in it as the README says."""
    clone = tmp_path / "hayase"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(clone)],
                   check=True, timeout=120)
    env = {"PYTHONPATH": str(clone / "src")}
    where = subprocess.run([sys.executable, "-c", "import hayase; print(hayase.__file__)"],
                           env={**os.environ, **env}, capture_output=True, text=True,
                           check=True).stdout
    assert where.startswith(str(clone / "src")), where
    demo = start_demo(cwd=clone, env=env)

    def complete(state: dict[str, Any]) -> bool:
        """Every part reports: the first pipeline rows can come before the segment updater's
        first commit and the broker's first metrics sample (more so on a loaded machine)."""
        sampled = "handler_idle" in state["series"] and "open_fds" in state["series"]
        if "SKIPPED: redis-server" in demo.output:
            return sampled
        return sampled and "segment updater" in state["lag"] and \
            state["segments"].get("users", 0) > 0

    state = _check_run(demo, wait_for_data, complete)
    data = clone / ".hayase" / "demo" / "broker"
    assert data.is_dir()  # the default data folder
    with EmbeddedBroker(data, free_port()) as broker:  # the demo stopped its broker
        accounting(broker.bootstrap_servers, demo.output)
    if "SKIPPED: redis-server" not in demo.output:
        assert "segment updater" in state["lag"]
        assert state["segments"]["users"] > 0
    assert "handler_idle" in state["series"] and "open_fds" in state["series"]


def test_demo_on_apache_kafka(apache_kafka: Backend, start_demo: Callable[..., Any],
                              wait_for_data: Any, accounting: Any) -> None:
    if apache_kafka.kind != "apache":
        pytest.skip("Apache Kafka only")
    demo = start_demo("--bootstrap-servers", apache_kafka.bootstrap_servers, "--no-redis")
    state = _check_run(demo, wait_for_data)
    assert "SKIPPED: --no-redis" in demo.output
    assert state["campaigns"]
    accounting(apache_kafka.bootstrap_servers, demo.output)
