"""ARRAY and MAP functions, including the lambda functions TRANSFORM, FILTER and REDUCE."""

from __future__ import annotations

from typing import Any

from hayase.sql.errors import KsqlRuntimeError
from hayase.sql.functions import (
    BOOLEAN,
    INTEGER,
    STRING,
    Bound,
    FunctionArgError,
    Udf,
    ambiguous,
    format_types,
    register,
)
from hayase.sql.functions.misc import java_order
from hayase.sql.types import (
    BIGINT,
    DOUBLE,
    NULL,
    ArrayType,
    MapType,
    SqlType,
    array_of,
    map_of,
    widen_numeric,
)


def _fail(name: str, types: list[SqlType]) -> FunctionArgError:
    return FunctionArgError(f"Function '{name.lower()}' does not accept parameters "
                            f"({format_types(types)}).")


def _array_arg(name: str, types: list[SqlType], n: int) -> ArrayType:
    if len(types) != n or not isinstance(types[0], ArrayType) and types[0].base != "NULL":
        raise _fail(name, types)
    t = types[0]
    return t if isinstance(t, ArrayType) else array_of(None)


def _fn(name: str, arity: tuple[int, ...], ret: Any, impl: Any, nulls: bool = True,
        check: Any = None) -> None:
    def bind(types: list[SqlType], literals: list[Any]) -> Bound:
        if len(types) not in arity:
            raise _fail(name, types)
        if check is not None and not check(types):
            raise _fail(name, types)
        return Bound(ret(types) if callable(ret) else ret, impl, nulls)
    register(Udf(name, bind, category="ARRAY" if name.startswith("ARRAY") else "MAP"))


def _is_array(t: SqlType) -> bool:
    return isinstance(t, ArrayType) or t.base == "NULL"


def _is_map(t: SqlType) -> bool:
    return isinstance(t, MapType) or t.base == "NULL"


def _elem(t: SqlType) -> SqlType:
    return (t.element or NULL) if isinstance(t, ArrayType) else NULL


def _same(types: list[SqlType]) -> SqlType:
    return types[0]


def _array_length(a: list[Any]) -> int:
    return len(a)


_fn("ARRAY_LENGTH", (1,), INTEGER, _array_length, check=lambda t: _is_array(t[0]))
_fn("ARRAY_CONTAINS", (2,), BOOLEAN, lambda a, v: v in a, nulls=False,
    check=lambda t: _is_array(t[0]))


def _array_contains(a: list[Any] | None, v: Any) -> bool | None:
    if a is None:
        return False
    return v in a


_fn("ARRAY_CONTAINS", (2,), BOOLEAN, _array_contains, nulls=False, check=lambda t: _is_array(t[0]))


