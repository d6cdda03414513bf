"""SQL types of the ksqlDB dialect and the Python values that carry them.

Python value of each SQL type (``None`` is SQL NULL for every type):

============== ===========================================================
BOOLEAN        ``bool``
INTEGER        ``int`` (32-bit range; arithmetic wraps like Java ``int``)
BIGINT         ``int`` (64-bit range; arithmetic wraps like Java ``long``)
DOUBLE         ``float``
DECIMAL(p, s)  ``decimal.Decimal`` whose exponent is exactly ``-s``
STRING         ``str``
BYTES          ``bytes``
DATE           ``int``: days since 1970-01-01
TIME           ``int``: milliseconds since midnight
TIMESTAMP      ``int``: milliseconds since the epoch (UTC)
ARRAY<T>       ``list``
MAP<K, V>      ``dict`` (insertion ordered)
STRUCT<...>    ``dict`` field name -> value, in the type's field order; a missing
               field reads as ``None``
============== ===========================================================

Types are immutable, hashable and print as ksqlDB prints them (``str(t)``), e.g.
``DECIMAL(4, 2)``, ``ARRAY<INTEGER>``, ``STRUCT<`A` INTEGER>``.
"""

from __future__ import annotations

import decimal
import re
from dataclasses import dataclass
from typing import Any

MAX_DECIMAL_PRECISION = 38

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class SqlType:
    """Base class. ``base`` is ksqlDB's SqlBaseType name (BOOLEAN, INTEGER, ..., STRUCT)."""

    base: str

    def __str__(self) -> str:
        return self.base

    @property
    def is_numeric(self) -> bool:
        return self.base in NUMERIC_BASES

    @property
    def is_temporal(self) -> bool:
        return self.base in ("DATE", "TIME", "TIMESTAMP")


@dataclass(frozen=True)
class DecimalType(SqlType):
    precision: int = 10
    scale: int = 0

    def __str__(self) -> str:
        return f"DECIMAL({self.precision}, {self.scale})"


@dataclass(frozen=True)
class ArrayType(SqlType):
    element: SqlType | None = None  # None: element type unknown (empty ARRAY[] literal)

    def __str__(self) -> str:
        return f"ARRAY<{self.element}>"


@dataclass(frozen=True)
class MapType(SqlType):
    key: SqlType | None = None
    value: SqlType | None = None

    def __str__(self) -> str:
        return f"MAP<{self.key}, {self.value}>"


@dataclass(frozen=True)
class StructType(SqlType):
    fields: tuple[tuple[str, SqlType], ...] = ()

    def __str__(self) -> str:
        if not self.fields:
            return "STRUCT< >"
        # ksqlDB always back-quotes struct field names when printing types.
        return "STRUCT<" + ", ".join("`" + n.replace("`", "``") + f"` {t}"
                                     for n, t in self.fields) + ">"

    def field(self, name: str) -> SqlType | None:
        for n, t in self.fields:
            if n == name:
                return t
        return None

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.fields)


BOOLEAN = SqlType("BOOLEAN")
INTEGER = SqlType("INTEGER")
BIGINT = SqlType("BIGINT")
DOUBLE = SqlType("DOUBLE")
STRING = SqlType("STRING")
BYTES = SqlType("BYTES")
DATE = SqlType("DATE")
TIME = SqlType("TIME")
TIMESTAMP = SqlType("TIMESTAMP")
# The type of a bare NULL literal before inference gives it a real type.
NULL = SqlType("NULL")

NUMERIC_BASES = frozenset({"INTEGER", "BIGINT", "DECIMAL", "DOUBLE"})
PRIMITIVES: dict[str, SqlType] = {
    "BOOLEAN": BOOLEAN, "INT": INTEGER, "INTEGER": INTEGER, "BIGINT": BIGINT, "DOUBLE": DOUBLE,
    "STRING": STRING, "VARCHAR": STRING, "BYTES": BYTES, "DATE": DATE, "TIME": TIME,
    "TIMESTAMP": TIMESTAMP,
}

# Decimal equivalents of the integer types (ksqlDB's DecimalUtil.toSqlDecimal).
_INT_AS_DECIMAL = {"INTEGER": DecimalType("DECIMAL", 10, 0), "BIGINT": DecimalType("DECIMAL", 19, 0)}
_NUMERIC_RANK = {"INTEGER": 0, "BIGINT": 1, "DECIMAL": 2, "DOUBLE": 3}

