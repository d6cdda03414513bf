"""Brokers as processes, for tests and benchmarks: the embedded hayase broker and Apache Kafka
behind one small interface, so that the same test code runs against both."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Protocol

from hayase.testing.apache_kafka import ApacheKafka, default_libs, free_port


class Backend(Protocol):
    kind: str

    @property
    def bootstrap_servers(self) -> str: ...

    def kill(self) -> None:
        """SIGKILL the broker (every node of a cluster)."""

    def start(self) -> Backend: ...

    def stop(self) -> None: ...


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"broker did not listen on {port} within {timeout}s")


class _PortTaken(RuntimeError):
    """The broker could not bind its port: another process has it."""


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, since: int,
                    timeout: float) -> None:
    """Wait until this broker process says it listens (its own log line, written after the
    bind: a connection alone could reach another process that took the port) and accepts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log, "rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
        if proc.poll() is not None:
            if "address already in use" in text.lower():
                raise _PortTaken(f"port {port} is taken:\n{text[-2000:]}")
            raise RuntimeError(f"broker exited with {proc.returncode}:\n{text[-4000:]}")
        if "hayase broker listening on" in text:
            _wait_port(port, proc, log, max(deadline - time.monotonic(), 1.0))
            return
        time.sleep(0.05)
    raise TimeoutError(f"broker did not listen on {port} within {timeout}s")


class EmbeddedBroker:
    """`hayase broker` in a subprocess with its own data folder. Restartable on the same folder
    and port, so crash tests can SIGKILL it and start it again."""

    kind = "embedded"

    def __init__(
        self,
        data_dir: Path | None = None,
        port: int | None = None,
        configs: dict[str, str] | None = None,
        metrics_port: int | None = None,
    ) -> None:
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="hayase-broker-"))
        self.port = port or free_port()
        # A port chosen here may be taken before the broker binds it: then another is chosen,
        # but only before the first start (clients of a restarted broker know its port).
        self._may_move = port is None
        self.metrics_port = metrics_port
        self.configs = dict(configs or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "hayase", "broker", "--data-dir", str(self.data_dir),
               "--port", str(self.port)]
        if self.metrics_port is not None:
            cmd += ["--metrics-port", str(self.metrics_port)]
        for k, v in self.configs.items():
            cmd += ["--config", f"{k}={v}"]
        return cmd

    def start(self, timeout: float = 30.0) -> EmbeddedBroker:
        if self.proc and self.proc.poll() is None:
            return self
        for attempt in range(5):
            since = self.log_path.stat().st_size if self.log_path.exists() else 0
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(self.command(), stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)
            try:
                _wait_listening(self.port, self.proc, self.log_path, since, timeout)
                break
            except _PortTaken:
                if not self._may_move or attempt == 4:
                    raise
                self.port = free_port()
        self._may_move = False
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> EmbeddedBroker:
        self.stop()
        return self.start()

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.log_path.unlink(missing_ok=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


class ApacheBackend:
    """Apache Kafka (KRaft) on loopback, one node or three."""

    kind = "apache"

    def __init__(self, nodes: int = 1, base_dir: Path | None = None) -> None:
        self._own_dir = base_dir is None
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix=f"hayase-kafka{nodes}-"))
        self.cluster = ApacheKafka.create(self.base_dir, nodes)
        self._started = False

    @property
    def bootstrap_servers(self) -> str:
        return self.cluster.bootstrap_servers

    def start(self, timeout: float = 120.0) -> ApacheBackend:
        """Start every node and wait until the cluster answers. The first start retries with
        fresh ports (and directories) when a node exits, as it does when a port chosen free
        was taken by another process before the node bound it; later starts keep the ports
        clients already know."""
        for attempt in range(1, 4):
            try:
                self.cluster.start(timeout)
                self._started = True
                return self
            except RuntimeError:  # a node exited
                self.cluster.stop()
                if self._started or attempt == 3:
                    raise
                self.cluster = ApacheKafka.create(self.base_dir / f"attempt{attempt + 1}",
                                                  len(self.cluster.nodes))
        raise AssertionError("unreachable")

    def kill(self) -> None:
        for i in range(len(self.cluster.nodes)):
            self.cluster.stop_node(i, signal.SIGKILL)

    def stop(self) -> None:
        self.cluster.stop()

    def restart(self) -> ApacheBackend:
        self.stop()
        return self.start()

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def apache_available() -> str | None:
    """None when Apache Kafka can run here, else the reason it cannot."""
    if shutil.which("java") is None:
        return "java not found"
    libs = default_libs()
    if not any(libs.glob("kafka_2.13-*.jar")):
        return f"Apache Kafka jars not in {libs} (run scripts/setup)"
    return None
