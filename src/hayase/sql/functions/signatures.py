"""Documented signatures of the functions whose binders are written by hand (``simple()``
derives the others from its overloads): what DESCRIBE FUNCTION lists for them.

Each overload is written ``name TYPE, name TYPE... -> RETURN``; ``...`` after the last type
marks a variadic parameter.  Types are ksqlDB's ParamType texts: T, K and V are generic, NUMBER
stands for each numeric type (ksqlDB declares one overload per INT, BIGINT, DOUBLE, DECIMAL).
"""

from __future__ import annotations

import re
from functools import cache

from hayase.sql.functions import Argument, Signature

_DOCUMENTED: dict[str, tuple[str, ...]] = {
    # scalar: math
    "ABS": ("x NUMBER -> NUMBER",),
    "ROUND": ("val NUMBER -> NUMBER", "val NUMBER, decimalPlaces INT -> NUMBER"),
    "TRUNC": ("val NUMBER -> NUMBER", "val NUMBER, decimalPlaces INT -> NUMBER"),
    "GREATEST": ("val T, vals T... -> T",),
    "LEAST": ("val T, vals T... -> T",),
    "GENERATE_SERIES": ("start INT, end INT -> ARRAY<INT>",
                        "start INT, end INT, step INT -> ARRAY<INT>",
                        "start BIGINT, end BIGINT -> ARRAY<BIGINT>",
                        "start BIGINT, end BIGINT, step INT -> ARRAY<BIGINT>"),
    # scalar: strings and conditionals
    "CONCAT": ("inputs STRING... -> STRING", "inputs BYTES... -> BYTES"),
    "CONCAT_WS": ("separator STRING, inputs STRING... -> STRING",
                  "separator BYTES, inputs BYTES... -> BYTES"),
    "ELT": ("n INT, args STRING... -> STRING",),
    "FIELD": ("str STRING, args STRING... -> INT",),
    "COALESCE": ("first T, others T... -> T",),
    "IFNULL": ("expression T, altValue T -> T",),
    "NULLIF": ("expr1 T, expr2 T -> T",),
    "AS_VALUE": ("source T -> T",),
    # scalar: arrays and maps
    "ARRAY_CONCAT": ("left ARRAY<T>, right ARRAY<T> -> ARRAY<T>",),
    "ARRAY_CONTAINS": ("array ARRAY<T>, val T -> BOOLEAN",),
    "ARRAY_DISTINCT": ("input ARRAY<T> -> ARRAY<T>",),
    "ARRAY_EXCEPT": ("left ARRAY<T>, right ARRAY<T> -> ARRAY<T>",),
    "ARRAY_INTERSECT": ("left ARRAY<T>, right ARRAY<T> -> ARRAY<T>",),
    "ARRAY_UNION": ("left ARRAY<T>, right ARRAY<T> -> ARRAY<T>",),
    "ARRAY_JOIN": ("array ARRAY<T> -> STRING", "array ARRAY<T>, delimiter STRING -> STRING"),
    "ARRAY_LENGTH": ("array ARRAY<T> -> INT",),
    "ARRAY_MAX": ("array ARRAY<T> -> T",),
    "ARRAY_MIN": ("array ARRAY<T> -> T",),
    "ARRAY_REMOVE": ("array ARRAY<T>, victim T -> ARRAY<T>",),
    "ARRAY_SORT": ("array ARRAY<T> -> ARRAY<T>", "array ARRAY<T>, direction STRING -> ARRAY<T>"),
    "SLICE": ("list ARRAY<T>, from INT, to INT -> ARRAY<T>",),
    "AS_MAP": ("keys ARRAY<STRING>, values ARRAY<T> -> MAP<STRING, T>",),
    "ENTRIES": tuple(f"map MAP<STRING, {t}>, sorted BOOLEAN -> ARRAY<STRUCT<K STRING, V {t}>>"
                     for t in ("INT", "BIGINT", "DOUBLE", "BOOLEAN", "STRING")),
    "MAP_KEYS": ("input MAP<K, V> -> ARRAY<K>",),
    "MAP_VALUES": ("input MAP<K, V> -> ARRAY<V>",),
    "MAP_UNION": ("map1 MAP<K, V>, map2 MAP<K, V> -> MAP<K, V>",),
    # scalar: lambdas
    "TRANSFORM": ("array ARRAY<A>, function LAMBDA (A) => B -> ARRAY<B>",
                  "map MAP<K, V>, keyFunction LAMBDA (K, V) => L, "
                  "valueFunction LAMBDA (K, V) => W -> MAP<L, W>"),
    "FILTER": ("array ARRAY<T>, function LAMBDA (T) => BOOLEAN -> ARRAY<T>",
               "map MAP<K, V>, function LAMBDA (K, V) => BOOLEAN -> MAP<K, V>"),
    "REDUCE": ("array ARRAY<T>, initialState S, function LAMBDA (S, T) => S -> S",
               "map MAP<K, V>, initialState S, function LAMBDA (S, K, V) => S -> S"),
    # scalar: JSON
    "JSON_ARRAY_CONTAINS": ("jsonArray STRING, val T -> BOOLEAN",),
    "JSON_CONCAT": ("inputs STRING... -> STRING",),
    "TO_JSON_STRING": ("input T -> STRING",),
    # table functions
    "EXPLODE": ("list ARRAY<T> -> T",),
    "CUBE_EXPLODE": ("columns ARRAY<T> -> ARRAY<T>",),
    # aggregates
    "ATTR": ("val T -> T",),
    "AVG": ("val NUMBER -> DOUBLE",),
    "COLLECT_LIST": ("val T -> ARRAY<T>",),
    "COLLECT_SET": ("val T -> ARRAY<T>",),
    "COLLECT_MAP": ("key K, value V -> MAP<K, V>",),
    "CORRELATION": ("x DOUBLE, y DOUBLE -> DOUBLE",),
    "COUNT": ("val T -> BIGINT",),
    "COUNT_DISTINCT": ("val T -> BIGINT",),
    "EARLIEST_BY_OFFSET": ("val T -> T", "val T, ignoreNulls BOOLEAN -> T",
                           "val T, earliestN INT -> ARRAY<T>",
                           "val T, earliestN INT, ignoreNulls BOOLEAN -> ARRAY<T>"),
    "LATEST_BY_OFFSET": ("val T -> T", "val T, ignoreNulls BOOLEAN -> T",
                         "val T, latestN INT -> ARRAY<T>",
                         "val T, latestN INT, ignoreNulls BOOLEAN -> ARRAY<T>"),
    "HISTOGRAM": ("val STRING -> MAP<STRING, BIGINT>",),
    "MAX": ("val T -> T",),
    "MIN": ("val T -> T",),
    "STDDEV_SAMP": ("val NUMBER -> DOUBLE",),
    "STDDEV_SAMPLE": ("val NUMBER -> DOUBLE",),
    "SUM": ("val NUMBER -> NUMBER",),
    "SUM_LIST": ("list ARRAY<NUMBER> -> NUMBER",),
    "TOPK": ("val T, k INT -> ARRAY<T>", "sortCol T, otherCol V, k INT -> ARRAY<STRUCT>"),
    "TOPKDISTINCT": ("val T, k INT -> ARRAY<T>",),
}

