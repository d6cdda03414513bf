"""Math functions."""

from __future__ import annotations

import decimal
import math
import random
from collections.abc import Callable
from typing import Any

from hayase.sql.functions import (
    DOUBLE,
    INTEGER,
    Bound,
    FunctionArgError,
    Udf,
    ambiguous,
    first_type,
    format_types,
    register,
    simple,
)
from hayase.sql.functions.misc import java_order
from hayase.sql.types import BIGINT, DecimalType, SqlType, decimal_type, widen_numeric

_HALF_UP = decimal.ROUND_HALF_UP


def _same(types: list[SqlType]) -> SqlType:
    return first_type(types)


def _abs(v: Any) -> Any:
    return abs(v)


def _abs_int(bits: int) -> Callable[[int], int]:
    """Java's Math.abs on an int or long: the minimum value has no positive twin and stays."""
    low = -(2 ** (bits - 1))

    def abs_int(v: int) -> int:
        return v if v == low else abs(v)
    return abs_int


def _abs_bind(types: list[SqlType], literals: list[Any]) -> Bound:
    if len(types) != 1 or types[0].base not in ("INTEGER", "BIGINT", "DECIMAL", "DOUBLE", "NULL"):
        raise FunctionArgError(f"Function 'abs' does not accept parameters "
                               f"({format_types(types)}).")
    t = types[0]
    if t.base == "INTEGER":
        return Bound(t, _abs_int(32))
    if t.base == "BIGINT":
        return Bound(t, _abs_int(64))
    if t.base == "DECIMAL":
        return Bound(t, _abs)
    return Bound(DOUBLE, _abs, coerce=[DOUBLE])


register(Udf("ABS", _abs_bind, category="MATHEMATICAL",
             precheck=lambda types: _check_overloads("abs", [
                 ("INTEGER",), ("BIGINT",), ("DOUBLE",), ("DECIMAL",)])(types)))


def _to_whole(to_int: Callable[[float], int], rounding: str) -> Callable[[Any], Any]:
    """FLOOR or CEIL: a DOUBLE stays a DOUBLE (NaN and infinities pass), a DECIMAL keeps its
    scale, integers pass."""

    def whole(v: Any) -> Any:
        if isinstance(v, float):
            return float(to_int(v)) if math.isfinite(v) else v
        if isinstance(v, decimal.Decimal):
            return v.quantize(decimal.Decimal(1), rounding=rounding).quantize(
                decimal.Decimal(1).scaleb(v.as_tuple().exponent))  # type: ignore[arg-type]
        return v

    return whole


_floor = _to_whole(math.floor, decimal.ROUND_FLOOR)
_ceil = _to_whole(math.ceil, decimal.ROUND_CEILING)


simple("FLOOR", [(["INT"], _same), (["BIGINT"], _same), (["DECIMAL"], _same),
                 (["DOUBLE"], DOUBLE)], _floor, category="MATHEMATICAL")
simple("CEIL", [(["INT"], _same), (["BIGINT"], _same), (["DECIMAL"], _same),
                (["DOUBLE"], DOUBLE)], _ceil, category="MATHEMATICAL")


def _round_double(v: float, places: int = 0) -> float:
    """Java's Math.round semantics generalised to places: halves round toward +infinity."""
    if not math.isfinite(v):
        return v
    mode = decimal.ROUND_HALF_UP if v > 0 else decimal.ROUND_HALF_DOWN
    d = decimal.Decimal(repr(v)).quantize(decimal.Decimal(1).scaleb(-places), rounding=mode,
                                          context=decimal.Context(prec=400))
    return float(d) + 0.0


