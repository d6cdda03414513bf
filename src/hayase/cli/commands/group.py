"""`hayase group list|describe|reset-offsets|delete`: consumer group administration over the
Kafka protocol, as kafka-consumer-groups.sh does it, the same against the embedded broker and
Apache Kafka."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from hayase.client.cli_options import connection_options, table_console, timeout_option
from hayase.client.errors import ClientError
from hayase.client.groups import (
    GroupAdmin,
    ResetSpec,
    parse_datetime_ms,
    parse_topic_partitions,
)


def _dash(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


@click.group("group")
def command() -> None:
    """List, describe, reset the offsets of, and delete consumer groups."""


@command.command("list")
@timeout_option
@connection_options
def list_(conf: dict[str, Any], timeout: float) -> None:
    """List consumer groups with their states."""
    table = Table("group", "state", box=None, pad_edge=False)
    for g in GroupAdmin(conf, timeout).list_groups():
        table.add_row(g.group_id, g.state)
    table_console(highlight=False).print(table)


@command.command("describe")
@click.argument("group")
@timeout_option
@connection_options
def describe(conf: dict[str, Any], group: str, timeout: float) -> None:
    """State, protocol and members of GROUP, and per partition its committed offset, the log
    end offset and the lag."""
    d = GroupAdmin(conf, timeout).describe_group(group)
    console = table_console(highlight=False)
    console.print(f"Group: {d.group_id}  state: {d.state}  protocol type: "
                  f"{_dash(d.protocol_type)}  protocol: {_dash(d.protocol)}  "
                  f"coordinator: {d.coordinator}  members: {len(d.members)}")
    console.print("Members:")
    members = Table("client id", "host", "member id", "group instance id", "partitions",
                    box=None, pad_edge=False)
    for m in d.members:
        assigned = ",".join(f"{t}:{p}" for t, p in m.assignment)
        members.add_row(m.client_id, m.host, m.member_id, _dash(m.group_instance_id),
                        _dash(assigned))
    console.print(members)
    console.print("Offsets:")
    offsets = Table("topic", "partition", "current offset", "log end offset", "lag",
                    "client id", box=None, pad_edge=False)
    for p in d.partitions:
        offsets.add_row(p.topic, str(p.partition), _dash(p.committed_offset),
                        str(p.log_end_offset), _dash(p.lag), _dash(p.client_id))
    console.print(offsets)


def _reset_spec(to_earliest: bool, to_latest: bool, to_offset: int | None,
                to_datetime: str | None, shift_by: int | None) -> ResetSpec:
    chosen = [s for s, given in (("earliest", to_earliest), ("latest", to_latest),
                                 ("offset", to_offset is not None),
                                 ("datetime", to_datetime is not None),
                                 ("shift", shift_by is not None)) if given]
    if len(chosen) != 1:
        raise ClientError("give exactly one of --to-earliest, --to-latest, --to-offset, "
                          "--to-datetime, --shift-by")
    scenario = chosen[0]
    if scenario == "offset":
        return ResetSpec("offset", to_offset or 0)
    if scenario == "datetime":
        return ResetSpec("datetime", parse_datetime_ms(to_datetime or ""))
    if scenario == "shift":
        return ResetSpec("shift", shift_by or 0)
    return ResetSpec(scenario)


@command.command("reset-offsets")
@click.argument("group")
@click.option("--topic", "-t", "topics", multiple=True, metavar="TOPIC[:P,P...]",
              help="Topic to reset, optionally only some partitions (repeatable).")
@click.option("--all-topics", is_flag=True,
              help="Every topic the group has committed offsets for.")
@click.option("--to-earliest", is_flag=True, help="Reset to the earliest offset.")
@click.option("--to-latest", is_flag=True, help="Reset to the log end offset.")
@click.option("--to-offset", type=int, default=None, metavar="N",
              help="Reset to offset N (clamped to the log's range).")
@click.option("--to-datetime", default=None, metavar="YYYY-MM-DDTHH:mm:SS.sss[zone]",
              help="Reset to the first offset whose timestamp is at or after this time "
                   "(no zone: local time).")
@click.option("--shift-by", type=int, default=None, metavar="N",
              help="Move the committed offset by N (negative: back).")
@click.option("--dry-run/--execute", "dry_run", default=True,
              help="Only show the new offsets (default), or commit them.")
@timeout_option
@connection_options
def reset_offsets(conf: dict[str, Any], group: str, topics: tuple[str, ...], all_topics: bool,
                  to_earliest: bool, to_latest: bool, to_offset: int | None,
                  to_datetime: str | None, shift_by: int | None, dry_run: bool,
                  timeout: float) -> None:
    """Reset the committed offsets of GROUP, which must have no active members."""
    spec = _reset_spec(to_earliest, to_latest, to_offset, to_datetime, shift_by)
    if bool(topics) == all_topics:
        raise ClientError("give --topic (repeatable) or --all-topics")
    groups = GroupAdmin(conf, timeout)
    selected = groups.reset_partitions(group, [parse_topic_partitions(t) for t in topics],
                                       all_topics)
    plan = groups.plan_reset(group, spec, selected)
    if not dry_run:
        groups.alter_offsets(group, plan)
    table = Table("group", "topic", "partition", "new offset", box=None, pad_edge=False)
    for (topic, partition), offset in sorted(plan.items()):
        table.add_row(group, topic, str(partition), str(offset))
    console = table_console(highlight=False)
    console.print(table)
    if dry_run:
        console.print("Dry run: nothing was changed (--execute commits these offsets).")
    else:
        console.print(f"Committed {len(plan)} offset(s) for group {group}.")


@command.command("delete")
@click.argument("group")
@timeout_option
@connection_options
def delete(conf: dict[str, Any], group: str, timeout: float) -> None:
    """Delete GROUP and its committed offsets (it must have no active members)."""
    GroupAdmin(conf, timeout).delete_group(group)
    click.echo(f"Deleted consumer group {group}.")
