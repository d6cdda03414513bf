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

AD_EVENTS_QUERY = "CSAS_AD_EVENTS"

STARTUP_S = 120
DATA_S = 180


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


def _wait_for_data(base: str, until: Callable[[dict[str, Any]], bool] | None = None
                   ) -> dict[str, Any]:
    """The dashboard's state once it shows pipeline data (and ``until`` holds for it)."""
    deadline = time.monotonic() + DATA_S
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = json.loads(_get(base + "/dashboard/api/state")[1])
        if state["attributed_total"] > 0 and state["campaigns"] and state.get("lag") and (
                until is None or until(state)):
            return state
        time.sleep(1)
    raise AssertionError(f"the dashboard got no pipeline data in {DATA_S} s: {state}")


def replication_factors(bootstrap: str) -> dict[str, int]:
    """Every topic on the cluster but Kafka's own (__consumer_offsets ...) -> its smallest
    partition replica count."""
    from hayase.client.admin import Admin

    topics = Admin({"bootstrap.servers": bootstrap}).metadata().topics
    return {name: min(len(p.replicas) for p in md.partitions.values())
            for name, md in topics.items() if not name.startswith("__") and md.partitions}


def account_for_stopped_demo(bootstrap: str, output: str) -> dict[str, int]:
    """After `hayase demo` stopped: every record the run says it wrote is in its input topic,
    and the impressions the AD_EVENTS query committed are exactly the impression rows in
    AD_EVENTS (nothing processed but uncommitted, nothing committed but unwritten, nothing
    written twice). Returns the records written per topic."""
    from confluent_kafka import Consumer, TopicPartition

    from hayase.ads import generator
    from hayase.ads.app import SERVICE_ID
    from hayase.ads.check import read_topics
    from hayase.client.admin import Admin
    from hayase.engine.runtime import group_id

    m = re.search(r"written per topic: (.*) \((\d+) budget top-ups\)", output)
    assert m, output
    written = {t: int(n) for t, n in re.findall(r"([\w-]+) (\d+)", m[1])}
    assert set(written) == set(generator.TOPICS) and written[generator.IMPRESSIONS] > 0, output
    conf = {"bootstrap.servers": bootstrap}
    admin = Admin(conf)
    for topic, n in written.items():
        ends = admin.offsets(topic, admin.partitions_of(topic))
        assert sum(hi for _lo, hi in ends.values()) == n, (topic, ends, output)

    query_group = group_id(SERVICE_ID, AD_EVENTS_QUERY)  # + the query's number
    groups = admin.client.list_consumer_groups().result(timeout=30).valid
    (group,) = [g.group_id for g in groups if g.group_id.startswith(query_group)]
    c = Consumer({**conf, "group.id": group, "enable.auto.commit": False})
    try:
        parts = admin.partitions_of(generator.IMPRESSIONS)
        committed = c.committed([TopicPartition(generator.IMPRESSIONS, p) for p in parts],
                                timeout=30)
    finally:
        c.close()
    consumed = sum(max(tp.offset, 0) for tp in committed)
    rows = [json.loads(v) for _t, _k, v in read_topics(conf, ["AD_EVENTS"]) if v is not None]
    impression_rows = sum(1 for r in rows if r["IMPRESSIONS"] == 1)
    assert consumed > 0 and impression_rows == consumed, (consumed, impression_rows)
    return written


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
def wait_for_data() -> Callable[..., dict[str, Any]]:
    return _wait_for_data


@pytest.fixture
def accounting() -> Callable[[str, str], dict[str, int]]:
    return account_for_stopped_demo


@pytest.fixture
def replication() -> Callable[[str], dict[str, int]]:
    return replication_factors
