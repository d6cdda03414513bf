"""Running Apache Kafka's own command-line tools from the Kafka 4.x jars, and reading what
they print."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from confluent_kafka.admin import AdminClient

from hayase.testing.apache_kafka import default_libs

TOPIC_COMMAND = "org.apache.kafka.tools.TopicCommand"
GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
CONFIG_COMMAND = "kafka.admin.ConfigCommand"
ACL_COMMAND = "org.apache.kafka.tools.AclCommand"
CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
GET_OFFSET_SHELL = "org.apache.kafka.tools.GetOffsetShell"
DELETE_RECORDS = "org.apache.kafka.tools.DeleteRecordsCommand"
LOG_DIRS = "org.apache.kafka.tools.LogDirsCommand"
CLUSTER_TOOL = "org.apache.kafka.tools.ClusterTool"
PRODUCER_PERFORMANCE = "org.apache.kafka.tools.ProducerPerformance"
CONSUMER_PERFORMANCE = "org.apache.kafka.tools.ConsumerPerformance"
LEADER_ELECTION = "org.apache.kafka.tools.LeaderElectionCommand"
REASSIGN = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"

# The tools' log lines go to stderr (Kafka's distribution ships tools-log4j2.yaml for that), so
# that stdout holds only what the tool prints for the operator.
LOG4J2 = """\
status = error
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
"""

# A short-lived JVM starts faster with the C1 compiler only and the serial collector.
JVM_FLAGS = ["-Xms64m", "-Xmx384m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]

Tool = Callable[..., subprocess.CompletedProcess[str]]


def tools_missing() -> str | None:
    if shutil.which("java") is None:
        return "java not found"
    if not list(default_libs().glob("kafka-tools-*.jar")):
        return f"kafka-tools jar not in {default_libs()} (run scripts/setup)"
    return None


def node_id(admin: AdminClient) -> int:
    brokers = admin.list_topics(timeout=30).brokers
    return int(next(iter(brokers)))


def table(stdout: str, first_column: str) -> list[dict[str, str]]:
    """Rows of a tool's whitespace-aligned table (kafka-consumer-groups) whose header starts
    with `first_column`; values never contain spaces in these tests."""
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    for line in stdout.splitlines():
        cells = line.split()
        if not cells:
            continue
        if cells[0] == first_column:
            header = cells
        elif header is not None and len(cells) == len(header):
            rows.append(dict(zip(header, cells, strict=True)))
    return rows


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)
