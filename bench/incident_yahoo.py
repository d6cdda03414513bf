"""The Yahoo! JAPAN incident (talk 4), reproduced and cured, on hayase's broker and Apache Kafka.

Many producers (separate librdkafka handles, distinct client.id), each at a low rate, write
keyless records to a topic with many partitions: more partitions than each producer sends
produce requests per second, the incident's regime. The scenario runs once per strategy:

- ``round_robin``: one record per partition in turn (the incident's cause);
- ``round_robin_long_linger``: the same with a much longer linger.ms (the rejected fix);
- ``sticky``: librdkafka's sticky partitioner (KIP-480), stays on a partition for a linger;
- ``producer_key``: the talk's cure, one key (so one partition) per producer instance.

Measured per strategy, over a window after a warm-up:

- the broker's request-handler idle ratio: the embedded broker's
  ``hayase_broker_request_handler_idle_ratio`` (its 10 s window, read at the window's end);
  Apache Kafka's ``RequestHandlerAvgIdlePercent`` over JMX (the meter's Count is idle time per
  handler thread in ns, so delta(Count) / delta(wall ns) is the idle share over the window; the
  runner's nodes are combined broker+controller, whose two pools mark the same meter, so the
  raw share runs 0..2 and the broker pool's share is raw - 1: see ApacheProbe.check_quiet);
- produce requests/s, partitions written per request (= batches per request) and records per
  batch, from the producers' own librdkafka statistics (``statistics.interval.ms``: per-broker
  ``req.Produce``, per-topic ``batchcnt``), the same source for both backends; for the embedded
  broker the broker-side numbers from /metrics are printed too, as a cross-check;
- end-to-end latency p50/p99: a consumer in another process reads the topic and takes
  now - record timestamp (CreateTime, set by the producer).

During round-robin (and, for contrast, producer key) on the embedded broker, ``hayase broker
doctor --metrics-url ... --interval 3`` runs after the window and its output is printed.

    .venv/bin/python bench/incident_yahoo.py                       # both backends, defaults
    .venv/bin/python bench/incident_yahoo.py --backends embedded --duration 8

This is a benchmark, never a test: nothing asserts a speed. On a shared machine the numbers
move with the neighbours' load; the ratios between strategies are the point.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

STRATEGIES = ("round_robin", "round_robin_long_linger", "sticky", "producer_key")
SHORT = {"round_robin": "round-robin", "round_robin_long_linger": "round-robin+linger",
         "sticky": "sticky", "producer_key": "producer key"}


# --- the consumer measuring end-to-end latency (its own process: its GIL is not the producers')

def consume_latencies(bootstrap: str, topic: str, partitions: int, start_ms: Any,
                      ready: MpEvent, stop: MpEvent, out: Any) -> None:
    """Time every record produced at or after `start_ms` (a shared value set by the parent once
    the warm-up is over; records before it only prime the fetch path)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from hayase.client.config import quiet_logger

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"incident-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 50, "logger": quiet_logger()})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    lat: list[float] = []
    seen = 0
    try:
        while True:
            msgs = c.consume(1000, 0.2)
            now = time.time() * 1000
            for m in msgs:
                if m.error() is not None:
                    continue
                ready.set()  # records flow: the parent may start its warm-up
                seen += 1
                ts = m.timestamp()[1]
                if ts >= start_ms.value:
                    lat.append(now - ts)
            if stop.is_set() and not msgs:
                break
    finally:
        c.close()
    lat.sort()
    out.put({"seen": seen, "measured": len(lat),
             "p50": lat[len(lat) // 2] if lat else float("nan"),
             "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")})


# --- producers and their librdkafka statistics

