"""The `hayase` command. Each subcommand lives in its own module under `hayase.cli.commands`
and exposes a click command (or group) named `command`; they are discovered here so that
components add commands without touching this file."""

from __future__ import annotations

import importlib
import pkgutil

import click

from hayase import __version__
from hayase.cli import commands


class _Discovered(click.Group):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
            module = importlib.import_module(f"{commands.__name__}.{info.name}")
            cmd = getattr(module, "command", None)
            if isinstance(cmd, click.Command):
                self.add_command(cmd)


@click.group(cls=_Discovered, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hayase")
def cli() -> None:
    """hayase: real-time streaming for Python users."""


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
