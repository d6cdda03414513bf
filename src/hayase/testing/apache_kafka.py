"""Start and stop Apache Kafka (KRaft) on loopback: one node or three (replication factor 3).

Used by the test suite's `apache` backend, by the benchmarks, and by users who want to try
hayase on a real cluster::

    python -m hayase.testing.apache_kafka start --nodes 3 --dir /tmp/kafka3
    python -m hayase.testing.apache_kafka stop --dir /tmp/kafka3

The jars come from Maven Central (``scripts/setup`` puts them in ``$HAYASE_KAFKA_LIBS``); Kafka
runs with ``java -cp``, each node in combined broker+controller mode.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

LOG4J2 = """\
Configuration:
  Appenders:
    File:
      name: FILE
      fileName: "{log}"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: FILE
    Logger:
      - name: kafka.server.KafkaServer
        level: INFO
      - name: kafka.server.BrokerServer
        level: INFO
"""


def default_libs() -> Path:
    env = os.environ.get("HAYASE_KAFKA_LIBS")
    if env:
        return Path(env)
    cache = Path(os.environ.get("HAYASE_CACHE", Path.home() / ".cache" / "hayase"))
    return cache / "kafka" / "libs"


def _cluster_id() -> str:
    """A random Kafka cluster id; like Kafka's Uuid.randomUuid, never starting with '-' (the
    storage tool would read it as an option)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Node:
    node_id: int
    port: int
    controller_port: int
    jmx_port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def properties_file(self) -> Path:
        return self.dir / "server.properties"


