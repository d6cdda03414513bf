"""The `hayase sql` shell as a ksqlDB CLI user drives it: DEFINE / UNDEFINE kept by the shell
and used by later statements and queries, PAUSE / RESUME, and the listings the server added
(SHOW TOPICS EXTENDED, SHOW QUERIES EXTENDED, DESCRIBE FUNCTION, SHOW TYPES, SHOW VARIABLES)
rendered as tables rather than raw JSON."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from rich.console import Console
from server_helpers import Running

from hayase.cli.commands.sql import Shell, run_script
from hayase.client.ksql import KsqlClient


@pytest.fixture
def shell(running: Running) -> Iterator[tuple[Shell, io.StringIO]]:
    out = io.StringIO()
    with KsqlClient(running.url, timeout=30) as client:
        yield Shell(client, Console(file=out, width=200, color_system=None)), out


def test_define_substitutes_in_statements_and_queries(shell: tuple[Shell, io.StringIO]) -> None:
    sh, out = shell
    assert run_script(sh, """
        DEFINE topic = 'clicks';
        DEFINE user = 'u1';
        CREATE STREAM CLICKS (USER_ID STRING KEY, AD STRING)
          WITH (KAFKA_TOPIC='${topic}', VALUE_FORMAT='JSON', PARTITIONS=1);
        INSERT INTO CLICKS (USER_ID, AD) VALUES ('${user}', 'ad-1');
        INSERT INTO CLICKS (USER_ID, AD) VALUES ('u2', 'ad-2');
        SELECT AD FROM CLICKS WHERE USER_ID = '${user}';
        SHOW VARIABLES;
    """)
    text = out.getvalue()
    assert "ad-1" in text and "ad-2" not in text
    assert "Query terminated: 1 row(s)" in text
    assert "TOPIC" in text and "clicks" in text  # SHOW VARIABLES' table
    assert "@type" not in text
    topics = sh.client.ksql("SHOW STREAMS;")[0]["streams"]
    assert [(s["name"], s["topic"]) for s in topics] == [("CLICKS", "clicks")]

    sh.run("UNDEFINE user;")
    assert sh.run("SELECT AD FROM CLICKS WHERE USER_ID = '${user}';") is False
    assert "Cannot substitute variable 'user': not defined" in out.getvalue()
    sh.run("UNDEFINE user;")
    assert "Cannot undefine variable 'user' which was never defined" in out.getvalue()


def test_pause_resume_and_listings_render_as_tables(shell: tuple[Shell, io.StringIO]) -> None:
    sh, out = shell
    assert run_script(sh, """
        CREATE STREAM S (K STRING KEY, ID INT)
          WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);
        CREATE TABLE T AS SELECT K, SUM(ID) AS TOTAL FROM S GROUP BY K;
        CREATE TYPE PAIR AS STRUCT<A INT, B ARRAY<STRING>>;
        PAUSE CTAS_T_0;
        SHOW QUERIES;
        SHOW QUERIES EXTENDED;
        SHOW TOPICS EXTENDED;
        DESCRIBE FUNCTION SUM;
        SHOW TYPES;
        RESUME ALL;
    """)
    text = out.getvalue()
    assert "@type" not in text  # every entity had a renderer
    assert "Query paused." in text and "Query resumed." in text
    assert "PAUSED" in text
    assert "ConsumerGroups" in text
    assert "AGGREGATE" in text
    assert "STRUCT<`A` INTEGER, `B` ARRAY<STRING>>" in text
    assert "Sources     : S" in text and "Sinks       : T" in text


def test_emit_final_query_streams_in_the_shell(shell: tuple[Shell, io.StringIO]) -> None:
    sh, out = shell
    assert run_script(sh, """
        SET 'auto.offset.reset' = 'earliest';
        CREATE STREAM S (K STRING KEY, ID INT)
          WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);
        INSERT INTO S (ROWTIME, K, ID) VALUES (0, 'a', 1);
        INSERT INTO S (ROWTIME, K, ID) VALUES (61000, 'a', 1);
        SELECT K, COUNT(*) AS N FROM S
          WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 0 SECONDS) GROUP BY K
          EMIT FINAL LIMIT 1;
    """)
    assert "Query terminated: 1 row(s)" in out.getvalue()


def test_print_in_the_shell(shell: tuple[Shell, io.StringIO]) -> None:
    sh, out = shell
    assert run_script(sh, """
        CREATE STREAM S (K STRING KEY, ID INT)
          WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);
        INSERT INTO S (ROWTIME, K, ID) VALUES (0, 'a', 10);
        PRINT 's' FROM BEGINNING LIMIT 1;
    """)
    text = out.getvalue()
    assert 'rowtime: 1970/01/01 00:00:00.000 Z, key: a, value: {"ID":10}, partition: 0' in text
    assert "Topic printing ceased" in text
    assert sh.run("PRINT 'nope';") is False
    assert "Could not find topic 'nope'" in out.getvalue()


def test_assert_topic_in_the_shell(shell: tuple[Shell, io.StringIO]) -> None:
    sh, out = shell
    assert run_script(sh, """
        CREATE STREAM S (ID INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);
        ASSERT TOPIC s;
        ASSERT NOT EXISTS TOPIC t TIMEOUT 0 SECONDS;
    """)
    assert "Topic s exists" in out.getvalue() and "Topic t does not exist" in out.getvalue()
    assert sh.run("ASSERT TOPIC t TIMEOUT 0 SECONDS;") is False


def test_describe_function_lists_its_variations(shell: tuple[Shell, io.StringIO]) -> None:
    sh, out = shell
    assert run_script(sh, "DESCRIBE FUNCTION SUBSTRING;")
    text = out.getvalue()
    assert "Variations  :" in text
    assert text.count("Variation   : SUBSTRING(") >= 2  # (str, pos) and (str, pos, len) at least
    assert "Returns     :" in text
