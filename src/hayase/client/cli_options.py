"""The options every client command shares (`--bootstrap-servers`, `--config`, `--config-file`)
and the shell that turns ClientError into a one-line message instead of a traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from hayase.client.admin import DEFAULT_TIMEOUT
from hayase.client.config import DEFAULT_BOOTSTRAP_SERVERS, client_config
from hayase.client.errors import ClientError

F = TypeVar("F", bound=Callable[..., Any])


def connection_options(f: F | None = None, *,
                       pairs_flags: tuple[str, ...] = ("--config", "-X")) -> Any:
    """Adds the connection options; the command receives them as one `conf` dict.
    `pairs_flags` renames the client-property option where `--config` means something else
    (`topic create --config` takes topic configs, as kafka-topics.sh does)."""

    def decorate(func: F) -> F:
        @click.option("--bootstrap-servers", "-b", default=None, metavar="HOST:PORT[,...]",
                      help="Kafka brokers to bootstrap from "
                           f"[default: {DEFAULT_BOOTSTRAP_SERVERS}].")
        @click.option(*pairs_flags, "client_config_pairs", multiple=True, metavar="NAME=VALUE",
                      help="librdkafka client property (repeatable), e.g. "
                           "compression.type=zstd.")
        @click.option("--config-file", type=click.Path(dir_okay=False, path_type=Path),
                      default=None, help="File of librdkafka client properties, one "
                                         "name=value a line.")
        @functools.wraps(func)
        def wrapper(*args: Any, bootstrap_servers: str | None,
                    client_config_pairs: tuple[str, ...], config_file: Path | None,
                    **kwargs: Any) -> Any:
            with user_errors():
                conf = client_config(bootstrap_servers, config_file, client_config_pairs)
                return func(*args, conf=conf, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate(f) if f is not None else decorate


timeout_option = click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True,
                              help="Seconds to wait for the broker's answers.")


def table_console(highlight: bool = True) -> Console:
    """Into a pipe, no width limit: a long topic or group name or config value is never cut."""
    console = Console(soft_wrap=True, highlight=highlight)
    if not console.is_terminal:
        console = Console(soft_wrap=True, highlight=highlight, width=100_000)
    return console


class user_errors:  # noqa: N801 - used as a context manager, reads like a statement
    """ClientError -> `Error: <message>` on stderr and exit status 1; Ctrl-C -> status 130."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if isinstance(exc, ClientError):
            raise click.ClickException(str(exc)) from None
        if isinstance(exc, KeyboardInterrupt):
            raise click.exceptions.Exit(130) from None
