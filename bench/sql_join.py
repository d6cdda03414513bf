"""Stream-stream join throughput: impressions joined to clicks WITHIN 10 MINUTES.

Data (fixed seed): --impressions impressions (1M by default, one every 10 ms of event time,
keyed by impression id) and clicks on 2% of them; 95% of the clicks come 0-60 s after their
impression, 5% 10-20 minutes after (outside the window). Both streams are merged in event-time
order. The answer is the number of matched pairs.

Engine-level runners (same machine, same data, one run each, records/s over all input records):

- plain Python: a dict of impressions by id with age-based expiry, JSON in and out with orjson
  (the ceiling, and the exact answer every other runner is checked against);
- hayase: the join operator behind `hayase run` (hayase.engine.joins.JoinQuery) for
  `CREATE STREAM MATCHED AS SELECT C.ID, CAMPAIGN FROM CLICKS C JOIN IMPRESSIONS I
   WITHIN 10 MINUTES GRACE PERIOD 1 MINUTE ON C.ID = I.ID`, fed serialized records;
- Bytewax 0.21.1 (own virtualenv, bench/_peers.py): `op.join` of the two keyed streams (it
  has no time bound, so a filter on |click - impression| <= 10 min follows), TestingSource over
  the same events, run_main;
- Quix Streams 3.28.1 (own virtualenv, bench/_peers.py): its interval join (`join_interval`,
  backward/forward 10 min; Quix wants grace >= backward: 11 min) needs a broker, so it runs
  end to end on the embedded broker with --e2e (one partition).

End to end (--e2e: the embedded broker, --apache: Apache Kafka, one node): the same query in
`hayase run` with 1 and with 2 processes (one consumer group), topics of --partitions
partitions, --runs rounds; each run is timed from the processes' start to the last matched pair
in the output topic (and the count must be exact). Printed beside each run: the CPU seconds
the hayase processes and the broker used, the CPU other processes of the (shared) machine used
meanwhile, the load average; then medians, the scaling ratio and the CPU-bound ceilings these
CPU costs allow on an idle machine of this many cores. Event times end at the moment the
inputs are produced (brokers refuse records stamped more than an hour ahead).

    .venv/bin/python bench/sql_join.py                      # engine level, 1M impressions
    .venv/bin/python bench/sql_join.py --e2e --apache --skip-bytewax --skip-quix --runs 3

This is a benchmark, never a test: nothing here asserts a speed; it does check every runner's
count against the plain-Python answer and says so.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from pathlib import Path

import orjson
from _peers import (
    bytewax_python,
    create_topic,
    load_average,
    output_count,
    quix_python,
    stop_process,
    wait_for,
)

WINDOW_MS = 10 * 60 * 1000
GRACE_MS = 60 * 1000

Event = tuple[str, bytes, bytes, int]  # topic, key, value, timestamp

SQL = """
CREATE STREAM IMPRESSIONS (ID STRING KEY, CAMPAIGN STRING, COST DOUBLE)
  WITH (KAFKA_TOPIC='{impressions}', VALUE_FORMAT='JSON');
CREATE STREAM CLICKS (ID STRING KEY, POS INT) WITH (KAFKA_TOPIC='{clicks}', VALUE_FORMAT='JSON');
CREATE STREAM MATCHED WITH (KAFKA_TOPIC='{out}') AS
  SELECT C.ID, CAMPAIGN, POS FROM CLICKS C JOIN IMPRESSIONS I
  WITHIN 10 MINUTES GRACE PERIOD 1 MINUTE ON C.ID = I.ID;
