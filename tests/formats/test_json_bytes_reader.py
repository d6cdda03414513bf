"""JsonSerde.bytes_reader (the engine's per-record JSON reading): for every input it either
gives what deserialize gives, or None / an exception (the caller then calls deserialize)."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from hayase.formats.json import JsonSerde
from hayase.sql.plan import Column, Namespace
from hayase.sql.types import BIGINT, BOOLEAN, DOUBLE, STRING

COLUMNS = (Column("PAGE", STRING, Namespace.VALUE), Column("N", BIGINT, Namespace.VALUE),
           Column("X", DOUBLE, Namespace.VALUE), Column("B", BOOLEAN, Namespace.VALUE))
values = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(),
                   st.text(max_size=3), st.lists(st.integers(), max_size=2))
fields = st.sampled_from(["PAGE", "page", "Page", "N", "n", "X", "x", "B", "OTHER"])
objects = st.dictionaries(fields, values, max_size=6)


def _same(serde: JsonSerde, data: bytes) -> bool | None:
    """True: the reader gave deserialize's answer; None: it declined."""
    reader = serde.bytes_reader()
    assert reader is not None
    try:
        got = reader(data)
    except Exception:  # noqa: BLE001 - declined: deserialize decides
        return None
    if got is None:
        return None
    return got == serde.deserialize(data)


def test_the_first_shape_is_read_and_others_declined() -> None:
    serde = JsonSerde(COLUMNS, wrapped=True)
    assert serde.bytes_reader() is None  # nothing read yet
    serde.deserialize(b'{"page": "a", "n": 1, "x": 1.5, "b": true, "user": "u"}')
    assert _same(serde, b'{"page": "b", "n": 2, "x": 0.5, "b": false, "user": "v"}') is True
    assert _same(serde, b'{"user": "v", "b": null, "x": 2, "n": "3", "page": 4}') is True
    for other in (b'{"page": "b", "n": 2, "x": 0.5, "b": false}',  # a field fewer
                  b'{"PAGE": "b", "n": 2, "x": 0.5, "b": false, "user": "v"}',  # other case
                  b'{"page": "b", "n": 2, "x": 0.5, "b": false, "user": "v", "PAGE": "c"}',
                  b'[1]', b'null', b'"text"'):
        assert _same(serde, other) is None


@settings(max_examples=300, deadline=None)
@given(objects, st.lists(objects, min_size=1, max_size=10))
def test_whatever_it_reads_equals_deserialize(first: dict[str, Any],
                                              others: list[dict[str, Any]]) -> None:
    serde = JsonSerde(COLUMNS, wrapped=True)
    try:
        serde.deserialize(orjson.dumps(first))
    except Exception:  # noqa: BLE001 - a first object that does not convert
        return
    if serde.bytes_reader() is None:
        return  # its fields differ only by case: no reader
    for obj in [first, *others]:
        try:
            data = orjson.dumps(obj)
        except TypeError:
            continue
        try:
            expected: Any = serde.deserialize(data)
        except Exception:  # noqa: BLE001 - then the reader must not answer either
            assert _same_or_raises(serde, data)
            continue
        reader = serde.bytes_reader()
        assert reader is not None
        try:
            got = reader(data)
        except Exception:  # noqa: BLE001
            continue
        assert got is None or got == expected


def _same_or_raises(serde: JsonSerde, data: bytes) -> bool:
    reader = serde.bytes_reader()
    assert reader is not None
    try:
        return reader(data) is None
    except Exception:  # noqa: BLE001
        return True


def test_no_value_columns_no_reader() -> None:
    serde = JsonSerde((), wrapped=True)
    assert serde.deserialize(b"{}") == () and serde.deserialize(b'{"a": 1}') == ()
    assert serde.bytes_reader() is None
