"""Settings of the command-line runner from a file (TOML or JSON), environment variables and
command-line options; later sources win: file < environment < command line.

File: consumer options at the top level, librdkafka settings under [kafka]:

    topics = ["app-events"]
    sink = "segments"
    redis_url = "redis://127.0.0.1:6379/0"
    max_in_flight_per_partition = 20
    [kafka]
    "bootstrap.servers" = "127.0.0.1:9092"
    "group.id" = "segments"

Environment: HAYASE_CONSUMER_<OPTION> (e.g. HAYASE_CONSUMER_MAX_PENDING_PER_PARTITION=1000,
HAYASE_CONSUMER_TOPICS=a,b) and HAYASE_KAFKA_<SETTING> with dots as underscores
(HAYASE_KAFKA_GROUP_ID=segments sets group.id)."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ENV_OPTION_PREFIX = "HAYASE_CONSUMER_"
ENV_KAFKA_PREFIX = "HAYASE_KAFKA_"


def _topics(v: Any) -> list[str]:
    if isinstance(v, str):
        return [t.strip() for t in v.split(",") if t.strip()]
    if isinstance(v, list | tuple) and all(isinstance(t, str) for t in v):
        return list(v)
    raise ValueError(f"topics must be a list of names, not {v!r}")


OPTIONS: dict[str, Callable[[Any], Any]] = {
    "topics": _topics,
    "sink": str,
    "redis_url": str,
    "prefix": str,
    "ordering": str,
    "max_in_flight_per_partition": int,
    "max_pending_per_partition": int,
    "batch_size": int,
    "dead_letter_topic": str,
    "max_retries": int,
    "initial_backoff": float,
    "max_backoff": float,
    "rate_limit": float,
    "rate_limit_per_key": float,
    "commit_interval": float,
    "revoke_timeout": float,
    "drain_timeout": float,
    "metrics_port": int,
}


class ConfigError(ValueError):
    pass


def read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    try:
        doc = json.loads(text) if path.suffix == ".json" else tomllib.loads(text.decode())
    except (ValueError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the top level must be a table/object")
    return doc


def _convert(name: str, value: Any, where: str) -> Any:
    if name not in OPTIONS:
        raise ConfigError(f"{where}: unknown option {name!r}")
    try:
        return OPTIONS[name](value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: bad value for {name}: {e}") from None


def resolve(file_doc: Mapping[str, Any] | None, env: Mapping[str, str],
            cli: Mapping[str, Any], cli_kafka: Mapping[str, str] | None = None
            ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(librdkafka settings, consumer options). `cli` values of None mean "not given"."""
    kafka: dict[str, Any] = {}
    options: dict[str, Any] = {}
    doc = dict(file_doc or {})
    file_kafka = doc.pop("kafka", {})
    if not isinstance(file_kafka, dict):
        raise ConfigError("config file: [kafka] must be a table of librdkafka settings")
    kafka.update({str(k): v for k, v in file_kafka.items()})
    for k, v in doc.items():
        options[k] = _convert(k, v, "config file")
    for k, v in env.items():
        if k.startswith(ENV_KAFKA_PREFIX):
            kafka[k[len(ENV_KAFKA_PREFIX):].lower().replace("_", ".")] = v
        elif k.startswith(ENV_OPTION_PREFIX):
            name = k[len(ENV_OPTION_PREFIX):].lower()
            options[name] = _convert(name, v, f"environment {k}")
    kafka.update(cli_kafka or {})
    for k, v in cli.items():
        if v is not None and v != ():
            options[k] = _convert(k, v, "command line")
    return kafka, options
