"""Registry of ksqlDB scalar functions (and the names of aggregate/table functions).

A function is a :class:`Udf`: ``bind(arg_types, literal_args)`` checks the argument types and
returns a :class:`Bound` (return type + Python implementation).  ``simple()`` builds the common
case from overload signatures.  Implementations receive non-null Python values unless the
function is registered with ``nulls=False``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hayase.sql.types import (
    BIGINT,
    BOOLEAN,
    BYTES,
    DATE,
    DOUBLE,
    INTEGER,
    NULL,
    STRING,
    TIME,
    TIMESTAMP,
    ArrayType,
    DecimalType,
    MapType,
    SqlType,
    StructType,
)


class FunctionArgError(Exception):
    """The arguments do not match any signature of the function."""


@dataclass
class Bound:
    return_type: SqlType
    impl: Callable[..., Any]
    nulls: bool = True  # any null argument -> null result, impl not called
    coerce: list[SqlType | None] | None = None  # implicit argument conversions


@dataclass(frozen=True)
class Argument:
    """One parameter of a signature, as ksqlDB's ArgumentInfo prints it."""
    name: str
    type: str  # ksqlDB's ParamType text: INT, BIGINT, STRING, ARRAY<T>, MAP<K, V>, T, ...
    description: str = ""


@dataclass(frozen=True)
class Signature:
    """One overload of a function (ksqlDB's FunctionInfo): what DESCRIBE FUNCTION prints."""
    arguments: tuple[Argument, ...]
    returns: str
    description: str = ""
    variadic: bool = False  # the last argument repeats


@dataclass
class Udf:
    name: str
    bind: Callable[[list[SqlType], list[Any]], Bound]
    lambda_params: Callable[[list[SqlType], int], list[SqlType]] | None = None
    aggregate: bool = False
    table: bool = False
    deterministic: bool = True
    description: str = ""
    category: str = "OTHER"
    unify_args: bool = False  # coerce all arguments to one type first (GREATEST, COALESCE, ...)
    precheck: Callable[[list[SqlType]], None] | None = None  # runs on the raw argument types
    signatures: list[Signature] = field(default_factory=list)  # for DESCRIBE FUNCTION


_REGISTRY: dict[str, Udf] = {}


def register(udf: Udf) -> Udf:
    _REGISTRY[udf.name.upper()] = udf
    return udf


def signatures_of(udf: Udf) -> list[Signature]:
    """The overloads DESCRIBE FUNCTION lists: those ``simple()`` derived, else the documented
    ones of the hand-written binders (hayase.sql.functions.signatures)."""
    if udf.signatures:
        return udf.signatures
    from hayase.sql.functions.signatures import documented

    return documented(udf.name)


def lookup(name: str) -> Udf | None:
    _load()
    return _REGISTRY.get(name.upper())


def all_functions() -> list[Udf]:
    _load()
    return sorted(_REGISTRY.values(), key=lambda u: u.name)


_loaded = False


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from hayase.sql.functions import (  # noqa: F401 - registration side effects
            aggregates,
            collections,
            datetime_fns,
            json_fns,
            math_fns,
            misc,
            string_fns,
        )


# --------------------------------------------------------------------------- signatures

ReturnSpec = SqlType | Callable[[list[SqlType]], SqlType]

_NUMERIC = ("INTEGER", "BIGINT", "DECIMAL", "DOUBLE")


def accepts(spec: str, t: SqlType) -> SqlType | None | bool:
    """Does parameter ``spec`` accept ``t``?  Returns False, True (as is) or a coercion type."""
    b = t.base
    if b == "NULL":
        return True
    if spec == "ANY":
        return True
    if spec == "NUM":
        return b in _NUMERIC
    if spec == "INT":
        return b == "INTEGER"
    if spec == "BIGINT":
        return True if b == "BIGINT" else (BIGINT if b == "INTEGER" else False)
    if spec == "DOUBLE":
        return True if b == "DOUBLE" else (DOUBLE if b in _NUMERIC else False)
    if spec == "DECIMAL":
        return b == "DECIMAL"
    if spec in ("ARRAY", "MAP", "STRUCT"):
        return b == spec
    if spec == "ARRAY<STRING>":
        return isinstance(t, ArrayType) and (t.element is None or t.element.base in ("STRING", "NULL"))
    return b == spec


def signature_matches(specs: Sequence[str], types: list[SqlType], variadic: bool
                      ) -> list[SqlType | None] | None:
    if variadic:
        if len(types) < len(specs) - 1:
            return None
        specs = list(specs[:-1]) + [specs[-1]] * (len(types) - len(specs) + 1)
    elif len(specs) != len(types):
        return None
    coerce: list[SqlType | None] = []
    for spec, t in zip(specs, types, strict=True):
        r = accepts(spec, t)
        if r is False:
            return None
        coerce.append(r if isinstance(r, SqlType) else None)
    return coerce


def format_types(types: list[SqlType]) -> str:
    return ", ".join("null" if t.base == "NULL" else str(t) for t in types)


def ambiguous(name: str, types: list[SqlType]) -> FunctionArgError:
    """ksqlDB's UdfIndex error when more than one overload fits a call equally well."""
    return FunctionArgError(f"Function '{name.lower()}' cannot be resolved due to ambiguous "
                            f"method parameters ({format_types(types)}).")


