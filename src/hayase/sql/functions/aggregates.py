"""Aggregate functions (UDAFs) for GROUP BY.

Each aggregate binds to its argument types and gives pure functions over an accumulator:

- ``init() -> acc``
- ``add(acc, args) -> acc``        fold one row's argument values in (``args`` is a tuple)
- ``undo(acc, args) -> acc``       retract a row (table sources); None when not supported
- ``merge(a, b) -> acc``           combine two accumulators (session windows)
- ``result(acc) -> value``

Accumulators are plain values (numbers, lists, dicts, Decimals), never mutated in place, so the
engine can keep, copy and serialise them (changelogs).  Arguments listed in ``literal_params``
must be literals; their values are given at bind time and are not part of ``args``.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hayase.sql.functions import FunctionArgError, Udf, format_types, register
from hayase.sql.types import (
    BIGINT,
    DOUBLE,
    INTEGER,
    STRING,
    ArrayType,
    DecimalType,
    MapType,
    SqlType,
    array_of,
    map_of,
    quantize,
    struct_of,
    wrap_bigint,
    wrap_int,
)

COLLECT_LIMIT = 2**31 - 1  # ksql.functions.collect_list.limit / collect_set.limit: unset or
# negative means no limit (ksqlDB's Integer.MAX_VALUE); Confluent Cloud fixes it at 1000.
HISTOGRAM_LIMIT = 1000  # HISTOGRAM keeps at most this many distinct strings


@dataclass
class BoundAggregate:
    name: str
    return_type: SqlType
    init: Callable[[], Any]
    add: Callable[[Any, tuple[Any, ...]], Any]
    result: Callable[[Any], Any]
    undo: Callable[[Any, tuple[Any, ...]], Any] | None = None
    merge: Callable[[Any, Any], Any] | None = None


AggregateBinder = Callable[[list[SqlType], list[Any]], BoundAggregate]

# Session properties visible to binders (set by the planner before binding).
CONFIG: dict[str, str] = {}


def _limit(name: str) -> int:
    try:
        limit = int(CONFIG.get(f"ksql.functions.{name}.limit", COLLECT_LIMIT))
    except ValueError:
        return COLLECT_LIMIT
    return COLLECT_LIMIT if limit < 0 else limit


def _fail(name: str, types: list[SqlType]) -> FunctionArgError:
    return FunctionArgError(f"Function '{name.lower()}' does not accept parameters "
                            f"({format_types(types)}).")


def register_aggregate(name: str, binder: AggregateBinder, literal_params: tuple[int, ...] = (),
                       description: str = "") -> None:
    def scalar_bind(types: list[SqlType], literals: list[Any]) -> Any:
        raise FunctionArgError(f"Use of aggregate function {name} requires a GROUP BY clause.")

    udf = register(Udf(name, scalar_bind, aggregate=True, category="AGGREGATE",
                       description=description))
    udf.bind_aggregate = binder  # type: ignore[attr-defined]
    udf.literal_params = literal_params  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- COUNT


def _count(types: list[SqlType], literals: list[Any]) -> BoundAggregate:
    star = not types  # COUNT(*) binds with no argument

    def add(acc: int, args: tuple[Any, ...]) -> int:
        return acc + 1 if star or args[0] is not None else acc

    def undo(acc: int, args: tuple[Any, ...]) -> int:
        return acc - 1 if star or args[0] is not None else acc

    return BoundAggregate("COUNT", BIGINT, lambda: 0, add, lambda acc: acc, undo,
                          lambda a, b: a + b)


register_aggregate("COUNT", _count)


def _count_distinct(types: list[SqlType], literals: list[Any]) -> BoundAggregate:
    if len(types) != 1:
        raise _fail("COUNT_DISTINCT", types)

    def add(acc: list[Any], args: tuple[Any, ...]) -> list[Any]:
        v = args[0]
        return acc if v is None or v in acc else acc + [v]

    return BoundAggregate("COUNT_DISTINCT", BIGINT, list, add, len, None,
                          lambda a, b: a + [v for v in b if v not in a])


register_aggregate("COUNT_DISTINCT", _count_distinct)


# --------------------------------------------------------------------------- SUM / AVG


def _sum(types: list[SqlType], literals: list[Any]) -> BoundAggregate:
    if len(types) != 1 or not (types[0].is_numeric or types[0].base == "NULL"):
        raise _fail("SUM", types)
    t = types[0] if types[0].base != "NULL" else INTEGER
    if t.base == "INTEGER":
        def fix(v: Any) -> Any:
            return wrap_int(v)
        zero: Any = 0
    elif t.base == "BIGINT":
        def fix(v: Any) -> Any:
            return wrap_bigint(v)
        zero = 0
    elif isinstance(t, DecimalType):
        dt = t

        def fix(v: Any) -> Any:
            return quantize(v, dt)
        zero = decimal.Decimal(0).scaleb(-t.scale)
    else:
        def fix(v: Any) -> Any:
            return float(v)
        zero = 0.0

    def add(acc: Any, args: tuple[Any, ...]) -> Any:
        v = args[0]
        if v is None:
            return acc
        total = fix(acc + v)
        # A DECIMAL sum that no longer fits the type fails that record in ksqlDB ("Numeric
        # field overflow"): the sum stays what it was.
        return acc if total is None else total

    def undo(acc: Any, args: tuple[Any, ...]) -> Any:
        v = args[0]
        if v is None:
            return acc
        total = fix(acc - v)
        return acc if total is None else total

    return BoundAggregate("SUM", t, lambda: zero, add, lambda acc: acc, undo,
                          lambda a, b: fix(a + b))


register_aggregate("SUM", _sum)


def _sum_list(types: list[SqlType], literals: list[Any]) -> BoundAggregate:
    """ksqlDB's SUM_LIST: the sum of the (non-null) elements of every ARRAY<INT|BIGINT|DOUBLE>
    folded in; a null array adds nothing. Integers wrap like Java's."""
    element = types[0].element if len(types) == 1 and isinstance(types[0], ArrayType) else None
    if element is None or element.base not in ("INTEGER", "BIGINT", "DOUBLE"):
        raise _fail("SUM_LIST", types)
    fixes: dict[str, Callable[[Any], Any]] = {"INTEGER": wrap_int, "BIGINT": wrap_bigint,
                                               "DOUBLE": float}
    fix = fixes[element.base]
    zero: Any = 0.0 if element.base == "DOUBLE" else 0

    def total(values: list[Any]) -> Any:
        acc = zero
        for v in values:
            if v is not None:
                acc = fix(acc + v)
        return acc

    def add(acc: Any, args: tuple[Any, ...]) -> Any:
        return acc if args[0] is None else fix(acc + total(args[0]))

    def undo(acc: Any, args: tuple[Any, ...]) -> Any:
        return acc if args[0] is None else fix(acc - total(args[0]))

    return BoundAggregate("SUM_LIST", element, lambda: zero, add, lambda acc: acc, undo,
                          lambda a, b: fix(a + b))


