"""The analysed grammar is cached in the user's cache folder under a name that hashes what it
depends on, and a parser loaded from it parses like a freshly built one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hayase.sql import parser

SQL = "CREATE STREAM S (ID INT KEY, V STRING) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON');"


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    parser._parser.cache_clear()
    yield tmp_path / "hayase"
    parser._parser.cache_clear()  # the next test builds from its own environment


def test_the_first_build_writes_the_cache_and_the_next_loads_it(cache_home: Path) -> None:
    fresh = parser.parse(SQL)
    assert fresh[0].elements[0].column == 18  # positions survive the cache too
    files = list(cache_home.glob("sql-grammar-*.lark"))
    assert len(files) == 1 and files[0].stat().st_size > 0
    assert not list(cache_home.glob("*.partial"))
    parser._parser.cache_clear()
    stamp = files[0].stat().st_mtime_ns
    assert repr(parser.parse(SQL)) == repr(fresh)  # AST nodes compare by identity
    assert files[0].stat().st_mtime_ns == stamp  # loaded, not rewritten


def test_another_grammar_gets_another_file(cache_home: Path) -> None:
    assert parser._grammar_cache("a: \"x\"") != parser._grammar_cache("a: \"y\"")


def test_without_a_writable_cache_folder_it_still_parses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    parser._parser.cache_clear()
    try:
        assert parser._grammar_cache("g") is None
        assert len(parser.parse(SQL)) == 1
    finally:
        parser._parser.cache_clear()


def test_a_damaged_cache_file_is_rebuilt(cache_home: Path) -> None:
    parser.parse(SQL)
    (cached,) = cache_home.glob("sql-grammar-*.lark")
    cached.write_bytes(b"\x80\x04half a pickle")
    parser._parser.cache_clear()
    assert len(parser.parse(SQL)) == 1
    parser._parser.cache_clear()
    assert cached.read_bytes() != b"\x80\x04half a pickle"
    assert len(parser.parse(SQL)) == 1
