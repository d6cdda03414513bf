"""`hayase test` over ksql-test-runner's own fixtures (read from the shared corpus, not copied):
the in-scope `correct/` tests pass and every `incorrect/` test fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from hayase.cli.commands.test import run_test
from hayase.testing.conformance import corpus_dir

ROOT = corpus_dir()
# correct/ tests that need GROUP BY, JOIN or AVRO belong to later issues.
PASSING = ["correct/from_docs", "correct/multi_insert_into", "correct/simple_project_filter",
           "correct/stream_no_keys", "test5", "test6"]
FAILING = ["incorrect/empty_input", "incorrect/empty_output", "incorrect/expected_mismatch",
           "incorrect/incorrect_input_format", "incorrect/insert_values",
           "incorrect/missing_field_in_output", "incorrect/second_of_three_stmts_fails"]


def _run(name: str) -> str | None:
    if ROOT is None:
        pytest.skip("ksqlDB conformance corpus not found (set HAYASE_CONFORMANCE_DIR)")
    d = ROOT / "test-runner" / name
    inp = d / "input.json"
    return run_test(d / "statements.sql", inp if inp.exists() else None, d / "output.json")


@pytest.mark.parametrize("name", PASSING)
def test_correct_fixture_passes(name: str) -> None:
    assert _run(name) is None


@pytest.mark.parametrize("name", FAILING)
def test_incorrect_fixture_fails(name: str) -> None:
    reason = _run(name)
    assert reason, "an incorrect test must fail"


def test_failure_names_the_bad_file() -> None:
    reason = _run("incorrect/incorrect_input_format")
    assert reason is not None and "input.json" in reason
    assert Path(__file__).exists()
