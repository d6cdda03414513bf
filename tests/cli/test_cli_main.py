"""The `hayase` group finds every command module, and imports only the one that runs."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

from click.testing import CliRunner

from hayase.cli import commands
from hayase.cli.main import cli


def test_help_lists_a_command_per_module() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    modules = [m.name for m in pkgutil.iter_modules(commands.__path__)]
    assert len(modules) >= 10
    for name in modules:
        assert f"  {name.replace('_', '-')} " in result.output


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["nosuch"])
    assert result.exit_code == 2 and "No such command 'nosuch'" in result.output


def test_running_one_command_imports_no_other() -> None:
    probe = ("import sys; from hayase.cli.main import cli\n"
             "try: cli(['produce', '--help'])\n"
             "except SystemExit: pass\n"
             "print(sorted(m for m in sys.modules if m.startswith('hayase.cli.commands.')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "['hayase.cli.commands.produce']"
