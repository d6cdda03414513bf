"""Read-committed receivers (hayase.engine.repartition.ReadCommitted): their pending records
are a key range of their own, so opening one reads only them; state of the earlier layout
(pending records among the other keys) is migrated when the receiver opens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hayase.engine import changelog, repartition
from hayase.engine.joins import _Namespaced
from hayase.engine.record import OutputRecord, Record
from hayase.engine.state import (
    APART,
    META_KEY,
    MemoryStore,
    RocksDBStore,
    StateStore,
    encode,
    range_prefix,
)


class _NoScan(StateStore):
    """A store whose full scan fails: what a receiver may not do when it opens."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner

    def get(self, key: Any, default: Any = None) -> Any:
        return self.inner.get(key, default)

    def put(self, key: Any, value: Any) -> None:
        self.inner.put(key, value)

    def delete(self, key: Any) -> None:
        self.inner.delete(key)

    def items(self) -> Iterator[tuple[Any, Any]]:
        raise AssertionError("the whole store was scanned")

    def range_items(self, name: str) -> Iterator[tuple[Any, Any]]:
        return self.inner.range_items(name)


def _receive(reader: repartition.ReadCommitted, out: OutputRecord) -> list[Any]:
    rec = Record(out.topic, out.partition or 0, 0, out.timestamp, out.key, out.value, ())
    return [payload for payload, _headers in reader.receive(rec)]


def _join_store(path: Path, rows: int) -> RocksDBStore:
    """A join task's store: window rows, and the aggregation's entries in its namespace."""
    store = RocksDBStore(path)
    for i in range(rows):
        store.put(("W", 0, (f"k{i}",), i), [(i, {"V": i})])
        store.put(("agg", ("A", (f"g{i}",))), ((i,), i, False))
    store.commit({"offsets": {("s", 0): rows}})
    return store


def test_reopened_receiver_reads_only_its_pending_range(tmp_path: Path) -> None:
    """A receiver inside a join task's store (the aggregation's namespace) keeps its pending
    records under their range's prefix; reopened on the committed store it finds them
    without a full scan and applies them at the commit marker."""
    store = _join_store(tmp_path / "db", 200)
    upstreams: dict[int, list[Any]] = {}
    reader = repartition.ReadCommitted(_Namespaced(store, "agg"), upstreams)
    up = repartition.Sequencer("rep", 1, 3, 0)
    for m in up.finalize_markers():
        _receive(reader, m)
    assert [_receive(reader, up.forward(b"k", f"r{i}", 0)) for i in range(3)] == [[], [], []]
    store.commit({"upstreams": {u: tuple(v) for u, v in upstreams.items()}})
    store.close()

    store = RocksDBStore(tmp_path / "db")
    try:
        prefix = range_prefix("agg/" + repartition.PENDING)
        raw = [bytes(k) for k in store.db.keys()]  # type: ignore[arg-type]  # noqa: SIM118 - not a dict
        assert len([k for k in raw if k.startswith(prefix)]) == 3
        assert raw[:3] == sorted(k for k in raw if k.startswith(prefix))  # sorted apart
        view = _NoScan(_Namespaced(store, "agg"))
        reader = repartition.ReadCommitted(view, {u: list(v) for u, v in upstreams.items()})
        up.committed = 2
        (marker,) = up.commit_markers()
        assert _receive(reader, marker) == ["r0", "r1"]
        store.commit({})
        assert [k[3] for k, _v in _Namespaced(store, "agg").range_items(
            repartition.PENDING)] == [3]
        # The rest of the store reads as before, the view's range keys mapped back.
        assert sum(1 for k, _ in store.items() if k[0] == "W") == 200
        assert {k for k, _ in _Namespaced(store, "agg").items() if k[0] == APART} == {
            (APART, repartition.PENDING, 3, 3)}
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["memory", "rocksdb"])
def test_state_of_the_earlier_layout_is_migrated(backend: str, tmp_path: Path) -> None:
    """Pending records written by the earlier layout (``("P", upstream, seq)`` keys among the
    others, no layout key, as a changelog of that version restores them) are moved to the
    range once and still apply at their commit marker, in order; the reopened receiver
    then needs no scan."""
    store: StateStore = MemoryStore() if backend == "memory" else RocksDBStore(tmp_path / "d")
    up = repartition.Sequencer("rep", 1, 5, 0)
    up.announced = True
    for i in range(1, 4):
        up.forward(b"k", f"r{i}", 0)
    upstreams = {5: [up.run, 3, 0]}
    # The earlier version's changelog: its entries, then the commit marker.
    entries = [(("P", 5, i), (f"r{i}", ())) for i in range(1, 4)]
    entries.append((("A", ("g",)), ((1,), 0, False)))
    log = [(offset, encode(k), encode(v), None) for offset, (k, v) in enumerate(entries)]
    log.append((len(log), encode(META_KEY), encode({"upstreams": upstreams}), None))
    assert changelog.replay(store, lambda start: [log[start:]]) == len(log)

    reader = repartition.ReadCommitted(store, upstreams)
    assert not [k for k, _ in store.items() if k[0] == "P"]
    assert store.get(("A", ("g",))) == ((1,), 0, False)
    store.commit({"upstreams": upstreams})
    reader = repartition.ReadCommitted(_NoScan(store), upstreams)
    up.committed = 3
    (marker,) = up.commit_markers()
    assert _receive(reader, marker) == ["r1", "r2", "r3"]
    assert not list(store.range_items(repartition.PENDING))
    store.close()
