"""Line parsing and producer configuration (pure, no broker)."""

from __future__ import annotations

import pytest
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END

from hayase.client.consumer import parse_offset
from hayase.client.errors import ClientError
from hayase.client.producer import (
    parse_headers,
    parse_line,
    producer_config,
    records_from_lines,
)


def test_parse_line_strips_one_line_ending_and_splits_at_first_separator() -> None:
    assert parse_line(b"value\n", None, 1) == (None, b"value")
    assert parse_line(b"value\r\n", None, 1) == (None, b"value")
    assert parse_line(b"k:v:w\n", b":", 1) == (b"k", b"v:w")
    assert parse_line(b":v", b":", 1) == (b"", b"v")
    assert parse_line(b"\n", None, 1) == (None, b"")


def test_line_without_separator_names_the_line() -> None:
    records = records_from_lines([b"a:1\n", b"b\n"], b":")
    assert next(iter(records)).key == b"a"
    with pytest.raises(ClientError, match="line 2 has no key separator"):
        list(records_from_lines([b"a:1\n", b"b\n"], b":"))


def test_headers_keep_order_and_repeats() -> None:
    assert parse_headers(["a=1", "a=2", "b="]) == (("a", b"1"), ("a", b"2"), ("b", b""))
    with pytest.raises(ClientError):
        parse_headers(["nope"])


def test_idempotence_follows_acks_and_config_wins() -> None:
    assert producer_config({}, "all")["enable.idempotence"] is True
    assert producer_config({}, "1")["enable.idempotence"] is False
    assert producer_config({}, "all", idempotence=False)["enable.idempotence"] is False
    with pytest.raises(ClientError, match="idempotence needs --acks all"):
        producer_config({}, "0", idempotence=True)
    assert producer_config({}, "all")["partitioner"] == "murmur2_random"
    assert producer_config({"partitioner": "random"}, "all")["partitioner"] == "random"


def test_offsets() -> None:
    assert parse_offset("beginning") == parse_offset("earliest") == OFFSET_BEGINNING
    assert parse_offset("END") == OFFSET_END
    assert parse_offset("42") == 42
    for bad in ("-1", "x"):
        with pytest.raises(ClientError):
            parse_offset(bad)
