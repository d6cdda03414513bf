"""`hayase broker`: run the embedded Kafka-compatible broker."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

from hayase.cli.signals import stop_on_signals


def _raise_fd_limit() -> None:
    """Each partition keeps its active segment open: lift the soft open-files limit to the hard
    one (Kafka's operations guide asks for 100000), as the default 1024 is soon exhausted."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            target = hard if hard != resource.RLIM_INFINITY else max(soft, 1048576)
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        logging.getLogger("hayase.broker").info("open files limit: %d", soft)
    except (ImportError, ValueError, OSError) as e:
        logging.getLogger("hayase.broker").warning("cannot raise the open files limit: %s", e)


def _parse_overrides(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r} is not name=value", param_hint="--config")
        out[name.strip()] = value.strip()
    return out


@click.group("broker", invoke_without_command=True)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the logs (created if missing). Required to run the broker.")
@click.option("--port", type=int, default=None, help="Port to listen on (default 9092).")
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--config", "configs", multiple=True, metavar="NAME=VALUE",
              help="A Kafka broker property (repeatable), e.g. num.partitions=3.")
@click.option("--config-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="A Kafka server.properties file.")
@click.option("--metrics-port", type=int, default=None,
              help="Serve Prometheus /metrics on 127.0.0.1 at this port.")
@click.pass_context
def command(ctx: click.Context, data_dir: Path | None, port: int | None, host: str | None,
            configs: tuple[str, ...], config_file: Path | None, metrics_port: int | None) -> None:
    """Run the embedded Kafka-wire-compatible broker until SIGTERM or Ctrl-C
    (`hayase broker --data-dir DIR`), or diagnose a running one (`hayase broker doctor`)."""
    if ctx.invoked_subcommand is not None:
        return
    if data_dir is None:
        raise click.UsageError("Missing option '--data-dir'.")
    from hayase.broker.config import BrokerConfig, ConfigError
    from hayase.broker.server import run_broker

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = BrokerConfig.build(data_dir, port=port, host=host, config_file=config_file,
                                    overrides=_parse_overrides(configs))
    except (ConfigError, OSError) as e:
        raise click.ClickException(str(e)) from e

    _raise_fd_limit()
    metrics = None
    if metrics_port is not None:
        from hayase.broker.metrics import BrokerMetrics

        metrics = BrokerMetrics()

    async def main() -> None:
        await run_broker(config, stop_on_signals(), metrics, metrics_port)

    # With metrics, the loop's selector times its waits (the request-handler idle ratio).
    try:
        with asyncio.Runner(loop_factory=metrics.new_event_loop if metrics else None) as runner:
            runner.run(main())
    except OSError as e:  # the port is taken, the data folder is not writable, ...
        listener = config.listener
        raise click.ClickException(f"{e} (listener {listener.host}:{listener.port}, "
                                   f"data dir {config.data_dir})") from e


@command.command("doctor")
@click.option("--metrics-url", default="http://127.0.0.1:9308/metrics", show_default=True,
              help="The broker's Prometheus endpoint (hayase broker --metrics-port).")
@click.option("--interval", type=float, default=5.0, show_default=True,
              help="Seconds between the two scrapes that rates are computed from.")
def doctor(metrics_url: str, interval: float) -> None:
    """Name the problems a running broker shows: producers sending tiny batches, a busy request
    handler, file descriptors near the limit, deleted files held open. Exits 1 on findings."""
    from urllib.error import URLError

    from hayase.broker.doctor import run

    try:
        summary, findings = run(metrics_url, interval)
    except (URLError, OSError) as e:
        raise click.ClickException(f"cannot read {metrics_url}: {e}") from e
    click.echo(summary)
    for finding in findings:
        click.echo(str(finding))
    if not findings:
        click.echo("no problems found")
    sys.exit(1 if findings else 0)
