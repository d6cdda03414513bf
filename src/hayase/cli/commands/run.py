"""`hayase run FILE.sql --bootstrap-servers ...`: run a SQL file's persistent queries as a
long-lived process (ksqlDB's headless mode). SIGTERM or Ctrl-C stops it cleanly: each query
finishes and commits its current batch and leaves its consumer group."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from types import FrameType

import click

from hayase.client.config import client_config, parse_pairs


@click.command("run")
@click.argument("sql_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bootstrap-servers", "-b", default=None,
              help="Kafka bootstrap servers (default 127.0.0.1:9092).")
@click.option("--config", "config_pairs", multiple=True, metavar="KEY=VALUE",
              help="librdkafka client configuration, repeatable.")
@click.option("--property", "-p", "property_pairs", multiple=True, metavar="KEY=VALUE",
              help="ksqlDB property (like SET), repeatable.")
def command(sql_file: Path, bootstrap_servers: str | None, config_pairs: tuple[str, ...],
            property_pairs: tuple[str, ...]) -> None:
    """Run the persistent queries of SQL_FILE against Kafka until SIGTERM."""
    from hayase.client.errors import ClientError
    from hayase.engine.runtime import HeadlessRuntime
    from hayase.sql.errors import KsqlError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                                                   "%(message)s")
    conf = client_config(bootstrap_servers, None, config_pairs)
    properties = parse_pairs(property_pairs, "--property")
    try:
        runtime = HeadlessRuntime(sql_file.read_text(encoding="utf-8"), conf, properties)
        runtime.start()
    except KsqlError as e:
        click.echo(f"{sql_file}: {e}", err=True)
        sys.exit(1)
    except ClientError as e:  # broker unreachable, topic creation refused, ...
        click.echo(f"hayase run: {e}", err=True)
        sys.exit(1)

    def _stop(signum: int, frame: FrameType | None) -> None:
        runtime.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo(f"running {len(runtime.workers)} persistent queries; SIGTERM stops", err=True)
    runtime.wait()
    sys.exit(1 if runtime.failed else 0)
