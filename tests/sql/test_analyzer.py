"""Analyzer and metastore: DDL semantics, names, keys, sink topics, formats, errors."""

from __future__ import annotations

import pytest
from tests.sql.conftest import last_plan, run_plan

from hayase.sql import Session
from hayase.sql.errors import ParseError, StatementError
from hayase.sql.plan import (
    DdlResult,
    FilterStep,
    InsertValues,
    ProjectStep,
    SelectKeyStep,
)

SRC = ("CREATE STREAM INPUT (ID INT KEY, NAME STRING, AGE INT, S STRUCT<B INT>) "
       "WITH (kafka_topic='input_topic', value_format='JSON');")


def test_create_stream_registers_source(session: Session) -> None:
    (r,) = session.execute(SRC)
    assert isinstance(r, DdlResult)
    src = session.metastore.get("INPUT")
    assert src is not None
    assert str(src.schema) == "ID INTEGER KEY, NAME STRING, AGE INTEGER, S STRUCT<`B` INTEGER>"
    assert (src.topic, src.key_format.name, src.value_format.name) == ("input_topic", "KAFKA", "JSON")


def test_duplicate_names_or_replace_and_if_not_exists(session: Session) -> None:
    session.execute(SRC)
    with pytest.raises(StatementError, match="already exists"):
        session.execute(SRC)
    session.execute(SRC.replace("CREATE STREAM", "CREATE STREAM IF NOT EXISTS"))
    session.execute(SRC.replace("CREATE STREAM", "CREATE OR REPLACE STREAM"))
    assert session.metastore.get("INPUT") is not None


def test_table_needs_primary_key_and_stream_refuses_it(session: Session) -> None:
    with pytest.raises(StatementError, match="Tables require a PRIMARY KEY"):
        session.execute("CREATE TABLE T (A INT) WITH (kafka_topic='t', value_format='JSON');")
    with pytest.raises(StatementError, match="please use 'KEY' for streams"):
        session.execute("CREATE STREAM S (A INT PRIMARY KEY) WITH (kafka_topic='t', "
                        "value_format='JSON');")


def test_format_restrictions(session: Session) -> None:
    with pytest.raises(StatementError, match="The 'KAFKA' format only supports a single field"):
        session.execute("CREATE STREAM S (A INT, B INT) WITH (kafka_topic='t', value_format='KAFKA');")
    with pytest.raises(StatementError, match="'DELIMITED' format does not support type 'ARRAY'"):
        session.execute("CREATE STREAM S (A ARRAY<INT>) WITH (kafka_topic='t', "
                        "value_format='DELIMITED');")
    with pytest.raises(StatementError, match="Unknown format: FOO"):
        session.execute("CREATE STREAM S (A INT) WITH (kafka_topic='t', value_format='foo');")


def test_csas_sink_defaults(session: Session) -> None:
    session.execute(SRC)
    plan = last_plan(session, "CREATE STREAM output AS SELECT * FROM INPUT;")
    sink = plan.sink.source
    assert sink.name == "OUTPUT" and sink.topic == "OUTPUT"
    assert str(sink.schema) == str(session.metastore.get("INPUT").schema)  # type: ignore[union-attr]
    assert plan.query_id.startswith("CSAS_OUTPUT_")


def test_output_topic_prefix_and_kafka_topic(session: Session) -> None:
    session.execute(SRC)
    session.execute("SET 'ksql.output.topic.name.prefix'='p_';")
    assert last_plan(session, "CREATE STREAM A AS SELECT * FROM INPUT;").sink.topic == "p_A"
    assert last_plan(session, "CREATE STREAM B WITH (KAFKA_TOPIC='b') AS SELECT * FROM INPUT;"
                   ).sink.topic == "b"


