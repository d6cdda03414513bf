"""Helpers: a `hayase server` app on a real uvicorn socket (127.0.0.1, free port) over the in-memory
backend; `kafka_backend` builds the Kafka one over the `kafka` fixture's broker."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from hayase.engine.processing_log import DEFAULT_TOPIC
from hayase.server.app import KsqlApp, ServerConfig
from hayase.server.backend import Backend, KafkaBackend
from hayase.server.engine import KsqlServer
from hayase.testing.apache_kafka import free_port
from hayase.testing.brokers import Backend as Broker


def kafka_backend(kafka: Broker, service_id: str, state: Path) -> KafkaBackend:
    """The server's Kafka backend over a test broker, its state under ``state``."""
    return KafkaBackend({"bootstrap.servers": kafka.bootstrap_servers}, service_id, state,
                        DEFAULT_TOPIC)


@dataclass
class Running:
    url: str
    server: KsqlServer
    app: KsqlApp


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def serve(backend: Backend, config: ServerConfig | None = None,
          service_id: str = "default_") -> tuple[Running, Callable[[], None]]:
    server = KsqlServer(backend, service_id)
    server.start()
    app = KsqlApp(server, config)
    # The socket is bound here and handed over: a port chosen, released and bound again later
    # can be taken by another process in between.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    assert wait_until(lambda: uv.started)

    def stop() -> None:
        uv.should_exit = True
        thread.join(60)
        sock.close()
        server.close()

    return Running(f"http://127.0.0.1:{port}", server, app), stop




@contextlib.contextmanager
def server_process(folder: Path, *options: str) -> Iterator[str]:
    """A `hayase server` process (embedded broker, data in ``folder``) on a free port: its URL
    once /healthcheck answers; terminated afterwards."""
    import httpx

    port = free_port()
    log_path = folder / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "hayase", "server", *options, "--port",
                                 str(port), "--data-dir", str(folder / "data")],
                                stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(url + "/healthcheck", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            assert wait_until(up, 60), log_path.read_text()
            yield url
        finally:
            proc.terminate()
            proc.wait(30)
