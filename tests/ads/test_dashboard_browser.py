"""Headless Chromium (Debian's `chromium`) opens the ads dashboard of a running `hayase demo`
and sees its charts drawn and redrawn with new data. No browser driver library: Chromium's own
headless mode runs the page's scripts for a stretch of virtual time (network requests pause
it, so each fetch completes) and dumps the resulting DOM, which carries per chart the number
of points drawn and how many redraws showed different data (data-points / data-changes)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHARTS = ("ctr", "clicks", "lag", "idle", "fds")


def _dump(url: str, virtual_ms: int) -> str:
    assert CHROMIUM is not None
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--virtual-time-budget={virtual_ms}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _canvas(dom: str, chart: str) -> dict[str, int]:
    m = re.search(rf'<canvas id="{chart}"([^>]*)>', dom)
    assert m, f"no canvas {chart}"
    return {k: int(v) for k, v in re.findall(r'data-(points|changes)="(\d+)"', m[1])}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y "
                                             "chromium)")
def test_dashboard_charts_update_in_chromium(start_demo: Callable[..., Any],
                                             wait_for_data: Any) -> None:
    demo = start_demo()
    try:
        base = demo.wait_for(r"dashboard:\s+(http://127\.0\.0\.1:\d+)/dashboard", 120)[1]
        wait_for_data(base)
        dom = _dump(base + "/dashboard", 8000)
        updates = int(re.search(r'data-updates="(\d+)"', dom)[1])  # type: ignore[index]
        assert updates >= 3, dom[-3000:]
        charts = {c: _canvas(dom, c) for c in CHARTS}
        for chart, attrs in charts.items():
            assert attrs.get("points", 0) > 0 and attrs.get("changes", 0) >= 1, (chart, charts)
        rows = int(re.search(r'<table id="spend" data-rows="(\d+)"', dom)[1])  # type: ignore[index]
        assert rows > 0
        # Lag and the broker's metrics are sampled once a (real) second: a page opened a few
        # seconds later draws more points; the data charts never lose any.
        # On a loaded machine a few seconds may not be enough: look again, for a bounded time.
        deadline = time.monotonic() + 60
        while True:
            time.sleep(4)
            later_dom = _dump(base + "/dashboard", 3000)
            later = {c: _canvas(later_dom, c) for c in CHARTS}
            grew = all(later[c]["points"] > charts[c]["points"] for c in ("lag", "idle"))
            if grew or time.monotonic() > deadline:
                break
        assert later["lag"]["points"] > charts["lag"]["points"], (charts, later)
        assert later["idle"]["points"] > charts["idle"]["points"], (charts, later)
        assert later["ctr"]["points"] >= charts["ctr"]["points"], (charts, later)
    finally:
        assert demo.stop() == 0, demo.output
