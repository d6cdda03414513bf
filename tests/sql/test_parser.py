"""Parser: round trips through to_sql(), identifier rules, literal typing, errors with positions."""

from __future__ import annotations

import decimal

import pytest

from hayase.sql import ast, parse, parse_expression, parse_type
from hayase.sql.errors import ParseError
from hayase.sql.types import BIGINT, DOUBLE, INTEGER, decimal_type

ROUND_TRIPS = [
    "CREATE STREAM S (ID INTEGER KEY, `name` STRING, V ARRAY<MAP<STRING, STRUCT<`A` INTEGER>>>) "
    "WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON')",
    "CREATE OR REPLACE TABLE IF NOT EXISTS T (ID BIGINT PRIMARY KEY, H BYTES HEADER('k')) "
    "WITH (KAFKA_TOPIC='t', FORMAT='JSON', PARTITIONS=2)",
    "CREATE STREAM O WITH (KAFKA_TOPIC='x') AS SELECT A, (B + 1) AS C FROM S WHERE (A > 1) "
    "PARTITION BY A EMIT CHANGES",
    "CREATE TABLE T AS SELECT K, COUNT(*) FROM S WINDOW TUMBLING (SIZE 30 SECONDS, GRACE PERIOD "
    "1 MINUTES) GROUP BY K HAVING (COUNT(*) > 1)",
    "SELECT * FROM A LEFT JOIN B WITHIN (1 HOURS, 2 HOURS) ON (A.ID = B.ID) EMIT CHANGES LIMIT 3",
    "INSERT INTO X (A, B) VALUES (1, 'it''s')",
    "INSERT INTO X SELECT * FROM Y",
    "DROP STREAM IF EXISTS X DELETE TOPIC",
    "SET 'auto.offset.reset'='earliest'",
    "SHOW STREAMS EXTENDED",
    "TERMINATE ALL",
    "SELECT TRANSFORM(A, (X, Y) => (X + Y)), FILTER(A, X => (X > 1)), S->F->G, A[1], M['k'] FROM S",
    "SELECT CASE WHEN (A IS NULL) THEN 1 ELSE 2 END, CAST(A AS DECIMAL(4, 2)), "
    "(A NOT BETWEEN 1 AND 2), (B LIKE 'a!%' ESCAPE '!'), (A IS NOT DISTINCT FROM B) FROM S",
    "SELECT ARRAY[1, 2], MAP('a':=1), STRUCT(`x`:=1) FROM S",
]


@pytest.mark.parametrize("sql", ROUND_TRIPS)
def test_round_trip_is_a_fixed_point(sql: str) -> None:
    first = parse(sql)[0].to_sql()
    assert first == sql
    assert parse(first)[0].to_sql() == first


def test_identifiers_upper_cased_unless_quoted() -> None:
    q = parse("select a, `b`, \"c\", 1R from src s")[0]
    assert isinstance(q, ast.QueryStatement)
    names = [item.expression.name for item in q.query.select  # type: ignore[attr-defined]
             if isinstance(item, ast.SingleColumn) and isinstance(item.expression, ast.ColumnRef)]
    assert names == ["A", "b", "c", "1R"]
    assert isinstance(q.query.from_, ast.Table)
    assert q.query.from_.alias == "S"


def test_keywords_case_insensitive_and_usable_as_column_names() -> None:
    s = parse("SeLeCt value, key, timestamp, size, map FROM x")[0]
    assert s.to_sql() == "SELECT VALUE, KEY, TIMESTAMP, SIZE, MAP FROM X"


@pytest.mark.parametrize(("text", "value", "typ"), [
    ("1", 1, INTEGER),
    ("2147483648", 2147483648, BIGINT),
    ("-2147483648", -2147483648, INTEGER),
    ("1.50", decimal.Decimal("1.50"), decimal_type(3, 2)),
    ("0.05", decimal.Decimal("0.05"), decimal_type(2, 2)),
    ("1e3", 1000.0, DOUBLE),
    ("-9223372036854775808", -9223372036854775808, BIGINT),
])
def test_numeric_literal_types(text: str, value: object, typ: object) -> None:
    lit = parse_expression(text)
    assert isinstance(lit, ast.Literal)
    assert lit.value == value
    assert lit.type == typ


