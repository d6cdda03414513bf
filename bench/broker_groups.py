"""Consumer groups: three consumers in one group reading a 6-partition topic, hayase's embedded
broker against Apache Kafka, same machine, same run.

Two measurements per run, each with a fresh topic and a fresh group of three confluent-kafka
consumers (one thread each, eager `range` assignment, the client defaults otherwise):

- throughput: --records records of --value-size bytes are written first; the three members
  join and pause their partitions until all six are assigned (so the join is not timed), then
  resume; records/s = records / (time from resume to the last record read). The time the group
  took to become stable is shown too.
- latency: the group joins the empty topic; a producer (acks=all, linger.ms=0) then sends
  --rate records/s for --seconds seconds, each value carrying its send time; end-to-end latency
  = receive time - send time (one process, one monotonic clock), p50 and p99 over all records.

Each backend runs --runs times (one broker start per backend, the backends one after the other
so they never share the CPU); each number is the median of the runs. The embedded broker runs
with hayase.durability=none, as bench/broker_throughput.py does: Apache Kafka does not fsync
per write either. This is a benchmark, never a test: nothing here asserts a speed.

    .venv/bin/python bench/broker_groups.py                  # both backends, median of 3
    .venv/bin/python bench/broker_groups.py --backend hayase --runs 1 --records 100000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, Producer, TopicPartition

from hayase.client.admin import Admin
from hayase.client.config import quiet_logger
from hayase.testing.brokers import ApacheBackend, EmbeddedBroker, apache_available

PARTITIONS = 6
MEMBERS = 3


def prefill(bootstrap: str, topic: str, records: int, value_size: int) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "logger": quiet_logger()})
    value = b"x" * value_size
    for i in range(records):
        while True:
            try:
                p.produce(topic, value, partition=i % PARTITIONS)
                break
            except BufferError:
                p.poll(0.001)
    if p.flush(300):
        raise RuntimeError("prefill: records left unflushed")


@dataclass
class Group:
    """Three members in threads. `assigned` is kept up to date by the rebalance callbacks;
    while `go` is unset a member pauses what it is assigned."""

    bootstrap: str
    topic: str
    on_message: Callable[[bytes, int], None]
    go: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    assigned: dict[int, frozenset[int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        group_id = f"bench-{uuid.uuid4().hex[:8]}"
        for i in range(MEMBERS):
            t = threading.Thread(target=self._member, args=(i, group_id), daemon=True)
            t.start()
            self.threads.append(t)

    def _member(self, i: int, group_id: str) -> None:
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group_id,
                      "client.id": f"member-{i}", "auto.offset.reset": "earliest",
                      "enable.auto.commit": False, "logger": quiet_logger()})

        def on_assign(consumer: Consumer, parts: list[TopicPartition]) -> None:
            consumer.assign(parts)
            if not self.go.is_set():
                consumer.pause(parts)
            self.assigned[i] = frozenset(p.partition for p in parts)

        def on_revoke(consumer: Consumer, parts: list[TopicPartition]) -> None:
            self.assigned[i] = frozenset()
            consumer.unassign()

        c.subscribe([self.topic], on_assign=on_assign, on_revoke=on_revoke)
        resumed = False
        try:
            while not self.stop.is_set():
                if self.go.is_set() and not resumed:
                    c.resume(c.assignment())
                    resumed = True
                for m in c.consume(num_messages=10_000, timeout=0.05):
                    err = m.error()
                    if err is not None:
                        self.errors.append(str(err))
                        continue
                    self.on_message(m.value() or b"", time.perf_counter_ns())
        finally:
            c.close()

    def wait_stable(self, timeout: float = 120.0) -> float:
        """Seconds until every member holds partitions and together they hold all six."""
        started = time.perf_counter()
        while True:
            parts = [self.assigned.get(i, frozenset()) for i in range(MEMBERS)]
            if all(parts) and sum(map(len, parts)) == PARTITIONS and \
                    frozenset().union(*parts) == frozenset(range(PARTITIONS)):
                return time.perf_counter() - started
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"group not stable after {timeout} s: {parts}")
            time.sleep(0.02)

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)


def throughput_run(bootstrap: str, records: int, value_size: int) -> tuple[float, float]:
    """(records/s, seconds until the group was stable)."""
    topic = f"bench-tp-{uuid.uuid4().hex[:8]}"
    Admin({"bootstrap.servers": bootstrap}, 60).create_topic(topic, PARTITIONS,
                                                             wait_for_leaders=True)
    prefill(bootstrap, topic, records, value_size)
    lock = threading.Lock()
    count = 0
    done = threading.Event()

    def on_message(_value: bytes, _now_ns: int) -> None:
        nonlocal count
        with lock:
            count += 1
            if count >= records:
                done.set()

    group = Group(bootstrap, topic, on_message)
    group.start()
    try:
        join_s = group.wait_stable()
        started = time.perf_counter()
        group.go.set()
        if not done.wait(600):
            raise TimeoutError(f"read {count} of {records} records in 600 s")
        elapsed = time.perf_counter() - started
    finally:
        group.close()
    if group.errors:
        raise RuntimeError(f"consume errors: {group.errors[:3]}")
    return records / elapsed, join_s


def latency_run(bootstrap: str, rate: int, seconds: float) -> tuple[float, float, int]:
    """(p50 ms, p99 ms, records) of end-to-end latency at `rate` records/s."""
    topic = f"bench-lat-{uuid.uuid4().hex[:8]}"
    Admin({"bootstrap.servers": bootstrap}, 60).create_topic(topic, PARTITIONS,
                                                             wait_for_leaders=True)
    latencies: list[int] = []
    lock = threading.Lock()

    def on_message(value: bytes, now_ns: int) -> None:
        sent = int(value.split(b" ", 1)[0])
        with lock:
            latencies.append(now_ns - sent)

    group = Group(bootstrap, topic, on_message)
    group.go.set()
    group.start()
    try:
        group.wait_stable()
        time.sleep(1.0)  # the members' first fetches are in flight before timing starts
        total = _produce_at_rate(bootstrap, topic, rate, seconds)
        deadline = time.monotonic() + 60
        while len(latencies) < total and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        group.close()
    if len(latencies) < total:
        raise RuntimeError(f"latency run: received {len(latencies)} of {total} records")
    ms = sorted(v / 1e6 for v in latencies)
    return _percentile(ms, 50), _percentile(ms, 99), total


def _produce_at_rate(bootstrap: str, topic: str, rate: int, seconds: float) -> int:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                  "logger": quiet_logger()})
    total = int(rate * seconds)
    interval = 1.0 / rate
    started = time.perf_counter()
    pad = b"x" * 80
    for i in range(total):
        due = started + i * interval
        while (delay := due - time.perf_counter()) > 0:
            p.poll(min(delay, 0.001))
        p.produce(topic, b"%d " % time.perf_counter_ns() + pad, partition=i % PARTITIONS)
        p.poll(0)
    if p.flush(60):
        raise RuntimeError("latency run: records left unflushed")
    return total


def _percentile(sorted_values: list[float], pct: float) -> float:
    k = max(0, min(len(sorted_values) - 1, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


@dataclass
class Result:
    rate: float
    join_s: float
    p50: float
    p99: float


def bench_backend(name: str, broker: EmbeddedBroker | ApacheBackend,
                  args: argparse.Namespace) -> Result:
    rates, joins, p50s, p99s = [], [], [], []
    broker.start()
    try:
        for i in range(args.runs):
            rate, join_s = throughput_run(broker.bootstrap_servers, args.records,
                                          args.value_size)
            p50, p99, n = latency_run(broker.bootstrap_servers, args.rate, args.seconds)
            rates.append(rate)
            joins.append(join_s)
            p50s.append(p50)
            p99s.append(p99)
            print(f"  {name} run {i + 1}: {rate:>10,.0f} rec/s (group stable in {join_s:.2f} s)"
                  f" | latency at {args.rate}/s over {n} records: p50 {p50:.1f} ms, "
                  f"p99 {p99:.1f} ms", flush=True)
    finally:
        broker.cleanup()
    med = statistics.median
    return Result(med(rates), med(joins), med(p50s), med(p99s))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=600_000, help="records per throughput run")
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--rate", type=int, default=1000, help="records/s of the latency run")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")
    ap.add_argument("--runs", type=int, default=3, help="runs per backend; medians are shown")
    ap.add_argument("--backend", choices=("both", "hayase", "apache"), default="both")
    args = ap.parse_args(argv)

    print(f"{MEMBERS} consumers in one group, {PARTITIONS} partitions; throughput: "
          f"{args.records:,} records of {args.value_size} B; latency: {args.rate} records/s "
          f"for {args.seconds:g} s, acks=all linger.ms=0; runs={args.runs} "
          "(confluent-kafka, librdkafka)")
    results: dict[str, Result] = {}
    if args.backend in ("both", "hayase"):
        broker = EmbeddedBroker(configs={"hayase.durability": "none"})
        results["hayase"] = bench_backend("hayase (durability none)", broker, args)
    if args.backend in ("both", "apache"):
        reason = apache_available()
        if reason:
            print(f"Apache Kafka skipped: {reason}")
        else:
            results["apache"] = bench_backend("Apache Kafka", ApacheBackend(1), args)

    print(f"\nmedian of {args.runs} runs:")
    print(f"{'':24}{'consume rec/s':>15}{'stable in s':>13}{'e2e p50 ms':>12}{'e2e p99 ms':>12}")
    labels = {"hayase": "hayase (none)", "apache": "Apache Kafka 4.1"}
    for name, r in results.items():
        print(f"{labels[name]:24}{r.rate:>15,.0f}{r.join_s:>13.2f}{r.p50:>12.1f}{r.p99:>12.1f}")
    if "hayase" in results and "apache" in results:
        h, a = results["hayase"], results["apache"]
        print(f"{'ratio hayase / Apache':24}{h.rate / a.rate:>15.2f}{h.join_s / a.join_s:>13.2f}"
              f"{h.p50 / a.p50:>12.2f}{h.p99 / a.p99:>12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
