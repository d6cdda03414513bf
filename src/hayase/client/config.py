"""Client configuration the way librdkafka users know it: property names such as
`bootstrap.servers` or `compression.type`, given as `--config name=value` pairs and/or a
property file (`name=value` lines, `#` comments), as kcat's `-F` and librdkafka's examples read.

Plain functions over plain data; the CLI shells call them."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from hayase.client.errors import ClientError

DEFAULT_BOOTSTRAP_SERVERS = "127.0.0.1:9092"


def parse_pair(text: str, what: str = "--config") -> tuple[str, str]:
    """`name=value` -> (name, value). The value may itself contain `=`."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ClientError(f"{what} expects name=value, got {text!r}")
    return name, value.strip()


def parse_pairs(pairs: Iterable[str], what: str = "--config") -> dict[str, str]:
    """Later pairs override earlier ones, as repeated `-X` options do in kcat."""
    return dict(parse_pair(p, what) for p in pairs)


def parse_properties(text: str, source: str = "<config>") -> dict[str, str]:
    """librdkafka property format: one `name=value` per line; blank lines and lines starting
    with `#` are ignored."""
    props: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise ClientError(f"{source}:{lineno}: expected name=value, got {raw!r}")
        props[name.strip()] = value.strip()
    return props


def read_properties(path: Path | str) -> dict[str, str]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ClientError(f"cannot read config file {p}: {e.strerror or e}") from None
    return parse_properties(text, str(p))


def quiet_logger() -> logging.Logger:
    """librdkafka logs connection failures to stderr on its own; the CLI reports errors itself,
    so route those logs into Python logging (silent unless the user configures it)."""
    log = logging.getLogger("hayase.client.librdkafka")
    if not log.handlers:
        log.addHandler(logging.NullHandler())
        log.propagate = False
    return log


def client_config(
    bootstrap_servers: str | None = None,
    config_file: Path | str | None = None,
    config_pairs: Iterable[str] = (),
    overrides: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """Merge, lowest precedence first: the file, then `--config` pairs, then `overrides` (what a
    command sets from its own options). `--bootstrap-servers` wins when given; otherwise the
    file's or pairs' `bootstrap.servers`, otherwise 127.0.0.1:9092."""
    conf: dict[str, object] = {}
    if config_file is not None:
        conf.update(read_properties(config_file))
    conf.update(parse_pairs(config_pairs))
    if overrides:
        conf.update(overrides)
    if bootstrap_servers:
        conf["bootstrap.servers"] = bootstrap_servers
    conf.setdefault("bootstrap.servers", DEFAULT_BOOTSTRAP_SERVERS)
    return conf