@dataclass
class ProducerStats:
    """Cumulative counters from one producer's statistics callbacks."""

    produce_requests: int = 0  # brokers[*].req.Produce is cumulative
    batches: int = 0  # topics[*].batchcnt is a per-interval window: summed here
    records: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_stats(self, text: str) -> None:
        s = json.loads(text)
        req = sum(b.get("req", {}).get("Produce", 0) for b in s.get("brokers", {}).values()
                  if b.get("nodeid", -1) >= 0)
        cnt = sum(t.get("batchcnt", {}).get("cnt", 0) for t in s.get("topics", {}).values())
        total = sum(t.get("batchcnt", {}).get("sum", 0) for t in s.get("topics", {}).values())
        with self.lock:
            self.produce_requests = req
            self.batches += cnt
            self.records += total

    def snapshot(self) -> tuple[int, int, int]:
        with self.lock:
            return self.produce_requests, self.batches, self.records


class Fleet:
    """M producers driven by one thread, each at `rate` records/s."""

    def __init__(self, bootstrap: str, topic: str, strategy: str, producers: int, rate: float,
                 linger_ms: int, value_size: int) -> None:
        from hayase.client.config import quiet_logger
        from hayase.client.partitioners import PartitionedProducer

        partitioner = "round_robin" if strategy.startswith("round_robin") else strategy
        self.topic, self.rate, self.value = topic, rate, b"x" * value_size
        self.stats = [ProducerStats() for _ in range(producers)]
        self.producers = [
            PartitionedProducer({
                "bootstrap.servers": bootstrap, "client.id": f"incident-{strategy}-{i:02d}",
                "linger.ms": linger_ms, "acks": "all", "statistics.interval.ms": 1000,
                "stats_cb": st.on_stats, "logger": quiet_logger(),
            }, partitioner=partitioner)  # type: ignore[arg-type]
            for i, st in enumerate(self.stats)
        ]
        for p in self.producers:  # metadata first, so the paced start is not a catch-up burst
            p._num_partitions(topic)
        self.sent = [0] * producers
        self.failed = 0  # delivery reports with an error (counted, printed when not 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drive, daemon=True)

    def _drive(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            elapsed = time.monotonic() - t0
            for i, p in enumerate(self.producers):
                due = int(self.rate * elapsed) - self.sent[i]
                for _ in range(due):
                    p.produce(self.topic, self.value, on_delivery=self._delivered)
                self.sent[i] += max(due, 0)
                p.poll(0)
            time.sleep(0.002)

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.failed += 1

    def start(self) -> None:
        self._thread.start()

    def totals(self) -> tuple[int, int, int]:
        snaps = [s.snapshot() for s in self.stats]
        return (sum(s[0] for s in snaps), sum(s[1] for s in snaps), sum(s[2] for s in snaps))

    def stop(self, timeout: float = 300) -> tuple[float, int]:
        """Stop producing and wait until every record is acknowledged, so that no backlog of one
        strategy is still in the broker while the next one is measured. Returns (seconds the
        drain took, records never acknowledged)."""
        self._stop.set()
        self._thread.join()
        t0 = time.monotonic()
        left = 0
        for p in self.producers:
            left += p.flush(max(1.0, timeout - (time.monotonic() - t0)))
        return time.monotonic() - t0, left


# --- the brokers' own readings

class BrokerProbe:
    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.window = 0.0  # the measurement window, seconds (set before idle_begin)

    def idle_begin(self) -> Any:
        return None

    def idle(self, begin: Any, seconds: float) -> float:
        raise NotImplementedError

    def broker_side(self, begin: Any) -> dict[str, float]:
        return {}


class EmbeddedProbe(BrokerProbe):
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.backend.metrics_port}/metrics"

    def scrape(self) -> Any:
        from hayase.broker.doctor import Scrape

        with urllib.request.urlopen(self.url, timeout=10) as resp:
            return Scrape.parse(resp.read().decode(), time.monotonic())

    def idle_begin(self) -> Any:
        return self.scrape()

    def idle(self, begin: Any, seconds: float) -> float:
        self._end = self.scrape()
        v = self._end.value("hayase_broker_request_handler_idle_ratio")
        return float("nan") if v is None else v

    def broker_side(self, begin: Any) -> dict[str, float]:
        def total(s: Any, name: str) -> float:
            return sum(s.by_label(name, "client_id").values())

        a, b = begin, self._end
        d = {k: total(b, f"hayase_broker_client_{k}_total") - total(a, f"hayase_broker_client_{k}_total")
             for k in ("produce_requests", "partitions_written", "batches", "records")}
        dt = b.at - a.at
        return {"req_s": d["produce_requests"] / dt,
                "parts_per_req": d["partitions_written"] / max(d["produce_requests"], 1),
                "recs_per_batch": d["records"] / max(d["batches"], 1)}