def test_numeric_literal_overflow_is_a_parse_error_with_position() -> None:
    with pytest.raises(ParseError) as e:
        parse("CREATE STREAM A (X INT) WITH (kafka_topic='t', value_format='JSON');\n"
              "CREATE STREAM B AS SELECT 9223372036854775808 FROM A;")
    assert "Invalid numeric literal: 9223372036854775808" in e.value.message
    assert (e.value.line, e.value.column) == (2, 27)
    # ksqlDB's message: one column further
    assert e.value.message.startswith("Failed to prepare statement: line 2:28: ")
    assert str(e.value) == e.value.message
    with pytest.raises(ParseError, match="Number overflows DOUBLE"):
        parse_expression("1.7976931348623159E308")


def test_syntax_error_reports_line_and_column() -> None:
    with pytest.raises(ParseError) as e:
        parse("SELECT a FROM\n  x WHERE (;")
    assert e.value.line == 2
    assert e.value.column == 11
    assert "Syntax Error" in str(e.value)


def test_unknown_first_word_is_an_unknown_statement() -> None:
    with pytest.raises(ParseError) as e:
        parse("SELECT 1 FROM x;\n  RUN SCRIPT 'foo';")
    assert e.value.message.startswith("line 2:3: Syntax Error\nUnknown statement 'RUN'")


def test_string_escapes_and_comments() -> None:
    stmts = parse("-- a comment; with a semicolon\nSELECT 'a;''b' /* c; */ FROM x; SELECT 2 FROM y")
    assert len(stmts) == 2
    sel = stmts[0]
    assert isinstance(sel, ast.QueryStatement)
    item = sel.query.select[0]
    assert isinstance(item, ast.SingleColumn)
    assert isinstance(item.expression, ast.Literal)
    assert item.expression.value == "a;'b"
    assert stmts[1].line == 2


def test_types_parse_and_print_like_ksqldb() -> None:
    assert str(parse_type("STRUCT<a INT, `b` ARRAY<VARCHAR>>")) == "STRUCT<`A` INTEGER, `b` ARRAY<STRING>>"
    assert str(parse_type("map<string, decimal(10, 2)>")) == "MAP<STRING, DECIMAL(10, 2)>"
    with pytest.raises(ParseError):
        parse_type("DECIMAL(2, 3)")


def test_walk_visits_nested_nodes() -> None:
    e = parse_expression("ABS(a + b[1]) > c->d")
    kinds = {type(n).__name__ for n in e.walk()}
    assert {"BinaryOp", "FunctionCall", "Subscript", "Dereference", "ColumnRef", "Literal"} <= kinds


def test_assert_statements_are_not_part_of_the_language() -> None:
    with pytest.raises(ParseError):
        parse("ASSERT VALUES foo (id INT) VALUES (123);")


def test_windows_and_within_durations() -> None:
    q = parse("SELECT * FROM s WINDOW HOPPING (SIZE 1 MINUTE, ADVANCE BY 10 SECONDS, RETENTION 2 "
              "DAYS) GROUP BY a")[0]
    assert isinstance(q, ast.QueryStatement)
    w = q.query.window
    assert w is not None and w.window_type == "HOPPING"
    assert (w.size.millis, w.advance.millis if w.advance else None) == (60_000, 10_000)
    assert w.retention is not None and w.retention.millis == 2 * 86_400_000


@pytest.mark.parametrize(("sql", "command"), [
    ("SELECT * FROM S LIMIT 2.5;", "LIMIT"),
    ("SELECT CAST(A AS DECIMAL(4.0, 2)) FROM S;", "DECIMAL(PRECISION)"),
    ("SELECT CAST(A AS DECIMAL(4, 2.5)) FROM S;", "DECIMAL(SCALE)"),
])
def test_numbers_that_must_be_integers(sql: str, command: str) -> None:
    with pytest.raises(ParseError) as e:
        parse(sql)
    assert e.value.message.startswith(
        f"Failed to prepare statement: Value must be integer for command: {command}\n")
