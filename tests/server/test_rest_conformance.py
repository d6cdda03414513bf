"""CI guard: every case in rest_passing.txt keeps passing against `hayase server`'s REST API.

The list is written by `python -m hayase.server.rest_conformance --write-passing
tests/server/rest_passing.txt`. The corpus is read from $HAYASE_CONFORMANCE_DIR or
<repo>/../shared/conformance/ksql (never copied into the repository).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from hayase.server.rest_conformance import HttpServer, RestCase, default_files, load_cases, run_case
from hayase.testing.conformance import read_passing

PASSING = Path(__file__).with_name("rest_passing.txt")


@cache
def _cases() -> dict[str, RestCase]:
    return {c.full_name: c for c in load_cases(default_files())}


@pytest.fixture(scope="module")
def http() -> Iterator[HttpServer]:
    with HttpServer() as server:
        yield server


@pytest.mark.parametrize("name", read_passing(PASSING))
def test_listed_case_passes(http: HttpServer, name: str) -> None:
    if not default_files():
        pytest.skip("ksqlDB conformance corpus not found (set HAYASE_CONFORMANCE_DIR)")
    logging.getLogger("hayase.processing").setLevel(logging.ERROR)
    case = _cases().get(name)
    assert case is not None, f"{name} is listed but not in the corpus"
    result = run_case(http, case)
    assert result.passed, result.reason
