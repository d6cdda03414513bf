"""Apache Kafka's own command-line tools (kafka-topics, kafka-consumer-groups, kafka-configs,
the console producer and consumer, ...) run as subprocesses from the Kafka 4.x jars, against
both backends of the `kafka` fixture."""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from tests.broker.tools.apache_tools import JVM_FLAGS, LOG4J2, Tool, tools_missing

from hayase.testing.apache_kafka import default_libs
from hayase.testing.brokers import Backend


@pytest.fixture(scope="session")
def kafka_tool(tmp_path_factory: pytest.TempPathFactory) -> Tool:
    """run(tool_class, *args, input=None, check=True): the tool's CompletedProcess (text).
    With check, a non-zero exit fails the test with the tool's output."""
    reason = tools_missing()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("kafka-tools")
    config = folder / "log4j2.properties"
    config.write_text(LOG4J2)
    # Class data sharing: the first run archives the classes it loaded, later runs map them and
    # start in about half the time (-Xshare:auto ignores an unusable archive); -Xlog:disable
    # keeps the JVM's own warnings out of the tools' stdout.
    archive = folder / "tools.jsa"
    base = ["java", *JVM_FLAGS, "-Xlog:disable", "-Xshare:auto",
            f"-Dlog4j2.configurationFile={config}", "-cp", f"{default_libs()}/*"]

    archiving = [True]  # only the first run tries to write the archive

    def run(cls: str, *args: str, input: str | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cds = []
        if archive.exists():
            cds = [f"-XX:SharedArchiveFile={archive}"]
        elif archiving.pop() if archiving else False:
            cds = [f"-XX:ArchiveClassesAtExit={archive}"]
        done = subprocess.run([*base, *cds, cls, *args], input=input, capture_output=True,
                              text=True, timeout=timeout)
        if check and done.returncode != 0:
            pytest.fail(f"{cls} {' '.join(args)} exited {done.returncode}:\n"
                        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    return run


@pytest.fixture
def admin(kafka: Backend) -> AdminClient:
    return AdminClient({"bootstrap.servers": kafka.bootstrap_servers})


@pytest.fixture
def new_topic(admin: AdminClient) -> Iterator[Callable[[int], str]]:
    """new_topic(partitions): a fresh topic, deleted after the test."""
    made: list[str] = []

    def make(partitions: int) -> str:
        name = f"tools-{uuid.uuid4().hex[:10]}"
        admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
        made.append(name)
        # Apache Kafka answers once its controller has the topic; wait until the broker does.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            t = admin.list_topics(name, timeout=30).topics.get(name)
            if t is not None and t.error is None and len(t.partitions) == partitions:
                break
            time.sleep(0.1)
        return name

    yield make
    if made:
        for f in admin.delete_topics(made).values():
            with contextlib.suppress(Exception):  # a test may have deleted it already
                f.result(30)


