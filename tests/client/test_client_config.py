"""Client configuration: property files, --config pairs and their precedence."""

from __future__ import annotations

import pytest

from hayase.client.config import (
    DEFAULT_BOOTSTRAP_SERVERS,
    client_config,
    parse_pair,
    parse_properties,
)
from hayase.client.errors import ClientError


def test_properties_skip_comments_and_blank_lines() -> None:
    text = "# comment\n\nbootstrap.servers = 127.0.0.1:1\nsasl.password=a=b\n"
    assert parse_properties(text) == {"bootstrap.servers": "127.0.0.1:1", "sasl.password": "a=b"}


def test_properties_reject_a_line_without_equals() -> None:
    with pytest.raises(ClientError, match="f.properties:2: expected name=value"):
        parse_properties("a=1\nnot a property\n", "f.properties")


def test_pair_keeps_equals_in_value_and_rejects_empty_name() -> None:
    assert parse_pair("k=v=w") == ("k", "v=w")
    with pytest.raises(ClientError):
        parse_pair("=v")
    with pytest.raises(ClientError):
        parse_pair("novalue")


def test_precedence_file_then_pairs_then_bootstrap_option(tmp_path) -> None:
    f = tmp_path / "c.properties"
    f.write_text("bootstrap.servers=file:1\nclient.id=from-file\nlinger.ms=7\n")
    conf = client_config(None, f, ["client.id=from-pair"])
    assert conf == {"bootstrap.servers": "file:1", "client.id": "from-pair", "linger.ms": "7"}
    assert client_config("opt:2", f, [])["bootstrap.servers"] == "opt:2"
    assert client_config()["bootstrap.servers"] == DEFAULT_BOOTSTRAP_SERVERS == "127.0.0.1:9092"


def test_missing_config_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ClientError, match="cannot read config file"):
        client_config(None, tmp_path / "nope.properties")