register_aggregate("SUM_LIST", _sum_list,
                   description="Returns the sum of the elements contained in the list.")


def _avg(types: list[SqlType], literals: list[Any]) -> BoundAggregate:
    """ksqlDB's AVG: a running sum in the input's type (INT and BIGINT sums wrap like Java's) and
    a count of non-null values; 0.0 while the count is zero (a group of nulls only)."""
    if len(types) != 1 or not (types[0].is_numeric or types[0].base == "NULL"):
        raise _fail("AVG", types)
    fixes: dict[str, Callable[[Any], Any]] = {"INTEGER": wrap_int, "BIGINT": wrap_bigint}
    fix = fixes.get(types[0].base, lambda v: v)

    def add(acc: list[Any], args: tuple[Any, ...]) -> list[Any]:
        v = args[0]
        return acc if v is None else [fix(acc[0] + v), acc[1] + 1]

    def undo(acc: list[Any], args: tuple[Any, ...]) -> list[Any]:
        v = args[0]
        return acc if v is None else [fix(acc[0] - v), acc[1] - 1]

    def result(acc: list[Any]) -> float:
        return 0.0 if acc[1] == 0 else float(acc[0]) / acc[1]

    return BoundAggregate("AVG", DOUBLE, lambda: [0, 0], add, result, undo,
                          lambda a, b: [fix(a[0] + b[0]), a[1] + b[1]])


