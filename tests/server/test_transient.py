"""Transient queries (transient.py): pull-query planning refuses ROWPARTITION and ROWOFFSET
wherever they appear in the SELECT or WHERE expression, however deeply nested; scalable push
queries pass on no row without a key or a value."""

from __future__ import annotations

import pytest

from hayase.engine.record import Record
from hayase.server.transient import TransientRunner, plan_transient
from hayase.sql import Session, StatementError

SOURCES = ("CREATE STREAM S (K STRING KEY, A INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', "
           "PARTITIONS=1);"
           "CREATE TABLE T AS SELECT K, COUNT(*) AS C FROM S GROUP BY K;")


def _plan(sql: str) -> None:
    session = Session()
    session.execute(SOURCES)
    plan_transient(session, session.parse(sql, 1, 1), {})


def _refused(clause: str, columns: str) -> str:
    return f"Pull queries don't support the following columns in {clause} clauses: {columns}"


@pytest.mark.parametrize("source", ["S", "T"])
@pytest.mark.parametrize(("select", "columns"), [
    ("ROWPARTITION", "`ROWPARTITION`"),
    ("CASE WHEN ROWPARTITION = 0 THEN 1 ELSE ROWOFFSET END AS X",
     "`ROWPARTITION`, `ROWOFFSET`"),
    ("CASE A WHEN 1 THEN 'a' ELSE CAST(ROWOFFSET AS STRING) END AS X", "`ROWOFFSET`"),
    ("MAP('p' := ROWPARTITION) AS M", "`ROWPARTITION`"),
    ("MAP(CAST(ROWOFFSET AS STRING) := 1) AS M", "`ROWOFFSET`"),
    ("STRUCT(P := ROWPARTITION, O := ROWOFFSET) AS ST", "`ROWPARTITION`, `ROWOFFSET`"),
    ("ARRAY[STRUCT(M := MAP('x' := ROWOFFSET))] AS DEEP", "`ROWOFFSET`"),
])
def test_offset_columns_refused_in_select(source: str, select: str, columns: str) -> None:
    select = select.replace(" A ", " C ") if source == "T" else select
    with pytest.raises(StatementError) as e:
        _plan(f"SELECT {select} FROM {source};")
    assert e.value.message == _refused("SELECT", columns)


@pytest.mark.parametrize(("where", "columns"), [
    ("CASE WHEN ROWOFFSET > 1 THEN true ELSE false END", "`ROWOFFSET`"),
    ("MAP('a' := ROWPARTITION)['a'] = 0", "`ROWPARTITION`"),
    ("STRUCT(P := ROWPARTITION)->P = 0", "`ROWPARTITION`"),
])
def test_offset_columns_refused_in_where(where: str, columns: str) -> None:
    with pytest.raises(StatementError) as e:
        _plan(f"SELECT * FROM S WHERE {where};")
    assert e.value.message == _refused("WHERE", columns)


def test_nested_expressions_without_offset_columns_are_planned() -> None:
    _plan("SELECT CASE WHEN A = 0 THEN MAP('a' := A) END AS M, STRUCT(X := ROWTIME) AS ST "
          "FROM S WHERE CASE WHEN A > 1 THEN true ELSE false END;")


def test_scalable_push_query_skips_rows_without_key_or_value() -> None:
    session = Session()
    session.execute("CREATE STREAM I (K INT KEY, ID INT) WITH (KAFKA_TOPIC='i', "
                    "VALUE_FORMAT='JSON', PARTITIONS=1);"
                    "CREATE STREAM INPUT AS SELECT * FROM I;")
    sql = "SELECT * FROM INPUT EMIT CHANGES;"
    v2 = {"ksql.query.push.v2.enabled": "true", "auto.offset.reset": "latest"}
    topic = session.metastore.get("INPUT").topic
    key = (11).to_bytes(4, "big")
    records = [Record(topic, 0, 0, 1, None, b'{"ID": 110}', ()),  # no key
               Record(topic, 0, 1, 2, key, b'{"ID": null}', ()),
               Record(topic, 0, 2, 3, key, b'{"ID": 111}', ())]
    for props, expected in ((v2, [[11, None], [11, 111]]),
                            ({}, [[None, 110], [11, None], [11, 111]])):  # classic push
        tq = plan_transient(session, session.parse(sql, 1, 1), props)
        assert tq.scalable is (props == v2)
        runner = TransientRunner(tq, props)
        try:
            assert [row.columns for r in records for row in runner.feed(r)] == expected
        finally:
            runner.close()


TABLES = ("CREATE TABLE RAW (ID INT PRIMARY KEY, V STRING, N INT) WITH (KAFKA_TOPIC='raw', "
          "FORMAT='JSON', PARTITIONS=1);"
          "CREATE TABLE MAT AS SELECT * FROM RAW;")


def _pull_error(sql: str) -> str:
    session = Session()
    session.execute(TABLES)
    with pytest.raises(StatementError) as e:
        plan_transient(session, session.parse(sql, 1, 1), {})
    return e.value.message


@pytest.mark.parametrize(("where", "message"), [
    ("ID LIKE 12", "The column type for Like condition must be VARCHAR. The column type is "
                   "INTEGER. See https://cnfl.io/queries for more info."),
    ("V LIKE 12", "Like condition on non-string pattern "
                  "io.confluent.ksql.execution.expression.tree.IntegerLiteral. "),
])
def test_pull_query_like_needs_a_string_column_and_pattern(where: str, message: str) -> None:
    assert _pull_error(f"SELECT * FROM MAT WHERE {where};").startswith(message)


def test_pull_query_like_planned_on_a_string_column() -> None:
    session = Session()
    session.execute(TABLES)
    plan_transient(session, session.parse("SELECT * FROM MAT WHERE V LIKE 'a%';", 1, 1), {})


def test_pull_query_projection_is_checked_before_the_table_is_found_unqueryable() -> None:
    assert _pull_error("SELECT V, V FROM RAW WHERE ID = 10;") == \
        "Duplicate value columns found in schema: `V` STRING"
    assert _pull_error("SELECT V FROM RAW WHERE ID = 10;").startswith(
        "The `RAW` table isn't queryable.")
