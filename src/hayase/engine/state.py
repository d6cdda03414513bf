"""State stores for stateful operators: one small interface, two backends.

A store maps Python keys (tuples) to Python values (accumulators, rows: plain values). The
operators read and write through :class:`StateStore`; what happens on ``commit`` is the
backend's business:

- :class:`MemoryStore`: a dict (the test driver, ``hayase test``, the benchmark).
- :class:`RocksDBStore` (rocksdict): a read-through cache over a RocksDB database. Writes
  collect in a dirty map; ``commit(meta)`` writes them *and* the metadata (input offsets the
  state reflects, stream time) in one RocksDB WriteBatch, so the database always holds a state
  together with exactly the offsets it reflects.

Both hand the dirty entries to the caller on commit (``commit`` returns them) so the runtime can
write the same entries to the store's changelog topic (see :mod:`hayase.engine.changelog`).
Keys and values are encoded with pickle (deterministic for the plain values stored here).

A key ``(APART, name, ...)`` belongs to the key range ``name``, which
:meth:`StateStore.range_items` reads without the rest of the store: RocksDB keeps it under a
prefix of its own that sorts before every pickled key (a read-committed receiver's pending
rows, read once per task opening, inside a join task's store). The changelog carries such
keys pickled like any other.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

META_KEY: tuple[str] = ("__meta__",)
APART = "\x00"  # first element of a key kept in a range of its own (see range_items)
_DELETED = object()


def is_apart(key: Any) -> bool:
    """Whether ``key`` is ``(APART, name, ...)``."""
    return key.__class__ is tuple and len(key) > 1 and key[0] == APART


def range_prefix(name: str) -> bytes:
    """The database key prefix of range ``name``: a pickle starts with 0x80, so this sorts
    before every other key, and the terminating NUL keeps ranges apart from each other."""
    if "\x00" in name:
        raise ValueError(f"a key range name cannot contain NUL: {name!r}")
    return b"\x00" + name.encode() + b"\x00"


def db_key(key: Any, raw: bytes) -> bytes:
    """The database key of ``key`` (``raw``: its pickle)."""
    return range_prefix(key[1]) + raw if is_apart(key) else raw


def key_of(raw: bytes) -> Any:
    """The key of a database key (:func:`db_key`'s inverse)."""
    if raw[:1] == b"\x00":
        raw = raw[raw.index(b"\x00", 1) + 1:]
    return decode(raw)


def encode(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=5)


def decode(data: bytes) -> Any:
    return pickle.loads(data)  # noqa: S301 - our own changelog / database, never user input


class Changes(list):  # type: ignore[type-arg]
    """A commit's changed entries ``(key, value or None for a delete)``, metadata last. A store
    may attach what it computes anyway, so that the changelog does not compute it again:
    ``encoded``, each entry's (key bytes, value bytes or None), and ``before``, each entry's
    before image (:meth:`StateStore.committed`), both without the metadata."""

    encoded: list[tuple[bytes, bytes | None]] | None = None
    before: list[bytes | None] | None = None


class StateStore:
    """Interface: get / put / delete / items plus commit with metadata."""

    def get(self, key: Any, default: Any = None) -> Any:
        raise NotImplementedError

    def put(self, key: Any, value: Any) -> None:
        raise NotImplementedError

    def delete(self, key: Any) -> None:
        raise NotImplementedError

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Every (key, value) except the metadata entry."""
        raise NotImplementedError

    def range_items(self, name: str) -> Iterator[tuple[Any, Any]]:
        """Every entry whose key is ``(APART, name, ...)``, in no particular order. A store
        that keeps ranges apart (RocksDB) reads only those; this default scans."""
        head = (APART, name)
        return ((k, v) for k, v in self.items() if k.__class__ is tuple and k[:2] == head)

    @property
    def meta(self) -> dict[str, Any]:
        """Offsets (``{"offsets": {(topic, partition): next offset}}``) and stream time."""
        return dict(self.get(META_KEY) or {})

    def commit(self, meta: dict[str, Any],
               before_write: Callable[[list[tuple[Any, Any]]], None] | None = None,
               ) -> list[tuple[Any, Any]]:
        """Make the writes since the last commit durable together with ``meta``; returns the
        changed entries ``(key, value or None for a delete)``, metadata last.
        ``before_write(changes)`` runs before anything is written locally (the runtime writes
        the changelog there, so the changelog is never behind the local database)."""
        raise NotImplementedError

    def committed(self, key: Any) -> bytes | None:
        """The entry's encoded value as of the last commit (None: absent): the before image
        the changelog keeps with each entry (see :mod:`hayase.engine.changelog`)."""
        raise NotImplementedError

    def hot_maps(self) -> tuple[dict[Any, Any], dict[Any, Any]] | None:
        """``(cache, dirty)`` for an operator's per-record loop, or None: ``cache.get(k)`` is a
        live entry's value (None: not cached, ask :meth:`get`), and ``cache[k] = dirty[k] = v``
        is exactly ``put(k, v)`` (two dict stores instead of a method call per record). Valid
        until the next commit."""
        return None

    def apply(self, entries: list[tuple[Any, Any]]) -> None:
        """Apply committed entries (from a changelog) and make them durable."""
        for key, value in entries:
            if value is None:
                self.delete(key)
            else:
                self.put(key, value)
        meta = dict(self.get(META_KEY) or {})
        self.commit(meta)

    def close(self) -> None:
        pass


class TaskStores:
    """What a stateful query does with its tasks' states (``states``: task -> a state holding
    its ``store``) when they leave it: each closes its store."""

    states: dict[int, Any]

    def close_partition(self, partition: int) -> None:
        st = self.states.pop(partition, None)
        if st is not None:
            st.store.close()

    def close(self) -> None:
        for p in list(self.states):
            self.close_partition(p)


class MemoryStore(StateStore):
    def __init__(self) -> None:
        self.data: dict[Any, Any] = {}
        self._dirty: dict[Any, Any] = {}
        self._committed: dict[Any, Any] = {}  # as of the last commit (updated at commits)

    def get(self, key: Any, default: Any = None) -> Any:
        return self.data.get(key, default)

    def put(self, key: Any, value: Any) -> None:
        self.data[key] = value
        self._dirty[key] = value

    def delete(self, key: Any) -> None:
        if self.data.pop(key, None) is not None or key in self._dirty:
            self._dirty[key] = None

    def hot_maps(self) -> tuple[dict[Any, Any], dict[Any, Any]] | None:
        return self.data, self._dirty

    def items(self) -> Iterator[tuple[Any, Any]]:
        return ((k, v) for k, v in self.data.items() if k != META_KEY)

    def commit(self, meta: dict[str, Any],
               before_write: Callable[[list[tuple[Any, Any]]], None] | None = None,
               ) -> list[tuple[Any, Any]]:
        self._dirty.pop(META_KEY, None)
        changes = list(self._dirty.items())
        changes.append((META_KEY, meta))
        if before_write is not None:
            before_write(changes)
        self.data[META_KEY] = meta
        committed = self._committed
        for k, v in changes:
            if v is None:
                committed.pop(k, None)
            else:
                committed[k] = v
        self._dirty = {}
        return changes

    def committed(self, key: Any) -> bytes | None:
        value = self._committed.get(key)
        return None if value is None else encode(value)


class RocksDBStore(StateStore):
    """RocksDB through rocksdict, with a cache in front (Kafka Streams' record cache: reads and
    writes between commits never touch the database) and a dirty map per commit.

    The cache holds every live entry read or written (deleted entries leave it). A store
    opened on an empty database is *complete*: every entry of the database is then in the
    cache, so a cache miss is an absent key without a database read. Keys known to be absent
    from the database (``_absent``) that are written and deleted again before a commit never
    reach the database nor the changelog (a window opened and closed between two commits)."""

    def __init__(self, path: Path | str) -> None:
        from rocksdict import Options, Rdict

        Path(path).mkdir(parents=True, exist_ok=True)
        opts = Options(raw_mode=True)
        self.path = str(path)
        self.db = Rdict(self.path, options=opts)
        self._cache: dict[Any, Any] = {}
        self._dirty: dict[Any, Any] = {}
        self._absent: set[Any] = set()  # not in the database (as of the last commit)
        it = self.db.iter()
        it.seek_to_first()
        self._complete = not it.valid()
        del it

    def get(self, key: Any, default: Any = None) -> Any:
        value = self._cache.get(key, _DELETED)
        if value is _DELETED:
            value = self._load(key)
        return default if value is None else value

    def _load(self, key: Any) -> Any:
        """A key not in the cache: deleted since the last commit, absent, or in the database
        only (a store opened on existing data)."""
        if key in self._dirty:
            return None  # deleted since the last commit
        if self._complete:
            value = None
        else:
            raw = self.db.get(db_key(key, encode(key)))
            value = None if raw is None else decode(raw)
        if value is None:
            self._absent.add(key)
        else:
            self._cache[key] = value
        return value

    def put(self, key: Any, value: Any) -> None:
        self._cache[key] = value
        self._dirty[key] = value

    def hot_maps(self) -> tuple[dict[Any, Any], dict[Any, Any]] | None:
        return self._cache, self._dirty

    def delete(self, key: Any) -> None:
        self._cache.pop(key, None)
        if key in self._absent:
            self._dirty.pop(key, None)  # never committed: nothing to delete
        else:
            self._dirty[key] = None

    def items(self) -> Iterator[tuple[Any, Any]]:
        seen: set[Any] = set()
        for k, v in list(self._dirty.items()):
            seen.add(k)
            if v is not None and k != META_KEY:
                yield k, v
        for raw_k, raw_v in self.db.items():
            k = key_of(bytes(raw_k))  # type: ignore[arg-type]
            if k in seen or k == META_KEY:
                continue
            yield k, decode(bytes(raw_v))  # type: ignore[arg-type]

    def range_items(self, name: str) -> Iterator[tuple[Any, Any]]:
        prefix = range_prefix(name)
        seen: set[Any] = set()
        for k, v in list(self._dirty.items()):
            if is_apart(k) and k[1] == name:
                seen.add(k)
                if v is not None:
                    yield k, v
        it = self.db.iter()
        it.seek(prefix)
        while it.valid():
            raw_k = bytes(it.key())
            if not raw_k.startswith(prefix):
                break
            k = decode(raw_k[len(prefix):])
            if k not in seen:
                yield k, decode(bytes(it.value()))
            it.next()

    def commit(self, meta: dict[str, Any],
               before_write: Callable[[list[tuple[Any, Any]]], None] | None = None,
               ) -> list[tuple[Any, Any]]:
        from rocksdict import WriteBatch

        self._dirty.pop(META_KEY, None)
        items = list(self._dirty.items())
        # Each entry encoded once: the same bytes go to the changelog and to the database.
        encoded = [(encode(k), None if v is None else encode(v)) for k, v in items]
        changes = Changes(items)
        changes.append((META_KEY, meta))
        if before_write is not None:
            changes.encoded = encoded
            changes.before = self._before_images(items, encoded)
            before_write(changes)
        batch = WriteBatch(raw_mode=True)
        put, delete = batch.put, batch.delete
        for (k, _v), (raw_key, raw_value) in zip(items, encoded, strict=True):
            if is_apart(k):
                raw_key = db_key(k, raw_key)
            if raw_value is None:
                delete(raw_key)
            else:
                put(raw_key, raw_value)
        put(encode(META_KEY), encode(meta))  # after before_write, which may add to it
        self.db.write(batch)  # atomic: the entries and the offsets they reflect
        self._cache[META_KEY] = meta
        self._dirty = {}
        self._absent.clear()  # what was written is in the database now
        return changes

    def _before_images(self, items: list[tuple[Any, Any]],
                       encoded: list[tuple[bytes, bytes | None]]) -> list[bytes | None]:
        """What :meth:`committed` gives for each entry, from the keys' bytes already encoded
        (rocksdict's multi-get is slower than a get per key)."""
        absent, get = self._absent, self.db.get
        images: list[bytes | None] = []
        for (k, _v), (raw_key, _raw_value) in zip(items, encoded, strict=True):
            raw: Any = None if k in absent else get(db_key(k, raw_key))
            images.append(None if raw is None else bytes(raw))
        return images

    def committed(self, key: Any) -> bytes | None:
        if key in self._absent:
            return None  # known absent as of the last commit: no database read
        raw = self.db.get(db_key(key, encode(key)))  # what the last commit wrote
        return None if raw is None else bytes(raw)  # type: ignore[arg-type]

    def close(self) -> None:
        self.db.close()
