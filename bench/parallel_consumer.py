"""Parallel consumer benchmark (issue 5), 3 partitions, on the embedded broker (default) or
Apache Kafka (--apache):

  (a) a synchronous one-record-at-a-time confluent-kafka consumer, 10 ms simulated I/O/record;
  (b) hayase ParallelConsumer, 20 in flight per partition, the same 10 ms: records/s, ratio to
      (a) and to the ceiling 3 x 20 x 100/s = 6,000/s;
  (c) hayase with 0 ms processing: records/s and CPU microseconds per record (whole process);
  (d) crash runs: a naive async consumer with auto-commit, and hayase, each SIGKILLed half way
      and restarted, counting records never processed.

Each of (a)-(c) is the median of --runs runs (default 3). Keys: --keys distinct keys (default
10,000), record i has key "k{i % keys}"; --keys 100 is the issue's crash-test key count (about
33 keys per partition for its 20 slots). The load average is printed beside the numbers: the
machine may be shared.

(b) is judged against the nominal ceiling (10 ms per record: 6,000/s). It also prints the
ceiling that the measured mean length of the simulated I/O allows (asyncio.sleep(0.01) takes
longer than 10 ms on a busy machine), and what a bare loop with the same 60 sleeps reaches, on
asyncio's default loop and on the loop ParallelConsumer.run() creates (hayase.consumer.loop:
asyncio's epoll selector rounds every wait up to a whole millisecond, so timers fire up to 1 ms
late; hayase's waits with microsecond resolution), so the reader sees how much of the gap is
the framework's and how much the loop's.

--decaton runs LINE's Decaton on the same workload, if its artifacts can be fetched from Maven
Central (bench/decaton/); when they cannot, it says so, with the URL that failed, and skips it.

    python bench/parallel_consumer.py [--apache] [--runs 3] [--only a,b,c,d,e] [--decaton]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 3
CEILING = PARTITIONS * 20 * 100
DECATON_VERSION = "9.0.0"
DECATON_POM_URL = ("https://repo1.maven.org/maven2/com/linecorp/decaton/decaton-processor/"
                   f"{DECATON_VERSION}/decaton-processor-{DECATON_VERSION}.pom")


# ---- setup ---------------------------------------------------------------------------------
def create_topic(bs: str, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": bs})
    for f in admin.create_topics([NewTopic(name, PARTITIONS, 1)]).values():
        f.result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = admin.list_topics(name, timeout=5).topics.get(name)
        if md and md.error is None and len(md.partitions) == PARTITIONS and all(
                p.leader >= 0 for p in md.partitions.values()):
            return
        time.sleep(0.1)
    raise TimeoutError(name)


def produce(bs: str, topic: str, n: int, keys: int) -> None:
    p = Producer({"bootstrap.servers": bs, "linger.ms": 20, "batch.num.messages": 10000})
    for i in range(n):
        while True:
            try:
                p.produce(topic, str(i).encode(), f"k{i % keys}".encode())
                break
            except BufferError:
                p.poll(0.05)
    if p.flush(120):
        raise RuntimeError("produce did not finish")


def fresh_topic(bs: str, n: int, keys: int) -> str:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    create_topic(bs, topic)
    produce(bs, topic, n, keys)
    return topic


def consumer_config(bs: str, group: str) -> dict[str, Any]:
    return {"bootstrap.servers": bs, "group.id": group, "auto.offset.reset": "earliest"}


def partition_sizes(bs: str, topic: str) -> list[int]:
    c = Consumer({"bootstrap.servers": bs, "group.id": f"sizes-{uuid.uuid4().hex[:6]}"})
    try:
        return [c.get_watermark_offsets(TopicPartition(topic, i), timeout=30)[1]
                for i in range(PARTITIONS)]
    finally:
        c.close()


def committed_total(bs: str, group: str, topic: str) -> int:
    c = Consumer({"bootstrap.servers": bs, "group.id": group})
    try:
        for _ in range(50):
            try:
                tps = c.committed([TopicPartition(topic, i) for i in range(PARTITIONS)], 30)
                return sum(max(0, tp.offset) for tp in tps)
            except Exception:
                time.sleep(0.2)
        raise RuntimeError("committed offsets unavailable")
    finally:
        c.close()


# ---- (a) baseline ----------------------------------------------------------------------------
def run_baseline(bs: str, topic: str, n: int, io_ms: float) -> float:
    c = Consumer({**consumer_config(bs, f"base-{uuid.uuid4().hex[:6]}"),
                  "enable.auto.commit": True})
    c.subscribe([topic])
    done, start = 0, None
    try:
        while done < n:
            m = c.poll(1.0)
            if m is None or m.error():
                continue
            if start is None:
                start = time.perf_counter()
            time.sleep(io_ms / 1000)  # the synchronous write
            done += 1
        assert start is not None
        return (done - 1) / (time.perf_counter() - start)
    finally:
        c.close()


# ---- (b)/(c) hayase --------------------------------------------------------------------------
def bare_asyncio(io_ms: float, concurrency: int, seconds: float = 3.0,
                 loop_factory: Any = None) -> float:
    """Records/s of `concurrency` coroutines doing nothing but the simulated I/O, back to back,
    on a bare loop (no Kafka, no framework): what the sleeps alone allow right now. The loop is
    asyncio's default one, or `loop_factory()`'s."""
    async def main() -> int:
        done = 0
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < end:
                await asyncio.sleep(io_ms / 1000)
                done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done

    t = time.perf_counter()
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        done = runner.run(main())
    return done / (time.perf_counter() - t)


def run_hayase(bs: str, topic: str, n: int, io_ms: float, in_flight: int
               ) -> tuple[float, float, float]:
    """(records/s, CPU microseconds per record, mean measured length of the simulated I/O in
    ms) from the first record to the n-th."""
    from hayase.consumer import ParallelConsumer, Record

    state: dict[str, Any] = {"done": 0, "start": None, "cpu0": None, "io": 0.0}

    def cpu() -> float:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime

    async def process(r: Record) -> None:
        if state["start"] is None:
            state["start"], state["cpu0"] = time.perf_counter(), cpu()
        if io_ms:
            t = time.perf_counter()
            await asyncio.sleep(io_ms / 1000)
            state["io"] += time.perf_counter() - t
        state["done"] += 1
        if state["done"] == n:
            state["end"], state["cpu1"] = time.perf_counter(), cpu()
            pc.stop()

    pc = ParallelConsumer(consumer_config(bs, f"hay-{uuid.uuid4().hex[:6]}"), [topic], process,
                          max_in_flight_per_partition=in_flight,
                          max_pending_per_partition=1000, handle_signals=False)
    pc.run()
    elapsed = state["end"] - state["start"]
    return (n - 1) / elapsed, (state["cpu1"] - state["cpu0"]) / n * 1e6, state["io"] / n * 1e3


# ---- (e) how to poll without blocking the loop ---------------------------------------------
def cpu_now() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def poll_modes(bs: str, topic: str, n: int, idle_s: float = 2.0) -> dict[str, tuple[float, float]]:
    """Deliver n records into an asyncio loop (no-op handler) two ways: consume() in a thread
    handing batches over with call_soon_threadsafe (what ParallelConsumer does), and
    consume(timeout=0) on the loop with a 1 ms sleep when empty. Returns records/s and the CPU
    share used while idle (after the topic is drained) for each."""
    import threading

    out = {}
    for mode in ("thread", "inline"):
        c = Consumer({**consumer_config(bs, f"pm-{mode}-{uuid.uuid4().hex[:6]}")})
        c.subscribe([topic])

        async def run(c: Any = c, mode: str = mode) -> tuple[float, float]:
            loop = asyncio.get_running_loop()
            got = 0
            first: float | None = None
            finished = asyncio.Event()
            stop = threading.Event()

            def take(msgs: list[Any]) -> None:
                nonlocal got, first
                if first is None:
                    first = time.perf_counter()
                got += len(msgs)
                if got >= n:
                    finished.set()

            def poller() -> None:
                while not stop.is_set():
                    msgs = c.consume(500, 0) or ([] if (m := c.poll(0.05)) is None else [m])
                    if msgs:
                        loop.call_soon_threadsafe(take, msgs)

            if mode == "thread":
                th = threading.Thread(target=poller)
                th.start()
            else:
                async def inline() -> None:
                    while not stop.is_set():
                        msgs = c.consume(500, 0)
                        if msgs:
                            take(msgs)
                        else:
                            await asyncio.sleep(0.001)
                task = asyncio.ensure_future(inline())
            await finished.wait()
            assert first is not None
            rate = got / (time.perf_counter() - first)
            cpu0, t0 = cpu_now(), time.perf_counter()
            await asyncio.sleep(idle_s)  # drained: what does waiting for records cost?
            idle = (cpu_now() - cpu0) / (time.perf_counter() - t0)
            stop.set()
            if mode == "thread":
                await asyncio.to_thread(th.join)
            else:
                await task
            return rate, idle

        try:
            out[mode] = asyncio.run(run())
        finally:
            c.close()
    return out


# ---- (d) crash runs --------------------------------------------------------------------------
def worker_naive(bs: str, topic: str, group: str, out: str, io_ms: float) -> None:
    """The data-losing pattern: auto-commit plus async processing (as many writes in flight
    as hayase's 3 x 20), reading ahead of the writes."""
    c = Consumer({**consumer_config(bs, group), "enable.auto.commit": True,
                  "auto.commit.interval.ms": 100})
    c.subscribe([topic])
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    async def process(m: Any, slots: asyncio.Semaphore) -> None:
        async with slots:
            await asyncio.sleep(io_ms / 1000)
            os.write(fd, m.value() + b"\n")

    async def main() -> None:
        slots = asyncio.Semaphore(PARTITIONS * 20)
        tasks: set[asyncio.Task[None]] = set()
        while True:
            for m in c.consume(500, 0):
                if not m.error():
                    t = asyncio.ensure_future(process(m, slots))
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
            await asyncio.sleep(0.001)

    asyncio.run(main())


def worker_hayase(bs: str, topic: str, group: str, out: str, io_ms: float) -> None:
    from hayase.consumer import ParallelConsumer, Record

    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    async def process(r: Record) -> None:
        await asyncio.sleep(io_ms / 1000)
        os.write(fd, (r.value or b"") + b"\n")

    ParallelConsumer(consumer_config(bs, group), [topic], process,
                     max_in_flight_per_partition=20, max_pending_per_partition=1000).run()


def count_lines(path: Path) -> set[int]:
    if not path.exists():
        return set()
    return {int(x) for x in path.read_bytes().split()}


def crash_run(bs: str, kind: str, n: int, keys: int, io_ms: float) -> tuple[int, int]:
    """(lost records, duplicates) for one SIGKILL-at-half-way run of worker `kind`."""
    topic = fresh_topic(bs, n, keys)
    group = f"crash-{kind}-{uuid.uuid4().hex[:6]}"
    out = Path(tempfile.mkdtemp(prefix="hayase-bench-")) / "processed.txt"
    cmd = [sys.executable, __file__, "--worker", kind, "--bootstrap", bs, "--topic", topic,
           "--group", group, "--out", str(out), "--io-ms", str(io_ms)]
    w = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while len(count_lines(out)) < n // 2:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{kind} worker too slow")
            time.sleep(0.05)
        w.send_signal(signal.SIGKILL)
        w.wait()
        w = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        # Done when the group has committed everything (and the writes before it landed).
        while committed_total(bs, group, topic) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{kind} restart did not finish")
            time.sleep(0.5)
        time.sleep(1.0)
    finally:
        w.send_signal(signal.SIGKILL)
        w.wait()
    seen = out.read_bytes().split()
    distinct = {int(x) for x in seen}
    return n - len(distinct & set(range(n))), len(seen) - len(distinct)


# ---- Decaton ---------------------------------------------------------------------------------
def decaton_available() -> str | None:
    """None if Decaton's processor artifact is served by Maven Central, else why not."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(DECATON_POM_URL, method="HEAD"),
                                    timeout=20) as resp:
            if resp.status == 200:
                return None
            return f"HTTP {resp.status} for {DECATON_POM_URL}"
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code} for {DECATON_POM_URL}"
    except (urllib.error.URLError, OSError) as e:
        return f"{e} for {DECATON_POM_URL}"


def load_average() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


# ---- main ------------------------------------------------------------------------------------
def start_broker(apache: bool) -> Any:
    from hayase.testing.brokers import ApacheBackend, EmbeddedBroker

    return (ApacheBackend(nodes=1) if apache else EmbeddedBroker()).start()


def median_of(runs: int, fn: Any, show: str | None = None) -> Any:
    """The median of `runs` calls of fn (per element for tuples); with `show`, each run's first
    element is printed too, so the spread of a noisy machine is visible."""
    results = [fn() for _ in range(runs)]
    if show is not None:
        print(f"    {show} runs: " + ", ".join(
            f"{r[0] if isinstance(r, tuple) else r:.0f}" for r in results), flush=True)
    if isinstance(results[0], tuple):
        return tuple(statistics.median(r[i] for r in results) for i in range(len(results[0])))
    return statistics.median(results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--apache", action="store_true", help="Apache Kafka instead of embedded")
    ap.add_argument("--bootstrap", help="use a running broker instead of starting one")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keys", type=int, default=10_000)
    ap.add_argument("--baseline-records", type=int, default=600)
    ap.add_argument("--io-records", type=int, default=30_000)
    ap.add_argument("--zero-records", type=int, default=100_000)
    ap.add_argument("--crash-records", type=int, default=20_000)
    ap.add_argument("--io-ms", type=float, default=10.0)
    ap.add_argument("--skip-crash", action="store_true", help="the same as leaving d out of --only")
    ap.add_argument("--only", default="a,b,c,d,e",
                    help="comma-separated parts to run (default: all): a,b,c,d,e")
    ap.add_argument("--decaton", action="store_true",
                    help="also run LINE's Decaton on the (b) workload, if Maven Central has it")
    # worker mode (internal, for the crash runs)
    ap.add_argument("--worker", choices=["naive", "hayase"])
    ap.add_argument("--topic")
    ap.add_argument("--group")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.worker:
        fn = worker_naive if args.worker == "naive" else worker_hayase
        fn(args.bootstrap, args.topic, args.group, args.out, args.io_ms)
        return

    only = set(args.only.split(","))
    if args.skip_crash:
        only.discard("d")
    unknown = only - set("abcde")
    if unknown:
        ap.error(f"--only: unknown parts {sorted(unknown)}")
    decaton_missing = decaton_available() if args.decaton else None
    if decaton_missing is not None:
        # Checked before starting anything: a Decaton run cannot be had on this machine.
        print(f"Decaton: not run: its artifacts could not be fetched from Maven Central "
              f"({decaton_missing})", flush=True)
    elif args.decaton:
        # Not written: Maven Central did not serve Decaton when this benchmark was last changed.
        print(f"Decaton: {DECATON_POM_URL} is served now, but this benchmark has no Decaton "
              "runner yet (bench/decaton/ does not exist): not run", flush=True)
    broker = None if args.bootstrap else start_broker(args.apache)
    bs = args.bootstrap or broker.bootstrap_servers
    label = "apache" if args.apache else ("external" if args.bootstrap else "embedded")
    try:
        print(f"broker: {label} {bs}; {PARTITIONS} partitions; {args.keys} keys; "
              f"median of {args.runs} runs; {load_average()}", flush=True)
        base = None
        if "a" in only:
            base = median_of(args.runs, lambda: run_baseline(
                bs, fresh_topic(bs, args.baseline_records, args.keys), args.baseline_records,
                args.io_ms))
            print(f"(a) sync one-at-a-time, {args.io_ms:g} ms I/O: {base:10.0f} records/s"
                  f"  [{load_average()}]", flush=True)
        if "b" in only:
            from hayase.consumer.loop import new_event_loop

            def run_b() -> tuple[float, float, float, float, float]:
                # The bare loops run just before each hayase run, under about the same load.
                bare = bare_asyncio(args.io_ms, PARTITIONS * 20)
                bare_hayase = bare_asyncio(args.io_ms, PARTITIONS * 20,
                                           loop_factory=new_event_loop)
                topic = fresh_topic(bs, args.io_records, args.keys)
                largest = max(partition_sizes(bs, topic))
                rate, _, io_ms = run_hayase(bs, topic, args.io_records, args.io_ms, 20)
                return rate, io_ms, bare, bare_hayase, largest

            hay, io_real, bare, bare_hayase, largest = median_of(
                args.runs, run_b, show="(b) records/s of the")
            vs_base = f" = {hay / base:.1f}x baseline," if base else ""
            print(f"(b) hayase 20 in flight/partition, {args.io_ms:g} ms I/O: {hay:10.0f} "
                  f"records/s {vs_base} {hay / CEILING:.1%} of the {CEILING}/s ceiling"
                  f"  [{load_average()}]", flush=True)
            real_ceiling = PARTITIONS * 20 * 1000 / io_real
            print(f"    the {args.io_ms:g} ms sleeps took {io_real:.2f} ms on average (median of "
                  f"the runs): {hay / real_ceiling:.1%} of the {real_ceiling:.0f}/s that allows",
                  flush=True)
            # The keys do not split the records evenly: the other partitions' lanes run dry
            # while the largest one still has records, and the run ends with that one.
            skew_ceiling = args.io_records / (largest / 20 * io_real / 1000)
            print(f"    the largest partition holds {largest:.0f} of the {args.io_records} records;"
                  f" its 20 lanes at {io_real:.2f} ms need {largest / 20 * io_real / 1000:.2f} s:"
                  f" {skew_ceiling:.0f}/s at most; hayase is {hay / skew_ceiling:.1%} of that",
                  flush=True)
            print(f"    a bare loop running {PARTITIONS * 20} such sleeps back to back (no "
                  f"Kafka, just before each run): asyncio's default loop {bare:.0f}/s, the "
                  f"consumer's loop (hayase.consumer.loop) {bare_hayase:.0f}/s; hayase is "
                  f"{hay / bare_hayase:.1%} of the latter", flush=True)
        if "c" in only:
            zero, cpu_us, _ = median_of(args.runs, lambda: run_hayase(
                bs, fresh_topic(bs, args.zero_records, args.keys), args.zero_records, 0, 20))
            print(f"(c) hayase 0 ms processing: {zero:10.0f} records/s, {cpu_us:.1f} CPU "
                  f"us/record  [{load_average()}]", flush=True)
        if "e" in only:
            modes = poll_modes(bs, fresh_topic(bs, args.zero_records, args.keys),
                               args.zero_records)
            for mode, (rate, idle) in modes.items():
                print(f"(e) delivery into asyncio, {mode:6s} poll: {rate:10.0f} records/s, "
                      f"{idle:.1%} of a core while idle", flush=True)
        if "d" in only:
            for kind in ("naive", "hayase"):
                lost, dups = crash_run(bs, kind, args.crash_records, args.keys, args.io_ms)
                print(f"(d) SIGKILL at half way, {kind:6s}: {lost} of {args.crash_records} "
                      f"records lost, {dups} processed twice", flush=True)
    finally:
        if broker is not None:
            broker.cleanup()

if __name__ == "__main__":
    main()
