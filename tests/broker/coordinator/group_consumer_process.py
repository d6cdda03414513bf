"""A consumer-group member in its own process, for tests that SIGKILL it.

Usage: python group_consumer_process.py BOOTSTRAP GROUP TOPIC
Prints one line per event, flushed at once:
  ASSIGN p,p,...       after each (re)assignment (eager protocol: the full set)
  RECORD p offset      a record was processed
  COMMIT p offset      `offset` (the next one to read) is committed for p (synchronous commit)
"""

from __future__ import annotations

import signal
import sys

from confluent_kafka import Consumer, KafkaException, TopicPartition


def main() -> None:
    bootstrap, group, topic = sys.argv[1:4]
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    })
    running = True

    def stop(*_: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)

    def on_assign(c: Consumer, partitions: list[TopicPartition]) -> None:
        print("ASSIGN " + ",".join(str(p.partition) for p in partitions), flush=True)

    consumer.subscribe([topic], on_assign=on_assign)
    while running:
        msg = consumer.poll(0.2)
        if msg is None or msg.error():
            continue
        print(f"RECORD {msg.partition()} {msg.offset()}", flush=True)
        try:
            consumer.commit(message=msg, asynchronous=False)
        except KafkaException:
            continue  # a rebalance took the partition: the new owner starts at the last commit
        print(f"COMMIT {msg.partition()} {msg.offset() + 1}", flush=True)
    consumer.close()


if __name__ == "__main__":
    main()