register_aggregate("AVG", _avg)


# --------------------------------------------------------------------------- MIN / MAX

# MIN / MAX (ksqlDB's MinAggFunctionFactory / MaxAggFunctionFactory): numbers, strings, times
# and bytes; BOOLEAN, ARRAY, MAP and STRUCT have no MIN / MAX.
_ORDERED = {"INTEGER", "BIGINT", "DOUBLE", "DECIMAL", "STRING", "DATE", "TIME", "TIMESTAMP",
            "BYTES"}


def _signed_bytes(b: bytes) -> bytes:
    """Sort key for ByteBuffer.compareTo, which compares bytes as signed values."""
    return bytes(x ^ 0x80 for x in b)


def _java_key(t: SqlType) -> Callable[[Any], Any]:
    """The Comparable.compareTo order of the type's Java value (NaN above every double, -0.0
    below 0.0; signed bytes)."""
    from hayase.sql.functions.misc import java_order

    if t.base in ("DOUBLE", "STRING"):
        return java_order
    if t.base == "BYTES":
        return _signed_bytes
    return lambda v: v


def _extreme(name: str, smaller: bool) -> AggregateBinder:
    """MIN / MAX (ksqlDB's MinKudaf / MaxKudaf): the kept value unless the new one compares
    lower (higher); a tie keeps the new one."""

    def bind(types: list[SqlType], literals: list[Any]) -> BoundAggregate:
        if len(types) != 1 or types[0].base not in _ORDERED:
            raise _fail(name, types)
        key = _java_key(types[0])

        def pick(acc: Any, v: Any) -> Any:
            ka, kv = key(acc), key(v)
            return acc if (ka < kv if smaller else ka > kv) else v

        def add(acc: Any, args: tuple[Any, ...]) -> Any:
            v = args[0]
            if v is None:
                return acc
            return v if acc is None else pick(acc, v)

        def merge(a: Any, b: Any) -> Any:
            if a is None:
                return b
            return a if b is None else pick(b, a)

        return BoundAggregate(name, types[0], lambda: None, add, lambda acc: acc, None, merge)
    return bind


register_aggregate("MIN", _extreme("MIN", smaller=True))
register_aggregate("MAX", _extreme("MAX", smaller=False))


# --------------------------------------------------------------------------- collections


def _collect_list(types: list[SqlType], literals: list[Any]) -> BoundAggregate:
    if len(types) != 1:
        raise _fail("COLLECT_LIST", types)
    limit = _limit("collect_list")

    def add(acc: list[Any], args: tuple[Any, ...]) -> list[Any]:
        return acc if len(acc) >= limit else acc + [args[0]]

    def undo(acc: list[Any], args: tuple[Any, ...]) -> list[Any]:
        # ksqlDB removes the value's last occurrence (not the one that row added).
        for i in range(len(acc) - 1, -1, -1):
            if acc[i] == args[0]:
                return acc[:i] + acc[i + 1:]
        return acc

    return BoundAggregate("COLLECT_LIST", array_of(types[0]), list, add, list, undo,
                          lambda a, b: (a + b)[:limit])


def _collect_map(types: list[SqlType], literals: list[Any]) -> BoundAggregate:
    """ksqlDB's COLLECT_MAP: the entries of every MAP folded into one (a later value wins);
    a null map adds nothing. Streams only (no undo)."""
    if len(types) != 1 or not isinstance(types[0], MapType):
        raise _fail("COLLECT_MAP", types)

    def add(acc: dict[Any, Any], args: tuple[Any, ...]) -> dict[Any, Any]:
        return acc if args[0] is None else {**acc, **args[0]}

    return BoundAggregate("COLLECT_MAP", types[0], dict, add, dict, None,
                          lambda a, b: {**a, **b})


register_aggregate("COLLECT_MAP", _collect_map,
                   description="Gather all of the values from an input grouping into a single "
                               "Map field.")


