"""What read-committed forwarding costs: a GROUP BY over a stream-stream join, end to end.

The query (the data of bench/sql_join.py: impressions, clicks on --click-share of them)::

    CREATE TABLE PER_CAMPAIGN AS SELECT CAMPAIGN, COUNT(*) AS N FROM CLICKS C
      JOIN IMPRESSIONS I WITHIN 10 MINUTES GRACE PERIOD 1 MINUTE ON C.ID = I.ID
      GROUP BY CAMPAIGN;

runs in one `hayase run` process, timed from its start to the last update of the table in its
output topic (one update per joined row), on topics of --partitions partitions. The joined rows
reach their group's task through the -Aggregate-GroupBy-repartition topic:

- sequenced (what users run): read committed (hayase.engine.repartition): each row waits in
  the group task's store until the join task's commit marker (commit.interval.ms, 2 s);
- unsequenced (for this measurement only, not a product setting): the same process with
  JoinQuery.repartition_aggregate patched in memory so that rows go through with position
  marks, applied at once. This is the forwarding of session 3, not exact after a crash.

Each run checks the final table (the last N per campaign) against a plain-Python join, and
prints records/s over all input records, the CPU seconds the process used and the load
average; then medians and the ratio sequenced / unsequenced. The modes alternate inside a
round, each on fresh topics.

    .venv/bin/python bench/sql_join_group_by.py                       # 1M impressions, 2% clicked
    .venv/bin/python bench/sql_join_group_by.py --impressions 300000 --click-share 0.5

A benchmark, never a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections import Counter

import orjson
from _peers import load_average
from sql_join import Broker, Event, generate, produce_events, run_hayase_e2e, run_plain

SQL = """
CREATE STREAM IMPRESSIONS (ID STRING KEY, CAMPAIGN STRING, COST DOUBLE)
  WITH (KAFKA_TOPIC='{impressions}', VALUE_FORMAT='JSON');
CREATE STREAM CLICKS (ID STRING KEY, POS INT) WITH (KAFKA_TOPIC='{clicks}', VALUE_FORMAT='JSON');
CREATE TABLE PER_CAMPAIGN WITH (KAFKA_TOPIC='{out}') AS
  SELECT CAMPAIGN, COUNT(*) AS N FROM CLICKS C JOIN IMPRESSIONS I
  WITHIN 10 MINUTES GRACE PERIOD 1 MINUTE ON C.ID = I.ID GROUP BY CAMPAIGN;
"""

UNSEQUENCED = "--hayase-unsequenced"  # argv[1]: be `hayase`, with the patch below


def hayase_unsequenced(argv: list[str]) -> None:
    """`hayase <argv>` with the GROUP BY of a stream-stream join reading its rows with
    position marks instead of read committed (this benchmark's comparison only)."""
    from hayase.cli.main import main as hayase_main
    from hayase.engine.joins import JoinQuery

    sequenced_path = JoinQuery.repartition_aggregate

    def unsequenced(self: JoinQuery, prefix: str) -> str:
        name = sequenced_path(self, prefix)
        assert self.aggregate is not None
        self.aggregate.sequenced = False
        self._sequenced.pop(name, None)
        return name

    JoinQuery.repartition_aggregate = unsequenced  # type: ignore[method-assign]
    sys.argv = ["hayase", *argv]
    hayase_main()


def final_table(bootstrap: str, topic: str, records: int) -> dict[str, int]:
    """The last N per campaign among the first ``records`` records of ``topic``."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-read",
                         "enable.auto.commit": False})
    try:
        md = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in md.partitions])
        table: dict[str, int] = {}
        read, deadline = 0, time.monotonic() + 120
        while read < records and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=1.0):
                if msg.error() is None:
                    read += 1
                    key: bytes | None = msg.key()  # type: ignore[assignment]
                    value: bytes | None = msg.value()  # type: ignore[assignment]
                    if key is not None and value is not None:
                        table[key.decode()] = int(orjson.loads(value)["N"])
        return table
    finally:
        consumer.close()


def one_run(broker: Broker, events: list[Event], expected: Counter[str], mode: str,
            partitions: int) -> tuple[float, float] | None:
    run_id = uuid.uuid4().hex[:8]
    names = {"impressions": f"impressions-{run_id}", "clicks": f"clicks-{run_id}"}
    produce_events(broker.bootstrap, events, names, partitions)
    out = f"per-campaign-{run_id}"
    launcher = (sys.executable, "-m", "hayase") if mode == "sequenced" else \
        (sys.executable, __file__, UNSEQUENCED)
    got = run_hayase_e2e(broker.bootstrap, names, expected.total(), 1, partitions, sql=SQL,
                         launcher=launcher, out=out)
    if got is None:
        return None
    table = final_table(broker.bootstrap, out, expected.total())
    if table != dict(expected):
        wrong = sum(1 for c in expected if table.get(c) != expected[c])
        print(f"  {mode}: the final table differs from the plain-Python answer "
              f"({wrong} of {len(expected)} campaigns)", file=sys.stderr)
        return None
    return got


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--impressions", type=int, default=1_000_000)
    parser.add_argument("--click-share", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--apache", action="store_true", help="Apache Kafka (one node) "
                        "instead of the embedded broker")
    args = parser.parse_args()
    events = generate(args.impressions, args.seed, args.click_share)
    expected: Counter[str] = Counter()
    run_plain(events, expected)
    n = len(events)
    print(f"input: {n} records, {expected.total()} joined rows in {len(expected)} campaigns; "
          f"load average {load_average()}", flush=True)
    modes = ("sequenced", "unsequenced")
    results: dict[str, list[tuple[float, float, str]]] = {m: [] for m in modes}
    with Broker("apache" if args.apache else "embedded") as broker:
        for r in range(args.runs):
            for mode in modes:
                load = load_average()
                got = one_run(broker, events, expected, mode, args.partitions)
                if got is None:
                    print(f"  run {r + 1} {mode:11s}: failed", flush=True)
                    continue
                seconds, cpu = got
                results[mode].append((seconds, cpu, load))
                print(f"  run {r + 1} {mode:11s}: {seconds:6.2f} s {n / seconds:8.0f} records/s"
                      f"  CPU {cpu:5.1f} s  exact  load average before: {load}", flush=True)
    print(f"\n{'mode':12s} {'seconds':>8s} {'records/s':>10s} {'CPU s':>6s}  "
          f"(medians of {args.runs}) load averages before the runs")
    medians: dict[str, float] = {}
    for mode, rows in results.items():
        if not rows:
            print(f"{mode:12s} failed")
            continue
        secs = statistics.median(x[0] for x in rows)
        cpu = statistics.median(x[1] for x in rows)
        medians[mode] = n / secs
        print(f"{mode:12s} {secs:8.2f} {n / secs:10.0f} {cpu:6.1f}  "
              f"{' | '.join(x[2] for x in rows)}")
    if len(medians) == 2:
        print(f"records/s sequenced / unsequenced: "
              f"{medians['sequenced'] / medians['unsequenced']:.2f}")
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == UNSEQUENCED:
        hayase_unsequenced(sys.argv[2:])
    else:
        sys.exit(main())
