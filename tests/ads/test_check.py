"""`hayase demo --check` on both backends: the ads pipeline on a broker, compared with the
plain-Python batch computation; exit status 0 only on an exact match."""

from __future__ import annotations

import shutil
import subprocess
import sys

from hayase.testing.brokers import Backend


def test_check_mode_matches_batch(kafka: Backend) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hayase", "demo", "--check", "--events", "1500",
         "--bootstrap-servers", kafka.bootstrap_servers, "--timeout", "180"],
        capture_output=True, text=True, timeout=400)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for compared in ("attributed clicks", "CTR per campaign per minute",
                     "spend per campaign vs budget", "campaigns alerted at 90% of budget",
                     "top ads per hour"):
        assert f"MATCH  {compared}" in out, out
    if shutil.which("redis-server"):  # the segment updater's Redis sets, user by user
        assert "MATCH  user segments in Redis (segment updater)" in out, out
    assert "DIFFER" not in out and "exact match" in out
