"""State stores: the same contract on memory and RocksDB; commits are atomic with metadata."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hayase.engine.state import (
    APART,
    META_KEY,
    Changes,
    MemoryStore,
    RocksDBStore,
    StateStore,
    encode,
    range_prefix,
)


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


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(
    st.sampled_from(["put", "delete", "commit", "reopen"]),
    st.sampled_from(["r", "rr", "plain"]), st.integers(0, 4), st.integers(0, 9)), max_size=40))
def test_key_ranges_read_apart_like_a_model(ops: list[tuple[str, str, int, int]]) -> None:
    """Keys ``(APART, name, ...)``: range_items(name) gives exactly the live entries of that
    range (dirty or committed, across reopening, never another range's: "r" is a prefix of
    "rr"), items() and get() see them like any key, and the database keeps them under the
    range's prefix."""
    def key(kind: str, k: int) -> tuple[Any, ...]:
        return ("A", k) if kind == "plain" else (APART, kind, k)

    with tempfile.TemporaryDirectory() as d:
        stores: list[StateStore] = [MemoryStore(), RocksDBStore(Path(d) / "db")]
        model: dict[Any, int] = {}
        try:
            for op, kind, k, v in ops:
                if op == "put":
                    model[key(kind, k)] = v
                    for s in stores:
                        s.put(key(kind, k), v)
                elif op == "delete":
                    model.pop(key(kind, k), None)
                    for s in stores:
                        s.delete(key(kind, k))
                elif op == "commit":
                    for s in stores:
                        s.commit({})
                else:
                    stores[1].commit({})
                    stores[1].close()
                    stores[1] = RocksDBStore(Path(d) / "db")
            for s in stores:
                for name in ("r", "rr"):
                    assert dict(s.range_items(name)) == {
                        k: v for k, v in model.items() if k[:2] == (APART, name)}
                assert dict(s.items()) == model
                assert all(s.get(k) == v for k, v in model.items())
            rocks = stores[1]
            rocks.commit({})
            assert isinstance(rocks, RocksDBStore)
            raw = {bytes(k) for k in rocks.db.keys()}  # type: ignore[arg-type]  # noqa: SIM118
            assert raw - {encode(META_KEY)} == {
                range_prefix(k[1]) + encode(k) if k[0] == APART else encode(k) for k in model}
        finally:
            stores[1].close()