_PLAIN_IDENT = re.compile(r"^[A-Z_][A-Z0-9_@]*$")


def decimal_type(precision: int, scale: int) -> DecimalType:
    return DecimalType("DECIMAL", precision, scale)


def array_of(element: SqlType | None) -> ArrayType:
    return ArrayType("ARRAY", element)


def map_of(key: SqlType | None, value: SqlType | None) -> MapType:
    return MapType("MAP", key, value)


def struct_of(fields: list[tuple[str, SqlType]] | tuple[tuple[str, SqlType], ...]) -> StructType:
    return StructType("STRUCT", tuple(fields))


def quote_identifier(name: str) -> str:
    """ksqlDB prints struct field names unquoted when they are plain upper-case identifiers."""
    return name if _PLAIN_IDENT.match(name) else "`" + name.replace("`", "``") + "`"


def as_decimal(t: SqlType) -> DecimalType:
    """The DECIMAL type that holds every value of the integer or decimal type ``t`` exactly."""
    if isinstance(t, DecimalType):
        return t
    if t.base in _INT_AS_DECIMAL:
        return _INT_AS_DECIMAL[t.base]
    raise ValueError(f"{t} has no decimal equivalent")


def widen_numeric(a: SqlType, b: SqlType) -> SqlType:
    """Result type of mixing two numeric types: INT < BIGINT < DECIMAL < DOUBLE."""
    ra, rb = _NUMERIC_RANK[a.base], _NUMERIC_RANK[b.base]
    if a.base == "DECIMAL" or b.base == "DECIMAL":
        if a.base == "DOUBLE" or b.base == "DOUBLE":
            return DOUBLE
        da, db = as_decimal(a), as_decimal(b)
        # Widest integral part and widest scale (ksqlDB's DecimalUtil.widen).
        scale = max(da.scale, db.scale)
        integral = max(da.precision - da.scale, db.precision - db.scale)
        return decimal_type(min(integral + scale, MAX_DECIMAL_PRECISION), scale)
    return a if ra >= rb else b


def decimal_arithmetic(op: str, a: DecimalType, b: DecimalType) -> DecimalType:
    """Result type of ``a op b`` for two decimals (ksqlDB's SqlDecimal rules, SQL Server style)."""
    p1, s1, p2, s2 = a.precision, a.scale, b.precision, b.scale
    if op in ("+", "-"):
        scale = max(s1, s2)
        precision = scale + max(p1 - s1, p2 - s2) + 1
    elif op == "*":
        precision, scale = p1 + p2 + 1, s1 + s2
    elif op == "/":
        scale = max(6, s1 + p2 + 1)
        precision = p1 - s1 + s2 + scale
    elif op == "%":
        scale = max(s1, s2)
        precision = min(p1 - s1, p2 - s2) + scale
    else:
        raise ValueError(op)
    if precision > MAX_DECIMAL_PRECISION:
        # Keep as much scale as fits, like SQL Server: at least 6 digits of scale when possible.
        scale = max(0, min(scale, MAX_DECIMAL_PRECISION - (precision - scale)), min(scale, 6))
        precision = MAX_DECIMAL_PRECISION
    return decimal_type(precision, scale)


def is_assignable(target: SqlType, source: SqlType) -> bool:
    """Can a value of ``source`` be used where ``target`` is expected without an explicit CAST?

    Follows ksqlDB's implicit widening: INT -> BIGINT -> DECIMAL -> DOUBLE, NULL -> anything,
    and structural equality for ARRAY/MAP/STRUCT (unknown element types match anything).
    """
    if source.base == "NULL" or target == source:
        return True
    if target.is_numeric and source.is_numeric:
        if target.base == "DECIMAL" and source.base != "DOUBLE":
            if source.base == "DECIMAL":
                return True
            return True
        return _NUMERIC_RANK[target.base] >= _NUMERIC_RANK[source.base]
    if isinstance(target, ArrayType) and isinstance(source, ArrayType):
        return (source.element is None or target.element is None
                or is_assignable(target.element, source.element))
    if isinstance(target, MapType) and isinstance(source, MapType):
        return ((source.key is None or target.key is None or is_assignable(target.key, source.key))
                and (source.value is None or target.value is None
                     or is_assignable(target.value, source.value)))
    if isinstance(target, StructType) and isinstance(source, StructType):
        return target.field_names == source.field_names and all(
            is_assignable(t, s) for (_, t), (_, s) in zip(target.fields, source.fields, strict=True))
    return False


