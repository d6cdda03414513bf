"""`hayase demo`: hayase's main job, the ads platform (issue 10), on one machine.

Without --check: the embedded broker (or --bootstrap-servers), the server with its console and
the ads dashboard, Redis when installed, the pipeline, the generator and the segment updater,
until Ctrl-C (see hayase.ads.app). With --check: a bounded run compared with a plain-Python batch
computation (see hayase.ads.check); exit status 0 only on an exact match."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click


@click.command("demo")
@click.option("--bootstrap-servers", "-b", default=None,
              help="Run on this Kafka cluster instead of the embedded broker.")
@click.option("--config", "config_pairs", multiple=True, metavar="KEY=VALUE",
              help="librdkafka client configuration, repeatable.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path(".hayase/demo"), show_default=True,
              help="The embedded broker's log, state stores and Redis' data.")
@click.option("--port", type=int, default=9092, show_default=True,
              help="Embedded broker port on 127.0.0.1 (a free one if taken).")
@click.option("--server-port", type=int, default=8088, show_default=True,
              help="Server (REST API, console, dashboard) port (a free one if taken).")
@click.option("--seed", type=int, default=7, show_default=True, help="Generator seed.")
@click.option("--rate", type=float, default=None,
              help="Impressions per second of event time (demo 20, check 20).")
@click.option("--events", "events", type=int, default=None,
              help="Impressions to generate (check mode: default 3000; demo: endless).")
@click.option("--check", is_flag=True,
              help="Bounded run compared with a batch computation; exit 0 on exact match.")
@click.option("--keep-topics", is_flag=True, help="Check mode: keep the run's topics.")
@click.option("--timeout", type=float, default=300.0, show_default=True,
              help="Check mode: seconds to wait for the pipeline to finish.")
@click.option("--redis/--no-redis", "use_redis", default=True, show_default=True,
              help="Start redis-server for the segment updater when it is installed (check "
                   "mode: and compare every user's segments).")
@click.option("--speedup", type=float, default=1.0, show_default=True,
              help="Demo: the last hour of events is replayed this many times faster than "
                   "the wall clock, then events come in real time.")
@click.option("--duration", type=float, default=None,
              help="Demo: stop after this many seconds (default: until Ctrl-C).")
def command(bootstrap_servers: str | None, config_pairs: tuple[str, ...], data_dir: Path,
            port: int, server_port: int, seed: int, rate: float | None, events: int | None,
            check: bool, keep_topics: bool, timeout: float, use_redis: bool, speedup: float,
            duration: float | None) -> None:
    """The ads platform: generator, SQL pipeline, segment updater and a live dashboard."""
    from hayase.client.config import client_config

    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if check:
        sys.exit(_check(bootstrap_servers, config_pairs, seed, rate or 20.0,
                        events or 3000, timeout, keep_topics, use_redis))
    from hayase.ads.app import DemoOptions, run_demo

    conf = client_config(bootstrap_servers, None, config_pairs) if bootstrap_servers else None
    opts = DemoOptions(client_conf=conf, data_dir=data_dir, broker_port=port,
                       server_port=server_port, seed=seed, rate=rate or 20.0,
                       impressions=events, use_redis=use_redis, speedup=speedup,
                       duration=duration)
    sys.exit(run_demo(opts, click.echo))


def _check(bootstrap_servers: str | None, config_pairs: tuple[str, ...], seed: int,
           rate: float, impressions: int, timeout: float, keep_topics: bool,
           use_redis: bool) -> int:
    from hayase.ads.check import run_check
    from hayase.client.config import client_config
    from hayase.client.errors import ClientError
    from hayase.sql.errors import KsqlError

    broker = None
    if bootstrap_servers is None:
        from hayase.testing.brokers import EmbeddedBroker

        broker = EmbeddedBroker().start()  # a temporary data folder, removed afterwards
        bootstrap_servers = broker.bootstrap_servers
        click.echo(f"embedded broker on {bootstrap_servers} (temporary data folder)")
    try:
        conf = client_config(bootstrap_servers, None, config_pairs)
        outcome = run_check(conf, impressions, seed, rate, click.echo, timeout, keep_topics,
                            segments=use_redis)
        return 0 if outcome.ok else 1
    except (ClientError, KsqlError) as e:  # the cluster, or the engine refusing a statement
        click.echo(f"hayase demo --check: {e}", err=True)
        return 1
    finally:
        if broker is not None:
            broker.cleanup()
