"""Broker throughput: hayase's embedded broker against Apache Kafka, same machine, same run.

A confluent-kafka producer (100-byte values, acks=all, linger.ms=5) writes --records records to
a fresh topic, then a consumer reads them back (assigned partitions, from the beginning). Each
backend runs --runs times (one broker start per backend, a new topic per run, the backends one
after the other so they never share the CPU); the median run is reported, with the ratio
hayase / Apache Kafka. MB/s counts value bytes, MB = 2**20 bytes (as Kafka's perf tools do).

    .venv/bin/python bench/broker_throughput.py                 # both backends, median of 3
    .venv/bin/python bench/broker_throughput.py --profile       # + the embedded broker's profile

With --profile the embedded broker runs under cProfile (profiling slows it: its numbers are
then not comparable) and the top functions by own time and by cumulative time are printed.
This is a benchmark, never a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from hayase.client.admin import Admin
from hayase.client.config import quiet_logger
from hayase.testing.brokers import ApacheBackend, EmbeddedBroker, apache_available

MB = 1024 * 1024


@dataclass
class Run:
    produce_s: float
    consume_s: float
    records: int
    value_size: int

    def rate(self, seconds: float) -> tuple[float, float]:
        return self.records / seconds, self.records * self.value_size / MB / seconds


class ProfiledBroker(EmbeddedBroker):
    """The embedded broker under cProfile; the stats are written when it stops (SIGTERM)."""

    def __init__(self, profile_path: Path, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.profile_path = profile_path

    def command(self) -> list[str]:
        cmd = super().command()
        assert cmd[1:3] == ["-m", "hayase"]
        return [cmd[0], "-m", "cProfile", "-o", str(self.profile_path), *cmd[1:]]


def produce(bootstrap: str, topic: str, records: int, value_size: int) -> float:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "logger": quiet_logger()})
    value = b"x" * value_size
    failed = 0

    def on_delivery(err: object, _msg: object) -> None:
        nonlocal failed
        if err is not None:
            failed += 1

    started = time.perf_counter()
    for i in range(records):
        while True:
            try:
                p.produce(topic, value, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.001)
        if i % 10_000 == 0:
            p.poll(0)
    left = p.flush(300)
    elapsed = time.perf_counter() - started
    if left or failed:
        raise RuntimeError(f"{left} record(s) unflushed, {failed} failed")
    return elapsed


def consume(bootstrap: str, topic: str, partitions: int, records: int) -> float:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False, "logger": quiet_logger()})
    got = 0
    started = time.perf_counter()
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    try:
        while got < records:
            for m in c.consume(num_messages=10_000, timeout=10):
                if m.error() is None:
                    got += 1
                else:
                    raise RuntimeError(f"consume error: {m.error()}")
            if time.perf_counter() - started > 600:
                raise TimeoutError(f"read {got} of {records} records in 600 s")
        return time.perf_counter() - started
    finally:
        c.close()


def bench_backend(name: str, broker: EmbeddedBroker | ApacheBackend, args: argparse.Namespace
                  ) -> list[Run]:
    runs = []
    broker.start()
    try:
        for i in range(args.runs):
            topic = f"bench-{i}-{uuid.uuid4().hex[:8]}"
            Admin({"bootstrap.servers": broker.bootstrap_servers}, 60).create_topic(
                topic, args.partitions, wait_for_leaders=True)
            p = produce(broker.bootstrap_servers, topic, args.records, args.value_size)
            c = consume(broker.bootstrap_servers, topic, args.partitions, args.records)
            run = Run(p, c, args.records, args.value_size)
            runs.append(run)
            pr, cr = run.rate(p), run.rate(c)
            print(f"  {name} run {i + 1}: produce {pr[0]:>10,.0f} rec/s {pr[1]:7.1f} MB/s"
                  f" ({p:.2f} s) | consume {cr[0]:>10,.0f} rec/s {cr[1]:7.1f} MB/s ({c:.2f} s)",
                  flush=True)
    finally:
        broker.cleanup() if hasattr(broker, "cleanup") else broker.stop()
    return runs


def median_rates(runs: list[Run]) -> tuple[tuple[float, float], tuple[float, float]]:
    p = statistics.median(r.produce_s for r in runs)
    c = statistics.median(r.consume_s for r in runs)
    return runs[0].rate(p), runs[0].rate(c)


def print_profile(path: Path, top: int) -> None:
    if not path.exists():
        print(f"no profile written at {path}")
        return
    stats = pstats.Stats(str(path))
    print("\n== embedded broker profile: hayase's own functions by own time (tottime)")
    stats.sort_stats("tottime").print_stats(r"hayase/", top)
    stats.strip_dirs()
    print(f"\n== embedded broker profile: top {top} functions by own time (tottime)")
    stats.sort_stats("tottime").print_stats(top)
    print(f"== embedded broker profile: top {top} by cumulative time")
    stats.sort_stats("cumulative").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=2_000_000,
                    help="records per run (default 2,000,000: one run takes ~10-20 s here)")
    ap.add_argument("--runs", type=int, default=3, help="runs per backend; the median is shown")
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--backend", choices=("both", "hayase", "apache"), default="both")
    ap.add_argument("--profile", action="store_true",
                    help="run the embedded broker under cProfile and print the top functions")
    ap.add_argument("--top", type=int, default=30, help="functions shown with --profile")
    args = ap.parse_args(argv)

    print(f"records={args.records:,} value={args.value_size} B partitions={args.partitions} "
          f"runs={args.runs} acks=all linger.ms=5 (confluent-kafka, librdkafka)")
    results: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {}
    work = Path(tempfile.mkdtemp(prefix="hayase-bench-"))
    profile_path = work / "broker.prof"
    if args.backend in ("both", "hayase"):
        configs = {"hayase.durability": "none"}
        broker: EmbeddedBroker = (ProfiledBroker(profile_path, configs=configs) if args.profile
                                  else EmbeddedBroker(configs=configs))
        results["hayase"] = median_rates(bench_backend("hayase (durability none)", broker, args))
    if args.backend in ("both", "apache"):
        reason = apache_available()
        if reason:
            print(f"Apache Kafka skipped: {reason}")
        else:
            results["apache"] = median_rates(bench_backend("Apache Kafka", ApacheBackend(1), args))

    print(f"\nmedian of {args.runs} runs:")
    print(f"{'':24}{'produce rec/s':>15}{'MB/s':>9}{'consume rec/s':>16}{'MB/s':>9}")
    labels = {"hayase": "hayase (none)", "apache": "Apache Kafka 4.1"}
    for name, ((prs, pmb), (crs, cmb)) in results.items():
        print(f"{labels[name]:24}{prs:>15,.0f}{pmb:>9.1f}{crs:>16,.0f}{cmb:>9.1f}")
    if "hayase" in results and "apache" in results:
        h, a = results["hayase"], results["apache"]
        print(f"{'ratio hayase / Apache':24}{h[0][0] / a[0][0]:>15.2f}{'':9}"
              f"{h[1][0] / a[1][0]:>16.2f}")
        if args.profile:
            print("(hayase ran under cProfile: its rates are not comparable)")
    if args.profile:
        print_profile(profile_path, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
