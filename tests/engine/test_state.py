"""State stores: the same contract on memory and RocksDB; commits are atomic with metadata."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hayase.engine.state import META_KEY, Changes, MemoryStore, RocksDBStore, StateStore, encode


@pytest.fixture(params=["memory", "rocksdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    if request.param == "memory":
        return MemoryStore()
    return RocksDBStore(tmp_path / "db")


def test_put_get_delete_and_commit_returns_changes(store: StateStore) -> None:
    store.put(("A", ("k",)), [1, 2])
    store.put(("A", ("j",)), 5)
    store.delete(("A", ("j",)))
    assert store.get(("A", ("k",))) == [1, 2]
    assert store.get(("A", ("j",))) is None
    changes = store.commit({"offsets": {("t", 0): 3}})
    assert changes[-1] == (META_KEY, {"offsets": {("t", 0): 3}})
    assert (("A", ("k",)), [1, 2]) in changes
    assert dict(store.items()) == {("A", ("k",)): [1, 2]}
    assert store.meta["offsets"] == {("t", 0): 3}
    assert store.commit({"offsets": {}}) == [(META_KEY, {"offsets": {}})]


def test_rocksdb_keeps_only_committed_state(tmp_path: Path) -> None:
    s = RocksDBStore(tmp_path / "db")
    s.put(("A", (1,)), 10)
    s.commit({"offsets": {("t", 0): 1}})
    s.put(("A", (1,)), 11)  # not committed: lost on crash
    s.close()
    s = RocksDBStore(tmp_path / "db")
    assert s.get(("A", (1,))) == 10
    assert s.meta["offsets"] == {("t", 0): 1}
    s.close()


def test_apply_changelog_entries(store: StateStore) -> None:
    store.apply([(("A", (1,)), 3), (("A", (2,)), None), (META_KEY, {"stream_time": 7})])
    assert store.get(("A", (1,))) == 3
    assert store.meta == {"stream_time": 7}


def _ops() -> Any:
    key = st.integers(0, 6)
    return st.lists(st.one_of(
        st.tuples(st.just("put"), key, st.integers(0, 99)),
        st.tuples(st.just("delete"), key, st.none()),
        st.tuples(st.just("get"), key, st.none()),
        st.tuples(st.just("commit"), st.none(), st.none()),
        st.tuples(st.just("reopen"), st.none(), st.none()),  # a store on existing data
    ), max_size=40)


@settings(max_examples=60, deadline=None)
@given(_ops())
def test_rocksdb_commit_hands_the_changelog_its_encodings_and_before_images(ops: Any) -> None:
    """What RocksDBStore.commit attaches to the changes (Changes.encoded / .before) is exactly
    what the changelog would compute itself: encode() of each entry and committed(key) read
    before the store writes."""
    with tempfile.TemporaryDirectory() as d:
        s = RocksDBStore(Path(d) / "db")
        seen: list[int] = []

        def check(changes: list[tuple[Any, Any]]) -> None:
            assert isinstance(changes, Changes)
            assert changes.encoded is not None and changes.before is not None
            entries = changes[:-1]
            assert changes.encoded == [(encode(k), None if v is None else encode(v))
                                       for k, v in entries]
            assert changes.before == [s.committed(k) for k, _v in entries]
            seen.append(sum(1 for b in changes.before if b is not None))

        try:
            for op, k, v in [*ops, ("commit", None, None)]:
                if op == "put":
                    s.put(("A", k), v)
                elif op == "delete":
                    s.delete(("A", k))
                elif op == "get":
                    s.get(("A", k))
                elif op == "commit":
                    s.commit({"n": len(seen)}, check)
                else:
                    s.close()
                    s = RocksDBStore(Path(d) / "db")
        finally:
            s.close()
        assert len(seen) >= 1