def test_implicit_names(session: Session) -> None:
    session.execute("CREATE STREAM INPUT (KSQL_COL_1 INT KEY, B INT, A STRUCT<B INT>) WITH "
                    "(kafka_topic='t', value_format='JSON');")
    plan = last_plan(session, "CREATE STREAM OUT AS SELECT KSQL_COL_1, ABS(B), B, A->B, B + 1 "
                            "FROM INPUT;")
    names = [c.name for c in plan.sink.source.schema.columns]
    assert names == ["KSQL_COL_1", "KSQL_COL_0", "B", "B_1", "KSQL_COL_2"]


def test_unknown_column_is_reported_with_clause_and_position(session: Session) -> None:
    session.execute(SRC)
    with pytest.raises(StatementError) as e:
        session.execute("CREATE STREAM OUT AS SELECT * FROM INPUT\nWHERE ABS(BOB) < 10;")
    assert "WHERE column 'BOB' cannot be resolved." in e.value.message
    assert (e.value.line, e.value.column) == (2, 11)


def test_key_must_be_projected(session: Session) -> None:
    session.execute(SRC)
    with pytest.raises(StatementError, match="must include the key column ID"):
        session.execute("CREATE STREAM OUT AS SELECT NAME FROM INPUT;")


def test_partition_by_changes_the_key(session: Session) -> None:
    session.execute(SRC)
    plan = last_plan(session, "CREATE STREAM OUT AS SELECT * FROM INPUT PARTITION BY NAME;")
    assert str(plan.sink.source.schema) == \
        "NAME STRING KEY, AGE INTEGER, S STRUCT<`B` INTEGER>, ID INTEGER"
    assert [type(s) for s in plan.steps] == [SelectKeyStep, ProjectStep]
    out = run_plan(plan, (7, "bob", 30, None), ts=5)
    assert out == [("bob", 30, None, 7, 5)]


def test_where_and_projection_plan(session: Session) -> None:
    session.execute(SRC)
    plan = last_plan(session, "CREATE STREAM OUT AS SELECT ID, UCASE(NAME) AS N FROM INPUT "
                            "WHERE AGE > 18;")
    assert isinstance(plan.steps[0], FilterStep)
    assert run_plan(plan, (1, "ann", 30, None)) == [(1, "ANN", 0)]
    assert run_plan(plan, (2, "bob", 10, None)) == []


def test_reserved_aliases_refused(session: Session) -> None:
    session.execute(SRC)
    with pytest.raises(StatementError, match="reserved column name"):
        session.execute("CREATE STREAM OUT AS SELECT ID, AGE AS ROWPARTITION FROM INPUT;")


def test_csas_over_table_is_refused(session: Session) -> None:
    session.execute("CREATE TABLE T (ID INT PRIMARY KEY, V INT) WITH (kafka_topic='t', "
                    "value_format='JSON');")
    with pytest.raises(StatementError, match="Your SELECT query produces a TABLE"):
        session.execute("CREATE STREAM S AS SELECT * FROM T;")


def test_drop_refused_while_a_query_reads(session: Session) -> None:
    session.execute(SRC)
    session.execute("CREATE STREAM OUT AS SELECT * FROM INPUT;")
    with pytest.raises(StatementError, match="Cannot drop INPUT"):
        session.execute("DROP STREAM INPUT;")
    (r,) = session.execute("DROP STREAM OUT DELETE TOPIC;")
    assert isinstance(r, DdlResult) and r.topics_to_delete == ["OUT"]
    assert r.queries_to_terminate and session.metastore.queries == {}
    session.execute("DROP STREAM INPUT;")
    session.execute("DROP STREAM IF EXISTS INPUT;")


def test_insert_into_checks_schema(session: Session) -> None:
    session.execute(SRC)
    session.execute("CREATE STREAM OUT AS SELECT ID, NAME FROM INPUT;")
    plan = last_plan(session, "INSERT INTO OUT SELECT ID, NAME FROM INPUT;")
    assert plan.query_id.startswith("INSERTQUERY_")
    with pytest.raises(StatementError, match="Incompatible schema between results and sink"):
        session.execute("INSERT INTO OUT SELECT ID, AGE FROM INPUT;")


