"""Topic configuration with Kafka's topic config names, defaults and broker synonyms.

A topic config's value comes from, in order: the topic's own configs (source TOPIC_CONFIG), the
first broker property among its synonyms that is set (STATIC_BROKER_CONFIG, e.g.
``log.retention.hours`` for ``retention.ms``), or Kafka's default (DEFAULT_CONFIG). Unknown topic
config names and bad values raise InvalidConfigError.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hayase.broker.storage.errors import InvalidConfigError

LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1

# DescribeConfigs ConfigSource values.
TOPIC_CONFIG = 1
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5


@dataclass(frozen=True)
class ConfigDef:
    name: str
    default: str
    kind: str  # "int", "long", "bool", "double", "string", "list"
    synonyms: tuple[tuple[str, int], ...] = ()  # (broker property, multiplier to the topic unit)
    check: Callable[[str], bool] | None = None
    description: str = ""


def _choice(*allowed: str) -> Callable[[str], bool]:
    return lambda v: v in allowed


def _at_least(minimum: int) -> Callable[[str], bool]:
    return lambda v: int(v) >= minimum


def _policy(v: str) -> bool:
    parts = [p.strip() for p in v.split(",") if p.strip()]
    return bool(parts) and all(p in ("delete", "compact") for p in parts)


_HOUR = 3_600_000
_MIN = 60_000

CONFIG_DEFS: dict[str, ConfigDef] = {
    d.name: d
    for d in [
        ConfigDef("cleanup.policy", "delete", "list", (("log.cleanup.policy", 1),), _policy),
        ConfigDef("compression.type", "producer", "string", (("compression.type", 1),),
                  _choice("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")),
        ConfigDef("compression.gzip.level", "-1", "int", (("compression.gzip.level", 1),)),
        ConfigDef("compression.lz4.level", "9", "int", (("compression.lz4.level", 1),)),
        ConfigDef("compression.zstd.level", "3", "int", (("compression.zstd.level", 1),)),
        ConfigDef("delete.retention.ms", "86400000", "long", (("log.cleaner.delete.retention.ms", 1),), _at_least(0)),
        ConfigDef("file.delete.delay.ms", "60000", "long", (("log.segment.delete.delay.ms", 1),), _at_least(0)),
        ConfigDef("flush.messages", str(LONG_MAX), "long", (("log.flush.interval.messages", 1),), _at_least(1)),
        ConfigDef("flush.ms", str(LONG_MAX), "long",
                  (("log.flush.interval.ms", 1), ("log.flush.scheduler.interval.ms", 1)), _at_least(0)),
        ConfigDef("follower.replication.throttled.replicas", "", "list"),
        ConfigDef("index.interval.bytes", "4096", "int", (("log.index.interval.bytes", 1),), _at_least(0)),
        ConfigDef("leader.replication.throttled.replicas", "", "list"),
        ConfigDef("local.retention.bytes", "-2", "long", (("log.local.retention.bytes", 1),), _at_least(-2)),
        ConfigDef("local.retention.ms", "-2", "long", (("log.local.retention.ms", 1),), _at_least(-2)),
        ConfigDef("max.compaction.lag.ms", str(LONG_MAX), "long", (("log.cleaner.max.compaction.lag.ms", 1),), _at_least(1)),
        ConfigDef("max.message.bytes", "1048588", "int", (("message.max.bytes", 1),), _at_least(0)),
        ConfigDef("message.timestamp.after.max.ms", str(_HOUR), "long",
                  (("log.message.timestamp.after.max.ms", 1),), _at_least(0)),
        ConfigDef("message.timestamp.before.max.ms", str(LONG_MAX), "long",
                  (("log.message.timestamp.before.max.ms", 1),), _at_least(0)),
        ConfigDef("message.timestamp.type", "CreateTime", "string", (("log.message.timestamp.type", 1),),
                  _choice("CreateTime", "LogAppendTime")),
        ConfigDef("min.cleanable.dirty.ratio", "0.5", "double", (("log.cleaner.min.cleanable.ratio", 1),),
                  lambda v: 0.0 <= float(v) <= 1.0),
        ConfigDef("min.compaction.lag.ms", "0", "long", (("log.cleaner.min.compaction.lag.ms", 1),), _at_least(0)),
        ConfigDef("min.insync.replicas", "1", "int", (("min.insync.replicas", 1),), _at_least(1)),
        ConfigDef("preallocate", "false", "bool", (("log.preallocate", 1),)),
        ConfigDef("remote.storage.enable", "false", "bool"),
        ConfigDef("retention.bytes", "-1", "long", (("log.retention.bytes", 1),)),
        ConfigDef("retention.ms", str(168 * _HOUR), "long",
                  (("log.retention.ms", 1), ("log.retention.minutes", _MIN), ("log.retention.hours", _HOUR)),
                  _at_least(-1)),
        ConfigDef("segment.bytes", "1073741824", "int", (("log.segment.bytes", 1),), _at_least(14)),
        ConfigDef("segment.index.bytes", "10485760", "int", (("log.index.size.max.bytes", 1),), _at_least(4)),
        ConfigDef("segment.jitter.ms", "0", "long",
                  (("log.roll.jitter.ms", 1), ("log.roll.jitter.hours", _HOUR)), _at_least(0)),
        ConfigDef("segment.ms", str(168 * _HOUR), "long",
                  (("log.roll.ms", 1), ("log.roll.hours", _HOUR)), _at_least(1)),
        ConfigDef("unclean.leader.election.enable", "false", "bool", (("unclean.leader.election.enable", 1),)),
    ]
}


def _normalise(d: ConfigDef, raw: str, origin: str) -> str:
    value = raw.strip()
    try:
        if d.kind in ("int", "long"):
            n = int(value)
            limit = INT_MAX if d.kind == "int" else LONG_MAX
            if not -limit - 1 <= n <= limit:
                raise ValueError(f"out of range for {d.kind}")
            value = str(n)
        elif d.kind == "double":
            float(value)
        elif d.kind == "bool":
            if value.lower() not in ("true", "false"):
                raise ValueError("not a boolean")
            value = value.lower()
        if d.check is not None and not d.check(value):
            raise ValueError("not allowed")
    except ValueError as exc:
        raise InvalidConfigError(f"invalid value {raw!r} for {origin}: {exc}") from None
    return value


@dataclass
class TopicConfig:
    """Resolved configs of a topic. ``values`` holds every known config as a string and
    ``sources`` its DescribeConfigs source; ``overrides`` the topic's own configs."""

    values: dict[str, str]
    sources: dict[str, int]
    overrides: dict[str, str] = field(default_factory=dict)
    segment_bytes: int = 1073741824
    segment_ms: int = 168 * _HOUR
    segment_jitter_ms: int = 0
    segment_index_bytes: int = 10485760
    retention_ms: int = 168 * _HOUR
    retention_bytes: int = -1
    cleanup_policy: tuple[str, ...] = ("delete",)
    index_interval_bytes: int = 4096
    max_message_bytes: int = 1048588
    log_append_time: bool = False
    timestamp_before_max_ms: int = LONG_MAX
    timestamp_after_max_ms: int = _HOUR
    flush_messages: int = LONG_MAX
    flush_ms: int = LONG_MAX
    # The log cleaner's (cleanup.policy=compact) settings.
    min_cleanable_dirty_ratio: float = 0.5
    min_compaction_lag_ms: int = 0
    max_compaction_lag_ms: int = LONG_MAX
    delete_retention_ms: int = 86400000
    # segment.ms, or max.compaction.lag.ms when smaller for a compacted topic (Kafka's
    # LogConfig.maxSegmentMs): the active segment, never cleaned, rolls in time to be cleaned.
    max_segment_ms: int = 168 * _HOUR

    @classmethod
    def from_kafka(cls, configs: dict[str, str], broker_defaults: dict[str, str]) -> TopicConfig:
        unknown = sorted(set(configs) - set(CONFIG_DEFS))
        if unknown:
            raise InvalidConfigError(f"unknown topic config(s): {', '.join(unknown)}")
        values: dict[str, str] = {}
        sources: dict[str, int] = {}
        overrides: dict[str, str] = {}
        for name, d in CONFIG_DEFS.items():
            if name in configs and configs[name] is not None:
                values[name] = overrides[name] = _normalise(d, str(configs[name]), name)
                sources[name] = TOPIC_CONFIG
                continue
            values[name], sources[name] = d.default, DEFAULT_CONFIG
            for prop, multiplier in d.synonyms:
                if prop in broker_defaults:
                    raw = _normalise(d, str(broker_defaults[prop]), prop)
                    values[name] = str(int(raw) * multiplier) if multiplier != 1 else raw
                    sources[name] = STATIC_BROKER_CONFIG
                    break
        return cls._typed(values, sources, overrides)

    @classmethod
    def _typed(cls, values: dict[str, str], sources: dict[str, int], overrides: dict[str, str]) -> TopicConfig:
        return cls(
            values=values,
            sources=sources,
            overrides=overrides,
            segment_bytes=int(values["segment.bytes"]),
            segment_ms=int(values["segment.ms"]),
            segment_jitter_ms=int(values["segment.jitter.ms"]),
            segment_index_bytes=int(values["segment.index.bytes"]),
            retention_ms=int(values["retention.ms"]),
            retention_bytes=int(values["retention.bytes"]),
            cleanup_policy=tuple(p.strip() for p in values["cleanup.policy"].split(",") if p.strip()),
            index_interval_bytes=int(values["index.interval.bytes"]),
            max_message_bytes=int(values["max.message.bytes"]),
            log_append_time=values["message.timestamp.type"] == "LogAppendTime",
            timestamp_before_max_ms=int(values["message.timestamp.before.max.ms"]),
            timestamp_after_max_ms=int(values["message.timestamp.after.max.ms"]),
            flush_messages=int(values["flush.messages"]),
            flush_ms=int(values["flush.ms"]),
            min_cleanable_dirty_ratio=float(values["min.cleanable.dirty.ratio"]),
            min_compaction_lag_ms=int(values["min.compaction.lag.ms"]),
            max_compaction_lag_ms=int(values["max.compaction.lag.ms"]),
            delete_retention_ms=int(values["delete.retention.ms"]),
            max_segment_ms=_max_segment_ms(values),
        )

    @property
    def compact_enabled(self) -> bool:
        """The log cleaner compacts the log when cleanup.policy contains ``compact``."""
        return "compact" in self.cleanup_policy

    @property
    def delete_enabled(self) -> bool:
        """Retention deletes segments only when cleanup.policy contains ``delete``."""
        return "delete" in self.cleanup_policy

    def entries(self) -> list[tuple[str, str, int]]:
        """(name, value, source) of every config, sorted by name, for DescribeConfigs."""
        return [(name, self.values[name], self.sources[name]) for name in sorted(self.values)]


def _max_segment_ms(values: dict[str, str]) -> int:
    segment_ms = int(values["segment.ms"])
    if "compact" in values["cleanup.policy"]:
        return min(segment_ms, int(values["max.compaction.lag.ms"]))
    return segment_ms


def default_topic_config() -> TopicConfig:
    return TopicConfig.from_kafka({}, {})
