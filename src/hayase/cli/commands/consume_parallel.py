"""`hayase consume-parallel`: run a sink behind a ParallelConsumer until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from hayase.consumer.config import ConfigError, read_file, resolve
from hayase.consumer.loop import run_precise
from hayase.consumer.retry import RetryPolicy
from hayase.consumer.runner import ParallelConsumer
from hayase.consumer.sinks import Sink, make_sink, sink_factories


def _kv(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}")
        out[k.strip()] = v
    return out


@click.command("consume-parallel")
@click.option("--config-file", "-c", type=click.Path(path_type=Path, dir_okay=False),
              help="TOML or JSON file: options at the top level, librdkafka settings in [kafka].")
@click.option("--bootstrap-servers", "-b", help="Kafka bootstrap servers (bootstrap.servers).")
@click.option("--group", "-g", help="Consumer group id (group.id).")
@click.option("--topic", "-t", "topics", multiple=True, help="Topic to consume (repeatable).")
@click.option("--sink", type=click.Choice(sorted(sink_factories())), help="Where records go.")
@click.option("--redis-url", help="Redis URL for the redis sinks.")
@click.option("--prefix", help="Prefix of the Redis keys the sink writes.")
@click.option("--ordering", type=click.Choice(["key", "partition", "unordered"]))
@click.option("--max-in-flight", "max_in_flight_per_partition", type=int)
@click.option("--max-pending", "max_pending_per_partition", type=int)
@click.option("--batch-size", type=int, help="Records per sink write.")
@click.option("--dead-letter-topic")
@click.option("--max-retries", type=int)
@click.option("--initial-backoff", type=float)
@click.option("--max-backoff", type=float)
@click.option("--rate-limit", type=float, help="Records/s for the whole consumer.")
@click.option("--rate-limit-per-key", type=float, help="Records/s per key.")
@click.option("--commit-interval", type=float)
@click.option("--drain-timeout", type=float)
@click.option("--metrics-port", type=int, help="Serve Prometheus metrics on 127.0.0.1:PORT.")
@click.option("--kafka-config", "-X", "kafka_settings", multiple=True, metavar="KEY=VALUE",
              help="Any librdkafka consumer setting (repeatable).")
@click.option("--log-level", default="INFO", show_default=True)
def command(config_file: Path | None, bootstrap_servers: str | None, group: str | None,
            kafka_settings: tuple[str, ...], log_level: str, **cli: Any) -> None:
    """Consume TOPICs with in-partition concurrency and write them to a sink.

    Settings come from --config-file, then HAYASE_CONSUMER_* and HAYASE_KAFKA_* environment
    variables, then the command line (each overriding the one before)."""
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    cli_kafka = _kv(kafka_settings)
    if bootstrap_servers:
        cli_kafka["bootstrap.servers"] = bootstrap_servers
    if group:
        cli_kafka["group.id"] = group
    try:
        doc = read_file(config_file) if config_file else None
        kafka, options = resolve(doc, os.environ, cli, cli_kafka)
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    for needed, what in (("bootstrap.servers", "--bootstrap-servers"), ("group.id", "--group")):
        if needed not in kafka:
            raise click.UsageError(f"missing {what} (or {needed} in the config)")
    if not options.get("topics"):
        raise click.UsageError("missing --topic")
    if not options.get("sink"):
        raise click.UsageError("missing --sink")
    kafka.setdefault("auto.offset.reset", "earliest")
    try:
        run_precise(_run(kafka, options))
    except (ValueError, ConnectionError, OSError) as e:
        click.echo(f"hayase consume-parallel: {e}", err=True)
        sys.exit(1)


async def _run(kafka: dict[str, Any], options: dict[str, Any]) -> None:
    sink_options = {k: options.pop(k) for k in ("redis_url", "prefix") if k in options}
    sink: Sink = make_sink(options.pop("sink"), **sink_options)
    retry = RetryPolicy(**{k: options.pop(k) for k in
                           ("max_retries", "initial_backoff", "max_backoff") if k in options})
    topics = options.pop("topics")
    await sink.open()
    try:
        pc = ParallelConsumer(kafka, topics, process_batch=sink.write, retry=retry, **options)
        await pc.run_async()
    finally:
        await sink.close()
