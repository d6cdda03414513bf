"""Null handling and other general-purpose functions."""

from __future__ import annotations

import decimal
import math
from typing import Any

from hayase.sql.functions import Bound, FunctionArgError, Udf, format_types, register
from hayase.sql.runtime import java_string_key
from hayase.sql.types import (
    NULL,
    ArrayType,
    MapType,
    NoCommonType,
    SqlType,
    StructType,
    common_type,
)


def _common(name: str, types: list[SqlType]) -> SqlType:
    try:
        return common_type(types)
    except NoCommonType:
        raise FunctionArgError(f"Function '{name}' does not accept parameters "
                               f"({format_types(types)}).") from None


def _fully_known(t: SqlType) -> bool:
    """False for a type with an unknown part (the element of an empty ARRAY[] literal)."""
    if isinstance(t, ArrayType):
        return t.element is not None and _fully_known(t.element)
    if isinstance(t, MapType):
        return (t.key is not None and t.value is not None and _fully_known(t.key)
                and _fully_known(t.value))
    if isinstance(t, StructType):
        return all(_fully_known(f) for _, f in t.fields)
    return True


def _generic_t(name: str, types: list[SqlType]) -> SqlType:
    """The type bound to the generic T of ``f(T, T...)``: ksqlDB's UdfIndex never casts an
    argument of a generic parameter, so every non-NULL argument must have the same type
    (IFNULL(INT, BIGINT) and DECIMALs of different scales are refused); an untyped NULL
    binds nothing."""
    rt = _common(name, types)
    if any(t.base != "NULL" and t != rt and _fully_known(t) for t in types):
        raise FunctionArgError(f"Function '{name}' does not accept parameters "
                               f"({format_types(types)}).")
    return rt


def java_equals(a: Any, b: Any) -> bool:
    """Object.equals as the boxed Java values compare: a BigDecimal equals only at the same
    scale (1.0 is not 1.00); Double.equals holds for NaN and tells -0.0 from 0.0."""
    if isinstance(a, decimal.Decimal) and isinstance(b, decimal.Decimal):
        return a == b and a.as_tuple().exponent == b.as_tuple().exponent
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def java_order(v: Any) -> Any:
    """Sort key for Java's natural order: Double.compareTo puts NaN above every number and
    -0.0 below 0.0; String.compareTo compares UTF-16 units."""
    if isinstance(v, float):
        return (math.isnan(v), v, math.copysign(1.0, v) if v == 0 else 0.0)
    if isinstance(v, str):
        return java_string_key(v)
    return v


def _coalesce(*vals: Any) -> Any:
    for v in vals:
        if v is not None:
            return v
    return None


def _coalesce_bind(types: list[SqlType], literals: list[Any]) -> Bound:
    if not types:
        raise FunctionArgError("Function 'coalesce' does not accept parameters ().")
    rt = _generic_t("coalesce", types)
    return Bound(rt, _coalesce, nulls=False, coerce=[rt] * len(types))


def _ifnull_bind(types: list[SqlType], literals: list[Any]) -> Bound:
    if len(types) != 2:
        raise FunctionArgError(f"Function 'ifnull' does not accept parameters "
                               f"({format_types(types)}).")
    rt = _generic_t("ifnull", types)
    return Bound(rt, lambda a, b: b if a is None else a, nulls=False, coerce=[rt, rt])


def _nullif_bind(types: list[SqlType], literals: list[Any]) -> Bound:
    if len(types) != 2:
        raise FunctionArgError(f"Function 'nullif' does not accept parameters "
                               f"({format_types(types)}).")
    if NULL not in types and types[0] != types[1]:
        # NULLIF(T expr1, T expr2): ksqlDB binds the generic T to the first argument's type and
        # accepts the second only of that very type (UdfIndex: generics are never cast).
        raise FunctionArgError(f"Function 'nullif' does not accept parameters "
                               f"({format_types(types)}).")
    rt = _common("nullif", types)
    return Bound(types[0] if types[0].base != "NULL" else rt,
                 lambda a, b: None if a is not None and java_equals(a, b) else a, nulls=False)


def _as_value_bind(types: list[SqlType], literals: list[Any]) -> Bound:
    if len(types) != 1:
        raise FunctionArgError(f"Function 'as_value' does not accept parameters "
                               f"({format_types(types)}).")
    return Bound(types[0], lambda v: v, nulls=False)


register(Udf("COALESCE", _coalesce_bind, category="CONDITIONAL"))
register(Udf("IFNULL", _ifnull_bind, category="CONDITIONAL"))
register(Udf("NULLIF", _nullif_bind, category="CONDITIONAL"))
register(Udf("AS_VALUE", _as_value_bind, category="OTHER"))


def _elt(n: int | None, *vals: Any) -> Any:
    if n is None or n < 1 or n > len(vals):
        return None
    return vals[n - 1]


def _elt_bind(types: list[SqlType], literals: list[Any]) -> Bound:
    if not types or types[0].base not in ("INTEGER", "NULL") or any(
            t.base not in ("STRING", "NULL") for t in types[1:]):
        raise FunctionArgError(f"Function 'elt' does not accept parameters ({format_types(types)}).")
    from hayase.sql.types import STRING

    return Bound(STRING, _elt, nulls=False)


def _field(s: Any, *vals: Any) -> int:
    if s is None:
        return 0
    for i, v in enumerate(vals):
        if v == s:
            return i + 1
    return 0


def _field_bind(types: list[SqlType], literals: list[Any]) -> Bound:
    if not types or any(t.base not in ("STRING", "NULL") for t in types):
        raise FunctionArgError(f"Function 'field' does not accept parameters "
                               f"({format_types(types)}).")
    from hayase.sql.types import INTEGER

    return Bound(INTEGER, _field, nulls=False)


register(Udf("ELT", _elt_bind, category="STRING"))
register(Udf("FIELD", _field_bind, category="STRING"))
