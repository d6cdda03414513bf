"""The driver as a pytest user sees it: `from hayase.testing import TestDriver`."""

from __future__ import annotations

import pytest

from hayase.sql.errors import StatementError
from hayase.testing import TestDriver


def make() -> TestDriver:
    driver = TestDriver()
    driver.execute("""
        CREATE STREAM clicks (user_id STRING KEY, ad_id INT, cost DOUBLE)
          WITH (kafka_topic='clicks', value_format='JSON');
        CREATE STREAM by_ad AS SELECT ad_id, user_id, cost FROM clicks
          WHERE cost > 0 PARTITION BY ad_id;
        CREATE STREAM expensive AS SELECT * FROM by_ad WHERE cost >= 10;
    """)
    return driver


def test_pipe_cascades_through_downstream_queries() -> None:
    driver = make()
    produced = driver.pipe_json("clicks", key="u1", value={"ad_id": 7, "cost": 12.5},
                                timestamp=100)
    assert [r.topic for r in produced] == ["BY_AD", "EXPENSIVE"]
    [rec] = driver.read_output("EXPENSIVE")
    assert (rec.key, rec.value, rec.timestamp) == (7, {"USER_ID": "u1", "COST": 12.5}, 100)


def test_bad_records_are_logged_not_raised() -> None:
    driver = make()
    driver.pipe("clicks", b"u2", b"{broken", 5)
    driver.pipe_json("clicks", key="u3", value={"ad_id": 1, "cost": 0})
    assert driver.output("BY_AD") == []
    [entry] = driver.processing_log.drain()
    assert entry.topic == "clicks" and entry.target == "value"


def test_statement_errors_raise() -> None:
    with pytest.raises(StatementError):
        TestDriver().execute("CREATE STREAM o AS SELECT nope FROM missing;")


def test_insert_values_flow_through_running_queries_at_once() -> None:
    driver = make()
    driver.execute("INSERT INTO clicks (user_id, ad_id, cost) VALUES ('u9', 3, 50.0);")
    assert [(r.key, r.value) for r in driver.read_output("EXPENSIVE")] == [
        (3, {"USER_ID": "u9", "COST": 50.0})]
