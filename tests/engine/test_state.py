"""State stores: the same contract on memory and RocksDB; commits are atomic with metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from hayase.engine.state import META_KEY, MemoryStore, RocksDBStore, StateStore


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
