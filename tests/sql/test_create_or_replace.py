"""CREATE OR REPLACE: the upgrades ksqlDB accepts and the ones it refuses."""

from __future__ import annotations

import pytest

from hayase.sql import Session
from hayase.sql.errors import StatementError

SETUP = ("CREATE STREAM S (ID INT KEY, A STRING, B INT) WITH (kafka_topic='s', format='JSON', "
         "partitions=1);"
         "CREATE STREAM S2 (ID INT KEY, A STRING, B INT) WITH (kafka_topic='s2', format='JSON', "
         "partitions=1);"
         "CREATE TABLE TT (ID INT PRIMARY KEY, X STRING) WITH (kafka_topic='tt', format='JSON', "
         "partitions=1);"
         "CREATE STREAM C AS SELECT ID, A FROM S;"
         "CREATE TABLE AGG AS SELECT ID, COUNT(*) AS N FROM S GROUP BY ID;"
         "CREATE STREAM J AS SELECT S.ID AS ID, A, X FROM S JOIN TT ON S.ID = TT.ID;")


def session() -> Session:
    s = Session()
    s.execute(SETUP)
    return s


@pytest.mark.parametrize("sql", [
    "CREATE OR REPLACE STREAM C AS SELECT ID, A FROM S WHERE B > 0;",   # filter added
    "CREATE OR REPLACE STREAM C AS SELECT ID, A, B FROM S;",            # column appended
    "CREATE OR REPLACE STREAM C AS SELECT ID, UCASE(A) AS A FROM S;",   # same type, new value
    "CREATE OR REPLACE TABLE AGG AS SELECT ID, COUNT(*) AS N FROM S WHERE B > 0 GROUP BY ID;",
    "CREATE OR REPLACE STREAM S (ID INT KEY, A STRING, B INT, D INT) WITH (kafka_topic='s', "
    "format='JSON', partitions=1);",                                    # DDL column appended
])
def test_accepted_upgrades(sql: str) -> None:
    s = session()
    queries = dict(s.metastore.queries)
    s.execute(sql)
    assert s.metastore.queries.keys() == queries.keys()  # the running query is replaced in place


@pytest.mark.parametrize(("sql", "message"), [
    ("CREATE OR REPLACE STREAM C AS SELECT ID, B FROM S;",
     "Cannot upgrade data source: DataSource '`C`' has schema = `ID` INTEGER KEY, `A` STRING "
     "which is not upgradeable to `ID` INTEGER KEY, `B` INTEGER. (The following columns are "
     "changed, missing or reordered: [`A` STRING])"),
    ("CREATE OR REPLACE STREAM C AS SELECT ID, CAST(A AS INT) AS A FROM S;",
     "[`A` STRING]"),
    ("CREATE OR REPLACE STREAM C AS SELECT A, ID FROM S PARTITION BY A;",
     "Key columns must be identical. The following key columns are changed, missing or "
     "reordered: [`ID` INTEGER KEY]"),
    ("CREATE OR REPLACE STREAM C WITH (kafka_topic='other') AS SELECT ID, A FROM S;",
     "DataSource '`C`' has topic = "),
    ("CREATE OR REPLACE STREAM C WITH (value_format='DELIMITED') AS SELECT ID, A FROM S;",
     "which is not upgradeable to KsqlTopic{kafkaTopicName='C', keyFormat=JSON, "
     "valueFormat=DELIMITED}"),
    ("CREATE OR REPLACE STREAM C AS SELECT ID, A FROM S2;",
     "Query is not upgradeable. Plan step of type StreamSource must have matching topicName. "
     "Values differ: s vs. s2"),
    ("CREATE OR REPLACE STREAM C AS SELECT S.ID AS ID, A FROM S JOIN TT ON S.ID = TT.ID;",
     "Query is not upgradeable. Cannot change a non-join source into a join source."),
    ("CREATE OR REPLACE STREAM J AS SELECT S.ID AS ID, A, X FROM S JOIN TT ON S.ID = TT.ID "
     "WHERE A = 'x';", "Upgrades not yet supported for StreamTableJoin"),
    ("CREATE OR REPLACE TABLE AGG AS SELECT ID, COUNT(*) AS N, SUM(B) AS SB FROM S GROUP BY ID;",
     "must have matching aggregate functions. Values differ: [COUNT(*)] vs. [COUNT(*), SUM(B)]"),
    ("CREATE OR REPLACE TABLE AGG AS SELECT ID, COUNT(*) AS N FROM S "
     "WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY ID;", "Query is not upgradeable."),
    ("CREATE OR REPLACE STREAM S (ID BIGINT KEY, A STRING, B INT) WITH (kafka_topic='s', "
     "format='JSON', partitions=1);", "Key columns must be identical."),
    ("CREATE OR REPLACE STREAM S (ID INT KEY, A STRING) WITH (kafka_topic='s', format='JSON', "
     "partitions=1);", "[`B` INTEGER]"),
    ("CREATE OR REPLACE STREAM S (ID INT KEY, A STRING, B INT) WITH (kafka_topic='s9', "
     "format='JSON', partitions=1);", "has topic = "),
])
def test_refused_upgrades(sql: str, message: str) -> None:
    s = session()
    before = {n: str(src.schema) for n, src in s.metastore.sources.items()}
    with pytest.raises(StatementError) as err:
        s.execute(sql)
    assert message in err.value.message
    assert {n: str(src.schema) for n, src in s.metastore.sources.items()} == before


def test_a_sink_whose_query_ended_takes_a_new_query_over_another_source() -> None:
    s = session()
    s.execute("TERMINATE ALL;")
    s.execute("CREATE OR REPLACE STREAM C AS SELECT ID, A FROM S2;")
    assert [q.sources for q in s.metastore.queries.values()] == [["S2"]]


def test_an_old_query_text_that_no_longer_parses_skips_the_query_check() -> None:
    s = session()
    qid = s.metastore.get("C").created_by_query
    assert qid is not None
    s.metastore.queries[qid].sql = "CREATE STREAM C AS SELECT ${gone} FROM S;"
    s.execute("CREATE OR REPLACE STREAM C AS SELECT ID, A FROM S2;")  # only the source check
    assert s.metastore.queries[qid].sources == ["S2"]