_JMX_WINDOW = """
import javax.management.*;
import javax.management.remote.*;
import java.util.*;
public class JmxWindow {
  static double sum(MBeanServerConnection s, String pattern) throws Exception {
    double t = 0;
    for (ObjectName n : s.queryNames(new ObjectName(pattern), null))
      t += ((Number) s.getAttribute(n, "Count")).doubleValue();
    return t;
  }
  static double[] sample(MBeanServerConnection s, String[] patterns) throws Exception {
    double[] v = new double[patterns.length + 1];
    v[0] = System.nanoTime();
    for (int i = 0; i < patterns.length; i++) v[i + 1] = sum(s, patterns[i]);
    return v;
  }
  public static void main(String[] a) throws Exception {
    JMXServiceURL url = new JMXServiceURL("service:jmx:rmi:///jndi/rmi://127.0.0.1:" + a[0] + "/jmxrmi");
    String[] patterns = Arrays.copyOfRange(a, 2, a.length);
    try (JMXConnector c = JMXConnectorFactory.connect(url)) {
      MBeanServerConnection s = c.getMBeanServerConnection();
      for (ObjectName n : s.queryNames(new ObjectName("kafka.server:type=KafkaRequestHandlerPool,*"), null))
        System.out.println("mbean\t" + n);
      double[] v0 = sample(s, patterns);
      System.out.println("start");
      System.out.flush();
      Thread.sleep((long) (Double.parseDouble(a[1]) * 1000));
      double[] v1 = sample(s, patterns);
      System.out.println("seconds\t" + (v1[0] - v0[0]) / 1e9);
      for (int i = 0; i < patterns.length; i++) System.out.println(patterns[i] + "\t" + (v1[i + 1] - v0[i + 1]));
    }
  }
}
"""


