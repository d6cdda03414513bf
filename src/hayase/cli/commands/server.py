"""`hayase server`: ksqlDB's REST API (and the web console) over a Kafka cluster or, without
--bootstrap-servers, over an embedded broker with a local data folder."""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import click

from hayase.client.config import parse_pairs


@click.command("server")
@click.option("--port", type=int, default=8088, show_default=True, help="HTTP port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--bootstrap-servers", "-b", default=None,
              help="Kafka cluster; without it an embedded broker is started.")
@click.option("--service-id", default="default_", show_default=True,
              help="ksql.service.id: names the command topic and the query consumer groups.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("hayase-server-data"), show_default=True,
              help="State stores and, without --bootstrap-servers, the embedded broker's log.")
@click.option("--broker-port", type=int, default=None,
              help="Port of the embedded broker (default: a free port).")
@click.option("--config", "config_pairs", multiple=True, metavar="KEY=VALUE",
              help="librdkafka client configuration, repeatable.")
@click.option("--property", "-p", "property_pairs", multiple=True, metavar="KEY=VALUE",
              help="ksqlDB server property, repeatable.")
@click.option("--basic-auth", default=None, metavar="USER:PASSWORD",
              help="Require HTTP basic authentication (or HAYASE_SERVER_BASIC_AUTH).")
@click.option("--max-request-bytes", type=int, default=10 * 1024 * 1024, show_default=True)
@click.option("--max-concurrent-queries", type=int, default=16, show_default=True)
@click.option("--http2", is_flag=True,
              help="Serve HTTP/1.1 and HTTP/2 (cleartext, prior knowledge) with hypercorn "
                   "instead of uvicorn (HTTP/1.1 only).")
def command(port: int, host: str, bootstrap_servers: str | None, service_id: str,
            data_dir: Path, broker_port: int | None, config_pairs: tuple[str, ...],
            property_pairs: tuple[str, ...], basic_auth: str | None, max_request_bytes: int,
            max_concurrent_queries: int, http2: bool) -> None:
    """Serve ksqlDB's REST API on HOST:PORT."""
    import uvicorn

    from hayase.client.config import client_config
    from hayase.client.errors import ClientError
    from hayase.engine.processing_log import DEFAULT_TOPIC
    from hayase.server.app import KsqlApp, ServerConfig
    from hayase.server.backend import KafkaBackend
    from hayase.server.engine import KsqlServer

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    auth_text = basic_auth or os.environ.get("HAYASE_SERVER_BASIC_AUTH")
    auth = None
    if auth_text:
        user, sep, password = auth_text.partition(":")
        if not sep:
            raise click.BadParameter("expected USER:PASSWORD", param_hint="--basic-auth")
        auth = (user, password)
    properties = parse_pairs(property_pairs, "--property")
    data_dir.mkdir(parents=True, exist_ok=True)
    broker = None
    if bootstrap_servers is None:
        from hayase.testing.brokers import EmbeddedBroker

        broker = EmbeddedBroker(data_dir / "broker", broker_port).start()
        bootstrap_servers = broker.bootstrap_servers
        click.echo(f"embedded broker on {bootstrap_servers} (data in {data_dir / 'broker'})",
                   err=True)
    try:
        conf = client_config(bootstrap_servers, None, config_pairs)
        log_topic = DEFAULT_TOPIC if service_id == "default_" else \
            f"{service_id}ksql_processing_log"
        backend = KafkaBackend(conf, service_id, data_dir / "state", log_topic)
        server = KsqlServer(backend, service_id, properties)
        try:
            n = server.start()
        except ClientError as e:
            click.echo(f"hayase server: {e}", err=True)
            sys.exit(1)
        click.echo(f"replayed {n} commands from {server.command_topic}", err=True)
        app = KsqlApp(server, ServerConfig(max_request_bytes=max_request_bytes,
                                             max_concurrent_queries=max_concurrent_queries,
                                             basic_auth=auth))
        click.echo(f"hayase server listening on http://{host}:{port}"
                   + (" (HTTP/1.1 and HTTP/2)" if http2 else ""), err=True)
        try:
            if http2:
                _serve_hypercorn(app, host, port)
            else:
                config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                        timeout_graceful_shutdown=5)
                # uvicorn handles SIGTERM/SIGINT (graceful shutdown) and re-raises the signal
                # after it: keep the process alive through that so the queries and the broker
                # stop cleanly below.
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, lambda signum, frame: None)
                uvicorn.Server(config).run()
        finally:
            server.close()
    finally:
        if broker is not None:
            broker.stop()


def _serve_hypercorn(app: object, host: str, port: int) -> None:
    """hypercorn answers HTTP/1.1 and h2c (HTTP/2 prior knowledge) on one port, as ksqlDB's
    /query-stream and /inserts-stream clients over HTTP/2 expect."""
    import asyncio

    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from hayase.cli.signals import stop_on_signals

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.graceful_timeout = 5

    async def main() -> None:
        await serve(app, config, shutdown_trigger=stop_on_signals().wait)  # type: ignore[arg-type]

    asyncio.run(main())