"""


def generate(n: int, seed: int = 7, click_share: float = 0.02) -> list[Event]:
    rnd = random.Random(seed)
    events: list[Event] = []
    for i in range(n):
        ts = i * 10
        key = f"imp{i}".encode()
        events.append(("impressions", key, orjson.dumps(
            {"CAMPAIGN": f"camp{rnd.randrange(500)}", "COST": rnd.randrange(1000) / 100}), ts))
        if rnd.random() < click_share:
            if rnd.random() < 0.95:
                delay = rnd.randrange(0, 60_000)
            else:
                delay = WINDOW_MS + 1 + rnd.randrange(0, WINDOW_MS)
            events.append(("clicks", key, orjson.dumps({"POS": rnd.randrange(10)}), ts + delay))
    events.sort(key=lambda e: e[3])  # stable: an impression precedes a click at the same ms
    return events


# ---------------------------------------------------------------------- plain Python


def run_plain(events: list[Event], per_campaign: Counter[str] | None = None) -> int:
    """Inner join both ways within the window; state expires by age like a window store.
    ``per_campaign`` (optional) counts the pairs by the impression's campaign."""
    loads, dumps = orjson.loads, orjson.dumps
    impressions: dict[bytes, list[tuple[int, dict]]] = {}
    clicks: dict[bytes, list[tuple[int, dict]]] = {}
    ages: deque[tuple[int, str, bytes]] = deque()
    retention = 2 * WINDOW_MS + GRACE_MS
    stream_time = -1
    matched = 0
    out: list[bytes] = []
    for topic, key, value, ts in events:
        row = loads(value)
        this, other = (impressions, clicks) if topic == "impressions" else (clicks, impressions)
        this.setdefault(key, []).append((ts, row))
        ages.append((ts, topic, key))
        if ts > stream_time:
            stream_time = ts
            while ages and ages[0][0] <= stream_time - retention:
                old_ts, old_topic, old_key = ages.popleft()
                store = impressions if old_topic == "impressions" else clicks
                kept = [e for e in store.get(old_key, ()) if e[0] > stream_time - retention]
                if kept:
                    store[old_key] = kept
                else:
                    store.pop(old_key, None)
        for other_ts, other_row in other.get(key, ()):
            if abs(other_ts - ts) <= WINDOW_MS:
                imp, clk = (row, other_row) if topic == "impressions" else (other_row, row)
                out.append(dumps({"CAMPAIGN": imp["CAMPAIGN"], "POS": clk["POS"]}))
                matched += 1
                if per_campaign is not None:
                    per_campaign[imp["CAMPAIGN"]] += 1
        if len(out) > 10_000:
            out.clear()
    return matched


# ---------------------------------------------------------------------- hayase engine


def run_hayase_engine(events: list[Event]) -> int:
    from hayase.engine.joins import make_query
    from hayase.engine.processing_log import ProcessingLog
    from hayase.engine.record import Record
    from hayase.sql import Session  # type: ignore[attr-defined]
    from hayase.sql.plan import QueryPlan

    sql = SQL.format(impressions="impressions", clicks="clicks", out="matched")
    plan = [r for r in Session({}).execute(sql) if isinstance(r, QueryPlan)][0]
    query = make_query(plan, ProcessingLog())
    process = query.process
    offsets = {"impressions": 0, "clicks": 0}
    matched = 0
    for topic, key, value, ts in events:
        off = offsets[topic]
        offsets[topic] = off + 1
        matched += len(process(Record(topic, 0, off, ts, key, value, ())))
    return matched


# ---------------------------------------------------------------------- Bytewax

BYTEWAX_SCRIPT = r"""
import sys, time, orjson
import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, TestingSink, run_main

path, window = sys.argv[1], int(sys.argv[2])
events = [orjson.loads(line) for line in open(path, "rb")]
started = time.perf_counter()
flow = Dataflow("impression_click_join")
stream = op.input("in", flow, TestingSource(events))
impressions = op.filter("impr", stream, lambda e: e[0] == "impressions")
clicks = op.filter("clk", stream, lambda e: e[0] == "clicks")
def parse(e):
    return e[1], (e[3], orjson.loads(e[2]))
ki = op.map("ki", impressions, parse)
kc = op.map("kc", clicks, parse)
joined = op.join("join", ki, kc, emit_mode="complete")
inside = op.filter("window", joined, lambda kv: abs(kv[1][0][0] - kv[1][1][0]) <= window)
out = op.map("out", inside, lambda kv: orjson.dumps(
    {"CAMPAIGN": kv[1][0][1]["CAMPAIGN"], "POS": kv[1][1][1]["POS"]}))
result = []
op.output("sink", out, TestingSink(result))
run_main(flow)
print(len(result), time.perf_counter() - started)
"""


