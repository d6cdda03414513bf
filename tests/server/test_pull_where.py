"""Pull-query WHERE checks (pull_where.py) against ksqlDB's QueryFilterNode rules: messages
carry invalidWhereClauseException's explanation; table scans lift the key requirements."""

from __future__ import annotations

import pytest

from hayase.server.pull_where import check_pull_where
from hayase.sql import Session, StatementError, ast
from hayase.sql.plan import DataSource

NO_SCAN = {"ksql.query.pull.table.scan.enabled": "false"}


def _source() -> DataSource:
    session = Session()
    session.execute("CREATE TABLE T (K1 INT PRIMARY KEY, K2 STRING PRIMARY KEY, V STRING) "
                    "WITH (KAFKA_TOPIC='t', FORMAT='JSON', PARTITIONS=1);")
    src = session.metastore.get("T")
    assert src is not None
    return src


def _where(text: str) -> ast.Expression:
    stmt = Session().parse(f"SELECT * FROM T WHERE {text};", 1, 1)
    assert isinstance(stmt, ast.QueryStatement) and stmt.query.where is not None
    return stmt.query.where


def _message(where: str, props: dict[str, str]) -> str:
    with pytest.raises(StatementError) as e:
        check_pull_where(_where(where), _source(), props)
    return e.value.message


@pytest.mark.parametrize(("where", "start"), [
    ("K1 = 1", "Multi-column sources must specify every key in the WHERE clause. Specified: "
               "[`K1`] Expected: [`K1` INTEGER KEY, `K2` STRING KEY]. See https://"),
    ("K2 > 'a'", "Multi-column sources must specify every key in the WHERE clause. "
                 "Specified: [`K2`] Expected: "),
    ("K1 != 1 AND K2 = 'a'", "Bound on key columns '[`K1` INTEGER KEY, `K2` STRING KEY]' "
                             "must currently be '='. "),
    ("V = 'x'", "WHERE clause missing key column for disjunct: (V = 'x'). "),
    ("K1 = 1 AND K2 = V", "A comparison must be between a key column and a resolvable "
                          "expression. "),
])
def test_without_table_scans_the_key_must_be_pinned(where: str, start: str) -> None:
    message = _message(where, NO_SCAN)
    assert message.startswith(start)
    assert message.endswith("table scans can be enabled by setting "
                            "ksql.query.pull.table.scan.enabled=true.")


@pytest.mark.parametrize("where", ["K1 = 1", "K1 != 1", "V = 'x'", "K1 = 1 AND K2 = V",
                                   "K1 = 1 AND K2 = 'a'"])
def test_table_scans_answer_any_comparison(where: str) -> None:
    check_pull_where(_where(where), _source(), {})


def test_like_is_checked_with_or_without_table_scans() -> None:
    for props in ({}, NO_SCAN):
        assert _message("K1 LIKE '1%'", props).startswith(
            "The column type for Like condition must be VARCHAR. The column type is INTEGER.")
    assert _message("UCASE(V) LIKE 'a%'", NO_SCAN).startswith(
        "Like condition must be between strings. ")
    check_pull_where(_where("UCASE(V) LIKE 'a%'"), _source(), {})
