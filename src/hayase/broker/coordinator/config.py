"""Coordinator settings, under Kafka's broker property names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import ClassVar


@dataclass(frozen=True)
class CoordinatorConfig:
    # group.initial.rebalance.delay.ms. Kafka's default is 3000; hayase's is 0, as in the
    # development images of Apache Kafka (and Confluent's), because hayase's broker is a
    # development broker first and a 3-second wait before every new group's first generation
    # would be felt by every test and every `hayase consume`. Members that join in the same
    # tick still land in one generation; set 3000 for Kafka's batching of slow starters.
    initial_rebalance_delay_ms: int = 0
    # group.min.session.timeout.ms / group.max.session.timeout.ms (Kafka 4.x defaults).
    min_session_timeout_ms: int = 6000
    max_session_timeout_ms: int = 1_800_000
    # group.max.size (Kafka's default: unbounded).
    max_group_size: int = 2**31 - 1
    # How long a brand-new member may wait in the join phase (Kafka's 5-minute constant).
    new_member_join_timeout_ms: int = 300_000
    # offset.metadata.max.bytes
    max_metadata_bytes: int = 4096
    # offsets.retention.minutes (as ms; Kafka's default is 7 days): the offsets of a group that
    # has been Empty that long, or of a simple (offsets-only) group not committed to that long,
    # are deleted; so is an Empty group left without offsets.
    offsets_retention_ms: int = 7 * 24 * 3600 * 1000
    # offsets.retention.check.interval.ms
    offsets_retention_check_interval_ms: int = 600_000

    _PROPERTIES: ClassVar[dict[str, str]] = {
        "group.initial.rebalance.delay.ms": "initial_rebalance_delay_ms",
        "group.min.session.timeout.ms": "min_session_timeout_ms",
        "group.max.session.timeout.ms": "max_session_timeout_ms",
        "group.max.size": "max_group_size",
        "offset.metadata.max.bytes": "max_metadata_bytes",
        "offsets.retention.check.interval.ms": "offsets_retention_check_interval_ms",
    }

    @classmethod
    def from_properties(cls, props: Mapping[str, str]) -> CoordinatorConfig:
        """Build from Kafka broker properties; unrelated properties are ignored."""
        values: dict[str, int] = {}
        for prop, attr in cls._PROPERTIES.items():
            if prop in props:
                try:
                    values[attr] = int(props[prop])
                except ValueError as e:
                    raise ValueError(f"{prop} must be an integer, got {props[prop]!r}") from e
                if values[attr] < 0:
                    raise ValueError(f"{prop} must be >= 0, got {values[attr]}")
        if "offsets.retention.minutes" in props:
            try:
                minutes = int(props["offsets.retention.minutes"])
            except ValueError as e:
                raise ValueError("offsets.retention.minutes must be an integer") from e
            if minutes < 1:
                raise ValueError(f"offsets.retention.minutes must be >= 1, got {minutes}")
            values["offsets_retention_ms"] = minutes * 60_000
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