def run_bytewax(events: list[Event]) -> tuple[int, float] | None:
    python = bytewax_python()
    if python is None:
        return None
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as f:
        for topic, key, value, ts in events:
            f.write(orjson.dumps([topic, key.decode(), value.decode(), ts]) + b"\n")
        path = f.name
    try:
        proc = subprocess.run([str(python), "-c", BYTEWAX_SCRIPT, path, str(WINDOW_MS)],
                              capture_output=True, text=True)
    finally:
        Path(path).unlink()
    if proc.returncode != 0:
        print(f"Bytewax failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    count, seconds = proc.stdout.split()[-2:]
    return int(count), float(seconds)


# ---------------------------------------------------------------------- end to end

QUIX_SCRIPT = r"""
import sys
from quixstreams import Application
bootstrap, impressions, clicks, out, group, state_dir = sys.argv[1:7]
app = Application(broker_address=bootstrap, consumer_group=group, auto_offset_reset="earliest",
                  loglevel="WARNING", use_changelog_topics=False, state_dir=state_dir)
ti = app.topic(impressions, key_deserializer="str", value_deserializer="json")
tc = app.topic(clicks, key_deserializer="str", value_deserializer="json")
to = app.topic(out, key_serializer="str", value_serializer="json")
si = app.dataframe(ti)
sc = app.dataframe(tc)
joined = sc.join_interval(si, how="inner", backward_ms=600000, forward_ms=600000,
                          grace_ms=660000,
                          on_merge=lambda c, i: {"CAMPAIGN": i["CAMPAIGN"], "POS": c["POS"]})
joined.to_topic(to)
app.run()
"""


def produce_events(bootstrap: str, events: list[Event], names: dict[str, str],
                   partitions: int) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for name in names.values():
        admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all",
                         "partitioner": "murmur2_random", "batch.size": 1_000_000})
    # Event times end now: brokers refuse records stamped more than an hour ahead
    # (message.timestamp.after.max.ms) and delete those older than their retention.
    base = int(time.time() * 1000) - events[-1][3]
    failed: list[str] = []

    def delivered(err: object, _msg: object) -> None:
        if err is not None:
            failed.append(str(err))

    for topic, key, value, ts in events:
        while True:
            try:
                producer.produce(names[topic], value=value, key=key, timestamp=base + ts,
                                 on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120) or failed:
        raise RuntimeError(f"{len(failed)} input records not written: {failed[:1]}")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes used so far (all their threads)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine spent busy (every process, every core) so far: the
    machine is shared, so a run is read beside how much of it others used."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run_quix_e2e(bootstrap: str, names: dict[str, str], expected: int) -> float | None:
    python = quix_python()
    if python is None:
        return None
    out = f"quix-out-{uuid.uuid4().hex[:8]}"
    state = tempfile.mkdtemp(prefix="quix-state-")
    started = time.monotonic()
    log_path = Path(state) / "quix.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen([str(python), "-c", QUIX_SCRIPT, bootstrap,
                                 names["impressions"], names["clicks"], out,
                                 f"quix-{uuid.uuid4().hex[:8]}", state],
                                stdout=subprocess.DEVNULL, stderr=log_file)
    try:
        return wait_for(bootstrap, out, expected, started, lambda: proc.poll() is None,
                        timeout=900)
    except (RuntimeError, TimeoutError) as e:
        print(f"Quix Streams: {e}\n{log_path.read_text(errors='replace')[-3000:]}",
              file=sys.stderr)
        return None
    finally:
        stop_process(proc)


def create_output(bootstrap: str, topic: str, partitions: int) -> None:
    """The output topic, created before the timed run and usable (Apache Kafka answers "not
    leader" for a moment after a create; the timer's end-offset queries must not meet that)."""
    from confluent_kafka import KafkaException

    create_topic(bootstrap, topic, partitions)
    deadline = time.monotonic() + 30
    while True:
        try:
            output_count(bootstrap, topic)
            return
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def run_hayase_e2e(bootstrap: str, names: dict[str, str], expected: int,
                   processes: int, partitions: int, sql: str = SQL,
                   launcher: tuple[str, ...] = (sys.executable, "-m", "hayase"),
                   out: str | None = None) -> tuple[float, float] | None:
    """`hayase run` processes sharing the query through their consumer group: seconds from
    their start to the ``expected``-th record in the output topic (``out``; the last matched
    pair), and the CPU seconds they used. ``launcher``: the command that is `hayase`."""
    out = out or f"hayase-out-{uuid.uuid4().hex[:8]}"
    create_output(bootstrap, out, partitions)
    sql_file = Path(tempfile.mkdtemp(prefix="hayase-join-")) / "join.sql"
    sql_file.write_text(sql.format(impressions=names["impressions"], clicks=names["clicks"],
                                   out=out))
    service = f"bench_join_{uuid.uuid4().hex[:6]}_"
    started = time.monotonic()
    logs = [sql_file.parent / f"run{i}.log" for i in range(processes)]
    procs = []
    for i in range(processes):
        with open(logs[i], "wb") as log_file:  # a file, never a pipe nobody reads
            procs.append(subprocess.Popen(
                [*launcher, "run", str(sql_file),
                 "--bootstrap-servers", bootstrap, "--property", f"ksql.service.id={service}",
                 "--property", f"ksql.streams.state.dir={sql_file.parent}/s{i}"],
                stdout=subprocess.DEVNULL, stderr=log_file))
    try:
        seconds = wait_for(bootstrap, out, expected, started,
                           lambda: all(p.poll() is None for p in procs), timeout=1800)
        cpu = cpu_seconds([p.pid for p in procs])
        if output_count(bootstrap, out) != expected:
            print(f"hayase run: {output_count(bootstrap, out)} != {expected} records",
                  file=sys.stderr)
            return None
        return seconds, cpu
    except (RuntimeError, TimeoutError) as e:
        print(f"hayase run: {e}", file=sys.stderr)
        for path in logs:
            print(path.read_text(errors="replace")[-2000:], file=sys.stderr)
        return None
    finally:
        for p in procs:
            stop_process(p)


