"""What the SQL benchmarks share: peers' virtualenvs, topics, timing runs to the last output.

Used by bench/sql_aggregate.py and bench/sql_stateless.py (and bench/sql_join.py): every peer
runs in its own virtualenv under ~/.cache/hayase/bench, created on first use; a run is timed
from its start until its output topic holds the expected number of records (startup included,
as a user sees it). The scripts import it as ``from _peers import ...`` (Python puts a script's
own folder first on sys.path).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BENCH_CACHE = Path.home() / ".cache" / "hayase" / "bench"
QUIX_VENV = BENCH_CACHE / "quix-venv"
BYTEWAX_VENV = BENCH_CACHE / "bytewax-venv"
QUIX_VERSION = "3.28.1"
BYTEWAX_VERSION = "0.21.1"
QUIX_REQUIREMENTS = [f"quixstreams=={QUIX_VERSION}", "orjson"]
BYTEWAX_REQUIREMENTS = [f"bytewax[kafka]=={BYTEWAX_VERSION}", "orjson"]


def load_average() -> str:
    """The 1, 5 and 15-minute load averages (as ``uptime`` shows them): the machine is shared,
    so every number a benchmark prints is read beside them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def ensure_venv(venv: Path, requirements: list[str], probe: str) -> Path | None:
    """The python of ``venv`` with ``requirements`` installed (created on first use), or None
    (with a message) when they cannot be installed: the caller skips that peer."""
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", f"import {probe}"],
                                          capture_output=True).returncode == 0:
        return python
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
    except (subprocess.CalledProcessError, OSError) as e:
        print(f"{probe} unavailable ({e}); skipping it", file=sys.stderr)
        return None
    return python


def quix_python() -> Path | None:
    return ensure_venv(QUIX_VENV, QUIX_REQUIREMENTS, "quixstreams")


def bytewax_python() -> Path | None:
    return ensure_venv(BYTEWAX_VENV, BYTEWAX_REQUIREMENTS, "bytewax")


@contextmanager
def bench_broker(backend: str, bootstrap_servers: str | None = None) -> Iterator[str]:
    """Bootstrap servers of ``bootstrap_servers`` if given, else of a broker started for the
    run ("embedded" or "apache") and stopped (its files removed) afterwards."""
    if bootstrap_servers:
        yield bootstrap_servers
        return
    from hayase.testing.brokers import ApacheBackend, EmbeddedBroker

    broker = EmbeddedBroker() if backend == "embedded" else ApacheBackend(nodes=1)
    broker.start()
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()
        cleanup = getattr(broker, "cleanup", None)
        if cleanup:
            cleanup()


def create_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)


def _count(consumer: Consumer, topic: str) -> int:
    md = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if md is None or md.error is not None:
        return 0
    return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
               for p in md.partitions)


def output_count(bootstrap: str, topic: str) -> int:
    """Records in ``topic`` (the sum of its partitions' end offsets); 0 before it exists."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-watermarks"})
    try:
        return _count(consumer, topic)
    finally:
        consumer.close()


def wait_for(bootstrap: str, topic: str, expected: int, started: float,
             alive: Callable[[], bool], timeout: float = 1800, interval: float = 0.1) -> float:
    """Seconds from ``started`` (time.monotonic) until ``topic`` holds ``expected`` records.
    Raises RuntimeError when the runner stops first, TimeoutError after ``timeout``. One client
    asks for the end offsets all along (a new client per look would take CPU from the runner
    being timed on a small machine)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-watermarks"})
    try:
        while time.monotonic() - started < timeout:
            if _count(consumer, topic) >= expected:
                return time.monotonic() - started
            if not alive():
                if _count(consumer, topic) >= expected:
                    return time.monotonic() - started
                raise RuntimeError(f"runner for {topic} stopped early")
            time.sleep(interval)
    finally:
        consumer.close()
    raise TimeoutError(f"{topic}: fewer than {expected} records after {timeout}s")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 30 s."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_subprocess(argv: list[str], bootstrap: str, dst: str, expected: int,
                   log_path: Path, create: bool = True, timeout: float = 1800) -> float:
    """Runs ``argv`` (a peer or ``hayase run``) until ``dst`` holds ``expected`` records and
    returns the seconds it took; its stderr goes to ``log_path`` (a file, never a pipe nobody
    reads), whose tail is printed if it stops early."""
    if create:
        create_topic(bootstrap, dst)
    started = time.monotonic()
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log_file)
    try:
        return wait_for(bootstrap, dst, expected, started, lambda: proc.poll() is None,
                        timeout=timeout)
    except (RuntimeError, TimeoutError):
        print(log_path.read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    finally:
        stop_process(proc)


def run_thread(loop: Callable[[str, str, str, threading.Event], None], bootstrap: str, src: str,
               dst: str, expected: int, interval: float = 0.1) -> float:
    """Runs ``loop(bootstrap, src, dst, stop)`` (a plain-Python ceiling) in a thread until
    ``dst`` holds ``expected`` records; returns the seconds it took."""
    stop = threading.Event()
    started = time.monotonic()
    thread = threading.Thread(target=loop, args=(bootstrap, src, dst, stop), daemon=True)
    thread.start()
    try:
        return wait_for(bootstrap, dst, expected, started, thread.is_alive, interval=interval)
    finally:
        stop.set()
        thread.join(30)
