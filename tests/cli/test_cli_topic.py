"""`hayase topic create|list|describe|delete` against both backends."""

from __future__ import annotations

import pytest

from hayase.testing.apache_kafka import free_port


def test_create_list_describe_delete(hayase, topic_name: str) -> None:
    r = hayase("topic", "create", topic_name, "--partitions", "3", "--replication-factor", "1",
               "--config", "retention.ms=123456", "--config", "cleanup.policy=delete")
    assert r.exit_code == 0, r.output
    assert f"Created topic {topic_name}" in r.stdout

    r = hayase("topic", "list")
    assert r.exit_code == 0, r.output
    rows = {line.split()[0]: line.split()[1] for line in r.stdout.splitlines()[1:] if line.strip()}
    assert rows[topic_name] == "3"

    r = hayase("produce", topic_name, "--partition", "2", input="a\nb\n")
    assert r.exit_code == 0, r.output

    r = hayase("topic", "describe", topic_name)
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert f"Topic: {topic_name}  partitions: 3  replication factor: 1" in out
    parts = {}
    for line in out.splitlines():
        cols = line.split()
        if len(cols) == 6 and cols[0].isdigit():
            parts[int(cols[0])] = cols
    assert sorted(parts) == [0, 1, 2]
    assert parts[2][4:] == ["0", "2"]  # earliest, latest offsets
    assert parts[0][4:] == ["0", "0"]
    assert any(line.split()[:2] == ["retention.ms", "123456"] for line in out.splitlines())

    r = hayase("topic", "describe", topic_name, "--all-configs")
    assert r.exit_code == 0, r.output
    assert "segment.bytes" in r.stdout  # a default shows only with --all-configs

    r = hayase("topic", "delete", topic_name)
    assert r.exit_code == 0, r.output
    r = hayase("topic", "describe", topic_name)
    assert r.exit_code == 1
    assert "does not exist" in r.output


def test_create_existing_topic_is_a_clear_error(hayase, topic_name: str) -> None:
    assert hayase("topic", "create", topic_name).exit_code == 0
    r = hayase("topic", "create", topic_name)
    assert r.exit_code == 1
    assert f"Error: topic '{topic_name}' already exists" in r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize("args", [("describe",), ("delete",)])
def test_missing_topic_is_a_clear_error(hayase, topic_name: str, args: tuple[str, ...]) -> None:
    r = hayase("topic", *args, topic_name)
    assert r.exit_code == 1
    assert f"topic '{topic_name}' does not exist" in r.output
    assert "Traceback" not in r.output


def test_unreachable_broker_is_a_clear_error(hayase) -> None:
    r = hayase("topic", "list", "--timeout", "2", "--bootstrap-servers",
               f"127.0.0.1:{free_port()}", bootstrap=False)
    assert r.exit_code == 1
    assert "cannot reach a Kafka broker at 127.0.0.1:" in r.output
    assert "Traceback" not in r.output


def test_config_file_supplies_bootstrap_servers(hayase, kafka, topic_name: str, tmp_path) -> None:
    conf = tmp_path / "client.properties"
    conf.write_text(f"# librdkafka properties\nbootstrap.servers={kafka.bootstrap_servers}\n\n"
                    "client.id=hayase-cli-test\n")
    assert hayase("topic", "create", topic_name).exit_code == 0
    r = hayase("topic", "list", "--config-file", str(conf), bootstrap=False)
    assert r.exit_code == 0, r.output
    assert topic_name in r.stdout


def test_bad_config_file_line_is_a_clear_error(hayase, tmp_path) -> None:
    conf = tmp_path / "bad.properties"
    conf.write_text("bootstrap.servers\n")
    r = hayase("topic", "list", "--config-file", str(conf))
    assert r.exit_code == 1
    assert "bad.properties:1: expected name=value" in r.output
