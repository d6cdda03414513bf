"""`hayase produce` and `hayase consume` against both backends."""

from __future__ import annotations

import json

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from hayase.client.partitioners import kafka_partition
from hayase.testing.apache_kafka import free_port


def _record_count(bootstrap: str, topic: str) -> int:
    """Records in ``topic`` (sum over its partitions of high - low watermark)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "cli-record-count"})
    try:
        partitions = c.list_topics(topic, timeout=30).topics[topic].partitions
        total = 0
        for p in partitions:
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            total += high - low
        return total
    finally:
        c.close()


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_keyed_lines_with_headers_round_trip_as_json(hayase, topic_name: str) -> None:
    assert hayase("topic", "create", topic_name, "--partitions", "3").exit_code == 0
    lines = "".join(f"key-{i}:value {i}\n" for i in range(30))
    r = hayase("produce", topic_name, "--key-separator", ":", "--header", "src=cli",
               "--header", "src=again", input=lines)
    assert r.exit_code == 0, r.output
    assert "Produced 30 record(s)" in r.output

    r = hayase("consume", topic_name, "--from-beginning", "--max-messages", "30",
               "--format", "json", "--timeout", "30")
    assert r.exit_code == 0, r.output
    records = _json_lines(r.stdout)
    assert len(records) == 30
    by_key = {rec["key"]: rec for rec in records}
    for i in range(30):
        rec = by_key[f"key-{i}"]
        assert rec["value"] == f"value {i}"
        assert rec["topic"] == topic_name
        assert rec["headers"] == [{"key": "src", "value": "cli"}, {"key": "src", "value": "again"}]
        # hayase produce uses Java's partitioner (murmur2): the same placement as Java clients.
        assert rec["partition"] == kafka_partition(f"key-{i}".encode(), 3)
        assert isinstance(rec["timestamp"], int) and rec["timestamp"] > 0
    for p in range(3):
        offsets = [rec["offset"] for rec in records if rec["partition"] == p]
        assert offsets == list(range(len(offsets)))


def test_file_partition_offset_and_lines_format(hayase, kafka, topic_name: str,
                                                tmp_path) -> None:
    assert hayase("topic", "create", topic_name, "--partitions", "2").exit_code == 0
    f = tmp_path / "in.txt"
    f.write_bytes(b"k0=zero\nk1=one\r\nk2=two\nk3=three")  # CRLF and no final newline
    r = hayase("produce", topic_name, "--file", str(f), "--key-separator", "=",
               "--partition", "1")
    assert r.exit_code == 0, r.output

    r = hayase("consume", topic_name, "--partition", "1", "--offset", "1", "--max-messages", "2",
               "--key-separator", "|", "--timeout", "30")
    assert r.exit_code == 0, r.output
    assert r.stdout == "k1|one\nk2|two\n"

    # -n: the idle --timeout also runs while the reader starts, which on a loaded machine can
    # take longer than a few seconds; the partition holds exactly these four.
    r = hayase("consume", topic_name, "--partition", "1", "--offset", "beginning",
               "-n", "4", "--timeout", "60")
    assert r.exit_code == 0, r.output
    assert r.stdout == "zero\none\ntwo\nthree\n"
    assert _record_count(kafka.bootstrap_servers, topic_name) == 4

    r = hayase("consume", topic_name, "--partition", "0", "--from-beginning", "--timeout", "2")
    assert r.exit_code == 0, r.output
    assert r.stdout == ""


def test_offset_end_reads_only_new_records(hayase, topic_name: str) -> None:
    assert hayase("topic", "create", topic_name).exit_code == 0
    assert hayase("produce", topic_name, input="old\n").exit_code == 0
    r = hayase("consume", topic_name, "--offset", "end", "--timeout", "2")
    assert r.exit_code == 0, r.output
    assert r.stdout == ""


def test_binary_and_null_values_in_json(hayase, kafka, topic_name: str) -> None:
    assert hayase("topic", "create", topic_name).exit_code == 0
    p = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    p.produce(topic_name, value=b"\xff\x00binary", key=None)
    p.produce(topic_name, value=None, key=b"tombstone")
    assert p.flush(30) == 0
    r = hayase("consume", topic_name, "--from-beginning", "-n", "2", "--format", "json",
               "--timeout", "30")
    assert r.exit_code == 0, r.output
    first, second = _json_lines(r.stdout)
    assert first["key"] is None
    assert first["value"] == {"base64": "/wBiaW5hcnk="}
    assert second["key"] == "tombstone"
    assert second["value"] is None
    assert second["headers"] == []


def test_line_without_key_separator_is_reported(hayase, kafka, topic_name: str) -> None:
    assert hayase("topic", "create", topic_name).exit_code == 0
    r = hayase("produce", topic_name, "--key-separator", ":", input="a:1\nb:2\nno-sep\nc:3\n")
    assert r.exit_code == 1
    assert "line 3 has no key separator ':'; 2 record(s) before it were produced" in r.output
    assert _record_count(kafka.bootstrap_servers, topic_name) == 2  # nothing after the bad line
    r = hayase("consume", topic_name, "--from-beginning", "--key-separator", ":",
               "-n", "2", "--timeout", "60")
    assert r.stdout == "a:1\nb:2\n"


@pytest.mark.parametrize("command", ["produce", "consume"])
def test_missing_topic_is_a_clear_error(hayase, topic_name: str, command: str) -> None:
    # --timeout also bounds the metadata lookup: generous (the error comes at once anyway)
    r = hayase(command, topic_name, "--timeout", "60", input="x\n")
    assert r.exit_code == 1
    assert f"topic '{topic_name}' does not exist" in r.output
    assert "Traceback" not in r.output


def test_missing_partition_is_a_clear_error(hayase, topic_name: str) -> None:
    assert hayase("topic", "create", topic_name).exit_code == 0
    for command in ("produce", "consume"):
        r = hayase(command, topic_name, "--partition", "5", "--timeout", "60", input="x\n")
        assert r.exit_code == 1
        assert f"topic '{topic_name}' has no partition 5" in r.output


@pytest.mark.parametrize("command", ["produce", "consume"])
def test_unreachable_broker_is_a_clear_error(hayase, command: str) -> None:
    r = hayase(command, "t", "--timeout", "2", "--bootstrap-servers", f"127.0.0.1:{free_port()}",
               input="x\n", bootstrap=False)
    assert r.exit_code == 1
    assert "cannot reach a Kafka broker" in r.output
    assert "Traceback" not in r.output


def test_acks_one_turns_idempotence_off_and_explicit_conflict_is_refused(hayase,
                                                                         topic_name: str) -> None:
    assert hayase("topic", "create", topic_name).exit_code == 0
    assert hayase("produce", topic_name, "--acks", "1", input="x\n").exit_code == 0
    r = hayase("produce", topic_name, "--acks", "1", "--idempotence", input="x\n")
    assert r.exit_code == 1
    assert "idempotence needs --acks all" in r.output


def test_group_commits_and_resumes(hayase, topic_name: str) -> None:
    assert hayase("topic", "create", topic_name, "--partitions", "2").exit_code == 0
    assert hayase("produce", topic_name, input="1\n2\n3\n").exit_code == 0
    group = f"g-{topic_name}"
    r = hayase("consume", topic_name, "--group", group, "--from-beginning", "-n", "3",
               "--timeout", "30")
    assert r.exit_code == 0, r.output
    assert sorted(r.stdout.split()) == ["1", "2", "3"]
    assert hayase("produce", topic_name, input="4\n").exit_code == 0
    r = hayase("consume", topic_name, "--group", group, "--from-beginning", "-n", "1",
               "--timeout", "30")
    assert r.exit_code == 0, r.output
    assert r.stdout == "4\n"  # resumed at the committed offsets
    r = hayase("consume", topic_name, "--group", group, "--partition", "0", "--timeout", "3")
    assert r.exit_code == 0, r.output
    assert r.stdout == ""  # an assigned partition also starts at the committed offset
    r = hayase("consume", topic_name, "--group", group, "--offset", "beginning", "-n", "4",
               "--timeout", "30")
    assert r.exit_code == 0, r.output
    assert sorted(r.stdout.split()) == ["1", "2", "3", "4"]  # an explicit offset rewinds


def test_closed_stdout_ends_consume_quietly(kafka, topic_name: str) -> None:
    """`hayase consume ... | head -1`: no traceback when the reader goes away."""
    import subprocess
    import sys

    b = kafka.bootstrap_servers
    hayase = [sys.executable, "-m", "hayase"]
    subprocess.run([*hayase, "topic", "create", topic_name, "-b", b], check=True,
                   capture_output=True)
    subprocess.run([*hayase, "produce", topic_name, "-b", b], check=True, capture_output=True,
                   input="".join(f"{i}\n" for i in range(2000)).encode())
    proc = subprocess.Popen([*hayase, "consume", topic_name, "--from-beginning", "--timeout", "20",
                             "-b", b], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b"0\n"
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 0, err
    assert "Traceback" not in err and "Broken pipe" not in err