class ApacheProbe(BrokerProbe):
    """Apache Kafka's JMX meters, read by one JVM at the window's start and end (its own
    System.nanoTime brackets the window, so JVM start-up time does not blur it).

    RequestHandlerAvgIdlePercent is a meter marked with each handler's idle nanoseconds divided
    by the number of handler threads: delta(Count) / window ns is the idle share (see check_quiet
    for the combined-mode sum of two pools)."""

    IDLE = "kafka.server:type=KafkaRequestHandlerPool,name=RequestHandlerAvgIdlePercent"
    PRODUCE = "kafka.network:type=RequestMetrics,name=RequestsPerSec,request=Produce,*"
    APPENDS = "kafka.server:type=BrokerTopicMetrics,name=TotalProduceRequestsPerSec"
    MESSAGES = "kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec"

    def __init__(self, backend: Any) -> None:
        super().__init__(backend)
        self.source_dir = Path(tempfile.mkdtemp(prefix="hayase-jmxwin-"))
        (self.source_dir / "JmxWindow.java").write_text(_JMX_WINDOW)
        self._result: dict[str, float] = {}

    def idle_begin(self) -> Any:
        port = self.backend.cluster.nodes[0].jmx_port
        proc = subprocess.Popen(
            ["java", str(self.source_dir / "JmxWindow.java"), str(port), str(self.window),
             self.IDLE, self.PRODUCE, self.APPENDS, self.MESSAGES],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        self.mbeans = []
        for line in proc.stdout:  # wait until the JVM took its first sample
            if line.startswith("mbean\t"):
                self.mbeans.append(line.split("\t", 1)[1].strip())
            if line.strip() == "start":
                break
        else:
            raise RuntimeError(f"JMX reader failed: {proc.stderr.read() if proc.stderr else ''}")
        return proc

    def check_quiet(self, seconds: float = 5.0) -> None:
        """In combined (broker+controller) mode, as the runner's KRaft nodes run, Kafka 4.1's broker
        and controller request-handler pools mark the same RequestHandlerAvgIdlePercent meter,
        each dividing by its own thread count: the raw share runs from 0 to 2, and a quiet node
        reads about 2. The controller pool only serves heartbeats under produce load, so the
        broker pool's idle share is taken as raw - 1 (both are printed)."""
        self.window = seconds
        raw = self.raw(self.idle_begin())
        print(f"  JMX RequestHandlerAvgIdlePercent of the quiet node: {raw:.0%} over {seconds:g} s "
              f"(broker pool + controller pool); the table shows raw - 100%", flush=True)

    def idle(self, begin: Any, seconds: float) -> float:
        return max(0.0, min(1.0, self.raw(begin) - 1.0))

    def raw(self, begin: Any) -> float:
        out, err = begin.communicate(timeout=120)
        if begin.returncode != 0:
            raise RuntimeError(f"JMX reader failed: {err}")
        values = dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)
        dt = float(values["seconds"])
        self._result = {k: float(values[k]) / dt for k in (self.PRODUCE, self.APPENDS, self.MESSAGES)}
        self.raw_idle = float(values[self.IDLE]) / (dt * 1e9)
        return self.raw_idle

    def broker_side(self, begin: Any) -> dict[str, float]:
        r = self._result
        appends = r[self.APPENDS]
        return {"raw_idle": self.raw_idle,
                "req_s": r[self.PRODUCE], "parts_per_req": appends / max(r[self.PRODUCE], 1e-9),
                "recs_per_batch": r[self.MESSAGES] / max(appends, 1e-9)}


# --- one strategy on one backend

@dataclass
class Row:
    backend: str
    strategy: str
    idle: float
    req_s: float
    parts_per_req: float
    recs_per_batch: float
    p50: float
    p99: float
    records_s: float
    broker_side: dict[str, float]