def simple(name: str, overloads: Sequence[tuple[Sequence[str], ReturnSpec]],
           impl: Callable[..., Any], *, nulls: bool = True, variadic: bool = False,
           category: str = "OTHER", description: str = "", deterministic: bool = True,
           precheck: Callable[[list[SqlType]], None] | None = None) -> Udf:
    """Register a function given overloads ``([param specs], return type or fn(arg types))``;
    ``precheck`` sees the raw argument types first (Udf.precheck)."""

    def bind(types: list[SqlType], literals: list[Any]) -> Bound:
        if any(t.base == "NULL" for t in types):
            _reject_ambiguous_null(name, overloads, types, variadic)
        for specs, ret in overloads:
            coerce = signature_matches(specs, types, variadic)
            if coerce is not None:
                rt = ret(types) if callable(ret) else ret
                return Bound(rt, impl, nulls, coerce)
        raise FunctionArgError(
            f"Function '{name.lower()}' does not accept parameters ({format_types(types)}).")

    sigs = [_signature(specs, ret, impl, variadic, description) for specs, ret in overloads]
    return register(Udf(name.upper(), bind, category=category, description=description,
                        deterministic=deterministic, signatures=sigs, precheck=precheck))


# ksqlDB's ParamType text of a parameter spec ("NUM" takes any number: ksqlDB declares one
# overload per numeric type; hayase prints the one generic parameter).
_SPEC_TEXT = {"INT": "INT", "NUM": "NUMBER", "ANY": "T", "ARRAY": "ARRAY<T>", "MAP": "MAP<K, V>",
              "STRUCT": "STRUCT", "ARRAY<STRING>": "ARRAY<STRING>"}
# A concrete argument type for each spec, to compute a return type given as a function.
_SPEC_SAMPLE: dict[str, SqlType] = {"INT": INTEGER, "BIGINT": BIGINT, "DOUBLE": DOUBLE,
                                    "STRING": STRING, "BOOLEAN": BOOLEAN, "BYTES": BYTES,
                                    "DATE": DATE, "TIME": TIME, "TIMESTAMP": TIMESTAMP,
                                    "ARRAY<STRING>": ArrayType("ARRAY", STRING)}


def type_text(t: SqlType) -> str:
    """A SQL type as ksqlDB's ParamType prints it (INT, not INTEGER; DECIMAL without its
    precision, which a declared return type does not fix)."""
    if isinstance(t, ArrayType):
        return f"ARRAY<{type_text(t.element) if t.element else 'T'}>"
    if isinstance(t, MapType):
        return (f"MAP<{type_text(t.key) if t.key else 'K'}, "
                f"{type_text(t.value) if t.value else 'V'}>")
    if isinstance(t, StructType):
        return "STRUCT"
    return {"INTEGER": "INT", "NULL": "T"}.get(t.base, t.base)


def _return_text(specs: Sequence[str], ret: ReturnSpec) -> str:
    if not callable(ret):
        return type_text(ret)
    if all(s in _SPEC_SAMPLE for s in specs):
        try:
            return type_text(ret([_SPEC_SAMPLE[s] for s in specs]))
        except Exception:  # noqa: BLE001 - a return function that needs a real argument
            pass
    # Generic: the return type follows the arguments (the first generic one, as a rule).
    generic = next((s for s in specs if s not in _SPEC_SAMPLE), None)
    return _SPEC_TEXT.get(generic, "T") if generic else "T"


def _param_names(impl: Callable[..., Any], count: int) -> list[str]:
    """Names of the implementation's parameters (ksqlDB prints its UDF's parameter names)."""
    try:
        params = list(inspect.signature(impl).parameters.values())
    except (TypeError, ValueError):
        params = []
    names: list[str] = []
    for i in range(count):
        if i < len(params) and params[i].kind is not inspect.Parameter.VAR_KEYWORD:
            names.append(params[i].name.lstrip("_"))
        elif params and params[-1].kind is inspect.Parameter.VAR_POSITIONAL:
            names.append(params[-1].name.lstrip("_"))
        else:
            names.append(f"arg{i + 1}")
    return names


def _signature(specs: Sequence[str], ret: ReturnSpec, impl: Callable[..., Any],
               variadic: bool, description: str) -> Signature:
    names = _param_names(impl, len(specs))
    args = tuple(Argument(n, _SPEC_TEXT.get(s, s)) for n, s in zip(names, specs, strict=True))
    return Signature(args, _return_text(specs, ret), description, variadic)


def _reject_ambiguous_null(name: str, overloads: Sequence[tuple[Sequence[str], ReturnSpec]],
                           types: list[SqlType], variadic: bool) -> None:
    """ksqlDB's untyped NULL literal fits every parameter: when it lets two overloads match
    without any cast (SUBSTRING(NULL, 1): STRING or BYTES), the call is ambiguous."""
    exact = [specs for specs, _ in overloads
             if (c := signature_matches(specs, types, variadic)) is not None
             and all(x is None for x in c)]
    if len({tuple(specs) for specs in exact}) > 1:
        raise ambiguous(name, types)


def first_type(types: list[SqlType]) -> SqlType:
    return next((t for t in types if t.base != "NULL"), NULL)


__all__ = ["Udf", "Bound", "Argument", "Signature", "signatures_of", "type_text", "FunctionArgError", "register", "lookup", "all_functions", "simple",
           "accepts", "signature_matches", "format_types", "first_type", "BOOLEAN", "BYTES",
           "DATE", "DOUBLE", "INTEGER", "STRING", "TIME", "TIMESTAMP", "DecimalType", "MapType",
           "StructType", "field"]
