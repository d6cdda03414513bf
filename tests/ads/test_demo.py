"""The newcomer's path: `hayase demo` starts everything, its dashboard answers and fills with
data, and Ctrl-C (SIGINT) stops it cleanly with every generated record acknowledged. Then the
same application with --bootstrap-servers on Apache Kafka."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hayase.testing.brokers import Backend

STARTUP_S = 120


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read()


def _check_run(demo: Any, wait_for_data: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    try:
        base = demo.wait_for(r"dashboard:\s+(http://127\.0\.0\.1:\d+)/dashboard", STARTUP_S)[1]
        status, page = _get(base + "/dashboard")
        assert status == 200 and b"CTR per campaign" in page
        assert _get(base + "/info")[0] == 200  # the server's REST API on the same port
        state = wait_for_data(base)
    finally:
        rc = demo.stop()
    out = demo.output
    assert rc == 0, out
    assert "stopped cleanly" in out, out
    sent = re.search(r"generator: (\d+) records sent, (\d+) acknowledged, 0 failed", out)
    assert sent and sent[1] == sent[2], out
    assert "Traceback" not in out, out
    return state


def test_demo_newcomer_path(start_demo: Callable[..., Any], wait_for_data: Any,
                            tmp_path: Path) -> None:
    demo = start_demo()
    state = _check_run(demo, wait_for_data)
    assert (tmp_path / ".hayase" / "demo" / "broker").is_dir()  # the default data folder
    if "SKIPPED: redis-server" not in demo.output:
        assert "segment updater" in state["lag"]
    assert "handler_idle" in state["series"] and "open_fds" in state["series"]


def test_demo_on_apache_kafka(apache_kafka: Backend, start_demo: Callable[..., Any],
                              wait_for_data: Any) -> None:
    if apache_kafka.kind != "apache":
        pytest.skip("Apache Kafka only")
    demo = start_demo("--bootstrap-servers", apache_kafka.bootstrap_servers, "--no-redis")
    state = _check_run(demo, wait_for_data)
    assert "SKIPPED: --no-redis" in demo.output
    assert state["campaigns"]