@dataclass
class ApacheKafka:
    """A KRaft cluster of ``len(nodes)`` combined-mode nodes on 127.0.0.1."""

    base_dir: Path
    nodes: list[Node]
    libs: Path = field(default_factory=default_libs)
    heap: str = "512m"

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    @classmethod
    def create(cls, base_dir: Path, nodes: int = 1, libs: Path | None = None) -> ApacheKafka:
        base_dir.mkdir(parents=True, exist_ok=True)
        ns = [
            Node(i + 1, free_port(), free_port(), free_port(), base_dir / f"node{i + 1}")
            for i in range(nodes)
        ]
        cluster = cls(base_dir, ns, libs or default_libs())
        cluster._configure()
        return cluster

    def _configure(self) -> None:
        if not any(self.libs.glob("kafka_2.13-*.jar")):
            raise RuntimeError(f"Apache Kafka jars not found in {self.libs}; run scripts/setup")
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        rf = min(3, len(self.nodes))
        cluster_id = _cluster_id()
        for n in self.nodes:
            n.dir.mkdir(parents=True, exist_ok=True)
            props = {
                "process.roles": "broker,controller",
                "node.id": n.node_id,
                "controller.quorum.voters": voters,
                "listeners": f"PLAINTEXT://127.0.0.1:{n.port},CONTROLLER://127.0.0.1:{n.controller_port}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{n.port}",
                "controller.listener.names": "CONTROLLER",
                "inter.broker.listener.name": "PLAINTEXT",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "log.dirs": n.dir / "data",
                "num.partitions": 1,
                "default.replication.factor": rf,
                "min.insync.replicas": 1,
                "offsets.topic.replication.factor": rf,
                "offsets.topic.num.partitions": 10,
                "transaction.state.log.replication.factor": rf,
                "transaction.state.log.min.isr": 1,
                "group.initial.rebalance.delay.ms": 0,
                "auto.create.topics.enable": "true",
                "delete.topic.enable": "true",
                "log.flush.interval.messages": 9223372036854775807,
                "num.network.threads": 2,
                "num.io.threads": 4,
            }
            n.properties_file.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
            (n.dir / "log4j2.yaml").write_text(LOG4J2.format(log=n.dir / "server.log"))
            # Without the JMX agent: the format tool needs no port, and binding the node's JMX
            # port here failed it whenever another process had taken that port meanwhile.
            fmt = subprocess.run(
                [*self._java(n, jmx=False), "kafka.tools.StorageTool", "format", "-t",
                 cluster_id, "-c", str(n.properties_file), "--ignore-formatted"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
            if fmt.returncode != 0:
                raise RuntimeError(f"formatting {n.dir} failed ({fmt.returncode}): "
                                   f"{fmt.stderr.decode(errors='replace')[-3000:]}")
        (self.base_dir / "cluster.json").write_text(json.dumps(self._describe()))

    def _describe(self) -> dict[str, object]:
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "nodes": [
                {"id": n.node_id, "port": n.port, "controller_port": n.controller_port,
                 "jmx_port": n.jmx_port, "dir": str(n.dir),
                 "pid": n.proc.pid if n.proc else None}
                for n in self.nodes
            ],
        }

    def _java(self, n: Node, jmx: bool = True) -> list[str]:
        agent = [
            "-Dcom.sun.management.jmxremote",
            f"-Dcom.sun.management.jmxremote.port={n.jmx_port}",
            f"-Dcom.sun.management.jmxremote.rmi.port={n.jmx_port}",
            "-Dcom.sun.management.jmxremote.host=127.0.0.1",
            "-Djava.rmi.server.hostname=127.0.0.1",
            "-Dcom.sun.management.jmxremote.authenticate=false",
            "-Dcom.sun.management.jmxremote.ssl=false",
        ] if jmx else []
        return [
            "java", f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC",
            "-XX:TieredStopAtLevel=1" if os.environ.get("HAYASE_KAFKA_FAST_START") else "-server",
            f"-Dlog4j2.configurationFile={n.dir / 'log4j2.yaml'}",
            *agent,
            "-cp", f"{self.libs}/*",
        ]

    def start_node(self, index: int) -> None:
        n = self.nodes[index]
        if n.proc and n.proc.poll() is None:
            return
        out = open(n.dir / "stdout.log", "ab")  # noqa: SIM115 - owned by the child process
        try:
            n.proc = subprocess.Popen(
                [*self._java(n), "kafka.Kafka", str(n.properties_file)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        finally:
            out.close()

    def stop_node(self, index: int, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        n = self.nodes[index]
        if not n.proc or n.proc.poll() is not None:
            return
        n.proc.send_signal(sig)
        try:
            n.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            n.proc.kill()
            n.proc.wait()

    def start(self, timeout: float = 120.0) -> ApacheKafka:
        for i in range(len(self.nodes)):
            self.start_node(i)
        self.wait_ready(timeout)
        (self.base_dir / "cluster.json").write_text(json.dumps(self._describe()))
        return self

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until every node answers Metadata and sees all brokers."""
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        quiet = logging.getLogger("hayase.testing.apache_kafka.probe")
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "logger": quiet})  # type: ignore[dict-item]
        while True:
            for n in self.nodes:
                if n.proc and n.proc.poll() is not None:
                    log = (n.dir / "stdout.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"Kafka node {n.node_id} exited:\n{log}")
            try:
                md = admin.list_topics(timeout=2)
                if len(md.brokers) == len(self.nodes):
                    return
            except Exception:  # noqa: BLE001 - not up yet
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"Apache Kafka not ready after {timeout}s in {self.base_dir}")
            time.sleep(0.5)

    def stop(self) -> None:
        for i in range(len(self.nodes)):
            self.stop_node(i)

    def __enter__(self) -> ApacheKafka:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop_dir(base_dir: Path) -> None:
    info = json.loads((base_dir / "cluster.json").read_text())
    for node in info["nodes"]:
        pid = node.get("pid")
        if not pid or not _is_kafka(pid, node["dir"]):
            continue  # gone, or the pid now belongs to another process
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        for _ in range(300):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.killpg(pid, signal.SIGKILL)


def _is_kafka(pid: int, node_dir: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return "kafka.Kafka" in cmdline and node_dir in cmdline


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hayase.testing.apache_kafka")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="start a KRaft cluster in the background")
    s.add_argument("--nodes", type=int, default=1, choices=[1, 3])
    s.add_argument("--dir", type=Path, required=True)
    t = sub.add_parser("stop", help="stop the cluster started in --dir")
    t.add_argument("--dir", type=Path, required=True)
    a = p.parse_args(argv)
    if a.cmd == "start":
        cluster = ApacheKafka.create(a.dir, a.nodes)
        cluster.start()
        print(f"Apache Kafka ({a.nodes} node(s)) ready: bootstrap.servers={cluster.bootstrap_servers}")
        print(f"stop it with: python -m hayase.testing.apache_kafka stop --dir {a.dir}")
        return 0
    _stop_dir(a.dir)
    print(f"stopped the cluster in {a.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
