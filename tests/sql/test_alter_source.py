"""ALTER STREAM | TABLE ... ADD COLUMN, as ksqlDB's AlterSourceFactory and DdlCommandExec."""

from __future__ import annotations

import orjson
import pytest

from hayase.sql import Session
from hayase.sql.errors import ParseError, StatementError
from hayase.testing.driver import TestDriver

STREAM = ("CREATE STREAM S (ID INT KEY, A STRING) WITH (kafka_topic='s', format='JSON', "
          "partitions=1);")
TABLE = ("CREATE TABLE T (ID INT PRIMARY KEY, A STRING) WITH (kafka_topic='t', format='JSON', "
         "partitions=1);")


def session() -> Session:
    s = Session()
    s.execute(STREAM + TABLE)
    return s


def test_add_columns_appends_value_columns() -> None:
    s = session()
    result = s.execute("ALTER STREAM S ADD COLUMN B INT, ADD C STRUCT<X INT, Y DECIMAL(4, 2)>, "
                       "ADD COLUMN `low` MAP<STRING, ARRAY<INT>>;")[0]
    assert result.message == "Stream S altered."
    assert str(s.metastore.get("S").schema) == (
        "ID INTEGER KEY, A STRING, B INTEGER, C STRUCT<`X` INTEGER, `Y` DECIMAL(4, 2)>, "
        "`low` MAP<STRING, ARRAY<INTEGER>>")
    assert s.execute("ALTER TABLE T ADD COLUMN B BIGINT;")[0].message == "Table T altered."
    assert str(s.metastore.get("T").schema) == "ID INTEGER KEY, A STRING, B BIGINT"


def test_custom_types_resolve() -> None:
    s = session()
    s.execute("CREATE TYPE POINT AS STRUCT<X INT, Y INT>;")
    s.execute("ALTER STREAM S ADD COLUMN P POINT;")
    assert str(s.metastore.get("S").schema.find("P").type) == "STRUCT<`X` INTEGER, `Y` INTEGER>"


@pytest.mark.parametrize(("sql", "message"), [
    ("ALTER STREAM NOPE ADD COLUMN B INT;", "Source NOPE does not exist."),
    ("ALTER TABLE S ADD COLUMN B INT;",
     "Incompatible data source type is STREAM, but statement was ALTER TABLE"),
    ("ALTER STREAM T ADD COLUMN B INT;",
     "Incompatible data source type is TABLE, but statement was ALTER STREAM"),
    ("ALTER STREAM S ADD COLUMN A INT;",
     "Cannot add column `A` to schema. A column with the same name already exists."),
    ("ALTER STREAM S ADD COLUMN B INT, ADD COLUMN B STRING;",
     "Cannot add column `B` to schema. A column with the same name already exists."),
    ("ALTER STREAM C ADD COLUMN B INT;",
     "ALTER command is not supported for CREATE ... AS statements."),
    ("ALTER TABLE CT ADD COLUMN B INT;",
     "ALTER command is not supported for CREATE ... AS statements."),
    ("ALTER STREAM SRC ADD COLUMN B INT;",
     "Cannot alter stream 'SRC': ALTER operations are not supported on source streams."),
])
def test_refused(sql: str, message: str) -> None:
    s = session()
    s.execute("CREATE STREAM C AS SELECT * FROM S; CREATE TABLE CT AS SELECT * FROM T;"
              "CREATE SOURCE STREAM SRC (ID INT KEY, A STRING) WITH (kafka_topic='src', "
              "format='JSON', partitions=1);")
    before = {n: str(src.schema) for n, src in s.metastore.sources.items()}
    with pytest.raises(StatementError) as err:
        s.execute(sql)
    assert err.value.message == message
    assert {n: str(src.schema) for n, src in s.metastore.sources.items()} == before


def test_a_sink_keeps_refusing_alter_after_its_query_is_terminated() -> None:
    s = session()
    s.execute("CREATE STREAM C AS SELECT * FROM S;")
    s.execute("TERMINATE ALL;")
    with pytest.raises(StatementError, match="not supported for CREATE ... AS"):
        s.execute("ALTER STREAM C ADD COLUMN B INT;")


@pytest.mark.parametrize("body", ["ADD COLUMN;", "DROP COLUMN A;", "ADD COLUMN B NOTATYPE<;",
                                  "ADD COLUMN B INT,;", ";"])
def test_syntax_errors(body: str) -> None:
    with pytest.raises(ParseError, match="Syntax Error"):
        session().execute("ALTER STREAM S " + body)


def test_queries_after_alter_read_the_new_column() -> None:
    driver = TestDriver()
    driver.execute(STREAM + "ALTER STREAM S ADD COLUMN B INT;"
                   "CREATE STREAM OUT AS SELECT ID, A, B * 2 AS B2 FROM S;")
    driver.pipe("s", b"1", orjson.dumps({"A": "x", "B": 21}))
    driver.pipe("s", b"2", orjson.dumps({"A": "y"}))
    values = [orjson.loads(r.value or b"null") for r in driver.output("OUT")]
    assert values == [{"A": "x", "B2": 42}, {"A": "y", "B2": None}]
