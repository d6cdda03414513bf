"""The Apache Kafka 4.x Java clients (the jars the Apache backend runs on) against the hayase
broker: AdminClient, the idempotent producer (the Java default) and a group consumer."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hayase.testing.apache_kafka import default_libs
from hayase.testing.brokers import EmbeddedBroker

pytestmark = pytest.mark.integration

SOURCE = Path(__file__).parent / "java" / "JavaSmoke.java"


def _java_missing() -> str | None:
    if shutil.which("javac") is None or shutil.which("java") is None:
        return "needs a JDK (javac)"
    if not list(default_libs().glob("kafka-clients-*.jar")):
        return f"needs the Kafka jars in {default_libs()}"
    return None


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


@pytest.mark.skipif(_java_missing() is not None, reason=str(_java_missing()))
def test_java_clients_round_trip(broker: EmbeddedBroker, tmp_path: Path) -> None:
    classpath = f"{default_libs()}/*"
    subprocess.run(["javac", "-cp", classpath, "-d", str(tmp_path), str(SOURCE)], check=True,
                   timeout=300)
    topic = f"java-{uuid.uuid4().hex[:8]}"
    run = subprocess.run(["java", "-cp", f"{classpath}:{tmp_path}", "JavaSmoke",
                          broker.bootstrap_servers, topic, "1000"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "consumed 1000 of 1000" in run.stdout
    assert "nodes [127.0.0.1:" in run.stdout