def test_insert_values(session: Session) -> None:
    session.execute(SRC)
    (r,) = session.execute("INSERT INTO INPUT (ROWTIME, ID, NAME) VALUES (10, 1, 'a');")
    assert isinstance(r, InsertValues)
    assert (r.key, r.value, r.timestamp) == ((1,), ("a", None, None), 10)
    with pytest.raises(StatementError, match="unknown stream/table"):
        session.execute("INSERT INTO NOPE VALUES (1);")


@pytest.mark.parametrize(("sql", "message"), [
    ("INSERT INTO INPUT (ID, NAME) VALUES (1);",
     "Failed to prepare statement: Expected number columns and values to match: 2, 1"),
    ("INSERT INTO NOPE (ID, NAME) VALUES (1);",  # checked before the target
     "Failed to prepare statement: Expected number columns and values to match: 2, 1"),
    ("INSERT INTO INPUT (ID, NAME, ROWPARTITION) VALUES (1, 'a', 5);",
     "Inserting into column `ROWPARTITION` is not allowed."),
    ("INSERT INTO INPUT (ROWOFFSET, ID) VALUES (5, 1);",
     "Inserting into column `ROWOFFSET` is not allowed."),
    ("INSERT INTO INPUT (ID, NOPE) VALUES ('x', 1);",  # columns are checked before values
     "Column name NOPE does not exist."),
])
def test_insert_values_errors(session: Session, sql: str, message: str) -> None:
    session.execute(SRC)
    with pytest.raises(StatementError) as info:
        session.execute(sql)
    assert info.value.message == message


def test_variables_substitution() -> None:
    s = Session()
    s.execute("DEFINE topic = 'input_topic';")
    s.execute("CREATE STREAM X (A INT) WITH (kafka_topic='${topic}', value_format='JSON');")
    assert s.metastore.get("X").topic == "input_topic"  # type: ignore[union-attr]
    s.execute("UNDEFINE topic;")
    with pytest.raises(ParseError, match="not defined"):
        s.execute("CREATE STREAM Y (A INT) WITH (kafka_topic='${topic}', value_format='JSON');")


def test_timestamp_column_checks(session: Session) -> None:
    with pytest.raises(StatementError, match="does not exist in the schema"):
        session.execute("CREATE STREAM S (A BIGINT) WITH (kafka_topic='t', value_format='JSON', "
                        "timestamp='B');")
    with pytest.raises(StatementError, match="should be LONG"):
        session.execute("CREATE STREAM S (A STRING) WITH (kafka_topic='t', value_format='JSON', "
                        "timestamp='A');")
    session.execute("CREATE STREAM S (A STRING) WITH (kafka_topic='t', value_format='JSON', "
                    "timestamp='A', timestamp_format='yyyy-MM-dd');")
    plan = last_plan(session, "CREATE STREAM O AS SELECT * FROM S;")
    assert plan.source_timestamp is not None
    assert plan.source_timestamp(("1970-01-02", 0, 0, 0)) == 86_400_000


def test_show_and_describe(session: Session) -> None:
    session.execute(SRC)
    (r,) = session.execute("SHOW STREAMS;")
    assert isinstance(r, DdlResult) and [row["name"] for row in r.rows] == ["INPUT"]
    (d,) = session.execute("DESCRIBE INPUT;")
    assert isinstance(d, DdlResult) and d.rows[0]["topic"] == "input_topic"


def test_table_functions_plan(session: Session) -> None:
    session.execute("CREATE STREAM S (ID INT KEY, L ARRAY<INT>) WITH (kafka_topic='t', "
                    "value_format='JSON');")
    plan = last_plan(session, "CREATE STREAM O AS SELECT ID, EXPLODE(L) AS V FROM S;")
    assert run_plan(plan, (1, [5, 6])) == [(1, 5, 0), (1, 6, 0)]
    assert run_plan(plan, (1, None)) == []


