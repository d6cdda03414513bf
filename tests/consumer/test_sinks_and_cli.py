"""Sinks against a real Redis, settings resolution, and `hayase consume-parallel` end to end."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest
import redis
from confluent_kafka import Producer
from tests.consumer.helpers import committed, create_topic, end_offsets, read_all, wait_for

from hayase.consumer.config import ConfigError, resolve
from hayase.consumer.record import Record
from hayase.consumer.sinks import make_sink
from hayase.consumer.sinks.redis import RedisSetSink
from hayase.consumer.sinks.segments import SegmentUpdateError, SegmentUpdater, parse_update
from hayase.testing.brokers import Backend


def rec(offset: int, key: bytes | None, value: bytes | None) -> Record:
    return Record("t", 0, offset, key, value)


def test_segment_updater_applies_updates_in_order(redis_url: str) -> None:
    prefix = f"seg-{uuid.uuid4().hex[:6]}:"

    async def go() -> set[str]:
        s = SegmentUpdater(redis_url, prefix)
        await s.open()
        try:
            await s.write([rec(0, b"u1", b'{"add": ["sports", "news"]}'),
                           rec(1, b"u1", b'{"remove": ["news"], "add": ["games"]}')])
            return await s.segments(b"u1")
        finally:
            await s.close()

    assert asyncio.run(go()) == {"sports", "games"}


@pytest.mark.parametrize("key,value", [(None, b"{}"), (b"u", b"not json"), (b"u", b"[1]"),
                                       (b"u", b'{"add": "x"}'), (b"u", b'{"add": [1]}')])
def test_segment_update_refuses_bad_records(key: bytes | None, value: bytes) -> None:
    with pytest.raises(SegmentUpdateError):
        parse_update(rec(5, key, value))


def test_redis_set_sink_pipelines_and_refuses_keyless(redis_url: str) -> None:
    prefix = f"set-{uuid.uuid4().hex[:6]}:"

    async def go() -> None:
        s = RedisSetSink(redis_url, prefix)
        await s.open()
        try:
            await s.write([rec(0, b"a", b"1"), rec(1, b"b", b"2"), rec(2, b"a", b"3"),
                           rec(3, b"b", None)])
            with pytest.raises(ValueError):
                await s.write([rec(4, None, b"x")])
        finally:
            await s.close()

    asyncio.run(go())
    r = redis.Redis.from_url(redis_url)
    assert r.get(prefix + "a") == b"3" and r.get(prefix + "b") is None
    with pytest.raises(ValueError):
        make_sink("nope")


def test_settings_file_env_cli_precedence(tmp_path: Path) -> None:
    doc = {"topics": ["a"], "max_in_flight_per_partition": 5, "sink": "segments",
           "kafka": {"group.id": "from-file", "session.timeout.ms": "9000"}}
    env = {"HAYASE_CONSUMER_MAX_IN_FLIGHT_PER_PARTITION": "7",
           "HAYASE_KAFKA_GROUP_ID": "from-env", "HAYASE_CONSUMER_TOPICS": "b,c"}
    kafka, opts = resolve(doc, env, {"max_in_flight_per_partition": None, "topics": ("d",)})
    assert kafka == {"group.id": "from-env", "session.timeout.ms": "9000"}
    assert opts["max_in_flight_per_partition"] == 7 and opts["topics"] == ["d"]
    assert opts["sink"] == "segments"
    with pytest.raises(ConfigError):
        resolve({"max_inflight": 3}, {}, {})
    with pytest.raises(ConfigError):
        resolve(None, {"HAYASE_CONSUMER_BATCH_SIZE": "many"}, {})


def test_cli_runs_the_segment_updater(kafka: Backend, topic_name: str, redis_url: str,
                                      tmp_path: Path) -> None:
    bs = kafka.bootstrap_servers
    create_topic(bs, topic_name)
    dlq = topic_name + "-dlq"
    create_topic(bs, dlq, 1)
    prefix = f"cli-{uuid.uuid4().hex[:6]}:"
    p = Producer({"bootstrap.servers": bs})
    users = 50
    for i in range(1000):
        u = f"user{i % users}".encode()
        p.produce(topic_name, orjson.dumps({"add": [f"s{i % 7}"], "remove": [f"s{(i + 3) % 7}"]}),
                  u)
    p.produce(topic_name, b"garbage", b"user1")  # poison: dead-lettered, not dropped
    assert p.flush(30) == 0
    cfg = tmp_path / "consumer.toml"
    cfg.write_text('sink = "segments"\nbatch_size = 20\nmax_retries = 1\n'
                   'initial_backoff = 0.01\ncommit_interval = 0.1\n'
                   '[kafka]\n"session.timeout.ms" = "6000"\n')
    env = {"HAYASE_CONSUMER_DEAD_LETTER_TOPIC": dlq, "PATH": "/usr/bin:/bin"}
    group = f"g-{topic_name}"
    proc = subprocess.Popen([sys.executable, "-m", "hayase", "consume-parallel", "-c", str(cfg),
                             "-b", bs, "-g", group, "-t", topic_name, "--redis-url", redis_url,
                             "--prefix", prefix, "--max-in-flight", "8"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: committed(bs, group, topic_name) == end_offsets(bs, topic_name), 180,
                 "commit of every record")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode()[-3000:]
    # Expected final segments: replay the updates per user in order.
    expected: dict[int, set[str]] = {u: set() for u in range(users)}
    for i in range(1000):
        s = expected[i % users]
        s.add(f"s{i % 7}")
        s.discard(f"s{(i + 3) % 7}")
    r = redis.Redis.from_url(redis_url)
    for u in range(users):
        got = {m.decode() for m in r.smembers(f"{prefix}user{u}")}
        assert got == expected[u], u
    letters = read_all(bs, dlq, 1)
    assert [(m.key(), m.value()) for m in letters] == [(b"user1", b"garbage")]
    assert dict(letters[0].headers())["hayase.dlq.attempts"] == b"2"
