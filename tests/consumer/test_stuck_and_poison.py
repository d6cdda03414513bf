"""Issue tests 4 and 5: a stuck head record pauses its partition at the pending limit while the
others flow, and metrics show it; a poison record is retried, dead-lettered with its origin in
headers, and committed only after the dead-letter write is acknowledged; with the dead-letter
topic unreachable nothing is committed past it and nothing is lost."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

from tests.consumer.helpers import (
    committed,
    consumer_config,
    create_topic,
    end_offsets,
    free_port,
    produce_keyed,
    read_all,
    wait_for,
)

from hayase.consumer import ParallelConsumer, Record, RetryPolicy
from hayase.testing.brokers import Backend

PER_PARTITION = 300


def start(pc: ParallelConsumer) -> threading.Thread:
    t = threading.Thread(target=pc.run, daemon=True)
    t.start()
    return t


def stop(pc: ParallelConsumer, t: threading.Thread) -> None:
    pc.stop()
    t.join(60)
    assert not t.is_alive()


def test_stuck_head_pauses_only_its_partition(kafka: Backend, topic_name: str) -> None:
    bs = kafka.bootstrap_servers
    create_topic(bs, topic_name)
    produce_keyed(bs, topic_name, 3 * PER_PARTITION, keys=30)
    release = asyncio.Event()
    loop_holder: list[asyncio.AbstractEventLoop] = []
    processed: Counter[int] = Counter()
    max_pending, poll_batch = 50, 20

    async def process(r: Record) -> None:
        if not loop_holder:
            loop_holder.append(asyncio.get_running_loop())
        if r.partition == 0 and r.offset == 0:
            await release.wait()  # the head of partition 0 blocks
        processed[r.partition] += 1

    group = f"g-{topic_name}"
    pc = ParallelConsumer(consumer_config(bs, group), [topic_name], process,
                          max_in_flight_per_partition=10,
                          max_pending_per_partition=max_pending, poll_batch=poll_batch,
                          commit_interval=0.1, handle_signals=False)
    t = start(pc)
    try:
        wait_for(lambda: processed[1] == PER_PARTITION and processed[2] == PER_PARTITION, 180,
                 "partitions 1 and 2 to finish")
        m = pc.metrics

        def sample(name: str, part: int) -> float | None:
            return m.sample(name, topic=topic_name, partition=str(part))

        wait_for(lambda: sample("hayase_consumer_partition_paused", 0) == 1, 120,
                 "partition 0 paused in metrics")
        wait_for(lambda: (sample("hayase_consumer_oldest_pending_age_seconds", 0) or 0) > 0, 120,
                 "oldest pending age")
        pending = sample("hayase_consumer_pending_records", 0)
        assert pending is not None and max_pending <= pending <= max_pending + 2 * poll_batch
        assert processed[0] < PER_PARTITION  # bounded: it stopped taking records
        assert sample("hayase_consumer_partition_paused", 1) == 0
        # Nothing past the stuck head is committed; the other partitions are.
        ends = end_offsets(bs, topic_name)
        wait_for(lambda: committed(bs, group, topic_name)[1:] == ends[1:], 120,
                 "partitions 1 and 2 committed")
        assert committed(bs, group, topic_name)[0] in (0, -1001)
        loop_holder[0].call_soon_threadsafe(release.set)
        wait_for(lambda: processed[0] == PER_PARTITION, 180, "partition 0 to resume and finish")
        wait_for(lambda: committed(bs, group, topic_name) == end_offsets(bs, topic_name), 120,
                 "commit of everything")
        wait_for(lambda: sample("hayase_consumer_partition_paused", 0) == 0, 120, "resumed")
    finally:
        if loop_holder:
            loop_holder[0].call_soon_threadsafe(release.set)
        stop(pc, t)


POISON = {37, 38 + 3 * 20}  # sequence numbers (key k37 -> partition 1, k98 -> partition 2)


def test_poison_record_is_retried_then_dead_lettered(kafka: Backend, topic_name: str) -> None:
    bs = kafka.bootstrap_servers
    create_topic(bs, topic_name)
    dlq = topic_name + ".dlq"
    create_topic(bs, dlq, 1)
    produce_keyed(bs, topic_name, 3 * PER_PARTITION, keys=100)
    attempts: Counter[int] = Counter()
    good: set[int] = set()

    async def process(r: Record) -> None:
        seq = int(r.value or b"")
        attempts[seq] += 1
        if seq in POISON:
            raise ValueError(f"cannot parse {seq}")
        good.add(seq)

    group = f"g-{topic_name}"
    pc = ParallelConsumer(consumer_config(bs, group), [topic_name], process,
                          retry=RetryPolicy(max_retries=2, initial_backoff=0.01),
                          dead_letter_topic=dlq, commit_interval=0.1, handle_signals=False)
    t = start(pc)
    try:
        wait_for(lambda: committed(bs, group, topic_name) == end_offsets(bs, topic_name), 180,
                 "commit of everything")
    finally:
        stop(pc, t)
    assert good == set(range(3 * PER_PARTITION)) - POISON
    assert all(attempts[s] == 3 for s in POISON)
    letters = read_all(bs, dlq, len(POISON))
    assert {int(m.value()) for m in letters} == POISON
    for m in letters:
        h = dict(m.headers())
        seq = int(m.value())
        assert h["hayase.dlq.topic"] == topic_name.encode()
        assert int(h["hayase.dlq.partition"]) == (seq % 100) % 3
        assert h["hayase.dlq.error"] == f"ValueError: cannot parse {seq}".encode()
        assert h["hayase.dlq.attempts"] == b"3"
        assert m.key() == f"k{seq % 100}".encode()
    retries = sum(pc.metrics.sample("hayase_consumer_retries_total", topic=topic_name,
                                    partition=str(p)) or 0 for p in range(3))
    assert retries == 2 * len(POISON)
    dead = sum(pc.metrics.sample("hayase_consumer_dead_lettered_records_total",
                                 topic=topic_name, partition=str(p)) or 0 for p in range(3))
    assert dead == len(POISON)


def test_unreachable_dead_letter_topic_blocks_commit_and_loses_nothing(
        kafka: Backend, topic_name: str) -> None:
    bs = kafka.bootstrap_servers
    create_topic(bs, topic_name)
    dlq = topic_name + ".dlq"
    create_topic(bs, dlq, 1)
    produce_keyed(bs, topic_name, 3 * PER_PARTITION, keys=100)
    poison = 37  # key k37 -> partition 1; its offset there:
    poison_offset = [s for s in range(3 * PER_PARTITION) if (s % 100) % 3 == 1].index(poison)
    good: set[int] = set()

    async def process(r: Record) -> None:
        seq = int(r.value or b"")
        if seq == poison:
            raise ValueError("poison")
        good.add(seq)

    group = f"g-{topic_name}"
    down = {"bootstrap.servers": f"127.0.0.1:{free_port()}", "message.timeout.ms": 500}
    pc = ParallelConsumer(consumer_config(bs, group), [topic_name], process,
                          retry=RetryPolicy(max_retries=1, initial_backoff=0.01,
                                            max_backoff=0.2),
                          dead_letter_topic=dlq, dead_letter_config=down,
                          max_pending_per_partition=100, poll_batch=20, commit_interval=0.1,
                          drain_timeout=1.0, handle_signals=False)
    t = start(pc)
    try:
        wait_for(lambda: (pc.metrics.sample("hayase_consumer_dead_letter_failures_total",
                                            topic=topic_name, partition="1") or 0) >= 2, 180,
                 "failed dead-letter writes")
        ends = end_offsets(bs, topic_name)
        wait_for(lambda: committed(bs, group, topic_name)[::2] == ends[::2], 180,
                 "partitions 0 and 2 committed")
        wait_for(lambda: pc.metrics.sample("hayase_consumer_partition_paused",
                                           topic=topic_name, partition="1") == 1, 180,
                 "partition 1 paused behind the poison record")
    finally:
        stop(pc, t)
    # Nothing past the poison record, and everything before it.
    assert committed(bs, group, topic_name)[1] == poison_offset
    # The dead-letter topic is back: a new consumer dead-letters it and finishes; nothing lost.
    pc2 = ParallelConsumer(consumer_config(bs, group), [topic_name], process,
                           retry=RetryPolicy(max_retries=1, initial_backoff=0.01),
                           dead_letter_topic=dlq, commit_interval=0.1, handle_signals=False)
    t2 = start(pc2)
    try:
        wait_for(lambda: committed(bs, group, topic_name) == end_offsets(bs, topic_name), 180,
                 "commit of everything")
    finally:
        stop(pc2, t2)
    assert good == set(range(3 * PER_PARTITION)) - {poison}
    assert [int(m.value()) for m in read_all(bs, dlq, 1)] == [poison]
