"""CREATE OR REPLACE of an aggregation and its HAVING filter, as ksqlDB's plan-step upgrade
check decides: a HAVING added above the running aggregate is refused (the aggregate step meets
the new filter step), one removed or changed is accepted; an aggregation of a TABLE cannot be
upgraded at all (TableAggregate has no upgrade check)."""

from __future__ import annotations

import pytest

from hayase.sql import Session
from hayase.sql.errors import StatementError

SETUP = ("CREATE STREAM S (ID INT KEY, B INT) WITH (kafka_topic='s', format='JSON', "
         "partitions=1);"
         "CREATE TABLE T (ID INT PRIMARY KEY, G INT) WITH (kafka_topic='t', format='JSON', "
         "partitions=1);"
         "CREATE TABLE AGG AS SELECT ID, SUM(B) AS TOTAL FROM S GROUP BY ID;"
         "CREATE TABLE HAV AS SELECT ID, SUM(B) AS TOTAL FROM S GROUP BY ID HAVING SUM(B) > 1;"
         "CREATE TABLE WIN AS SELECT ID, SUM(B) AS TOTAL FROM S WINDOW TUMBLING (SIZE 1 MINUTE) "
         "GROUP BY ID;"
         "CREATE TABLE TAGG AS SELECT G, COUNT(*) AS N FROM T GROUP BY G;")


def _session() -> Session:
    s = Session()
    s.execute(SETUP)
    return s


def _class_mismatch(step: str) -> str:
    return (f"Query is not upgradeable. Plan step of type {step} must have matching class. "
            f"Values differ: class io.confluent.ksql.execution.plan.{step} vs. "
            "class io.confluent.ksql.execution.plan.TableFilter")


@pytest.mark.parametrize(("sql", "message"), [
    ("CREATE OR REPLACE TABLE AGG AS SELECT ID, SUM(B) AS TOTAL FROM S GROUP BY ID "
     "HAVING SUM(B) > 0;", _class_mismatch("StreamAggregate")),
    ("CREATE OR REPLACE TABLE WIN AS SELECT ID, SUM(B) AS TOTAL FROM S "
     "WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY ID HAVING SUM(B) > 0;",
     _class_mismatch("StreamWindowedAggregate")),
    ("CREATE OR REPLACE TABLE TAGG AS SELECT G, COUNT(*) AS N FROM T WHERE G > 0 GROUP BY G;",
     "Upgrades not yet supported for TableAggregate"),
])
def test_refused(sql: str, message: str) -> None:
    s = _session()
    with pytest.raises(StatementError) as err:
        s.execute(sql)
    assert message in str(err.value)


@pytest.mark.parametrize("sql", [
    "CREATE OR REPLACE TABLE HAV AS SELECT ID, SUM(B) AS TOTAL FROM S GROUP BY ID;",
    "CREATE OR REPLACE TABLE HAV AS SELECT ID, SUM(B) AS TOTAL FROM S GROUP BY ID "
    "HAVING SUM(B) > 5;",
    "CREATE OR REPLACE TABLE AGG AS SELECT ID, SUM(B) AS TOTAL FROM S WHERE B > 0 GROUP BY ID;",
])
def test_accepted(sql: str) -> None:
    s = _session()
    before = dict(s.metastore.queries)
    s.execute(sql)
    assert s.metastore.queries.keys() == before.keys()  # replaced in place
    assert sql.rstrip(";") in {q.sql.rstrip(";") for q in s.metastore.queries.values()}
