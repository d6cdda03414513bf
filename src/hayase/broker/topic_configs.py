"""Config listings for DescribeConfigs (and CreateTopics v5): names, values and their sources,
with Kafka's names, defaults and broker synonyms."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hayase.broker.config import DEFAULTS

if TYPE_CHECKING:
    from hayase.broker.context import BrokerState

# DescribeConfigs config_source values
DYNAMIC_TOPIC_CONFIG = 1
DYNAMIC_BROKER_CONFIG = 2
DYNAMIC_DEFAULT_BROKER_CONFIG = 3
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5

# config_type values
BOOLEAN, STRING, INT, SHORT, LONG, DOUBLE, LIST, CLASS, PASSWORD = range(1, 10)

# topic config -> (broker synonym, Kafka default, type)
TOPIC_CONFIGS: dict[str, tuple[str | None, str, int]] = {
    "cleanup.policy": ("log.cleanup.policy", "delete", LIST),
    "compression.type": ("compression.type", "producer", STRING),
    "delete.retention.ms": ("log.cleaner.delete.retention.ms", "86400000", LONG),
    "file.delete.delay.ms": ("log.segment.delete.delay.ms", "60000", LONG),
    "flush.messages": ("log.flush.interval.messages", "9223372036854775807", LONG),
    "flush.ms": ("log.flush.interval.ms", "9223372036854775807", LONG),
    "index.interval.bytes": ("log.index.interval.bytes", "4096", INT),
    "max.compaction.lag.ms": ("log.cleaner.max.compaction.lag.ms", "9223372036854775807", LONG),
    "max.message.bytes": ("message.max.bytes", "1048588", INT),
    "message.timestamp.after.max.ms": ("log.message.timestamp.after.max.ms",
                                       "9223372036854775807", LONG),
    "message.timestamp.before.max.ms": ("log.message.timestamp.before.max.ms",
                                        "9223372036854775807", LONG),
    "message.timestamp.type": ("log.message.timestamp.type", "CreateTime", STRING),
    "min.cleanable.dirty.ratio": ("log.cleaner.min.cleanable.ratio", "0.5", DOUBLE),
    "min.compaction.lag.ms": ("log.cleaner.min.compaction.lag.ms", "0", LONG),
    "min.insync.replicas": ("min.insync.replicas", "1", INT),
    "preallocate": ("log.preallocate", "false", BOOLEAN),
    "retention.bytes": ("log.retention.bytes", "-1", LONG),
    "retention.ms": ("log.retention.ms", "604800000", LONG),
    "segment.bytes": ("log.segment.bytes", "1073741824", INT),
    "segment.index.bytes": ("log.index.size.max.bytes", "10485760", INT),
    "segment.jitter.ms": ("log.roll.jitter.ms", "0", LONG),
    "segment.ms": ("log.roll.ms", "604800000", LONG),
    "unclean.leader.election.enable": ("unclean.leader.election.enable", "false", BOOLEAN),
}

_BROKER_TYPES = {"auto.create.topics.enable": BOOLEAN, "delete.topic.enable": BOOLEAN,
                 "listeners": LIST, "advertised.listeners": LIST}


def _topic_overrides(tc: Any) -> dict[str, str]:
    """The configs set on the topic itself (the storage's TopicConfig keeps them as a dict)."""
    for attr in ("overrides", "configs"):
        value = getattr(tc, attr, None)
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
    return {}


def _entry(name: str, value: str | None, source: int, config_type: int,
           synonyms: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "value": value, "read_only": False, "config_source": source,
            "is_sensitive": False, "synonyms": synonyms, "config_type": config_type,
            "documentation": None, "is_default": source == DEFAULT_CONFIG}


def topic_config_entries(broker: BrokerState, topic: str,
                         keys: set[str] | None) -> list[dict[str, Any]]:
    tc = broker.log_manager.topic_config(topic)
    overrides = _topic_overrides(tc)
    explicit = broker.config.explicit
    props = broker.config.props
    # The storage's TopicConfig resolves every value and its source; fall back to our table.
    values: dict[str, str] = dict(getattr(tc, "values", None) or {})
    sources: dict[str, int] = dict(getattr(tc, "sources", None) or {})
    out = []
    for name in sorted(set(TOPIC_CONFIGS) | set(overrides) | set(values)):
        if keys is not None and name not in keys:
            continue
        synonym, default, ctype = TOPIC_CONFIGS.get(name, (None, "", STRING))
        synonyms: list[dict[str, Any]] = []
        if name in values:
            value, source = values[name], sources.get(name, DEFAULT_CONFIG)
        elif name in overrides:
            value, source = overrides[name], DYNAMIC_TOPIC_CONFIG
        elif synonym is not None and synonym in explicit:
            value, source = props[synonym], STATIC_BROKER_CONFIG
        else:
            value, source = default, DEFAULT_CONFIG
        dynamic = _dynamic_synonyms(broker, synonym)
        if dynamic and name not in overrides:
            source = dynamic[0]["source"]
        if name in overrides:
            synonyms.append({"name": name, "value": overrides[name],
                             "source": DYNAMIC_TOPIC_CONFIG})
        synonyms.extend(dynamic)
        if synonym is not None and synonym in explicit:
            synonyms.append({"name": synonym, "value": props[synonym],
                             "source": STATIC_BROKER_CONFIG})
        if synonym is not None:
            synonyms.append({"name": synonym, "value": default, "source": DEFAULT_CONFIG})
        out.append(_entry(name, value, source, ctype, synonyms))
    return out


def _dynamic_synonyms(broker: BrokerState, name: str | None) -> list[dict[str, Any]]:
    """The dynamic broker configs of `name`, this broker's before the cluster default's."""
    if name is None:
        return []
    dynamic = broker.config.dynamic  # both scopes, always (BrokerConfig)
    return [{"name": name, "value": dynamic[scope][name], "source": source}
            for scope, source in (("node", DYNAMIC_BROKER_CONFIG),
                                  ("default", DYNAMIC_DEFAULT_BROKER_CONFIG))
            if name in dynamic[scope]]


# The broker-level defaults of topic configs (log.retention.ms, ...): name -> (default, type),
# listed among a broker's configs as Kafka lists them.
LOG_DEFAULTS: dict[str, tuple[str, int]] = {
    synonym: (default, ctype) for synonym, default, ctype in TOPIC_CONFIGS.values()
    if synonym is not None
}

_READ_ONLY_BROKER = frozenset({"listeners", "advertised.listeners", "node.id", "broker.id"})


def broker_config_entries(broker: BrokerState, keys: set[str] | None,
                          cluster_default: bool = False) -> list[dict[str, Any]]:
    """A broker resource's configs. The cluster-wide resource ("") holds only the dynamic
    defaults, as in Kafka; the broker's own resource every config, by precedence: its dynamic
    value, the dynamic default, the static value, Kafka's default."""
    dynamic = broker.config.dynamic
    if cluster_default:
        return [_entry(name, value, DYNAMIC_DEFAULT_BROKER_CONFIG, STRING,
                       [{"name": name, "value": value,
                         "source": DYNAMIC_DEFAULT_BROKER_CONFIG}])
                for name, value in sorted(dynamic["default"].items())
                if keys is None or name in keys]
    explicit = broker.config.explicit
    props = dict(broker.config.props)
    # The listeners as the broker runs them (port 0 resolved, advertised defaulted); like
    # Kafka 4, they are static configs of this broker, whether or not a file named them.
    adv = broker.advertised
    bound = broker.bound_port or broker.config.listener.port
    props["listeners"] = f"PLAINTEXT://{broker.config.listener.host}:{bound}"
    props["advertised.listeners"] = f"PLAINTEXT://{adv.host}:{adv.port}"
    static = explicit | {"listeners", "advertised.listeners"}
    names = set(props) | set(LOG_DEFAULTS) | set(dynamic["default"]) | set(dynamic["node"])
    out = []
    for name in sorted(names):
        if keys is not None and name not in keys:
            continue
        synonyms = _dynamic_synonyms(broker, name)
        if name in props:
            source = STATIC_BROKER_CONFIG if name in static else DEFAULT_CONFIG
            synonyms.append({"name": name, "value": props[name], "source": source})
        default = DEFAULTS.get(name, LOG_DEFAULTS.get(name, (None, STRING))[0])
        if default is not None and (name in explicit or name not in props):
            synonyms.append({"name": name, "value": default, "source": DEFAULT_CONFIG})
        if not synonyms:
            continue
        top = synonyms[0]
        ctype = _BROKER_TYPES.get(name, LOG_DEFAULTS.get(name, (None, STRING))[1])
        entry = _entry(name, top["value"], top["source"], ctype, synonyms)
        entry["read_only"] = name in _READ_ONLY_BROKER
        out.append(entry)
    return out
