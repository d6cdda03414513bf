import struct
from pathlib import Path

from hayase.broker.storage.index import OffsetIndex, TimeIndex


def test_offset_index_persist_load_lookup(tmp_path: Path) -> None:
    idx = OffsetIndex(tmp_path / "00000000000000000100.index", 100)
    for i in range(1, 6):
        idx.append(100 + 10 * i, 1000 * i)
    idx.persist(fsync=False)
    idx.append(170, 7000)
    idx.persist(fsync=True)
    raw = idx.path.read_bytes()
    assert len(raw) == 6 * 8 and struct.unpack_from(">ii", raw, 0) == (10, 1000)  # Kafka's format
    loaded = OffsetIndex(idx.path, 100)
    assert loaded.load(log_size=8000)
    assert list(loaded.positions) == [1000, 2000, 3000, 4000, 5000, 7000]
    assert loaded.lookup(99) == 0 and loaded.lookup(109) == 0
    assert loaded.lookup(110) == 1000 and loaded.lookup(135) == 3000 and loaded.lookup(10**9) == 7000
    assert not OffsetIndex(idx.path, 100).load(log_size=7000)  # points past the log: insane
    loaded.truncate_to_position(3000)
    assert list(loaded.positions) == [1000, 2000]


def test_time_index_only_grows(tmp_path: Path) -> None:
    idx = TimeIndex(tmp_path / "00000000000000000000.timeindex", 0)
    idx.maybe_append(50, 3)
    idx.maybe_append(50, 5)  # not larger: ignored
    idx.maybe_append(40, 6)
    idx.maybe_append(90, 9)
    assert list(idx.timestamps) == [50, 90]
    idx.persist(fsync=False)
    loaded = TimeIndex(idx.path, 0)
    assert loaded.load(2**31 - 1)
    assert loaded.lookup(49) == 0 and loaded.lookup(60) == 3 and loaded.lookup(95) == 9
    assert loaded.last_entry() == (90, 9)
    idx.path.write_bytes(struct.pack(">qi", 90, 1) + struct.pack(">qi", 50, 2))
    assert not TimeIndex(idx.path, 0).load(2**31 - 1)