class Broker:
    """The embedded broker or a one-node Apache Kafka, with the pids whose CPU is counted."""

    def __init__(self, kind: str) -> None:
        from hayase.testing.brokers import ApacheBackend, EmbeddedBroker

        self.kind = kind
        # Both with Kafka's default group.initial.rebalance.delay.ms (the embedded broker's
        # is 0): processes started together get their partitions in one rebalance instead of
        # the first taking all of them and handing half over (state restore) a moment later.
        self.backend: EmbeddedBroker | ApacheBackend = \
            EmbeddedBroker(configs={"group.initial.rebalance.delay.ms": "3000"}) \
            if kind == "embedded" else ApacheBackend(nodes=1)

    def __enter__(self) -> Broker:
        self.backend.start()
        return self

    def __exit__(self, *exc: object) -> None:
        from hayase.testing.brokers import ApacheBackend

        if isinstance(self.backend, ApacheBackend):
            self.backend.cleanup()
        else:
            self.backend.stop()

    @property
    def bootstrap(self) -> str:
        return self.backend.bootstrap_servers

    def pids(self) -> list[int]:
        from hayase.testing.brokers import ApacheBackend

        if isinstance(self.backend, ApacheBackend):
            return [n.proc.pid for n in self.backend.cluster.nodes if n.proc is not None]
        return [] if self.backend.proc is None else [self.backend.proc.pid]


def scale_out(kind: str, events: list[Event], expected: int, runs: int,
              process_counts: list[int], partitions: int) -> None:
    """`hayase run` end to end with 1 and 2 processes, ``runs`` rounds (the counts alternate
    inside a round), medians, with the CPU each side used per 1,000 input records."""
    n = len(events)
    results: dict[int, list[tuple[float, float, float, str, float]]] = \
        {c: [] for c in process_counts}
    with Broker(kind) as broker:
        for r in range(runs):
            for count in process_counts:
                run_id = uuid.uuid4().hex[:8]
                names = {"impressions": f"impressions-{run_id}", "clicks": f"clicks-{run_id}"}
                produce_events(broker.bootstrap, events, names, partitions)
                load = load_average()
                broker_cpu, busy = cpu_seconds(broker.pids()), busy_cpu_seconds()
                got = run_hayase_e2e(broker.bootstrap, names, expected, count, partitions)
                broker_cpu = cpu_seconds(broker.pids()) - broker_cpu
                busy = busy_cpu_seconds() - busy
                if got is None:
                    print(f"  {kind} run {r + 1}, {count} process(es): failed")
                    continue
                seconds, cpu = got
                others = max(busy - cpu - broker_cpu, 0.0) / seconds
                results[count].append((seconds, cpu, broker_cpu, load, others))
                print(f"  {kind} run {r + 1}, {count} process(es): {seconds:6.2f} s "
                      f"{n / seconds:8.0f} records/s  hayase CPU {cpu:6.1f} s  broker CPU "
                      f"{broker_cpu:6.1f} s  other processes {others:4.2f} of "
                      f"{os.cpu_count()} cores  load average before: {load}", flush=True)
    print(f"\n{kind} broker, {partitions} partitions per topic, {n} input records, "
          f"medians of {runs} runs")
    print(f"{'processes':>9s} {'seconds':>8s} {'records/s':>10s} {'hayase CPU ms/1k':>17s} "
          f"{'broker CPU ms/1k':>17s} {'others (cores)':>15s}  load averages before the runs")
    rates: dict[int, float] = {}
    ceilings: dict[int, tuple[float, float]] = {}
    for count, rows in results.items():
        if not rows:
            print(f"{count:9d} {'failed':>8s}")
            continue
        secs = statistics.median(x[0] for x in rows)
        cpu = statistics.median(x[1] for x in rows)
        bcpu = statistics.median(x[2] for x in rows)
        others = statistics.median(x[4] for x in rows)
        rates[count] = n / secs
        ceilings[count] = (cpu, bcpu)
        print(f"{count:9d} {secs:8.2f} {n / secs:10.0f} {1e6 * cpu / n:17.1f} "
              f"{1e6 * bcpu / n:17.1f} {others:15.2f}  {' | '.join(x[3] for x in rows)}")
    if len(rates) == 2:
        a, b = sorted(rates)
        print(f"scaling ratio ({b} processes / {a}): {rates[b] / rates[a]:.2f}")
        # What this machine allows at all, from the CPU the runs cost: one process runs its
        # operators on one Python thread (about one core); the processes and the broker
        # share os.cpu_count() cores.
        cores = os.cpu_count() or 1
        one = n / ceilings[a][0]
        many = min(b * one, cores * n / (ceilings[b][0] + ceilings[b][1]))
        print(f"CPU-bound ceilings on an idle {cores}-core machine from these CPU costs: "
              f"{a} process ~{one:.0f} records/s (one core), {b} processes "
              f"~{many:.0f} records/s (ratio at most {many / one:.2f})")


