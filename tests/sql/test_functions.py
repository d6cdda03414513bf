"""Scalar functions: results and null handling as ksqlDB defines them."""

from __future__ import annotations

import decimal

import pytest
from tests.sql.conftest import evaluate, result_type

from hayase.sql.errors import StatementError
from hayase.sql.functions import all_functions, lookup

D = decimal.Decimal


@pytest.mark.parametrize(("expr", "cols", "row", "expected"), [
    ("SUBSTRING(S, 2)", "S STRING", ("hello",), "ello"),
    ("SUBSTRING(S, 2, 2)", "S STRING", ("hello",), "el"),
    ("SUBSTRING(S, -3)", "S STRING", ("hello",), "llo"),
    ("LEN(S)", "S STRING", ("héllo",), 5),
    ("UCASE(S)", "S STRING", (None,), None),
    ("TRIM(S)", "S STRING", ("  a b  ",), "a b"),
    ("INITCAP(S)", "S STRING", ("hello wORLD",), "Hello World"),
    ("CONCAT(S, 'x', NULL)", "S STRING", ("a",), "ax"),
    ("CONCAT_WS('-', S, NULL, 'b')", "S STRING", ("a",), "a-b"),
    ("REPLACE(S, 'l', 'L')", "S STRING", ("hello",), "heLLo"),
    ("REGEXP_REPLACE(S, 'l+', 'L')", "S STRING", ("hello",), "heLo"),
    ("REGEXP_EXTRACT('(\\w+)@', S, 1)", "S STRING", ("bob@x",), "bob"),
    ("SPLIT(S, ',')", "S STRING", ("a,,b",), ["a", "", "b"]),
    ("INSTR(S, 'l')", "S STRING", ("hello",), 3),
    ("INSTR(S, 'l', 1, 2)", "S STRING", ("hello",), 4),
    ("LPAD(S, 5, 'ab')", "S STRING", ("x",), "ababx"),
    ("RPAD(S, 2, 'ab')", "S STRING", ("xyz",), "xy"),
    ("MASK(S)", "S STRING", ("Ab1-",), "Xxn-"),
    ("MASK(S, '*', NULL, '1', NULL)", "S STRING", ("My Test $123",), "*y *est $111"),
    ("MASK_KEEP_LEFT(S, 4)", "S STRING", ("My Test $123",), "My Txxx--nnn"),
    ("MASK_KEEP_RIGHT(S, 4)", "S STRING", ("My Test $123",), "Xx-Xxxx-$123"),
    ("MASK_LEFT(S, 4)", "S STRING", ("My Test $123",), "Xx-Xest $123"),
    ("MASK_RIGHT(S, 4)", "S STRING", ("My Test $123",), "My Test -nnn"),
    ("INSTR(S, 'OR', -3)", "S STRING", ("CORPORATE FLOOR",), 5),
    ("INSTR(S, 'OR', -3, 2)", "S STRING", ("CORPORATE FLOOR",), 2),
    ("INSTR(S, 'OR', 3, 2)", "S STRING", ("CORPORATE FLOOR",), 14),
    ("INSTR(S, 'XX', 3)", "S STRING", ("CORPORATE FLOOR",), 0),
    ("INSTR(S, 'OR')", "S STRING", (None,), 0),
    ("INITCAP(S)", "S STRING", ("  hello   wORLD",), "Hello   World"),
    ("SPLIT_TO_MAP(S, ';', '=')", "S STRING", ("a=1;;b=2=3",), {"a": "1", "b": "2"}),
    ("SPLIT(S, '')", "S STRING", ("",), [""]),
    ("REGEXP_EXTRACT_ALL('(a)', S, 2)", "S STRING", ("aa",), None),
    ("TRIM(S)", "S STRING", ("\t x \n",), "x"),
    ("IFNULL(S, 'd')", "S STRING", (None,), "d"),
    ("COALESCE(NULL, S, 'z')", "S STRING", ("y",), "y"),
    ("NULLIF(S, 'a')", "S STRING", ("a",), None),
    ("ENCODE(S, 'utf8', 'hex')", "S STRING", ("Ex",), "4578"),
    ("MD5(S)", "S STRING", ("a",), "0cc175b9c0f1b6a831c399e269772661"),
    ("URL_EXTRACT_HOST(S)", "S STRING", ("http://x.com:80/p?q=1#f",), "x.com"),
    ("URL_EXTRACT_PARAMETER(S, 'q')", "S STRING", ("http://x.com/p?q=1",), "1"),
    ("INT_FROM_BOOLEAN(B)", "B BOOLEAN", (True,), 1),
    ("INT_FROM_BOOLEAN(B)", "B BOOLEAN", (False,), 0),
    ("INT_FROM_BOOLEAN(B)", "B BOOLEAN", (None,), None),
])
def test_string_functions(expr: str, cols: str, row: tuple[object, ...], expected: object) -> None:
    assert evaluate(expr, cols, row) == expected


