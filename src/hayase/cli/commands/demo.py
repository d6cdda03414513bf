"""`hayase demo`: hayase's main job on one machine.

For now: start the embedded broker with a local data folder, create a topic, produce and consume a
sample through confluent-kafka (the same path any Kafka client takes), and keep the broker running
with a line telling how to connect. The ads platform replaces the sample in a later step."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import click

from hayase.testing.brokers import EmbeddedBroker

SAMPLE = [
    (b"user-1", b'{"ad":"a-1","campaign":"spring","placement":"top"}'),
    (b"user-2", b'{"ad":"a-2","campaign":"spring","placement":"side"}'),
    (b"user-1", b'{"ad":"a-3","campaign":"summer","placement":"top"}'),
]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _roundtrip(bootstrap: str, topic: str) -> list[tuple[int, int, bytes, bytes]]:
    """Produce the sample, then read every partition from the beginning to its high watermark."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic not in admin.list_topics(timeout=10).topics:
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(10)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for key, value in SAMPLE:
        producer.produce(topic, value, key)
    if producer.flush(10):
        raise click.ClickException("the sample was not acknowledged within 10 s")
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "hayase-demo",
                         "enable.auto.commit": False})
    try:
        partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), 10) for p in partitions}
        consumer.assign([TopicPartition(topic, p, low) for p, (low, _) in ends.items()])
        remaining = sum(high - low for low, high in ends.values())
        rows: list[tuple[int, int, bytes, bytes]] = []
        deadline = time.monotonic() + 15
        while len(rows) < remaining and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                rows.append((msg.partition() or 0, msg.offset() or 0, msg.key() or b"", msg.value() or b""))
        return rows
    finally:
        consumer.close()


@click.command("demo")
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path(".hayase/demo"),
              show_default=True, help="Where the embedded broker keeps its log.")
@click.option("--port", type=int, default=9092, show_default=True,
              help="Broker port on 127.0.0.1 (a free one is chosen if taken).")
@click.option("--exit-after-sample", is_flag=True, help="Stop after the sample round trip.")
def command(data_dir: Path, port: int, exit_after_sample: bool) -> None:
    """Run hayase's main job on the embedded broker."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if not _port_free(port):
        from hayase.testing.apache_kafka import free_port

        port = free_port()
    broker = EmbeddedBroker(data_dir=data_dir.resolve(), port=port)
    click.echo(f"starting the embedded broker (data in {data_dir}) ...")
    broker.start()
    try:
        rows = _roundtrip(broker.bootstrap_servers, "demo-impressions")
        click.echo(f"produced {len(SAMPLE)} records to 'demo-impressions'; the topic now holds {len(rows)}:")
        for partition, offset, key, value in rows[-10:]:
            click.echo(f"  partition {partition} offset {offset}  {key.decode()}  {value.decode()}")
        if exit_after_sample:
            return
        click.echo(f"\nbroker running: bootstrap.servers={broker.bootstrap_servers}")
        click.echo(f"try: kcat -b {broker.bootstrap_servers} -C -t demo-impressions -e")
        click.echo("Ctrl-C stops it.")
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        try:
            while not stop and broker.proc and broker.proc.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    finally:
        broker.stop()
        click.echo("broker stopped cleanly")