def _round_bind(types: list[SqlType], literals: list[Any]) -> Bound:
    if not types or len(types) > 2 or (len(types) == 2 and types[1].base not in ("INTEGER", "NULL")):
        raise FunctionArgError(f"Function 'round' does not accept parameters "
                               f"({format_types(types)}).")
    t = types[0]
    if t.base in ("INTEGER", "BIGINT") and len(types) == 1:
        return Bound(BIGINT, lambda v: v)  # ksqlDB's ROUND(INT) returns BIGINT
    if t.base in ("INTEGER", "BIGINT"):
        return Bound(DOUBLE, _round_double, coerce=[DOUBLE])
    if t.base == "DECIMAL" and isinstance(t, DecimalType):
        if len(types) == 1:
            rt = decimal_type(max(1, t.precision - t.scale), 0)
            return Bound(rt, lambda v: _round_decimal(v, 0))

        def round_dec(v: decimal.Decimal, places: int) -> decimal.Decimal:
            # The result keeps the argument's scale (ksqlDB issue 6235).
            return _round_decimal(v, places).quantize(decimal.Decimal(1).scaleb(-t.scale),
                                                      context=decimal.Context(prec=400))
        return Bound(t, round_dec)
    if t.base in ("DOUBLE", "NULL"):
        if len(types) == 1:
            return Bound(BIGINT, _java_round, coerce=[DOUBLE])
        return Bound(DOUBLE, _round_double, coerce=[DOUBLE])
    raise FunctionArgError(f"Function 'round' does not accept parameters ({format_types(types)}).")


def _round_decimal(v: decimal.Decimal, places: int) -> decimal.Decimal:
    """ROUND on a DECIMAL: halves go toward +infinity (HALF_UP above zero, HALF_DOWN at or
    below it), as Math.round does for doubles; never a negative zero."""
    mode = _HALF_UP if v > 0 else decimal.ROUND_HALF_DOWN
    r = v.quantize(decimal.Decimal(1).scaleb(-places), rounding=mode,
                   context=decimal.Context(prec=400))
    return r.copy_abs() if r.is_zero() else r


def _java_round(v: float) -> int:
    """Math.round(double): floor(v + 0.5), NaN -> 0, saturating at the long range."""
    if math.isnan(v):
        return 0
    if math.isinf(v):
        return 2**63 - 1 if v > 0 else -(2**63)
    return max(-(2**63), min(2**63 - 1, math.floor(v + 0.5)))


# ksqlDB resolves a call first by exact parameter types, then by implicit casts
# (INT < BIGINT < DECIMAL < DOUBLE); when casts leave more than one overload, the call is
# ambiguous and the statement fails.
_CASTS_TO = {"INTEGER": ("INTEGER", "BIGINT", "DECIMAL", "DOUBLE"),
             "BIGINT": ("BIGINT", "DECIMAL", "DOUBLE"), "DECIMAL": ("DECIMAL", "DOUBLE"),
             "DOUBLE": ("DOUBLE",)}


def _check_overloads(name: str, overloads: list[tuple[str, ...]]) -> Callable[[list[SqlType]],
                                                                               None]:
    def precheck(types: list[SqlType]) -> None:
        bases = tuple(t.base for t in types)
        sized = [o for o in overloads if len(o) == len(bases)]
        if any(b not in _CASTS_TO and b != "NULL" for b in bases):
            return  # non-numbers: the binder decides
        # An untyped NULL fits every parameter, without a cast.
        exact = [o for o in sized if all(b in ("NULL", p) for b, p in zip(bases, o, strict=True))]
        if len(exact) > 1:
            raise ambiguous(name, types)
        if exact:
            return
        fits = [o for o in sized
                if all(b == "NULL" or p in _CASTS_TO[b] for b, p in zip(bases, o, strict=True))]
        if len(fits) > 1:
            raise ambiguous(name, types)
    return precheck


