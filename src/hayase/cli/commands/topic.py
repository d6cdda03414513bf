"""`hayase topic create|list|describe|delete`: topic administration over the Kafka protocol,
the same against the embedded broker and Apache Kafka."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from hayase.client.admin import Admin
from hayase.client.cli_options import connection_options, table_console, timeout_option
from hayase.client.config import parse_pairs
from hayase.client.groups import GroupAdmin


@click.group("topic")
def command() -> None:
    """Create, list, describe and delete topics."""


@command.command("create")
@click.argument("name")
@click.option("--partitions", "-p", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--replication-factor", "-r", type=click.IntRange(min=1), default=1,
              show_default=True)
@click.option("--config", "-c", "topic_configs", multiple=True, metavar="NAME=VALUE",
              help="Topic config (repeatable), e.g. retention.ms=60000.")
@timeout_option
@connection_options(pairs_flags=("--client-config", "-X"))
def create(conf: dict[str, Any], name: str, partitions: int, replication_factor: int,
           topic_configs: tuple[str, ...], timeout: float) -> None:
    """Create topic NAME."""
    configs = parse_pairs(topic_configs, "--config")
    Admin(conf, timeout).create_topic(name, partitions, replication_factor, configs)
    click.echo(f"Created topic {name} ({partitions} partition(s), "
               f"replication factor {replication_factor}).")


@command.command("list")
@click.option("--exclude-internal", is_flag=True, help="Hide internal topics (__*).")
@timeout_option
@connection_options
def list_(conf: dict[str, Any], exclude_internal: bool, timeout: float) -> None:
    """List topics with their partition counts."""
    topics = Admin(conf, timeout).list_topics(include_internal=not exclude_internal)
    table = Table("topic", "partitions", box=None, pad_edge=False)
    for t in topics:
        table.add_row(t.name, str(t.partitions))
    table_console().print(table)


@command.command("describe")
@click.argument("name")
@click.option("--all-configs", is_flag=True, help="Show every config, not only overrides.")
@timeout_option
@connection_options
def describe(conf: dict[str, Any], name: str, all_configs: bool, timeout: float) -> None:
    """Partitions (leader, replicas, ISR, earliest and latest offsets), the lag of every consumer
    group with committed offsets on NAME, and configs of NAME."""
    groups = GroupAdmin(conf, timeout)
    desc = groups.admin.describe_topic(name)
    console = table_console()
    console.print(f"Topic: {desc.name}  partitions: {len(desc.partitions)}  "
                  f"replication factor: {desc.replication_factor}", highlight=False)
    parts = Table("partition", "leader", "replicas", "isr", "earliest offset", "latest offset",
                  box=None, pad_edge=False)
    for p in desc.partitions:
        parts.add_row(str(p.partition), str(p.leader), ",".join(map(str, p.replicas)),
                      ",".join(map(str, p.isr)), str(p.earliest_offset), str(p.latest_offset))
    console.print(parts)
    console.print("Consumer groups (committed offsets):", highlight=False)
    lag = Table("group", "partition", "current offset", "log end offset", "lag", box=None,
                pad_edge=False)
    log_end = {p.partition: p.latest_offset for p in desc.partitions}
    for group, g in groups.topic_lag(name, log_end):
        lag.add_row(group, str(g.partition), str(g.committed_offset), str(g.log_end_offset),
                    str(g.lag))
    console.print(lag)
    shown = [c for c in desc.configs if all_configs or not c.is_default]
    title = "Configs:" if all_configs else "Configs (overrides; --all-configs shows all):"
    console.print(title, highlight=False)
    cfg = Table("name", "value", "source", box=None, pad_edge=False)
    for c in shown:
        cfg.add_row(c.name, "" if c.value is None else c.value, c.source)
    console.print(cfg)


@command.command("delete")
@click.argument("name")
@timeout_option
@connection_options
def delete(conf: dict[str, Any], name: str, timeout: float) -> None:
    """Delete topic NAME."""
    Admin(conf, timeout).delete_topic(name)
    click.echo(f"Deleted topic {name}.")