@pytest.mark.parametrize(("expr", "cols", "row", "expected"), [
    ("ABS(X)", "X INT", (-3,), 3),
    ("ROUND(X)", "X DOUBLE", (-1.5,), -1),
    ("ROUND(X)", "X DOUBLE", (1.5,), 2),
    ("ROUND(X, 1)", "X DOUBLE", (1.25,), 1.3),
    ("ROUND(D, 1)", "D DECIMAL(4, 2)", (D("1.25"),), D("1.30")),
    ("FLOOR(X)", "X DOUBLE", (-1.5,), -2.0),
    ("CEIL(D)", "D DECIMAL(4, 2)", (D("1.01"),), D("2.00")),
    ("SIGN(X)", "X DOUBLE", (-0.1,), -1),
    ("SQRT(X)", "X INT", (16,), 4.0),
    ("POWER(X, 2)", "X INT", (3,), 9.0),
    ("GREATEST(X, 5, NULL)", "X INT", (7,), 7),
    ("LEAST(X, 5)", "X INT", (7,), 5),
])
def test_math_functions(expr: str, cols: str, row: tuple[object, ...], expected: object) -> None:
    assert evaluate(expr, cols, row) == expected


def test_math_return_types() -> None:
    assert result_type("ROUND(X)", "X DOUBLE") == "BIGINT"
    assert result_type("ROUND(D)", "D DECIMAL(33, 16)") == "DECIMAL(17, 0)"
    assert result_type("ABS(D)", "D DECIMAL(4, 2)") == "DECIMAL(4, 2)"
    with pytest.raises(StatementError, match="ambiguous method parameters"):
        evaluate("LEAST(X, Y)", "X INT, Y BIGINT", (1, 2))


@pytest.mark.parametrize(("expr", "cols", "row", "expected"), [
    ("EXTRACTJSONFIELD(S, '$.a.b[1]')", "S STRING", ('{"a": {"b": [1, "two"]}}',), "two"),
    ("EXTRACTJSONFIELD(S, '$.a')", "S STRING", ('{"a": {"x": 1}}',), '{"x":1}'),
    ("EXTRACTJSONFIELD(S, '$.z')", "S STRING", ('{"a": 1}',), None),
    ("IS_JSON_STRING(S)", "S STRING", ("[1",), False),
    ("JSON_ARRAY_LENGTH(S)", "S STRING", ("[1, 2]",), 2),
    ("JSON_KEYS(S)", "S STRING", ('{"a": 1, "b": 2}',), ["a", "b"]),
    ("TO_JSON_STRING(L)", "L ARRAY<DECIMAL(3, 1)>", ([D("1.0"), None],), "[1.0,null]"),
    ("TO_JSON_STRING(S)", "S STRUCT<A INT, B STRING>", ({"A": 1, "B": "x"},), '{"A":1,"B":"x"}'),
])
def test_json_functions(expr: str, cols: str, row: tuple[object, ...], expected: object) -> None:
    assert evaluate(expr, cols, row) == expected


@pytest.mark.parametrize(("expr", "expected"), [
    ("ARRAY_LENGTH(L)", 4),
    ("ARRAY_CONTAINS(L, 2)", True),
    ("ARRAY_DISTINCT(L)", [3, 1, 2, None]),
    ("ARRAY_MAX(L)", 3),
    ("ARRAY_SORT(L)", [1, 2, 3, None]),
    ("ARRAY_SORT(L, 'DESC')", [3, 2, 1, None]),
    ("ARRAY_REMOVE(L, 1)", [3, 2, None]),
    ("ARRAY_JOIN(L, '|')", "3|1|2|null"),
    ("SLICE(L, 2, 3)", [1, 2]),
    ("ARRAY_UNION(L, ARRAY[9])", [3, 1, 2, None, 9]),
    ("ARRAY_INTERSECT(L, ARRAY[2, 3])", [3, 2]),
    ("ARRAY_EXCEPT(L, ARRAY[2, 3])", [1, None]),
])
def test_array_functions(expr: str, expected: object) -> None:
    assert evaluate(expr, "L ARRAY<INT>", ([3, 1, 2, None],)) == expected


def test_date_time_functions() -> None:
    assert evaluate("TIMESTAMPTOSTRING(X, 'yyyy-MM-dd HH:mm:ss.SSS')", "X BIGINT",
                    (1_500,)) == "1970-01-01 00:00:01.500"
    assert evaluate("STRINGTOTIMESTAMP(S, 'yyyy-MM-dd''T''HH:mm')", "S STRING",
                    ("1970-01-02T00:01",)) == 86_460_000
    assert evaluate("TIMESTAMPTOSTRING(X, 'HH:mm', 'Europe/Paris')", "X BIGINT", (0,)) == "01:00"
    assert evaluate("TIMESTAMPADD(SECONDS, 5, T)", "T TIMESTAMP", (1_000,)) == 6_000
    assert evaluate("DATEADD(DAYS, 2, D)", "D DATE", (10,)) == 12
    assert evaluate("PARSE_DATE(S, 'dd/MM/yyyy')", "S STRING", ("02/01/1970",)) == 1
    with pytest.raises(StatementError, match="does not accept parameters"):
        evaluate("TIMEADD(T, 5, T)", "T TIME", (0,))


def test_function_failure_yields_null_for_that_call_only() -> None:
    out = evaluate("ARRAY[ENCODE(S, 'hex', 'utf8'), 'ok']", "S STRING", ("zz",))
    assert out == [None, "ok"]


def test_unknown_function_and_aggregate_outside_group_by() -> None:
    with pytest.raises(StatementError, match="Can't find any functions with the name 'NOPE'"):
        evaluate("NOPE(X)")
    with pytest.raises(StatementError, match="without a GROUP BY clause"):
        evaluate("COUNT(X)")


def test_registry_lists_functions() -> None:
    names = {f.name for f in all_functions()}
    assert {"SUBSTRING", "EXTRACTJSONFIELD", "TRANSFORM", "EXPLODE", "COUNT"} <= names
    udf = lookup("explode")
    assert udf is not None and udf.table
