"""Run `hayase` commands in-process with click's CliRunner against a broker."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

from hayase.cli.main import cli

Run = Callable[..., Result]


@pytest.fixture
def hayase(kafka) -> Run:  # noqa: ANN001 - the shared `kafka` fixture
    """hayase("topic", "list", input=...) with --bootstrap-servers pointing at `kafka`."""
    runner = CliRunner()

    def run(*args: str, input: bytes | str | None = None, bootstrap: bool = True) -> Result:
        argv = list(args)
        if bootstrap:
            argv += ["--bootstrap-servers", kafka.bootstrap_servers]
        return runner.invoke(cli, argv, input=input, catch_exceptions=False)

    return run
