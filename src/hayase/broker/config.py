"""Broker configuration, with Kafka's broker property names wherever one exists.

Sources, later ones winning: built-in defaults < `--config-file` (Kafka .properties) <
`--config name=value` < `--host`/`--port`. Values stay strings (as in Kafka's properties), with
typed accessors for the ones the server itself reads; everything is also handed to the
LogManager, which reads the `log.*` names.

hayase-only names:

* `hayase.durability` = none | interval | always (see `hayase.broker.durability`).
* `hayase.max.partitions` (default 10000): partitions the broker accepts in total, so that a
  CreateTopics with a huge count cannot exhaust file descriptors (each partition keeps its
  active segment open).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULTS: dict[str, str] = {
    "node.id": "0",
    "listeners": "PLAINTEXT://127.0.0.1:9092",
    "advertised.listeners": "",
    "auto.create.topics.enable": "true",
    "num.partitions": "1",
    "default.replication.factor": "1",
    "message.max.bytes": "1048588",
    "socket.request.max.bytes": "104857600",
    "connections.max.idle.ms": "600000",
    "fetch.max.bytes": "57671680",
    "log.retention.check.interval.ms": "300000",
    "log.cleaner.backoff.ms": "15000",
    "hayase.durability": "none",
    "delete.topic.enable": "true",
    "hayase.max.partitions": "10000",
}

DURABILITY_MODES = ("none", "interval", "always")

# Dynamic broker configs (AlterConfigs on a broker resource) live here, in the data dir, so they
# survive a restart as Kafka's do in its metadata log: {"default": {...}, "node": {...}}, the
# cluster-wide default (resource name "") and this broker's own (resource name = node.id).
DYNAMIC_CONFIGS_FILE = "dynamic-broker-configs.json"
DYNAMIC_SCOPES = ("default", "node")


class ConfigError(ValueError):
    """A broker configuration value that cannot be used."""


def parse_properties(text: str) -> dict[str, str]:
    """Java .properties, the subset Kafka's server.properties files use: `#`/`!` comments,
    `key=value` or `key: value`, backslash line continuation."""
    props: dict[str, str] = {}
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#!":
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending = line[:-1]
            continue
        m = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)$", line)
        if m:
            props[m.group(1)] = m.group(2).strip()
        else:
            props[line] = ""
    return props


@dataclass(frozen=True)
class Listener:
    host: str
    port: int


def parse_listener(value: str) -> Listener:
    """`PLAINTEXT://host:port` (the first of a comma-separated list)."""
    first = value.split(",")[0].strip()
    m = re.match(r"^(?:[A-Za-z_]+://)?\[?([^\]]*?)\]?:(\d+)$", first)
    if not m:
        raise ConfigError(f"cannot parse listener {value!r} (want PLAINTEXT://host:port)")
    host = m.group(1) or "0.0.0.0"
    return Listener(host, int(m.group(2)))


@dataclass
class BrokerConfig:
    data_dir: Path
    props: dict[str, str] = field(default_factory=dict)
    explicit: set[str] = field(default_factory=set)  # names set by file, --config or flags
    dynamic: dict[str, dict[str, str]] = field(
        default_factory=lambda: {scope: {} for scope in DYNAMIC_SCOPES})

    @classmethod
    def build(cls, data_dir: Path, *, port: int | None = None, host: str | None = None,
              config_file: Path | None = None, overrides: dict[str, str] | None = None
              ) -> BrokerConfig:
        props = dict(DEFAULTS)
        explicit: set[str] = set()
        if config_file is not None:
            from_file = parse_properties(config_file.read_text())
            props.update(from_file)
            explicit.update(from_file)
        props.update(overrides or {})
        explicit.update(overrides or {})
        if "broker.id" in props and "node.id" not in (overrides or {}):
            props["node.id"] = props["broker.id"]
        if port is not None or host is not None:
            cur = parse_listener(props["listeners"])
            props["listeners"] = (f"PLAINTEXT://{host or cur.host}:"
                                  f"{port if port is not None else cur.port}")
            explicit.add("listeners")
        cfg = cls(Path(data_dir), props, explicit, load_dynamic_configs(Path(data_dir)))
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.durability not in DURABILITY_MODES:
            raise ConfigError(f"hayase.durability must be one of {', '.join(DURABILITY_MODES)}, "
                              f"not {self.durability!r}")
        for name in ("node.id", "num.partitions", "hayase.max.partitions",
                     "connections.max.idle.ms", "fetch.max.bytes", "message.max.bytes", "socket.request.max.bytes",
                     "log.retention.check.interval.ms", "log.cleaner.backoff.ms"):
            try:
                int(self.props[name])
            except ValueError:
                raise ConfigError(f"{name} must be an integer, not {self.props[name]!r}") from None
        scheduler = self.props.get("log.flush.scheduler.interval.ms")
        if scheduler is not None and (not scheduler.isdigit() or int(scheduler) <= 0):
            raise ConfigError("log.flush.scheduler.interval.ms must be a positive integer")
        if self.flush_interval_ms <= 0:
            raise ConfigError("log.flush.interval.ms must be positive")
        parse_listener(self.props["listeners"])
        if self.props.get("advertised.listeners"):
            parse_listener(self.props["advertised.listeners"])

    def storage_props(self) -> dict[str, str]:
        """What the LogManager gets: the properties set explicitly, so that topic configs not
        set anywhere report DEFAULT_CONFIG (not STATIC_BROKER_CONFIG) in DescribeConfigs,
        overridden by the dynamic cluster default and then by this broker's dynamic configs
        (Kafka's order of precedence)."""
        static = {k: v for k, v in self.props.items() if k in self.explicit}
        return {**static, **self.dynamic["default"], **self.dynamic["node"]}

    def get_int(self, name: str) -> int:
        return int(self.props[name])

    def get_bool(self, name: str) -> bool:
        return self.props.get(name, "false").strip().lower() == "true"

    @property
    def node_id(self) -> int:
        return self.get_int("node.id")

    @property
    def listener(self) -> Listener:
        return parse_listener(self.props["listeners"])

    @property
    def advertised(self) -> Listener:
        """What Metadata tells clients to connect to."""
        if self.props.get("advertised.listeners"):
            return parse_listener(self.props["advertised.listeners"])
        lst = self.listener
        if lst.host in ("0.0.0.0", "", "::"):
            return Listener("127.0.0.1", lst.port)
        return lst

    @property
    def flush_interval_ms(self) -> int:
        """The `interval` mode's period: log.flush.interval.ms, 1000 when not set (Kafka's own
        default, never, would make the mode pointless)."""
        try:
            return int(self.props.get("log.flush.interval.ms", "1000"))
        except ValueError:
            raise ConfigError("log.flush.interval.ms must be an integer") from None

    @property
    def durability(self) -> str:
        return self.props["hayase.durability"].strip().lower()

    @property
    def auto_create_topics(self) -> bool:
        return self.get_bool("auto.create.topics.enable")

    @property
    def num_partitions(self) -> int:
        return self.get_int("num.partitions")


def load_dynamic_configs(data_dir: Path) -> dict[str, dict[str, str]]:
    """The persisted dynamic broker configs (none when the file does not exist)."""
    path = data_dir / DYNAMIC_CONFIGS_FILE
    out: dict[str, dict[str, str]] = {scope: {} for scope in DYNAMIC_SCOPES}
    if not path.exists():
        return out
    try:
        data = json.loads(path.read_text())
        for scope in DYNAMIC_SCOPES:
            out[scope] = {str(k): str(v) for k, v in dict(data.get(scope, {})).items()}
    except (ValueError, TypeError, AttributeError) as e:
        raise ConfigError(f"{path} is not a valid dynamic broker config file: {e}") from None
    return out
