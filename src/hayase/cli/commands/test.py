"""`hayase test`: ksql-test-runner's contract with no broker.

    hayase test --sql-file S [--input-file I] --output-file O

Runs the statements (SET lines included), pipes the inputs through the persistent queries and
compares the output topics like ksqlDB does. Prints ``>>> Test passed!`` and exits 0, or
``>>>>> Test failed: <first difference>`` and exits 1.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click


def run_test(sql_file: Path, input_file: Path | None, output_file: Path) -> str | None:
    """None when the test passes, else the reason it failed."""
    from hayase.testing.conformance import check_outputs
    from hayase.testing.driver import TestDriver
    from hayase.testing.qtt import load_runner_files

    try:
        case = load_runner_files(sql_file, input_file, output_file)
    except (OSError, ValueError) as e:
        return f"Invalid test files: {e}"
    try:
        driver = TestDriver(immediate=False)
        for statement in case.statements:
            driver.execute(statement)
        driver.run_case(case.inputs)
    except Exception as e:  # a KsqlError, or e.g. a format hayase does not support: report it
        return f"{type(e).__name__}: {e}"
    return check_outputs(driver, case)


@click.command("test")
@click.option("--sql-file", "-s", "sql_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="SQL statements to run.")
@click.option("--input-file", "-i", "input_file",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='JSON file {"inputs": [records]}.')
@click.option("--output-file", "-o", "output_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='JSON file {"outputs": [records]} with the expected records.')
@click.option("--extension-dir", "-e", "extension_dir", type=click.Path(path_type=Path),
              help="Accepted for ksql-test-runner compatibility; UDF jars are not loaded.")
def command(sql_file: Path, input_file: Path | None, output_file: Path,
            extension_dir: Path | None) -> None:
    """Run a ksql-test-runner test: SQL file, input records, expected output records."""
    logging.getLogger("hayase.processing").setLevel(logging.ERROR)
    reason = run_test(sql_file, input_file, output_file)
    if reason is None:
        click.echo(">>> Test passed!")
        sys.exit(0)
    click.echo(f">>>>> Test failed: {reason}")
    sys.exit(1)
