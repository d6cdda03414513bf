"""ksqlDB's internal topic names and formats of a query (hayase.sql.topology)."""

from __future__ import annotations

import pytest
from tests.sql.conftest import plan_after

from hayase.sql.plan import JoinStep
from hayase.sql.topology import internal_topics, query_prefix

SETUP = """
CREATE STREAM S1 (ID INT KEY, FOO INT, K INT) WITH (kafka_topic='s1', key_format='DELIMITED',
  value_format='JSON');
CREATE STREAM S2 (ID INT KEY, VAL STRING) WITH (kafka_topic='s2', key_format='KAFKA',
  value_format='DELIMITED');
CREATE STREAM S3 (ID INT KEY, V BIGINT) WITH (kafka_topic='s3', key_format='KAFKA',
  value_format='JSON');
CREATE STREAM NK (ID INT, FOO INT) WITH (kafka_topic='nk', key_format='NONE', value_format='JSON');
CREATE TABLE T (ID INT PRIMARY KEY, VAL STRING) WITH (kafka_topic='t', key_format='KAFKA',
  value_format='JSON');
CREATE TABLE T2 (ID INT PRIMARY KEY, W STRING) WITH (kafka_topic='t2', key_format='DELIMITED',
  value_format='JSON');
"""


def topics(sql: str) -> dict[str, tuple[str, str]]:
    plan = plan_after(SETUP, sql)
    return {t.name: (t.key_format.name, t.value_format.name) for t in internal_topics(plan)}


def test_prefix_is_ksqldb_application_id() -> None:
    assert query_prefix("CSAS_OUTPUT_0", "some.ksql.service.id") == \
        "_confluent-ksql-some.ksql.service.idquery_CSAS_OUTPUT_0-"


def test_stream_stream_join_on_keys_of_one_format_has_only_window_stores() -> None:
    got = topics("CREATE STREAM O AS SELECT S2.ID, V FROM S2 JOIN S3 WITHIN 1 SECOND "
                 "ON S2.ID = S3.ID;")
    assert got == {"KSTREAM-JOINTHIS-0000000008-store-changelog": ("KAFKA", "DELIMITED"),
                   "KSTREAM-JOINOTHER-0000000009-store-changelog": ("KAFKA", "JSON")}


def test_key_format_mismatch_repartitions_the_right_side_into_the_left_format() -> None:
    got = topics("CREATE STREAM O AS SELECT S1.ID, VAL FROM S1 JOIN S2 WITHIN 1 SECOND "
                 "ON S1.ID = S2.ID;")
    assert got == {"Join-right-repartition": ("DELIMITED", "DELIMITED"),
                   "KSTREAM-JOINTHIS-0000000012-store-changelog": ("DELIMITED", "JSON"),
                   "KSTREAM-JOINOTHER-0000000013-store-changelog": ("DELIMITED", "DELIMITED")}


def test_left_join_on_a_value_column_takes_the_right_key_format() -> None:
    got = topics("CREATE STREAM O AS SELECT NK.ID, VAL FROM NK LEFT JOIN S2 WITHIN 1 SECOND "
                 "ON NK.ID = S2.ID;")
    assert set(got) == {"Join-left-repartition", "KSTREAM-JOINTHIS-0000000012-store-changelog",
                        "KSTREAM-OUTEROTHER-0000000013-store-changelog"}
    assert got["Join-left-repartition"] == ("KAFKA", "JSON")


def test_outer_join_with_grace_has_the_shared_outer_store() -> None:
    got = topics("CREATE STREAM O AS SELECT ROWKEY, V FROM S3 FULL OUTER JOIN S2 "
                 "WITHIN 1 SECOND GRACE PERIOD 1 SECOND ON S3.ID = S2.ID;")
    assert set(got) == {"KSTREAM-OUTERTHIS-0000000008-store-changelog",
                        "KSTREAM-OUTEROTHER-0000000009-store-changelog",
                        "KSTREAM-OUTERSHARED-0000000008-store-changelog"}


def test_right_join_runs_as_the_right_streams_left_join() -> None:
    got = topics("CREATE STREAM O AS SELECT NK.ID, VAL FROM S2 RIGHT JOIN NK WITHIN 1 SECOND "
                 "ON S2.ID = NK.ID;")
    # The re-keyed right stream is the joining ("this") one: Kafka Streams calls it -left.
    assert got["Join-left-repartition"] == ("KAFKA", "JSON")
    assert got["KSTREAM-JOINTHIS-0000000012-store-changelog"] == ("KAFKA", "JSON")
    assert got["KSTREAM-OUTEROTHER-0000000013-store-changelog"] == ("KAFKA", "DELIMITED")


def test_stream_table_join_materializes_the_table_and_repartitions_the_stream() -> None:
    got = topics("CREATE STREAM O AS SELECT NK.ID, VAL FROM NK LEFT JOIN T ON NK.ID = T.ID;")
    assert got == {"KafkaTopic_Right-Reduce-changelog": ("KAFKA", "JSON"),
                   "Join-repartition": ("KAFKA", "JSON")}