# The overloads ksqlDB declares where hayase binds one DOUBLE signature: the one-argument
# functions take INT, BIGINT and DOUBLE (a NULL literal fits all: ambiguous).
_INTEGRAL_OR_DOUBLE = ("INTEGER", "BIGINT", "DOUBLE")
_SINGLES: list[tuple[str, ...]] = [(t,) for t in _INTEGRAL_OR_DOUBLE]
_SAME_TYPE_PAIRS: list[tuple[str, ...]] = [(t, t) for t in _INTEGRAL_OR_DOUBLE]
_ALL_PAIRS: list[tuple[str, ...]] = [(a, b) for a in _INTEGRAL_OR_DOUBLE
                                     for b in _INTEGRAL_OR_DOUBLE]


register(Udf("ROUND", _round_bind, category="MATHEMATICAL",
             precheck=_check_overloads("round", [("BIGINT",), ("INTEGER",), ("DOUBLE",),
                                                 ("DOUBLE", "INTEGER"), ("DECIMAL",),
                                                 ("DECIMAL", "INTEGER")])))


def _trunc_bind(types: list[SqlType], literals: list[Any]) -> Bound:
    if not types or len(types) > 2:
        raise FunctionArgError(f"Function 'trunc' does not accept parameters "
                               f"({format_types(types)}).")
    t = types[0]

    def trunc_places(v: Any, places: int) -> Any:
        q = decimal.Decimal(repr(v) if isinstance(v, float) else v).quantize(
            decimal.Decimal(1).scaleb(-places), rounding=decimal.ROUND_DOWN,
            context=decimal.Context(prec=400))
        return float(q) if isinstance(v, float) else q
    if t.base in ("INTEGER", "BIGINT") and len(types) == 1:
        return Bound(BIGINT, lambda v: v)  # ksqlDB's TRUNC(INT) returns BIGINT
    if t.base in ("INTEGER", "BIGINT"):
        return Bound(DOUBLE, trunc_places, coerce=[DOUBLE])
    if isinstance(t, DecimalType):
        if len(types) == 1:
            return Bound(decimal_type(max(1, t.precision - t.scale), 0),
                         lambda v: v.quantize(decimal.Decimal(1), rounding=decimal.ROUND_DOWN))
        return Bound(t, lambda v, p: trunc_places(v, p).quantize(decimal.Decimal(1).scaleb(-t.scale)))
    if len(types) == 1:
        from hayase.sql.runtime import double_to_int

        return Bound(BIGINT, lambda v: double_to_int(v, 64), coerce=[DOUBLE])
    return Bound(DOUBLE, trunc_places, coerce=[DOUBLE])


register(Udf("TRUNC", _trunc_bind, category="MATHEMATICAL",
             precheck=_check_overloads("trunc", [("BIGINT",), ("INTEGER",), ("DOUBLE",),
                                                 ("DOUBLE", "INTEGER"), ("DECIMAL",),
                                                 ("DECIMAL", "INTEGER")])))


def _sign(v: Any) -> int:
    if isinstance(v, float) and math.isnan(v):
        return 0
    return (v > 0) - (v < 0)


simple("SIGN", [(["NUM"], INTEGER)], _sign, category="MATHEMATICAL",
       precheck=_check_overloads("sign", _SINGLES))


def _safe(fn: Any) -> Any:
    def wrapped(*a: float) -> float:
        try:
            return float(fn(*a))
        except ValueError:
            return math.nan
        except OverflowError:
            return math.inf
        except ZeroDivisionError:
            return math.inf
    return wrapped


def _sqrt(v: float) -> float:
    return math.sqrt(v) if v >= 0 else math.nan


def _ln(v: float) -> float:
    if v < 0 or math.isnan(v):
        return math.nan
    if v == 0:
        return -math.inf
    return math.log(v)


def _log(a: float, b: float | None = None) -> float:
    if b is None:
        # LOG(value) is Java's Math.log: the natural logarithm (its doc text says base 10; the
        # engine computes ln).
        return _ln(a)
    # LOG(base, value) = ln(value) / ln(base); a base <= 0 or 1 is NaN.
    if a <= 0 or a == 1 or math.isnan(a):
        return math.nan
    return _ln(b) / math.log(a)


