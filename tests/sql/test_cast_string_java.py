"""CAST(STRING AS INT / BIGINT / DOUBLE / DECIMAL) and LIKE read text as ksqlDB's Java does."""

from __future__ import annotations

import pytest

from hayase.sql import runtime
from hayase.sql.errors import KsqlRuntimeError
from hayase.sql.types import DecimalType
from hayase.testing.driver import TestDriver


@pytest.mark.parametrize(("text", "value"), [
    ("12", 12), ("+12", 12), ("-12", -12), (" 12 ", 12),   # String.trim, then parseInt
    ("\t12\n", 12), ("\x0112\x1f", 12),                      # trim takes every char <= U+0020
    ("١٢", 12), ("１２", 12),                                 # Character.digit: Unicode Nd
    ("2147483647", 2147483647), ("-2147483648", -2147483648),
])
def test_int_accepts_what_integer_parse_int_accepts(text: str, value: int) -> None:
    assert runtime.parse_int(text, 32) == value


@pytest.mark.parametrize("text", [
    "1_000", "", " ", "+", "1.0", "1e3", "0x1F", "\u00a012", "12\u2003",   # NBSP, EM SPACE
    "2147483648", "\U0001d7cf\U0001d7d0",   # supplementary-plane digits: surrogates to Java
])
def test_int_refuses_what_integer_parse_int_refuses(text: str) -> None:
    with pytest.raises(KsqlRuntimeError, match="INTEGER"):
        runtime.parse_int(text, 32)


def test_bigint_range() -> None:
    assert runtime.parse_int("9223372036854775807", 64) == 2 ** 63 - 1
    with pytest.raises(KsqlRuntimeError, match="BIGINT"):
        runtime.parse_int("9223372036854775808", 64)
    with pytest.raises(KsqlRuntimeError, match="BIGINT"):
        runtime.parse_int("1_0", 64)


@pytest.mark.parametrize(("text", "value"), [
    (" 1.5 ", 1.5), ("1e3", 1000.0), (".5", 0.5), ("5.", 5.0), ("1.5f", 1.5), ("2d", 2.0),
    ("0x1p4", 16.0), ("1e-400", 0.0),
])
def test_double_as_double_parse_double(text: str, value: float) -> None:
    assert runtime.parse_double(text) == value


@pytest.mark.parametrize("text", ["1_0.5", "inf", "nan", "infinity", "INFINITY", "١٢",
                                  "\u00a01.5", "",
                                  "NaN", "Infinity", "-Infinity", "1e400"])  # SqlDoubles
def test_double_refuses_python_only_forms(text: str) -> None:
    with pytest.raises(KsqlRuntimeError, match="DOUBLE"):
        runtime.parse_double(text)


@pytest.mark.parametrize(("text", "value"), [
    (" 1.25 ", "1.25"), ("+1.2", "1.20"), ("1E1", "10.00"), (".5", "0.50"), ("5.", "5.00"),
    ("١.٥", "1.50"),                                          # BigDecimal uses Character.digit
])
def test_decimal_as_big_decimal(text: str, value: str) -> None:
    assert str(runtime.parse_decimal(text, DecimalType("DECIMAL", 4, 2))) == value


@pytest.mark.parametrize("text", ["1_0", "NaN", "Infinity", "inf", ".", "1e", "0x10", "",
                                  "\u00a01"])
def test_decimal_refuses_what_big_decimal_refuses(text: str) -> None:
    with pytest.raises(KsqlRuntimeError, match="DECIMAL"):
        runtime.parse_decimal(text, DecimalType("DECIMAL", 4, 2))


@pytest.mark.parametrize(("value", "pattern", "escape", "matches"), [
    ("a\nb", "a%", None, False),        # Java's dot: no line terminator
    ("a\rb", "a_b", None, False),
    ("a\u2028b", "a%b", None, False),
    ("a\u0085", "a_", None, False),
    ("a\tb", "a_b", None, True),
    ("ab", "a%", None, True),
    ("a%", "a!%", "!", True),
    ("ab", "a!%", "!", False),
    ("a!", "a!!", "!", True),
])
def test_like_as_like_evaluator(value: str, pattern: str, escape: str | None,
                                matches: bool) -> None:
    assert runtime.like(value, pattern, escape) is matches


def test_like_pattern_ending_with_escape_fails() -> None:
    with pytest.raises(KsqlRuntimeError, match="must not end with escape character"):
        runtime.like("a", "a!", "!")


def test_cast_in_a_query_logs_and_nulls_bad_text() -> None:
    d = TestDriver()
    d.execute("CREATE STREAM S (ID INT KEY, T STRING) WITH (kafka_topic='s', format='JSON', "
              "partitions=1);"
              "CREATE STREAM C AS SELECT ID, CAST(T AS INT) AS I, T LIKE 'x%' AS L FROM S;")
    d.pipe_json("s", 1, {"T": " 7 "})
    d.pipe_json("s", 2, {"T": "1_000"})
    d.pipe_json("s", 3, {"T": "x\ny"})
    assert [r.value for r in d.read_output("C")] == [
        {"I": 7, "L": False}, {"I": None, "L": False}, {"I": None, "L": False}]


def test_like_ending_with_escape_fails_the_expression_per_record() -> None:
    d = TestDriver()
    d.execute("CREATE STREAM S (ID INT KEY, T STRING) WITH (kafka_topic='s', format='JSON', "
              "partitions=1);"
              "CREATE STREAM C AS SELECT ID, T LIKE 'a!' ESCAPE '!' AS L FROM S;"
              "CREATE STREAM D AS SELECT ID, T FROM S WHERE T LIKE 'a!' ESCAPE '!';")
    d.pipe_json("s", 1, {"T": "a"})
    assert [r.value for r in d.read_output("C")] == [{"L": None}]  # logged, null
    assert d.read_output("D") == []                                  # logged, dropped