def test_table_with_another_key_format_is_rekeyed() -> None:
    got = topics("CREATE TABLE O AS SELECT * FROM T JOIN T2 ON T.ID = T2.ID;")
    assert got == {"KafkaTopic_Left-Reduce-changelog": ("KAFKA", "JSON"),
                   "RightSourceKeyed-SelectKey-repartition": ("KAFKA", "JSON"),
                   "RightSourceKeyed-Materialize-changelog": ("KAFKA", "JSON")}


def test_n_way_join_contexts_and_store_numbers() -> None:
    got = topics("CREATE STREAM O AS SELECT S3.ID, V, T.VAL FROM S3 JOIN T ON S3.ID = T.ID "
                 "JOIN S2 WITHIN 1 SECOND ON S3.ID = S2.ID;")
    # S3 (2) + alias (1), T (5) + alias (1), stream-table join (1), S2 (2) + alias (1),
    # windowed processors (2): THIS is processor 15.
    assert set(got) == {"KafkaTopic_L_Right-Reduce-changelog",
                        "KSTREAM-JOINTHIS-0000000015-store-changelog",
                        "KSTREAM-JOINOTHER-0000000016-store-changelog"}


def test_after_a_full_outer_join_the_next_join_repartitions_its_left() -> None:
    plan = plan_after(SETUP, "CREATE STREAM O AS SELECT ROWKEY, S2.VAL FROM S3 FULL OUTER JOIN "
                             "S2 WITHIN 1 SECOND ON S3.ID = S2.ID FULL OUTER JOIN NK WITHIN "
                             "1 SECOND ON S3.ID = NK.ID;")
    steps = [s for s in plan.steps if isinstance(s, JoinStep)]
    assert [s.left_repartition for s in steps] == [False, True]
    assert "Join-left-repartition" in {t.name for t in internal_topics(plan)}


@pytest.mark.parametrize(("second", "repartitioned"), [
    ("S1.K = S3.ID", False),  # the first join's left expression: the result's key
    ("S2.ID = S3.ID", False),  # equal to it on every joined row
    ("S1.ID = S3.ID", True),  # S1's own key, but the first join re-keyed S1 by K
])
def test_later_join_repartitions_unless_joined_on_the_previous_join_key(
        second: str, repartitioned: bool) -> None:
    plan = plan_after(SETUP, "CREATE STREAM O AS SELECT S3.ID, V FROM S1 JOIN S2 WITHIN 1 SECOND "
                             f"ON S1.K = S2.ID JOIN S3 WITHIN 1 SECOND ON {second};")
    steps = [s for s in plan.steps if isinstance(s, JoinStep)]
    assert [s.left_repartition for s in steps] == [True, repartitioned]


def test_group_by_the_stream_key_needs_no_repartition() -> None:
    got = topics("CREATE TABLE O AS SELECT ID, COUNT(*) AS C FROM S3 GROUP BY ID;")
    assert got == {"Aggregate-Aggregate-Materialize-changelog": ("KAFKA", "JSON")}


def test_group_by_a_value_column_repartitions() -> None:
    got = topics("CREATE TABLE O AS SELECT FOO, COUNT(*) AS C FROM NK GROUP BY FOO;")
    assert set(got) == {"Aggregate-GroupBy-repartition",
                        "Aggregate-Aggregate-Materialize-changelog"}


def test_table_group_by_always_repartitions_and_materializes_the_source() -> None:
    got = topics("CREATE TABLE O AS SELECT ID, COUNT(*) AS C FROM T GROUP BY ID;")
    assert set(got) == {"KsqlTopic-Reduce-changelog", "Aggregate-GroupBy-repartition",
                        "Aggregate-Aggregate-Materialize-changelog"}


def test_stateless_stream_query_has_no_internal_topics() -> None:
    assert topics("CREATE STREAM O AS SELECT * FROM S3 PARTITION BY V;") == {}


def test_group_by_a_qualified_key_column_needs_no_repartition() -> None:
    got = topics("CREATE TABLE O AS SELECT S.ID, COUNT(*) AS C FROM S3 S GROUP BY S.ID;")
    assert "Aggregate-GroupBy-repartition" not in got


@pytest.mark.parametrize(("group_by", "repartition"), [("S3.ID", False), ("S2.ID", True)])
def test_group_by_over_a_join_repartitions_unless_by_its_key(group_by: str,
                                                             repartition: bool) -> None:
    got = topics(f"CREATE TABLE O AS SELECT {group_by}, COUNT(*) AS C FROM S3 JOIN S2 "
                 f"WITHIN 1 SECOND ON S3.ID = S2.ID GROUP BY {group_by};")
    assert ("Aggregate-GroupBy-repartition" in got) is repartition


def test_join_after_a_foreign_key_join_on_the_left_table_key_needs_no_repartition() -> None:
    setup = SETUP + ("CREATE TABLE T3 (ID INT PRIMARY KEY, FK INT) WITH (kafka_topic='t3', "
                     "key_format='KAFKA', value_format='JSON');")
    plan = plan_after(setup, "CREATE TABLE O AS SELECT T3.ID, T.VAL FROM T3 JOIN T ON T3.FK = T.ID "
                             "JOIN T2 ON T3.ID = T2.ID;")
    steps = [s for s in plan.steps if isinstance(s, JoinStep)]
    assert [s.kind for s in steps] == ["FK_TABLE_TABLE", "TABLE_TABLE"]
    assert not steps[1].left_repartition
