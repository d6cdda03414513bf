"""CREATE OR REPLACE on a running query: the new operator takes over the old one's state.

ksqlDB upgrades a persistent query in place: same query id, same consumer group (so records
already consumed are not read again) and, since the analyzer only accepts upgrades that keep
the stateful steps (GROUP BY, WINDOW, aggregate functions; see hayase.sql.upgrade), the same
state stores. An in-process runner (the test driver, the server's memory backend) hands the
old operator's state to the new one with :func:`carry_state`; a Kafka-driven query gets it from
its state folder and changelog when its worker restarts under the same query id.
"""

from __future__ import annotations

from typing import Any

# AggregateQuery's state: the partition states (stores, offsets, stream time, open windows)
# and the counters that continue across the upgrade.
_STATE_ATTRIBUTES = ("states", "late_dropped", "_rep_seq")


def carry_state(old: Any, new: Any) -> None:
    """Move ``old``'s state into ``new`` (same query id, upgrade accepted by the analyzer).
    ``old`` must not be used (nor closed) afterwards: its stores now belong to ``new``."""
    if type(old) is not type(new):  # a different operator kind keeps no state layout
        return
    for name in _STATE_ATTRIBUTES:
        if hasattr(old, name) and hasattr(new, name):
            setattr(new, name, getattr(old, name))