def _odd_integer(b: float) -> bool:
    return math.isfinite(b) and b == math.floor(b) and math.fmod(b, 2) != 0


def _power(a: float, b: float) -> float:
    """Math.pow: a zero base to a negative power is infinite (negative for -0.0 and an odd
    power), an overflow is infinite with the result's sign."""
    try:
        return math.pow(a, b)
    except ValueError:
        if a == 0 and b < 0:
            negative = math.copysign(1.0, a) < 0 and _odd_integer(b)
            return -math.inf if negative else math.inf
        return math.nan
    except (OverflowError, ZeroDivisionError):
        return -math.inf if a < 0 and _odd_integer(b) else math.inf


def _cot(v: float) -> float:
    """1.0 / Math.tan(v): the infinity takes the sign of a zero tangent."""
    t = math.tan(v)
    if t == 0:
        return math.copysign(math.inf, t)
    return 1.0 / t


def _sinh(v: float) -> float:
    try:
        return math.sinh(v)
    except OverflowError:
        return math.copysign(math.inf, v)


simple("SQRT", [(["DOUBLE"], DOUBLE)], _sqrt, category="MATHEMATICAL",
       precheck=_check_overloads("sqrt", _SINGLES))
def _cbrt(v: float) -> float:
    """Java's Math.cbrt: exact for perfect cubes (a plain pow gives 3.9999999999999996 for 64)."""
    if not math.isfinite(v) or v == 0:
        return v
    r = math.copysign(abs(v) ** (1 / 3), v)
    whole = round(r)
    if whole ** 3 == v:
        return float(whole)
    return r - (r * r * r - v) / (3 * r * r)  # one Newton step to the nearest double


simple("CBRT", [(["DOUBLE"], DOUBLE)], _cbrt, category="MATHEMATICAL",
       precheck=_check_overloads("cbrt", _SINGLES))
simple("EXP", [(["DOUBLE"], DOUBLE)], _safe(math.exp), category="MATHEMATICAL",
       precheck=_check_overloads("exp", _SINGLES))
simple("LN", [(["DOUBLE"], DOUBLE)], _ln, category="MATHEMATICAL",
       precheck=_check_overloads("ln", _SINGLES))
simple("LOG", [(["DOUBLE"], DOUBLE), (["DOUBLE", "DOUBLE"], DOUBLE)], _log,
       category="MATHEMATICAL", precheck=_check_overloads("log", _SINGLES + _SAME_TYPE_PAIRS))
simple("POWER", [(["DOUBLE", "DOUBLE"], DOUBLE)], _power, category="MATHEMATICAL",
       precheck=_check_overloads("power", _SAME_TYPE_PAIRS))
for _n, _f in (("SIN", math.sin), ("COS", math.cos), ("TAN", math.tan), ("ASIN", math.asin),
               ("ACOS", math.acos), ("ATAN", math.atan), ("SINH", _sinh),
               ("COSH", math.cosh), ("TANH", math.tanh), ("DEGREES", math.degrees),
               ("RADIANS", math.radians)):
    simple(_n, [(["DOUBLE"], DOUBLE)], _safe(_f), category="MATHEMATICAL",
           precheck=_check_overloads(_n.lower(), _SINGLES))
simple("COT", [(["DOUBLE"], DOUBLE)], _cot, category="MATHEMATICAL",
       precheck=_check_overloads("cot", _SINGLES))
simple("ATAN2", [(["DOUBLE", "DOUBLE"], DOUBLE)], _safe(math.atan2), category="MATHEMATICAL",
       precheck=_check_overloads("atan2", _ALL_PAIRS))
simple("PI", [([], DOUBLE)], lambda: math.pi, category="MATHEMATICAL")
simple("RANDOM", [([], DOUBLE)], random.random, deterministic=False, category="MATHEMATICAL")


