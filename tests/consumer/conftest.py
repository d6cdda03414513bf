"""Fixtures for the parallel consumer: a real Redis server on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.consumer.helpers import free_port

REDIS_SERVER = "/usr/bin/redis-server"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A redis-server of our own, without persistence, stopped at the end of the session."""
    if not Path(REDIS_SERVER).exists():
        pytest.skip("redis-server not installed")
    workdir = tempfile.mkdtemp(prefix="hayase-redis-")
    # A free port is only free until someone binds it: if redis-server cannot (it exits),
    # another port is tried.
    for _attempt in range(5):
        port = free_port()
        proc = _start_redis(port, workdir)
        if proc is not None:
            break
    else:
        raise RuntimeError("redis-server did not start")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def _start_redis(port: int, workdir: str) -> subprocess.Popen[bytes] | None:
    """redis-server on ``port`` once it answers PING (not merely a connection: another
    process may be the one listening there); None if it exited first."""
    proc = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", workdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(7).startswith(b"+PONG") and proc.poll() is None:
                    return proc
                raise OSError("not our redis-server")
        except OSError:
            if proc.poll() is not None:
                return None
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)