def _distinct(a: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in a:
        if v not in out:
            out.append(v)
    return out


_fn("ARRAY_DISTINCT", (1,), _same, _distinct, check=lambda t: _is_array(t[0]))


def _array_max(a: list[Any]) -> Any:
    vals = [v for v in a if v is not None]
    return max(vals, key=java_order) if vals else None


def _array_min(a: list[Any]) -> Any:
    vals = [v for v in a if v is not None]
    return min(vals, key=java_order) if vals else None


_fn("ARRAY_MAX", (1,), lambda t: _elem(t[0]), _array_max, check=lambda t: _is_array(t[0]))
_fn("ARRAY_MIN", (1,), lambda t: _elem(t[0]), _array_min, check=lambda t: _is_array(t[0]))


def _array_sort(a: list[Any], direction: str = "ASC") -> list[Any] | None:
    d = direction.upper()
    if d not in ("ASC", "ASCENDING", "DESC", "DESCENDING"):
        return None
    vals = sorted((v for v in a if v is not None), key=java_order, reverse=d.startswith("DESC"))
    nulls = [None] * (len(a) - len(vals))
    return vals + nulls


_fn("ARRAY_SORT", (1, 2), _same, _array_sort, check=lambda t: _is_array(t[0]))


def _array_remove(a: list[Any] | None, v: Any) -> list[Any] | None:
    if a is None:
        return None
    return [x for x in a if x != v]


_fn("ARRAY_REMOVE", (2,), _same, _array_remove, nulls=False, check=lambda t: _is_array(t[0]))


def _union(a: list[Any], b: list[Any]) -> list[Any]:
    return _distinct(a + b)


def _intersect(a: list[Any], b: list[Any]) -> list[Any]:
    return [v for v in _distinct(a) if v in b]


def _except(a: list[Any], b: list[Any]) -> list[Any]:
    return [v for v in _distinct(a) if v not in b]


def _concat(a: list[Any] | None, b: list[Any] | None) -> list[Any] | None:
    if a is None and b is None:
        return None
    return (a or []) + (b or [])


def _two_arrays(t: list[SqlType]) -> bool:
    return len(t) == 2 and _is_array(t[0]) and _is_array(t[1])


def _first_array(t: list[SqlType]) -> SqlType:
    return t[0] if isinstance(t[0], ArrayType) else t[1]


_fn("ARRAY_UNION", (2,), _first_array, _union, check=_two_arrays)
_fn("ARRAY_INTERSECT", (2,), _first_array, _intersect, check=_two_arrays)
_fn("ARRAY_EXCEPT", (2,), _first_array, _except, check=_two_arrays)
_fn("ARRAY_CONCAT", (2,), _first_array, _concat, nulls=False, check=_two_arrays)


def _array_join(a: list[Any], delim: str = ",") -> str:
    from hayase.sql.runtime import java_double_str

    def s(v: Any) -> str:
        if v is None:
            return "null"
        if isinstance(v, (list, dict, bytes)):
            # ksqlDB joins only primitive elements; anything else fails the call.
            raise KsqlRuntimeError(f"error: hit element of type {type(v).__name__} which is "
                                   "currently not supported")
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return java_double_str(v)
        return str(v)
    return delim.join(s(v) for v in a)


def _array_join_nullable(a: list[Any] | None, delim: str | None = ",") -> str | None:
    if a is None:
        return None
    return _array_join(a, "" if delim is None else delim)


_fn("ARRAY_JOIN", (1, 2), STRING, _array_join_nullable, nulls=False,
    check=lambda t: _is_array(t[0]))


def _slice(a: list[Any] | None, start: int | None, end: int | None) -> list[Any] | None:
    """List.subList(from - 1, to): a null bound is the array's end; a bound outside the array
    (or a start past the end) makes the result null."""
    if a is None:
        return None
    lo = 0 if start is None else start - 1
    hi = len(a) if end is None else end
    if lo < 0 or hi > len(a) or lo > hi:
        return None
    return a[lo:hi]


_fn("SLICE", (3,), _same, _slice, nulls=False, check=lambda t: _is_array(t[0]))


def _generate_series(start: int, end: int, step: int | None = None) -> list[int]:
    if step is None:
        step = 1 if end - start > 0 else -1  # two arguments count down when end < start
    if step == 0:
        from hayase.sql.errors import KsqlRuntimeError

        raise KsqlRuntimeError("GENERATE_SERIES step cannot be zero")
    if (end - start) * step < 0:
        from hayase.sql.errors import KsqlRuntimeError

        raise KsqlRuntimeError("GENERATE_SERIES step has wrong sign")
    return list(range(start, end + (1 if step > 0 else -1), step))


def _series_type(types: list[SqlType]) -> SqlType:
    """ARRAY<BIGINT> when the start or the end is a BIGINT (the long overload), else INT."""
    from hayase.sql.types import BIGINT

    return array_of(BIGINT if any(t.base == "BIGINT" for t in types[:2]) else INTEGER)


_fn("GENERATE_SERIES", (2, 3), _series_type, _generate_series,
    check=lambda t: all(x.base in ("INTEGER", "BIGINT", "NULL") for x in t[:2])
    and all(x.base in ("INTEGER", "NULL") for x in t[2:]))

# --------------------------------------------------------------------------- maps

_fn("MAP_KEYS", (1,), lambda t: array_of(t[0].key if isinstance(t[0], MapType) else None),
    lambda m: list(m.keys()), check=lambda t: _is_map(t[0]))
_fn("MAP_VALUES", (1,), lambda t: array_of(t[0].value if isinstance(t[0], MapType) else None),
    lambda m: list(m.values()), check=lambda t: _is_map(t[0]))


def _map_union(a: dict[Any, Any] | None, b: dict[Any, Any] | None) -> dict[Any, Any] | None:
    if a is None and b is None:
        return None
    out = dict(a or {})
    out.update(b or {})
    return out


_fn("MAP_UNION", (2,), lambda t: t[0] if isinstance(t[0], MapType) else t[1], _map_union,
    nulls=False, check=lambda t: _is_map(t[0]) and _is_map(t[1]))


def _as_map(keys: list[Any], values: list[Any]) -> dict[Any, Any]:
    """One entry per key; a key past the end of ``values`` maps to null."""
    return {k: values[i] if i < len(values) else None for i, k in enumerate(keys)}


_fn("AS_MAP", (2,), lambda t: map_of(_elem(t[0]), _elem(t[1])), _as_map,
    check=lambda t: _is_array(t[0]) and _is_array(t[1]))


def _entries(m: dict[Any, Any], sort: bool) -> list[dict[str, Any]]:
    if any(not isinstance(k, str) for k in m):
        # The struct's K field is a STRING: Struct.put refuses another key (DataException).
        raise KsqlRuntimeError("Invalid Java object for schema with type STRING: a map key of "
                               "another type in ENTRIES")
    items = sorted(m.items(), key=lambda kv: java_order(kv[0])) if sort else list(m.items())
    return [{"K": k, "V": v} for k, v in items]


# ksqlDB's Entries UDF has one overload per value type: MAP<STRING, INT | BIGINT | DOUBLE |
# BOOLEAN | STRING>.  Its overload matching (ParamTypes.areCompatible) compares a map's value
# type only, not its key, and in its second pass widens a number (a DECIMAL value to DOUBLE).
_ENTRIES_WIDENING = {"INTEGER": INTEGER, "BIGINT": BIGINT, "DECIMAL": DOUBLE,
                     "DOUBLE": DOUBLE, "BOOLEAN": BOOLEAN, "STRING": STRING}


def _entries_bind(types: list[SqlType], literals: list[Any]) -> Bound:
    from hayase.sql.types import struct_of

    if len(types) == 2 and types[0].base == "NULL" and types[1].base in ("BOOLEAN", "NULL"):
        raise ambiguous("entries", types)
    value = types[0].value if len(types) == 2 and isinstance(types[0], MapType) else None
    vt = _ENTRIES_WIDENING.get(value.base) if value is not None else None
    if value is None or vt is None or types[1].base not in ("BOOLEAN", "NULL"):
        raise _fail("ENTRIES", types)
    if vt.base == value.base:
        return Bound(array_of(struct_of([("K", STRING), ("V", vt)])), _entries)
    return Bound(array_of(struct_of([("K", STRING), ("V", vt)])),
                 lambda m, sort: _entries({k: float(v) if v is not None else None
                                           for k, v in m.items()}, sort))


register(Udf("ENTRIES", _entries_bind, category="MAP"))

# --------------------------------------------------------------------------- lambdas


def _predicate(v: Any) -> bool:
    """A lambda's Boolean unboxed, as Java does: null fails the call."""
    if v is None:
        raise KsqlRuntimeError("The lambda returned null where a BOOLEAN was needed")
    return bool(v)


def _to_map(entries: Any) -> dict[Any, Any]:
    """Collectors.toMap: a repeated key or a null value fails the call."""
    out: dict[Any, Any] = {}
    for k, v in entries:
        if k in out:
            raise KsqlRuntimeError(f"Duplicate key {k}")
        if v is None:
            raise KsqlRuntimeError(f"The map value for key {k} is null")
        out[k] = v
    return out


def _transform_map(m: dict[Any, Any], fk: Any, fv: Any) -> dict[Any, Any]:
    return _to_map((fk(k, v), fv(k, v)) for k, v in m.items())


def _transform_params(types: list[SqlType], index: int) -> list[SqlType]:
    c = types[0] if types else NULL
    if isinstance(c, ArrayType):
        return [c.element or NULL]
    if isinstance(c, MapType):
        return [c.key or NULL, c.value or NULL]
    raise FunctionArgError("TRANSFORM requires an ARRAY or MAP as its first argument")


def _transform_bind(types: list[SqlType], literals: list[Any]) -> Bound:
    c = types[0] if types else NULL
    if isinstance(c, ArrayType) and len(types) == 2:
        return Bound(array_of(getattr(types[1], "returns", NULL)),
                     lambda a, f: [f(x) for x in a])
    if isinstance(c, MapType) and len(types) == 3:
        return Bound(map_of(getattr(types[1], "returns", NULL), getattr(types[2], "returns", NULL)),
                     _transform_map)
    raise _fail("TRANSFORM", types)


register(Udf("TRANSFORM", _transform_bind, lambda_params=_transform_params, category="LAMBDA"))


def _filter_bind(types: list[SqlType], literals: list[Any]) -> Bound:
    c = types[0] if types else NULL
    if len(types) == 2 and getattr(types[1], "returns", NULL).base not in ("BOOLEAN", "NULL"):
        raise FunctionArgError("FILTER lambda must return a BOOLEAN")
    if isinstance(c, ArrayType) and len(types) == 2:
        return Bound(c, lambda a, f: [x for x in a if _predicate(f(x))])
    if isinstance(c, MapType) and len(types) == 2:
        return Bound(c, lambda m, f: _to_map((k, v) for k, v in m.items() if _predicate(f(k, v))))
    raise _fail("FILTER", types)


register(Udf("FILTER", _filter_bind, lambda_params=_transform_params, category="LAMBDA"))


def _reduce_params(types: list[SqlType], index: int) -> list[SqlType]:
    c = types[0] if types else NULL
    state = types[1] if len(types) > 1 else NULL
    if isinstance(c, ArrayType):
        return [state, c.element or NULL]
    if isinstance(c, MapType):
        return [state, c.key or NULL, c.value or NULL]
    raise FunctionArgError("REDUCE requires an ARRAY or MAP as its first argument")


def _reduce_bind(types: list[SqlType], literals: list[Any]) -> Bound:
    c = types[0] if types else NULL
    if len(types) != 3:
        raise _fail("REDUCE", types)
    state_t = types[1]
    rt = getattr(types[2], "returns", NULL)
    if state_t.is_numeric and rt.is_numeric and widen_numeric(state_t, rt) != state_t:
        raise FunctionArgError(f"Lambda return type {rt} does not match the initial state type "
                               f"{state_t}")

    def reduce_array(a: list[Any], init: Any, f: Any) -> Any:
        acc = init
        for x in a:
            acc = f(acc, x)
        return acc

    def reduce_map(m: dict[Any, Any], init: Any, f: Any) -> Any:
        acc = init
        for k in java_hashmap_order(list(m)):
            acc = f(acc, k, m[k])
        return acc

    def guard(fn: Any) -> Any:
        def run(c: Any, init: Any, f: Any) -> Any:
            if c is None:
                return init
            if init is None:
                return None
            return fn(c, init, f)
        return run
    impl = reduce_array if isinstance(c, ArrayType) else reduce_map
    return Bound(state_t, guard(impl), nulls=False)


register(Udf("REDUCE", _reduce_bind, lambda_params=_reduce_params, category="LAMBDA"))



# --------------------------------------------------------------------------- table functions


def _explode(a: list[Any] | None) -> list[Any]:
    return [] if a is None else list(a)


def _cube(a: list[Any] | None) -> list[list[Any]]:
    """Every combination of keeping or nulling each element (ksqlDB's CUBE_EXPLODE order)."""
    if a is None:
        return []
    n = len(a)
    out: list[list[Any]] = []
    seen: list[list[Any]] = []
    for mask in range(2 ** n):
        # mask bit i (from the most significant) set means "keep element i"
        combo = [a[i] if mask & (1 << (n - 1 - i)) else None for i in range(n)]
        if combo in seen:
            continue
        seen.append(combo)
        out.append(combo)
    return out


def _explode_bind(types: list[SqlType], literals: list[Any]) -> Bound:
    if len(types) != 1 or not _is_array(types[0]):
        raise _fail("EXPLODE", types)
    return Bound(_elem(types[0]), _explode, nulls=False)


def _cube_bind(types: list[SqlType], literals: list[Any]) -> Bound:
    if len(types) != 1 or not _is_array(types[0]):
        raise _fail("CUBE_EXPLODE", types)
    return Bound(types[0], _cube, nulls=False)


register(Udf("EXPLODE", _explode_bind, table=True, category="TABLE"))
register(Udf("CUBE_EXPLODE", _cube_bind, table=True, category="TABLE"))


def _java_hash(v: Any) -> int:
    if isinstance(v, str):
        h = 0
        for unit in v.encode("utf-16-be").hex(" ", 2).split() if v else []:
            h = (31 * h + int(unit, 16)) & 0xFFFFFFFF
        return h
    if isinstance(v, bool):
        return 1231 if v else 1237
    if isinstance(v, int):
        if -(2**31) <= v < 2**31:
            return v & 0xFFFFFFFF
        return (v ^ (v >> 32)) & 0xFFFFFFFF
    return hash(v) & 0xFFFFFFFF


def java_hashmap_order(keys: list[Any]) -> list[Any]:
    """Iteration order of a java.util.HashMap holding ``keys`` (inserted in this order).

    ksqlDB materialises MAP values as HashMaps, so order-sensitive functions (REDUCE over a map)
    see this order rather than the order of the JSON text.
    """
    # ksqlDB builds maps with new HashMap<>(size): table = next power of two >= size, grown
    # when more than 3/4 full.
    cap = 1
    while cap < max(len(keys), 1):
        cap *= 2
    while len(keys) > cap * 3 // 4:
        cap *= 2
    def bucket(k: Any) -> int:
        h = _java_hash(k)
        return (h ^ (h >> 16)) & (cap - 1)
    return sorted(keys, key=bucket)  # stable: insertion order within a bucket