class NoCommonType(Exception):
    """``left`` (the common type of the types before) and ``right`` have no common type."""

    def __init__(self, left: SqlType, right: SqlType) -> None:
        super().__init__(f"{left} and {right}")
        self.left = left
        self.right = right


def common_type(types: list[SqlType]) -> SqlType:
    """The type every one of ``types`` widens or is assigned to, NULLs ignored (NULL when all
    are NULL), as CASE branches and COALESCE/IFNULL/NULLIF arguments are typed."""
    result: SqlType = NULL
    for t in types:
        if t.base == "NULL":
            continue
        if result.base == "NULL":
            result = t
        elif result == t:
            continue
        elif result.is_numeric and t.is_numeric:
            result = widen_numeric(result, t)
        elif is_assignable(result, t):
            continue
        elif is_assignable(t, result):
            result = t
        else:
            raise NoCommonType(result, t)
    return result


def quantize(value: decimal.Decimal, t: DecimalType) -> decimal.Decimal | None:
    """Round ``value`` (HALF_UP) to the type's scale; None when it does not fit the precision."""
    q = value.quantize(decimal.Decimal(1).scaleb(-t.scale), rounding=decimal.ROUND_HALF_UP,
                       context=_WIDE)
    if q.adjusted() + 1 > t.precision - t.scale and q != 0:
        return None
    return q


_WIDE = decimal.Context(prec=200, rounding=decimal.ROUND_HALF_UP)
_DECIMAL_OPS = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide", "%": "remainder"}


def decimal_exact(op: str, a: decimal.Decimal, b: decimal.Decimal,
                  t: DecimalType) -> decimal.Decimal | None:
    """``a op b`` as ksqlDB computes DECIMAL arithmetic: exactly, like Java's BigDecimal with
    ``MathContext(precision, UNNECESSARY)`` then ``setScale(scale)``. A result that would need
    rounding (``1 / 3``, more digits than the precision, more decimals than the scale) fails,
    and the expression is null; so is a division or remainder by zero."""
    if op in ("/", "%") and b == 0:
        return None
    ctx = decimal.Context(prec=t.precision, rounding=decimal.ROUND_HALF_UP, traps=[])
    r = getattr(ctx, _DECIMAL_OPS[op])(a, b)  # a fresh context: its flags are read below
    if ctx.flags[decimal.Inexact] or ctx.flags[decimal.InvalidOperation] or not r.is_finite():
        return None
    q = r.quantize(decimal.Decimal(1).scaleb(-t.scale), context=_WIDE)
    if q != r or (q.adjusted() + 1 > t.precision - t.scale and q != 0):
        return None
    return q


def wrap_int(v: int) -> int:
    """Java 32-bit two's-complement wrap-around."""
    return ((v + 2**31) % 2**32) - 2**31


def wrap_bigint(v: int) -> int:
    """Java 64-bit two's-complement wrap-around."""
    return ((v + 2**63) % 2**64) - 2**63


def python_type_check(t: SqlType, value: Any) -> bool:
    """True when ``value`` is a valid Python carrier of ``t`` (used by tests and asserts)."""
    if value is None:
        return True
    b = t.base
    if b == "BOOLEAN":
        return isinstance(value, bool)
    if b in ("INTEGER", "BIGINT", "DATE", "TIME", "TIMESTAMP"):
        return isinstance(value, int) and not isinstance(value, bool)
    if b == "DOUBLE":
        return isinstance(value, float)
    if b == "DECIMAL":
        return isinstance(value, decimal.Decimal)
    if b == "STRING":
        return isinstance(value, str)
    if b == "BYTES":
        return isinstance(value, bytes)
    if isinstance(t, ArrayType):
        return isinstance(value, list)
    if isinstance(t, (MapType, StructType)):
        return isinstance(value, dict)
    return False


def parse_type(text: str) -> SqlType:
    """Parse a type as written in SQL or in ksqlDB's schema strings (``STRUCT<A INT>``)."""
    from hayase.sql.parser import parse_type as _parse_type  # grammar lives with the parser

    return _parse_type(text)