def test_windowed_source_sink_keeps_window(session: Session) -> None:
    session.execute("CREATE TABLE W (ID INT PRIMARY KEY, V INT) WITH (kafka_topic='w', "
                    "value_format='JSON', window_type='TUMBLING', window_size='30 SECONDS');")
    src = session.metastore.get("W")
    assert src is not None and src.window is not None and src.window.size_ms == 30_000
    plan = last_plan(session, "CREATE TABLE O AS SELECT ID, V, WINDOWSTART AS WS FROM W;")
    assert plan.sink.source.window == src.window
    project = plan.steps[-1]
    assert isinstance(project, ProjectStep)
    # row: ID, V, ROWTIME, ROWPARTITION, ROWOFFSET, WINDOWSTART, WINDOWEND
    assert project.fn((1, 2, 500, 0, 0, 0, 30_000), None) == (1, 2, 0, 500)
    session.execute("CREATE STREAM WS2 (ID INT KEY, V INT) WITH (kafka_topic='w2', "
                    "value_format='JSON', window_type='SESSION');")
    with pytest.raises(StatementError, match="Implicit repartitioning of windowed sources"):
        session.execute("CREATE STREAM O2 AS SELECT * FROM WS2 PARTITION BY V;")


def test_statement_level_errors_point_at_the_statement(session: Session) -> None:
    with pytest.raises(StatementError) as e:
        session.execute("CREATE STREAM A (X INT) WITH (kafka_topic='t', value_format='JSON');\n"
                        "  CREATE STREAM B (X INT, Y INT) WITH (kafka_topic='t', value_format='KAFKA');")
    assert (e.value.line, e.value.column) == (2, 3)


def test_partition_by_accepts_only_value_expressions(session: Session) -> None:
    session.execute(SRC)
    with pytest.raises(ParseError):
        session.execute("CREATE STREAM O AS SELECT * FROM INPUT PARTITION BY NAME AND AGE;")


@pytest.mark.parametrize("query", [
    "SELECT ID, UCASE(NAME) AS N FROM INPUT WHERE AGE > 18",
    "SELECT * FROM INPUT PARTITION BY NAME",
    "SELECT ID, AGE / 0 AS Z, S->B FROM INPUT WHERE NAME LIKE 'a%' AND AGE IS NOT NULL",
])
def test_fused_function_matches_the_steps(session: Session, query: str) -> None:
    session.execute(SRC)
    plan = last_plan(session, f"CREATE STREAM OUT AS {query};")
    assert plan.fused is not None
    rows = [(1, "ann", 30, {"B": 1}), (2, "bob", 10, None), (3, "al", None, None)]
    for cols in rows:
        stepwise = run_plan(plan, cols, ts=7)
        fused = plan.fused(cols + (7, 0, 0))
        assert ([fused[1]] if fused is not None else []) == stepwise


def test_projection_with_a_repeated_name_is_refused(session: Session) -> None:
    session.execute(SRC)
    with pytest.raises(StatementError) as info:
        session.execute("CREATE STREAM O AS SELECT ID, NAME, AGE AS NAME FROM INPUT;")
    assert info.value.message == "Duplicate value columns found in schema: `NAME` INTEGER"


def test_window_bounds_in_the_where_clause_of_a_windowed_aggregation(session: Session) -> None:
    session.execute(SRC)
    with pytest.raises(StatementError) as info:
        session.execute("CREATE TABLE O AS SELECT ID, COUNT(*) AS C FROM INPUT WINDOW TUMBLING "
                        "(SIZE 1 SECOND) WHERE WINDOWSTART > 1000 GROUP BY ID;")
    assert info.value.message == "Error in WHERE expression: Unknown column WINDOWSTART."
    with pytest.raises(StatementError, match="WHERE column 'NOPE' cannot be resolved"):
        session.execute("CREATE TABLE O AS SELECT ID, COUNT(*) AS C FROM INPUT WINDOW TUMBLING "
                        "(SIZE 1 SECOND) WHERE WINDOWEND > 1 AND NOPE = 1 GROUP BY ID;")
    with pytest.raises(StatementError, match="WHERE column 'WINDOWSTART' cannot be resolved"):
        session.execute("CREATE STREAM O AS SELECT * FROM INPUT WHERE WINDOWSTART > 1000;")