# ---------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--impressions", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-bytewax", action="store_true")
    parser.add_argument("--e2e", action="store_true",
                        help="end to end on the embedded broker: Quix Streams, and `hayase "
                             "run` with 1 and 2 processes")
    parser.add_argument("--apache", action="store_true",
                        help="end to end on Apache Kafka (one node): `hayase run` with 1 and "
                             "2 processes")
    parser.add_argument("--skip-quix", action="store_true")
    parser.add_argument("--runs", type=int, default=3, help="end-to-end rounds (medians)")
    parser.add_argument("--partitions", type=int, default=2)
    args = parser.parse_args()
    events = generate(args.impressions, args.seed)
    n = len(events)
    print(f"input: {args.impressions} impressions + {n - args.impressions} clicks = {n} records"
          f"; load average {load_average()}")
    rows: list[tuple[str, float | None, int | None]] = []
    t0 = time.perf_counter()
    expected = run_plain(events)
    rows.append(("plain Python (ceiling)", time.perf_counter() - t0, expected))
    t0 = time.perf_counter()
    got = run_hayase_engine(events)
    rows.append(("hayase (engine)", time.perf_counter() - t0, got))
    if not args.skip_bytewax:
        bw = run_bytewax(events)
        rows.append(("Bytewax (op.join)", None if bw is None else bw[1],
                     None if bw is None else bw[0]))
    if args.e2e and not args.skip_quix:
        with Broker("embedded") as broker:
            run_id = uuid.uuid4().hex[:8]
            names = {"impressions": f"impressions-{run_id}", "clicks": f"clicks-{run_id}"}
            produce_events(broker.bootstrap, events, names, 1)
            secs = run_quix_e2e(broker.bootstrap, names, expected)
            rows.append(("Quix Streams e2e (1 partition)", secs,
                         expected if secs is not None else None))
    base = rows[1][1]
    print(f"{'runner':32s} {'seconds':>8s} {'records/s':>10s} {'hayase/runner':>14s} matches")
    for name, seconds, count in rows:
        if seconds is None:
            print(f"{name:32s} {'skipped':>8s}")
            continue
        check = "exact" if count == expected else f"WRONG ({count} != {expected})"
        ratio = (n / base) / (n / seconds) if base else 0.0
        print(f"{name:32s} {seconds:8.2f} {n / seconds:10.0f} {ratio:14.2f} {check}")
    print(f"({expected} matched pairs; load average {load_average()})")
    for kind, wanted in (("embedded", args.e2e), ("apache", args.apache)):
        if wanted:
            print(f"\nhayase run end to end ({kind}):")
            scale_out(kind, events, expected, args.runs, [1, 2], args.partitions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