def _collect_set(types: list[SqlType], literals: list[Any]) -> BoundAggregate:
    if len(types) != 1:
        raise _fail("COLLECT_SET", types)
    limit = _limit("collect_set")

    def add(acc: list[Any], args: tuple[Any, ...]) -> list[Any]:
        v = args[0]
        return acc if v in acc or len(acc) >= limit else acc + [v]

    def undo(acc: list[Any], args: tuple[Any, ...]) -> list[Any]:
        return [x for x in acc if x != args[0]]

    return BoundAggregate("COLLECT_SET", array_of(types[0]), list, add, list, undo,
                          lambda a, b: (a + [v for v in b if v not in a])[:limit])


register_aggregate("COLLECT_LIST", _collect_list)
register_aggregate("COLLECT_SET", _collect_set)


def _histogram(types: list[SqlType], literals: list[Any]) -> BoundAggregate:
    if len(types) != 1 or types[0].base not in ("STRING", "NULL"):
        raise _fail("HISTOGRAM", types)

    def add(acc: dict[str, int], args: tuple[Any, ...]) -> dict[str, int]:
        v = args[0]
        if v is None or (v not in acc and len(acc) >= HISTOGRAM_LIMIT):
            return acc
        out = dict(acc)
        out[v] = out.get(v, 0) + 1
        return out

    def undo(acc: dict[str, int], args: tuple[Any, ...]) -> dict[str, int]:
        v = args[0]
        if v is None or v not in acc:
            return acc
        out = dict(acc)
        out[v] -= 1
        if out[v] <= 0:
            del out[v]
        return out

    def merge(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
        out = dict(a)
        for k, n in b.items():
            if k in out or len(out) < HISTOGRAM_LIMIT:
                out[k] = out.get(k, 0) + n
        return out

    return BoundAggregate("HISTOGRAM", map_of(STRING, BIGINT), dict, add, dict, undo, merge)


register_aggregate("HISTOGRAM", _histogram)


# TOPK sorts INT, BIGINT, DOUBLE and STRING; TOPKDISTINCT DECIMAL too (ksqlDB's factories).
_TOPK_TYPES = {"INTEGER", "BIGINT", "DOUBLE", "STRING"}


def _topk(distinct: bool) -> AggregateBinder:
    name = "TOPKDISTINCT" if distinct else "TOPK"
    sortable = _TOPK_TYPES | ({"DECIMAL"} if distinct else set())

    def bind(types: list[SqlType], literals: list[Any]) -> BoundAggregate:
        if not types or types[0].base not in sortable or (distinct and len(types) > 1):
            raise _fail(name, types + [INTEGER])
        k = literals[-1] if literals else None
        if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
            raise FunctionArgError(f"Function '{name.lower()}' requires a positive literal k")
        key = _java_key(types[0])  # Comparable.compareTo: NaN above every double
        extra = types[1:]
        if extra:
            # TOPK(sort_col, col0, col1, ..., k): structs ordered by sort_col.
            fields = [("sort_col", types[0])] + [(f"col{i}", t) for i, t in enumerate(extra)]
            rtype: SqlType = array_of(struct_of(fields))

            def add_s(acc: list[Any], args: tuple[Any, ...]) -> list[Any]:
                if args[0] is None:
                    return acc
                entry = {"sort_col": args[0], **{f"col{i}": v for i, v in enumerate(args[1:])}}
                return sorted(acc + [entry], key=lambda e: key(e["sort_col"]), reverse=True)[:k]

            def merge_s(a: list[Any], b: list[Any]) -> list[Any]:
                return sorted(a + b, key=lambda e: key(e["sort_col"]), reverse=True)[:k]

            return BoundAggregate(name, rtype, list, add_s, list, None, merge_s)

        def add(acc: list[Any], args: tuple[Any, ...]) -> list[Any]:
            v = args[0]
            if v is None or (distinct and v in acc):
                return acc
            return sorted(acc + [v], key=key, reverse=True)[:k]

        def merge(a: list[Any], b: list[Any]) -> list[Any]:
            both = a + [v for v in b if not (distinct and v in a)]
            return sorted(both, key=key, reverse=True)[:k]

        return BoundAggregate(name, array_of(types[0]), list, add, list, None, merge)
    return bind


register_aggregate("TOPK", _topk(False), literal_params=(-1,))
register_aggregate("TOPKDISTINCT", _topk(True), literal_params=(-1,))


# --------------------------------------------------------------------------- by offset


def _by_offset(latest: bool) -> AggregateBinder:
    name = "LATEST_BY_OFFSET" if latest else "EARLIEST_BY_OFFSET"

    def bind(types: list[SqlType], literals: list[Any]) -> BoundAggregate:
        if len(types) != 1:
            raise _fail(name, types)
        n: int | None = None
        ignore_nulls = True
        for lit in literals:
            if isinstance(lit, bool):
                ignore_nulls = lit
            elif isinstance(lit, int):
                n = lit
            else:
                raise _fail(name, types)
        if n is not None and n <= 0:
            raise FunctionArgError(f"{name} must be called with a positive number of entries")
        t = types[0]

        if n is None:
            # acc: [seen?, value]
            def add1(acc: list[Any], args: tuple[Any, ...]) -> list[Any]:
                v = args[0]
                if v is None and ignore_nulls:
                    return acc
                if latest or not acc[0]:
                    return [True, v]
                return acc
            return BoundAggregate(name, t, lambda: [False, None], add1, lambda acc: acc[1], None,
                                  (lambda a, b: b if b[0] else a) if latest
                                  else (lambda a, b: a if a[0] else b))
        size = n

        def addn(acc: list[Any], args: tuple[Any, ...]) -> list[Any]:
            v = args[0]
            if v is None and ignore_nulls:
                return acc
            if latest:
                return (acc + [v])[-size:]
            return acc if len(acc) >= size else acc + [v]
        return BoundAggregate(name, array_of(t), list, addn, list, None,
                              (lambda a, b: (a + b)[-size:]) if latest
                              else (lambda a, b: (a + b)[:size]))
    return bind


register_aggregate("EARLIEST_BY_OFFSET", _by_offset(False), literal_params=(1, 2))
register_aggregate("LATEST_BY_OFFSET", _by_offset(True), literal_params=(1, 2))


# --------------------------------------------------------------------------- statistics


def _stddev(name: str, take_root: bool) -> AggregateBinder:
    """Sample standard deviation with the Youngs-Cramer update, in the input's arithmetic.

    ksqlDB quirk kept on purpose: STDDEV_SAMP returns the sample *variance*, STDDEV_SAMPLE the
    standard deviation.  Integer inputs keep Java int/long wrap-around in the running sum.
    """

    def bind(types: list[SqlType], literals: list[Any]) -> BoundAggregate:
        if len(types) != 1 or not types[0].is_numeric:
            raise _fail(name, types)
        base = types[0].base
        if base == "INTEGER":
            def fix(v: Any) -> Any:
                return wrap_int(v)
        elif base == "BIGINT":
            def fix(v: Any) -> Any:
                return wrap_bigint(v)
        else:
            def fix(v: Any) -> Any:
                return float(v)

        def delta(acc: list[Any], x: Any) -> float:
            return float(fix(fix(x * (acc[0] + 1)) - fix(acc[1] + x)))

        def add(acc: list[Any], args: tuple[Any, ...]) -> list[Any]:
            x = args[0]
            if x is None:
                return acc
            if base not in ("INTEGER", "BIGINT"):
                x = float(x)
            n = acc[0] + 1
            m2 = delta(acc, x) ** 2 / (n * (n - 1)) if n > 1 else 0.0
            return [n, fix(acc[1] + x), acc[2] + m2]

        def undo(acc: list[Any], args: tuple[Any, ...]) -> list[Any]:
            x = args[0]
            if x is None:
                return acc
            if base not in ("INTEGER", "BIGINT"):
                x = float(x)
            n = acc[0] - 1
            m2 = delta(acc, x) ** 2 / (n * (n + 1)) if n > 0 else 0.0
            return [n, fix(acc[1] - x), acc[2] - m2]

        def merge(a: list[Any], b: list[Any]) -> list[Any]:
            n = a[0] + b[0]
            if a[0] == 0 or b[0] == 0:
                return [n, fix(a[1] + b[1]), a[2] + b[2]]
            if take_root or base not in ("INTEGER", "BIGINT"):
                inner = a[1] / a[0] - b[1] / b[0]
            else:  # Java integer division
                inner = float(int(a[1] / a[0]) - int(b[1] / b[0]))
            return [n, fix(a[1] + b[1]), a[2] + b[2] + a[0] * b[0] * inner * inner / n]

        def result(acc: list[Any]) -> float:
            if acc[0] < 2:
                return 0.0
            variance = acc[2] / (acc[0] - 1)
            return math.sqrt(variance) if take_root else variance

        return BoundAggregate(name, DOUBLE, lambda: [0, 0 if base in ("INTEGER", "BIGINT")
                                                     else 0.0, 0.0], add, result, undo, merge)
    return bind


register_aggregate("STDDEV_SAMP", _stddev("STDDEV_SAMP", take_root=False))
register_aggregate("STDDEV_SAMPLE", _stddev("STDDEV_SAMPLE", take_root=True))


def _correlation(types: list[SqlType], literals: list[Any]) -> BoundAggregate:
    if len(types) != 2 or not all(t.is_numeric for t in types):
        raise _fail("CORRELATION", types)

    def add(acc: list[Any], args: tuple[Any, ...]) -> list[Any]:
        x, y = args
        if x is None or y is None:
            return acc
        x, y = float(x), float(y)
        return [acc[0] + 1, acc[1] + x, acc[2] + y, acc[3] + x * x, acc[4] + y * y,
                acc[5] + x * y]

    def undo(acc: list[Any], args: tuple[Any, ...]) -> list[Any]:
        x, y = args
        if x is None or y is None:
            return acc
        x, y = float(x), float(y)
        return [acc[0] - 1, acc[1] - x, acc[2] - y, acc[3] - x * x, acc[4] - y * y,
                acc[5] - x * y]

    def result(acc: list[Any]) -> float:
        # ksqlDB's single-pass formula, in its order of operations, with Java's double
        # division (x / 0.0 is NaN or an infinity, the square root of a negative NaN).
        n, sx, sy, sxx, syy, sxy = acc
        numerator = n * sxy - sx * sy
        product = (n * sxx - sx * sx) * (n * syy - sy * sy)
        denominator = math.sqrt(product) if product >= 0 else math.nan
        if denominator == 0 or math.isnan(denominator):
            if math.isnan(denominator) or numerator == 0 or math.isnan(numerator):
                return math.nan
            return math.copysign(math.inf, numerator)
        return float(numerator / denominator)

    return BoundAggregate("CORRELATION", DOUBLE, lambda: [0, 0.0, 0.0, 0.0, 0.0, 0.0], add,
                          result, undo, lambda a, b: [p + q for p, q in zip(a, b, strict=True)])


register_aggregate("CORRELATION", _correlation)

# --------------------------------------------------------------------------- ATTR


def _attr(types: list[SqlType], literals: list[Any]) -> BoundAggregate:
    """The value when every row had the same one (nulls count as a value), else null."""
    if len(types) != 1:
        raise _fail("ATTR", types)

    def add(acc: list[list[Any]], args: tuple[Any, ...]) -> list[list[Any]]:
        v = args[0]
        out = [list(e) for e in acc]
        for e in out:
            if e[0] == v:
                e[1] += 1
                return out
        return out + [[v, 1]]

    def undo(acc: list[list[Any]], args: tuple[Any, ...]) -> list[list[Any]]:
        v = args[0]
        out = []
        for value, n in acc:
            if value == v:
                n -= 1
            if n > 0:
                out.append([value, n])
        return out

    def merge(a: list[list[Any]], b: list[list[Any]]) -> list[list[Any]]:
        out = [list(e) for e in a]
        for value, n in b:
            for e in out:
                if e[0] == value:
                    e[1] += n
                    break
            else:
                out.append([value, n])
        return out

    return BoundAggregate("ATTR", types[0], list, add,
                          lambda acc: acc[0][0] if len(acc) == 1 else None, undo, merge)


register_aggregate("ATTR", _attr)

