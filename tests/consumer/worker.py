"""A ParallelConsumer process for the crash and rolling-restart tests. Each record's sequence
number is appended to a Redis list per key (`{prefix}:seen:{key}`), so a SIGKILLed process loses
nothing the test can see; `{prefix}:active:{key}` detects two records of a key running at once,
across processes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import random

import redis.asyncio as aioredis

from hayase.consumer import ParallelConsumer, Record


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--redis-url", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--min-ms", type=float, default=1)
    ap.add_argument("--max-ms", type=float, default=20)
    ap.add_argument("--max-in-flight", type=int, default=20)
    ap.add_argument("--max-pending", type=int, default=500)
    ap.add_argument("--poll-batch", type=int, default=100)
    ap.add_argument("--commit-interval", type=float, default=0.05)
    ap.add_argument("--assignor", default="range")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    r = aioredis.from_url(args.redis_url)
    pre = args.prefix
    rng = random.Random()

    async def process(rec: Record) -> None:
        key = (rec.key or b"").decode()
        if await r.incr(f"{pre}:active:{key}") > 1:
            await r.sadd(f"{pre}:overlap", key)
        try:
            await asyncio.sleep(rng.uniform(args.min_ms, args.max_ms) / 1000)
            pipe = r.pipeline(transaction=False)
            pipe.rpush(f"{pre}:seen:{key}", rec.value or b"")
            pipe.incr(f"{pre}:processed")
            await pipe.execute()
        finally:
            await r.decr(f"{pre}:active:{key}")

    pc = ParallelConsumer(
        {"bootstrap.servers": args.bootstrap, "group.id": args.group,
         "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
         "heartbeat.interval.ms": 500, "partition.assignment.strategy": args.assignor,
         # bounds how long a join (and so a graceful close during a rebalance) can take
         "max.poll.interval.ms": 20000},
        [args.topic], process,
        max_in_flight_per_partition=args.max_in_flight,
        max_pending_per_partition=args.max_pending,
        poll_batch=args.poll_batch, commit_interval=args.commit_interval,
        revoke_timeout=10.0, drain_timeout=10.0)
    pc.run()


if __name__ == "__main__":
    main()
