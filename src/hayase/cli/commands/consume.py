"""`hayase consume TOPIC`: print records as lines or JSON. Without --group it assigns the
partitions itself and commits nothing; with --group it joins the group and commits."""

from __future__ import annotations

import errno
import sys
from typing import Any

import click

from hayase.client.admin import DEFAULT_TIMEOUT, Admin
from hayase.client.cli_options import connection_options
from hayase.client.consumer import FORMATS, RecordReader, format_record, parse_offset
from hayase.client.errors import ClientError


@click.command("consume")
@click.argument("topic")
@click.option("--from-beginning", is_flag=True,
              help="Start at the earliest offset (default: only new records).")
@click.option("--partition", "-p", type=click.IntRange(min=0), default=None,
              help="Read only this partition (default: all).")
@click.option("--offset", "-o", default=None, metavar="N|beginning|end",
              help="Start offset for every partition read (overrides --from-beginning and a "
                   "group's committed offsets).")
@click.option("--max-messages", "-n", type=click.IntRange(min=1), default=None,
              help="Stop after this many records.")
@click.option("--group", "-g", default=None,
              help="Consumer group: join it and commit offsets (default: no group, no commits).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="lines", show_default=True,
              help="lines: the value per line; json: topic, partition, offset, timestamp, key, "
                   "value, headers per line.")
@click.option("--key-separator", "-K", default=None, metavar="SEP",
              help="With --format lines, print KEY<SEP>VALUE.")
@click.option("--timeout", type=float, default=None,
              help="Stop when no record arrives for this many seconds (default: never).")
@connection_options
def command(conf: dict[str, Any], topic: str, from_beginning: bool, partition: int | None,
            offset: str | None, max_messages: int | None, group: str | None, fmt: str,
            key_separator: str | None, timeout: float | None) -> None:
    """Print the records of TOPIC."""
    first = parse_offset(offset) if offset is not None else None
    connect_timeout = min(timeout, DEFAULT_TIMEOUT) if timeout else DEFAULT_TIMEOUT
    partitions = Admin(conf, connect_timeout).partitions_of(topic)
    if partition is not None:
        if partition not in partitions:
            raise ClientError(f"topic {topic!r} has no partition {partition} "
                              f"(partitions 0..{len(partitions) - 1})")
        partitions = [partition]
    sep = key_separator.encode() if key_separator is not None else None
    out = sys.stdout.buffer
    subscribe = group is not None and partition is None
    with RecordReader(conf, topic, partitions, first, from_beginning, group,
                      subscribe) as reader:
        try:
            for msg in reader.messages(max_messages, timeout):
                out.write(format_record(msg, fmt, sep) + b"\n")
                out.flush()
        except BrokenPipeError:  # `hayase consume ... | head`: the reader left, so do we
            _silence_stdout()
        except OSError as e:
            if e.errno != errno.EPIPE:
                raise


def _silence_stdout() -> None:
    """After EPIPE, Python would complain again when flushing stdout at exit."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
