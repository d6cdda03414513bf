"""`hayase produce TOPIC`: one record per input line (stdin or --file), optionally keyed,
with headers; idempotent with acks=all unless told otherwise."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, BinaryIO

import click

from hayase.client.admin import DEFAULT_TIMEOUT, Admin
from hayase.client.cli_options import connection_options
from hayase.client.errors import ClientError
from hayase.client.producer import (
    ACKS,
    LineProducer,
    parse_headers,
    producer_config,
    records_from_lines,
)


@click.command("produce")
@click.argument("topic")
@click.option("--file", "-f", "file", type=click.Path(exists=True, dir_okay=False,
                                                     path_type=Path),
              default=None, help="Read lines from this file instead of stdin.")
@click.option("--key-separator", "-K", default=None, metavar="SEP",
              help="Each line is KEY<SEP>VALUE (split at the first SEP).")
@click.option("--header", "-H", "headers", multiple=True, metavar="NAME=VALUE",
              help="Header added to every record (repeatable).")
@click.option("--partition", "-p", type=click.IntRange(min=0), default=None,
              help="Write every record to this partition (default: the partitioner picks).")
@click.option("--acks", type=click.Choice(ACKS), default="all", show_default=True)
@click.option("--idempotence/--no-idempotence", default=None,
              help="Idempotent producer [default: on with --acks all].")
@click.option("--timeout", type=float, default=30.0, show_default=True,
              help="Seconds a record may wait for delivery before the command fails.")
@connection_options
def command(conf: dict[str, Any], topic: str, file: Path | None, key_separator: str | None,
            headers: tuple[str, ...], partition: int | None, acks: str,
            idempotence: bool | None, timeout: float) -> None:
    """Produce one record per line of stdin (or --file) to TOPIC."""
    sep = key_separator.encode() if key_separator is not None else None
    if sep == b"":
        raise ClientError("--key-separator must not be empty")
    parsed_headers = parse_headers(headers)
    partitions = Admin(conf, min(timeout, DEFAULT_TIMEOUT)).partitions_of(topic)
    if partition is not None and partition not in partitions:
        raise ClientError(f"topic {topic!r} has no partition {partition} "
                          f"(partitions 0..{len(partitions) - 1})")
    producer = LineProducer(producer_config(conf, acks, idempotence), topic, timeout)
    stream: BinaryIO
    with _input(file) as stream:
        try:
            producer.send_all(records_from_lines(stream, sep, parsed_headers, partition))
        except ClientError as e:  # a bad line: deliver what came before it, then say so
            done = producer.flush()
            raise ClientError(f"{e}; {done.delivered} record(s) before it were produced") from None
    done = producer.flush()
    click.echo(f"Produced {done.delivered} record(s) to {topic}.", err=True)


class _input:  # noqa: N801 - context manager over stdin or a file
    def __init__(self, file: Path | None) -> None:
        self.file = file
        self.stream: BinaryIO | None = None

    def __enter__(self) -> BinaryIO:
        if self.file is None:
            return sys.stdin.buffer
        self.stream = self.file.open("rb")
        return self.stream

    def __exit__(self, *exc: object) -> None:
        if self.stream is not None:
            self.stream.close()