_MILES = ("mi", "mile", "miles")
_KMS = ("km", "kilometer", "kilometers", "kilometre", "kilometres")


def _geo_distance(lat1: float, lon1: float, lat2: float, lon2: float,
                  unit: str | None = None) -> float:
    """Haversine great-circle distance, computed in the same order as ksqlDB (bit-equal)."""
    from hayase.sql.errors import KsqlRuntimeError

    if lat1 < -90 or lat2 < -90 or lat1 > 90 or lat2 > 90:
        raise KsqlRuntimeError("valid latitude values for GeoDistance function are in the range "
                               "of -90 to 90 decimal degrees")
    if lon1 < -180 or lon2 < -180 or lon1 > 180 or lon2 > 180:
        raise KsqlRuntimeError("valid longitude values for GeoDistance function are in the range "
                               "of -180 to +180 decimal degrees")
    radius = 6371.0
    u = (unit or "").strip().lower()
    if u in _MILES:
        radius = 3959.0
    elif u and u not in _KMS:
        raise KsqlRuntimeError("GeoDistance function units parameter must be one of "
                               + ", ".join(_MILES + _KMS[:-1]) + " or " + _KMS[-1]
                               + ". Values are case-insensitive.")
    d_lat = math.radians(lat2 - lat1)
    d_lon = math.radians(lon2 - lon1)
    a = (math.sin(d_lat / 2) ** 2
         + math.sin(d_lon / 2) ** 2 * math.cos(math.radians(lat1)) * math.cos(math.radians(lat2)))
    return 2 * math.asin(math.sqrt(a)) * radius


def _geo_distance_nullable(*args: Any) -> float | None:
    if any(a is None for a in args[:4]):
        return None  # a null coordinate fails the call (primitive double parameters)
    return _geo_distance(*args)


simple("GEO_DISTANCE", [(["DOUBLE"] * 4, DOUBLE), (["DOUBLE"] * 4 + ["STRING"], DOUBLE)],
       _geo_distance_nullable, category="MATHEMATICAL", nulls=False)


def _extreme(name: str, pick: Any) -> Udf:
    def bind(types: list[SqlType], literals: list[Any]) -> Bound:
        non_null = [t for t in types if t.base != "NULL"]
        if not types:
            raise FunctionArgError(f"Function '{name.lower()}' does not accept parameters ().")
        if not non_null:
            raise ambiguous(name, types)
        bases = {t.base for t in non_null}
        if bases <= {"INTEGER", "BIGINT", "DECIMAL", "DOUBLE"}:
            rt = non_null[0]
            for t in non_null[1:]:
                rt = widen_numeric(rt, t)
            if len(bases) > 1 and not (rt.base == "DOUBLE" or False):
                raise ambiguous(name, types)
        elif len(bases) == 1 and non_null.count(non_null[0]) == len(non_null) and bases & {
                "STRING", "BYTES", "DATE", "TIME", "TIMESTAMP", "BOOLEAN"}:
            rt = non_null[0]
        else:
            raise FunctionArgError(f"Function '{name.lower()}' does not accept parameters "
                                   f"({format_types(types)}).")

        def impl(*vals: Any) -> Any:
            present = [v for v in vals if v is not None]
            if not present:
                return None
            return pick(present, key=java_order)
        return Bound(rt, impl, nulls=False, coerce=[rt] * len(types))
    def precheck(types: list[SqlType]) -> None:
        numeric = {t.base if t.base != "DECIMAL" else str(t) for t in types if t.is_numeric}
        if not types:
            raise FunctionArgError(f"Function '{name.lower()}' does not accept parameters ().")
        if all(t.base == "NULL" for t in types) or len(numeric) > 1:
            raise ambiguous(name, types)

    return register(Udf(name, bind, category="MATHEMATICAL", unify_args=True, precheck=precheck))


_extreme("GREATEST", max)
_extreme("LEAST", min)
