"""Every function declares printable overloads (DESCRIBE FUNCTION): derived by ``simple()``
from its overload specs, or documented for the hand-written binders."""

from __future__ import annotations

import pytest

from hayase.sql.functions import Argument, all_functions, lookup, signatures_of, type_text
from hayase.sql.functions.signatures import documented_names, parse_signature
from hayase.sql.types import BIGINT, INTEGER, STRING, ArrayType, DecimalType, MapType


def test_every_function_has_a_signature() -> None:
    assert [u.name for u in all_functions() if not signatures_of(u)] == []


def test_documented_names_are_registered_functions() -> None:
    # A typo in the table would document nothing and leave the real function bare.
    assert documented_names() <= {u.name for u in all_functions()}


def test_simple_derives_names_types_and_return_types() -> None:
    udf = lookup("SUBSTRING")
    assert udf is not None
    sigs = signatures_of(udf)
    assert [[(a.name, a.type) for a in s.arguments] for s in sigs][:2] == [
        [("s", "STRING"), ("pos", "INT")], [("s", "STRING"), ("pos", "INT"), ("length", "INT")]]
    assert [s.returns for s in sigs] == ["STRING", "STRING", "BYTES", "BYTES"]


@pytest.mark.parametrize(("name", "returns"), [("LEN", "INT"), ("UCASE", "STRING"),
                                               ("SIGN", "INT"), ("INSTR", "INT")])
def test_return_types_print_as_ksqldb_param_types(name: str, returns: str) -> None:
    udf = lookup(name)
    assert udf is not None
    assert {s.returns for s in signatures_of(udf)} == {returns}


def test_documented_signature_parses_generics_lambdas_and_variadics() -> None:
    sig = parse_signature("map MAP<K, V>, f LAMBDA (K, V) => L, rest STRING... -> MAP<L, V>")
    assert sig.arguments == (Argument("map", "MAP<K, V>"), Argument("f", "LAMBDA (K, V) => L"),
                             Argument("rest", "STRING"))
    assert (sig.returns, sig.variadic) == ("MAP<L, V>", True)
    udf = lookup("CONCAT")
    assert udf is not None and signatures_of(udf)[0].variadic


def test_type_text() -> None:
    assert type_text(INTEGER) == "INT"
    assert type_text(DecimalType("DECIMAL", 4, 2)) == "DECIMAL"
    assert type_text(ArrayType("ARRAY", BIGINT)) == "ARRAY<BIGINT>"
    assert type_text(MapType("MAP", STRING, INTEGER)) == "MAP<STRING, INT>"
