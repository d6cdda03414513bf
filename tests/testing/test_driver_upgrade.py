"""CREATE OR REPLACE in the test driver: the running query is replaced in place."""

from __future__ import annotations

from hayase.testing.driver import TestDriver

SOURCE = ("CREATE STREAM S (ID INT KEY, A STRING, B INT) WITH (kafka_topic='s', format='JSON', "
          "partitions=1);")


def values(driver: TestDriver, topic: str) -> list[tuple[object, object]]:
    return [(r.key, r.value) for r in driver.read_output(topic)]


def test_stateless_upgrade_replaces_the_query_without_duplicates() -> None:
    d = TestDriver()
    d.execute(SOURCE + "CREATE STREAM C AS SELECT ID, A FROM S;")
    d.pipe_json("s", 1, {"A": "x", "B": 1})
    d.execute("CREATE OR REPLACE STREAM C AS SELECT ID, A, B FROM S WHERE B > 1;")
    assert [q.query_id for q in d.queries] == ["CSAS_C_0"]
    d.pipe_json("s", 2, {"A": "y", "B": 1})   # filtered out by the new query only
    d.pipe_json("s", 3, {"A": "z", "B": 5})
    # Once each: the first record as the old query made it, then the new query's output.
    assert values(d, "C") == [(1, {"A": "x"}), (3, {"A": "z", "B": 5})]


def test_aggregate_upgrade_continues_from_its_state() -> None:
    d = TestDriver()
    d.execute(SOURCE + "CREATE TABLE T AS SELECT ID, COUNT(*) AS N FROM S GROUP BY ID;")
    d.pipe_json("s", 1, {"A": "x", "B": 1})
    d.pipe_json("s", 1, {"A": "x", "B": 2})
    d.execute("CREATE OR REPLACE TABLE T AS SELECT ID, COUNT(*) AS N FROM S WHERE B > 0 "
              "GROUP BY ID;")
    assert len(d.queries) == 1
    d.pipe_json("s", 1, {"A": "x", "B": 3})
    d.pipe_json("s", 1, {"A": "x", "B": -1})  # the new filter drops it
    # The count goes on from 2 (the old query's state), and no record is counted twice.
    assert values(d, "T") == [(1, {"N": 1}), (1, {"N": 2}), (1, {"N": 3})]


def test_upgrade_keeps_statement_order_and_other_queries() -> None:
    d = TestDriver()
    d.execute(SOURCE + "CREATE STREAM C AS SELECT ID, A FROM S;"
              "CREATE STREAM D AS SELECT ID, B FROM S;")
    d.execute("CREATE OR REPLACE STREAM C AS SELECT ID, UCASE(A) AS A FROM S;")
    assert [q.query_id for q in d.queries] == ["CSAS_C_0", "CSAS_D_1"]
    d.pipe_json("s", 1, {"A": "x", "B": 1})
    assert values(d, "C") == [(1, {"A": "X"})]
    assert values(d, "D") == [(1, {"B": 1})]


def test_windowed_aggregate_upgrade_keeps_its_windows() -> None:
    d = TestDriver()
    d.execute(SOURCE + "CREATE TABLE W AS SELECT ID, COUNT(*) AS N FROM S "
              "WINDOW TUMBLING (SIZE 10 MILLISECONDS) GROUP BY ID;")
    d.pipe_json("s", 1, {"A": "x", "B": 1}, timestamp=1)
    d.pipe_json("s", 1, {"A": "x", "B": 1}, timestamp=2)
    d.execute("CREATE OR REPLACE TABLE W AS SELECT ID, COUNT(*) AS N FROM S "
              "WINDOW TUMBLING (SIZE 10 MILLISECONDS) WHERE B > 0 GROUP BY ID;")
    d.pipe_json("s", 1, {"A": "x", "B": 1}, timestamp=3)    # same window: goes on from 2
    d.pipe_json("s", 1, {"A": "x", "B": 1}, timestamp=12)   # the next window starts at 1
    out = [(r.window.start if r.window else None, r.value) for r in d.read_output("W")]
    assert out == [(0, {"N": 1}), (0, {"N": 2}), (0, {"N": 3}), (10, {"N": 1})]
