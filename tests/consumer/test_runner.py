"""ParallelConsumer against a broker: everything processed, committed up to the end, key order
kept within an instance, plain functions in the thread pool, batch form."""

from __future__ import annotations

import asyncio
import random
import threading
import urllib.request
from collections import defaultdict

import pytest
from tests.consumer.helpers import (
    committed,
    consumer_config,
    create_topic,
    end_offsets,
    produce_keyed,
    wait_for,
)

from hayase.consumer import ParallelConsumer, Record
from hayase.testing.brokers import Backend


def run_in_thread(pc: ParallelConsumer) -> threading.Thread:
    t = threading.Thread(target=pc.run, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("ordering", ["key", "partition", "unordered"])
def test_every_record_processed_and_committed(kafka: Backend, topic_name: str,
                                              ordering: str) -> None:
    bs = kafka.bootstrap_servers
    create_topic(bs, topic_name)
    produced = produce_keyed(bs, topic_name, 600, keys=30)
    seen: dict[bytes, list[int]] = defaultdict(list)
    active: dict[bytes, int] = defaultdict(int)
    overlaps = []
    done = threading.Event()
    count = 0

    async def process(r: Record) -> None:
        nonlocal count
        assert r.key is not None and r.value is not None
        active[r.key] += 1
        if active[r.key] > 1:
            overlaps.append(r.key)
        await asyncio.sleep(random.random() * 0.003)
        seen[r.key].append(int(r.value))
        active[r.key] -= 1
        count += 1
        if count >= 600:
            done.set()

    group = f"g-{topic_name}"
    pc = ParallelConsumer(consumer_config(bs, group), [topic_name], process,
                          max_in_flight_per_partition=8, max_pending_per_partition=50,
                          ordering=ordering,  # type: ignore[arg-type]
                          commit_interval=0.2, handle_signals=False)
    t = run_in_thread(pc)
    assert done.wait(180), f"only {count} processed"
    wait_for(lambda: committed(bs, group, topic_name) == end_offsets(bs, topic_name), 120,
             "commit of every offset")
    pc.stop()
    t.join(30)
    assert not t.is_alive()
    assert sum(len(v) for v in seen.values()) == 600
    assert sorted(s for v in seen.values() for s in v) == sorted(
        s for v in produced.values() for s in v)
    if ordering != "unordered":
        assert not overlaps
        for _key, seqs in seen.items():
            assert seqs == sorted(seqs)


def test_plain_function_runs_in_thread_pool_and_batches(kafka: Backend, topic_name: str) -> None:
    bs = kafka.bootstrap_servers
    create_topic(bs, topic_name)
    produce_keyed(bs, topic_name, 300, keys=10)
    lock = threading.Lock()
    batches: list[list[int]] = []
    threads = set()

    def process_batch(records: list[Record]) -> None:
        with lock:
            threads.add(threading.current_thread().name)
            batches.append([int(r.value or b"") for r in records])

    group = f"g-{topic_name}"
    pc = ParallelConsumer(consumer_config(bs, group), [topic_name],
                          process_batch=process_batch, batch_size=16,
                          max_in_flight_per_partition=4, commit_interval=0.2,
                          metrics_port=0, rate_limit=100_000, rate_limit_per_key=100_000,
                          handle_signals=False)
    t = run_in_thread(pc)
    wait_for(lambda: sum(map(len, batches)) >= 300, 180, "all records")
    wait_for(lambda: committed(bs, group, topic_name) == end_offsets(bs, topic_name), 120,
             "commit")
    # The Prometheus endpoint (127.0.0.1, an ephemeral port here) shows the counts.
    assert pc.metrics_bound_port is not None
    url = f"http://127.0.0.1:{pc.metrics_bound_port}/metrics"

    def processed_in_metrics() -> float:
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("hayase_consumer_processed_records_total{"))

    wait_for(lambda: processed_in_metrics() == 300, 60, "metrics")
    pc.stop()
    t.join(30)
    assert sorted(s for b in batches for s in b) == list(range(300))
    assert max(map(len, batches)) > 1
    assert all(name.startswith("hayase-process") for name in threads)
    for b in batches:  # a batch holds records of several keys, in offset (= sequence) order
        assert b == sorted(b)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        ParallelConsumer({"group.id": "g"}, ["t"])
    with pytest.raises(ValueError):
        ParallelConsumer({"group.id": "g"}, ["t"], lambda r: None, ordering="random")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ParallelConsumer({"bootstrap.servers": "x"}, ["t"], lambda r: None)
