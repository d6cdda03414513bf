"""Shared pieces of the scale-out tests: produce keyed JSON, read a sink (its records, or as a
table), wait for a group's commits or for an expected output, and start/stop `hayase run`
processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

T = TypeVar("T")


def produce(bootstrap: str, topic: str, records: list[tuple[str, dict | None, int]]) -> None:
    """(key, JSON value or None for a tombstone, timestamp), placed like the Java client."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 10,
                         "partitioner": "murmur2_random"})
    for key, value, ts in records:
        producer.produce(topic, key=key.encode(),
                         value=None if value is None else json.dumps(value).encode(),
                         timestamp=ts)
    assert producer.flush(60) == 0


def read_records(bootstrap: str, topic: str, partitions: int) -> list[tuple[str, dict | None]]:
    """The topic's records from its start to its end, (key, JSON value or None for a
    tombstone), in order within each partition; empty when the topic does not exist yet."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"chk-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        ends = {}
        for p in range(partitions):
            try:
                ends[p] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            except KafkaException:  # not created yet
                return []
        todo = {p for p, (low, high) in ends.items() if high > low}
        consumer.assign([TopicPartition(topic, p, ends[p][0]) for p in todo])
        records: list[tuple[str, dict | None]] = []
        while todo:
            msg = consumer.poll(1.0)
            if msg is None or msg.error() is not None:
                continue
            value = msg.value()
            records.append((msg.key().decode(), None if value is None else json.loads(value)))
            if msg.offset() + 1 >= ends[msg.partition()][1]:
                todo.discard(msg.partition())
        return records
    finally:
        consumer.close()


def read_table(bootstrap: str, topic: str, partitions: int) -> dict[str, dict]:
    """The topic read from its start to its end, folded to the last value per key
    (tombstones delete); empty when the topic does not exist yet."""
    table: dict[str, dict] = {}
    for key, value in read_records(bootstrap, topic, partitions):
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    return table


def poll_until(read: Callable[[], T], done: Callable[[T], bool], alive: Callable[[], bool],
               seconds: float = 180) -> T:
    """``read()`` every second until its answer is ``done``, ``alive()`` turns false (the
    process that should produce it died) or ``seconds`` pass; the last answer, which the
    caller asserts on (so that a failure shows what was read)."""
    deadline = time.monotonic() + seconds
    answer = read()
    while not done(answer) and time.monotonic() < deadline and alive():
        time.sleep(1)
        answer = read()
    return answer


def committed_to_end(bootstrap: str, group: str, topic: str, partitions: int) -> bool:
    """Whether the group committed every record of ``topic`` (stateful queries commit offsets
    only after the state that reflects them)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        try:
            committed = consumer.committed(tps, timeout=10)
            for tp in committed:
                high = consumer.get_watermark_offsets(tp, timeout=10)[1]
                if high and tp.offset < high:  # an empty partition has nothing to commit
                    return False
            return True
        except KafkaException:  # the coordinator is still loading
            return False
    finally:
        consumer.close()


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 180) -> None:
    """Wait for ``condition``; a generous bound turns a hang into a failure (rather than going
    on as if the condition held)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def log_beside(state: Path) -> Path:
    """A log file named after a process' state folder."""
    return state.with_name(state.name + ".log")


def start_run(sql: Path, bootstrap: str, service: str, state: Path, log: Path,
              *properties: str) -> subprocess.Popen:
    """`hayase run` with its output in ``log``; ``properties``: more ``k=v`` ksqlDB properties."""
    extra = [arg for prop in properties for arg in ("-p", prop)]
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hayase", "run", str(sql), "--bootstrap-servers", bootstrap,
             "-p", f"ksql.service.id={service}", "-p", f"ksql.streams.state.dir={state}",
             *extra,
             # a dead member's partitions move after 6 s (the broker's minimum), not 45 s
             "--config", "session.timeout.ms=6000", "--config", "heartbeat.interval.ms=1000"],
            stdout=out, stderr=subprocess.STDOUT)


def stop_run(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def stop_and_read_log(proc: subprocess.Popen, log: Path, sig: int = signal.SIGTERM) -> str:
    """Stop a `hayase run` whose output goes to the file ``log`` (not a pipe: a pipe nobody
    reads until the end fills up, and a process writing its log into a full pipe stalls);
    its output so far."""
    stop_run(proc, sig)
    return log.read_text(errors="replace")

