"""The `hayase` command. Each subcommand lives in its own module under `hayase.cli.commands`
and exposes a click command (or group) named `command`; they are discovered here so that
components add commands without touching this file.

A command's module is imported only when that command runs (its name is the module's, with
`-` for `_`): importing all of them costs ~0.2 s of start-up (redis, the server, the SQL
front end), which every `hayase run` and `hayase produce` would pay."""

from __future__ import annotations

import importlib
import pkgutil

import click

from hayase import __version__
from hayase.cli import commands


def _module_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(commands.__path__))


class _Discovered(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n in (m.replace("_", "-") for m in _module_names())
                      if self.get_command(ctx, n) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = cmd_name.replace("-", "_")
        if module_name not in _module_names():
            return None
        module = importlib.import_module(f"{commands.__name__}.{module_name}")
        cmd = getattr(module, "command", None)
        if not isinstance(cmd, click.Command) or cmd.name != cmd_name:
            return None
        return cmd


@click.group(cls=_Discovered, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hayase")
def cli() -> None:
    """hayase: real-time streaming for Python users."""


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
