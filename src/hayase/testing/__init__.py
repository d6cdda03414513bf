"""Testing helpers for hayase and its users.

- ``hayase.testing.TestDriver``: run SQL statements and their persistent queries with no broker
  (the ksql-test-runner equivalent; see :mod:`hayase.testing.driver`).
- :mod:`hayase.testing.brokers`: the embedded broker and Apache Kafka as processes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TestDriver"]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing hayase.testing.brokers does not load the SQL layer.
    if name == "TestDriver":
        from hayase.testing.driver import TestDriver

        return TestDriver
    raise AttributeError(name)