def run_doctor(url: str, interval: float) -> str:
    """`hayase broker doctor` as an operator would run it; its function if the CLI lacks it."""
    cmd = [sys.executable, "-m", "hayase", "broker", "doctor", "--metrics-url", url,
           "--interval", str(interval)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if proc.returncode in (0, 1) and "Usage:" not in proc.stderr:
        return f"$ hayase broker doctor --metrics-url {url} --interval {interval:g}" \
               f"   (exit {proc.returncode})\n{proc.stdout.rstrip()}"
    from hayase.broker.doctor import run

    text, findings = run(url, interval)
    lines = [f"(`hayase broker doctor` not available: {proc.stderr.strip().splitlines()[-1:]}; "
             f"hayase.broker.doctor.run({url!r}, {interval:g}) instead)", text]
    lines += [str(f) for f in findings] or ["no problems found"]
    return "\n".join(lines)


def _shorten(doctor: str, keep: int = 2) -> str:
    """The doctor's output with only the first `keep` of its per-producer findings (they repeat
    for every producer of the fleet)."""
    lines = doctor.splitlines()
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("PROBLEM:"):
            blocks.append([])
        blocks[-1].append(line)
    head, findings = blocks[0], blocks[1:]
    producers = [b for b in findings if b[0].startswith("PROBLEM: producer ")]
    others = [b for b in findings if not b[0].startswith("PROBLEM: producer ")]
    out = head + [line for b in producers[:keep] for line in b]
    if len(producers) > keep:
        out.append(f"... and the same finding for {len(producers) - keep} more producers")
    return "\n".join(out + [line for b in others for line in b])


def run_strategy(backend: Any, probe: BrokerProbe, strategy: str, args: argparse.Namespace) -> Row:
    topic = f"incident-{strategy}-{uuid.uuid4().hex[:6]}"
    bootstrap = backend.bootstrap_servers
    from hayase.client.admin import Admin

    Admin({"bootstrap.servers": bootstrap}, 60).create_topic(topic, args.partitions,
                                                             wait_for_leaders=True)
    linger = args.long_linger_ms if strategy == "round_robin_long_linger" else args.linger_ms
    fleet = Fleet(bootstrap, topic, strategy, args.producers, args.rate, linger, args.value_size)
    ctx = mp.get_context("spawn")
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    start_ms = ctx.Value("d", float("inf"))
    consumer = ctx.Process(target=consume_latencies,
                           args=(bootstrap, topic, args.partitions, start_ms, ready, stop, out))
    consumer.start()
    fleet.start()
    if not ready.wait(120):  # the warm-up starts once the consumer receives records
        raise RuntimeError("the latency consumer received nothing in 120 s")
    time.sleep(args.warmup)
    start_ms.value = time.time() * 1000
    probe.window = args.duration
    begin = probe.idle_begin()
    req0, bat0, rec0 = fleet.totals()
    t0 = time.monotonic()
    time.sleep(args.duration)
    req1, bat1, rec1 = fleet.totals()
    dt = time.monotonic() - t0
    idle = probe.idle(begin, dt)
    side = probe.broker_side(begin)
    doctor = None
    if isinstance(probe, EmbeddedProbe) and strategy in ("round_robin", "producer_key"):
        doctor = run_doctor(probe.url, args.doctor_interval)
    drain_s, undelivered = fleet.stop()
    stop.set()
    lat = out.get(timeout=120)
    consumer.join(30)
    # The topic stays until the broker is discarded: deleting 256 partitions makes Apache Kafka
    # stop and (60 s later, file.delete.delay.ms) delete 256 logs, which would land in a later
    # strategy's window.
    req, bat, rec = req1 - req0, bat1 - bat0, rec1 - rec0
    row = Row(backend.kind, strategy, idle, req / dt, bat / max(req, 1), rec / max(bat, 1),
              lat["p50"], lat["p99"], rec / dt, side)
    print(f"  {SHORT[strategy]:<20} linger.ms={linger:<4} idle {idle:6.1%}  {row.req_s:7.0f} req/s  "
          f"{row.parts_per_req:5.2f} partitions/req  {row.recs_per_batch:6.2f} records/batch  "
          f"p99 {row.p99:7.0f} ms  ({lat['measured']} records timed)", flush=True)
    print(f"  {'':<20} after the window: {drain_s:.1f} s until every record was acknowledged"
          + (f", {undelivered} never were" if undelivered else "")
          + (f"; {fleet.failed} delivery errors" if fleet.failed else ""), flush=True)
    if side:
        src = "/metrics" if isinstance(probe, EmbeddedProbe) else "JMX"
        print(f"  {'':<20} broker side ({src}): {side['req_s']:7.0f} req/s  "
              f"{side['parts_per_req']:5.2f} partitions/req  {side['recs_per_batch']:6.2f} records/batch"
              + (f"  (RequestHandlerAvgIdlePercent raw {side['raw_idle']:.0%})" if "raw_idle" in side else ""))
    if doctor:
        print("    " + _shorten(doctor).replace("\n", "\n    "), flush=True)
    return row


# --- report

def table(rows: list[Row]) -> str:
    head = ("| backend | strategy | handler idle | produce req/s | partitions/request | records/batch "
            "| e2e p50 ms | e2e p99 ms | records/s |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        lines.append(f"| {r.backend} | {SHORT[r.strategy]} | {r.idle:.0%} | {r.req_s:,.0f} | "
                     f"{r.parts_per_req:.2f} | {r.recs_per_batch:.2f} | {r.p50:,.0f} | {r.p99:,.0f} | "
                     f"{r.records_s:,.0f} |")
    return "\n".join(lines)


def ratios(rows: list[Row]) -> str:
    lines = ["| backend | strategy | produce req/s vs round-robin | records/batch vs round-robin "
             "| idle, points vs round-robin | p99 vs round-robin |", "|" + "---|" * 6]
    for kind in dict.fromkeys(r.backend for r in rows):
        by = {r.strategy: r for r in rows if r.backend == kind}
        base = by.get("round_robin")
        if base is None:
            continue
        for s, r in by.items():
            if s == "round_robin":
                continue
            lines.append(f"| {kind} | {SHORT[s]} | {r.req_s / base.req_s:.2f}x | "
                         f"{r.recs_per_batch / base.recs_per_batch:.1f}x | "
                         f"{(r.idle - base.idle) * 100:+.0f} | {r.p99 / base.p99:.2f}x |")
    return "\n".join(lines)


def start_backend(kind: str, args: argparse.Namespace) -> tuple[Any, BrokerProbe]:
    from hayase.testing.apache_kafka import free_port
    from hayase.testing.brokers import ApacheBackend, EmbeddedBroker, apache_available

    if kind == "embedded":
        d = Path(tempfile.mkdtemp(prefix="hayase-incident-"))
        b = EmbeddedBroker(data_dir=d / "data", metrics_port=free_port()).start()
        b.bench_dir = d  # type: ignore[attr-defined]
        return b, EmbeddedProbe(b)
    reason = apache_available()
    if reason:
        raise RuntimeError(f"Apache Kafka unavailable: {reason}")
    a = ApacheBackend(nodes=1).start()
    probe = ApacheProbe(a)
    time.sleep(10)  # let start-up work settle before the quiet reading
    probe.check_quiet()
    return a, probe


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", default="embedded,apache")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--producers", type=int, default=16, help="producer instances (default 16)")
    ap.add_argument("--rate", type=float, default=200, help="records/s per producer (default 200)")
    ap.add_argument("--partitions", type=int, default=256, help="partitions of the topic (default 256)")
    ap.add_argument("--linger-ms", type=int, default=50, help="linger.ms (default 50)")
    ap.add_argument("--long-linger-ms", type=int, default=500, help="the longer linger (default 500)")
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--warmup", type=float, default=4.0)
    ap.add_argument("--duration", type=float, default=12.0, help="measurement window, s (default 12)")
    ap.add_argument("--doctor-interval", type=float, default=3.0)
    args = ap.parse_args(argv)
    strategies = [s for s in args.strategies.split(",") if s]
    for s in strategies:
        if s not in STRATEGIES:
            ap.error(f"unknown strategy {s!r}; choose from {', '.join(STRATEGIES)}")
    print(f"scenario: {args.producers} producers x {args.rate:g} keyless records/s "
          f"({args.producers * args.rate:,.0f} records/s, {args.value_size}-byte values, acks=all), "
          f"topic of {args.partitions} partitions; linger.ms {args.linger_ms} "
          f"(longer linger {args.long_linger_ms}); {args.warmup:g} s warm-up, {args.duration:g} s window; "
          f"machine: {mp.cpu_count()} cores")
    print(f"  per producer: {args.rate:g} records/s over {args.partitions} partitions -> under round-robin "
          f"~{args.rate * args.linger_ms / 1000 / args.partitions:.2f} records reach a partition per linger "
          f"(one-record batches); with one key ~{args.rate * args.linger_ms / 1000:.1f} per batch")
    rows: list[Row] = []
    for kind in [k for k in args.backends.split(",") if k]:
        print(f"\n== {kind}", flush=True)
        backend, probe = start_backend(kind, args)
        try:
            for s in strategies:
                rows.append(run_strategy(backend, probe, s, args))
        finally:
            backend.cleanup()
            if isinstance(probe, ApacheProbe):
                shutil.rmtree(probe.source_dir, ignore_errors=True)
            bench_dir = getattr(backend, "bench_dir", None)
            if bench_dir is not None:
                shutil.rmtree(bench_dir, ignore_errors=True)
    print("\n" + table(rows))
    print("\nratios (strategy / round-robin on the same backend):\n" + ratios(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
