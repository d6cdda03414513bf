"""JSON functions at their edges, as ksqlDB's UDFs (Jackson underneath) compute them."""

from __future__ import annotations

import decimal

import pytest
from tests.sql.conftest import evaluate

D = decimal.Decimal


@pytest.mark.parametrize(("expr", "cols", "row", "expected"), [
    # A JSON null at the path is a node: its text is "null"; a missing field is SQL null.
    ("EXTRACTJSONFIELD(S, '$.a')", "S STRING", ('{"a": null}',), "null"),
    ("EXTRACTJSONFIELD(S, '$.b')", "S STRING", ('{"a": null}',), None),
    ("EXTRACTJSONFIELD(S, '$.a[0]')", "S STRING", ('{"a": {"0": "zero"}}',), "zero"),
    ("EXTRACTJSONFIELD(S, '$.a')", "S STRING", ('{"a": {"k\u00e9": 1e2}}',), '{"k\u00e9":1E+2}'),
    # JSON_CONCAT: objects merge only when all are objects, else everything becomes arrays.
    ("JSON_CONCAT(S, '{\"b\": 2}', '[3]')", "S STRING", ('{"a": 1}',), '[{"a":1},{"b":2},3]'),
    ("JSON_CONCAT(S, '{\"a\": 2}')", "S STRING", ('{"a": 1, "c": 0}',), '{"a":2,"c":0}'),
    ("JSON_CONCAT(S, '[1]')", "S STRING", ("null",), "[null,1]"),
    ("JSON_CONCAT(S, '[1e2]')", "S STRING", ("[]",), "[100]"),
    ("JSON_CONCAT(S, '[1]')", "S STRING", ("[",), None),
    # TO_JSON_STRING: Double.toString numbers, plain decimals, keys in order.
    ("TO_JSON_STRING(X)", "X DOUBLE", (1e10,), "1.0E10"),
    ("TO_JSON_STRING(X)", "X DOUBLE", (float("nan"),), '"NaN"'),
    ("TO_JSON_STRING(M)", "M MAP<STRING, INT>", ({"b": 1, "a": 2},), '{"a":2,"b":1}'),
    ("TO_JSON_STRING(S)", "S STRUCT<Z INT, A STRING>", ({"Z": 1, "A": "x"},), '{"A":"x","Z":1}'),
    ("TO_JSON_STRING(D)", "D DECIMAL(4, 2)", (D("1.50"),), "1.50"),
])
def test_json_edges(expr: str, cols: str, row: tuple[object, ...], expected: object) -> None:
    assert evaluate(expr, cols, row) == expected


@pytest.mark.parametrize(("array", "value", "cols", "expected"), [
    ("[1, 2]", 1, "V INT", True),
    ("[1.0]", 1, "V INT", False),  # a float token never matches an INT
    ("[1]", 1.0, "V DOUBLE", False),  # an integer token never matches a DOUBLE
    ("[1e2]", 100.0, "V DOUBLE", True),
    ("[\"a\", null]", None, "V STRING", True),
    ("[[1], {\"a\": 1}]", 1, "V INT", False),  # nested values are skipped
    ("[1, 2", 1, "V INT", True),  # matched before the malformed tail
    ("{\"a\": 1}", 1, "V INT", False),
    (None, 1, "V INT", None),
    ("[true]", True, "V BOOLEAN", True),
])
def test_json_array_contains(array: str | None, value: object, cols: str,
                             expected: bool | None) -> None:
    assert evaluate("JSON_ARRAY_CONTAINS(S, V)", f"S STRING, {cols}", (array, value)) == expected


def test_non_numeric_numbers_are_not_json() -> None:
    assert evaluate("IS_JSON_STRING(S)", "S STRING", ("NaN",)) is False
    assert evaluate("JSON_ARRAY_LENGTH(S)", "S STRING", ("[Infinity]",)) is None
    assert evaluate("IS_JSON_STRING(S)", "S STRING", ("[1] trailing",)) is True


def test_control_characters_escape_in_upper_case() -> None:
    text = '{"a": ["x\\u001fy", "\\\\u001f"]}'
    assert evaluate("EXTRACTJSONFIELD(S, '$.a')", "S STRING", (text,)) == '["x\\u001Fy","\\\\u001f"]'


def test_to_json_string_escapes_like_jackson() -> None:
    assert evaluate("TO_JSON_STRING(S)", "S STRING", ("a\x1f\u00e9",)) == '"a\\u001F\u00e9"'
