"""CI guard: every case in qtt_passing.txt must keep passing.

The list is written by `python -m hayase.testing.conformance --write-passing
tests/conformance/qtt_passing.txt`. The corpus is read from $HAYASE_CONFORMANCE_DIR or
<repo>/../shared/conformance/ksql and never copied into the repository.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

import pytest

from hayase.testing.conformance import corpus_dir, read_passing, run_case
from hayase.testing.qtt import TestCase, load_qtt_file

PASSING = Path(__file__).with_name("qtt_passing.txt")


@cache
def _cases() -> dict[str, TestCase]:
    root = corpus_dir()
    assert root is not None
    out: dict[str, TestCase] = {}
    for f in sorted((root / "qtt").glob("*.json")):
        for case in load_qtt_file(f):
            out[case.name] = case
    return out


@pytest.mark.parametrize("name", read_passing(PASSING))
def test_listed_case_passes(name: str) -> None:
    if corpus_dir() is None:
        pytest.skip("ksqlDB conformance corpus not found (set HAYASE_CONFORMANCE_DIR)")
    logging.getLogger("hayase.processing").setLevel(logging.ERROR)
    case = _cases().get(name)
    assert case is not None, f"{name} is listed but not in the corpus"
    outcome = run_case(case)
    assert outcome.passed, outcome.reason


def test_passing_list_is_sorted_and_unique() -> None:
    names = read_passing(PASSING)
    assert names == sorted(set(names))