# "name TYPE" (TYPE may hold spaces, commas inside <> or (), and a trailing "...").
_ARG = re.compile(r"\s*(\w+)\s+(.+?)\s*$")


def _split_args(text: str) -> list[str]:
    """Split on commas outside <...> and (...) (the '>' of a lambda's '=>' closes nothing)."""
    parts: list[str] = []
    depth, cur = 0, ""
    for i, ch in enumerate(text):
        if ch in "<(":
            depth += 1
        elif ch == ")" or ch == ">" and text[i - 1:i] != "=":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return parts + [cur] if cur.strip() else parts


def parse_signature(text: str) -> Signature:
    """``"a INT, b STRING... -> STRING"`` as a :class:`Signature`."""
    params, _, returns = text.rpartition(" -> ")
    args: list[Argument] = []
    variadic = False
    for part in _split_args(params):
        m = _ARG.match(part)
        if m is None:
            raise ValueError(f"bad signature argument {part!r} in {text!r}")
        name, typ = m.groups()
        variadic = typ.endswith("...")
        args.append(Argument(name, typ.removesuffix("...")))
    return Signature(tuple(args), returns.strip(), "", variadic)


@cache
def _parsed(name: str) -> tuple[Signature, ...]:
    return tuple(parse_signature(s) for s in _DOCUMENTED.get(name.upper(), ()))


def documented(name: str) -> list[Signature]:
    """The documented overloads of a hand-written function (empty if it has none)."""
    return list(_parsed(name))


def documented_names() -> set[str]:
    return set(_DOCUMENTED)
