"""KEY_DELIMITER / VALUE_DELIMITER: one resolver (ksqlDB's Delimiter rules and messages) for the
WITH clause and the DELIMITED serde."""

from __future__ import annotations

import pytest

from hayase.formats import key_serde, value_serde
from hayase.sql import Session, StatementError
from hayase.sql.delimiter import parse_delimiter
from hayase.sql.plan import DataSource

EMPTY = ("Delimiter cannot be empty, if you meant to have a tab or space for delimiter, please use "
         "the special values 'TAB' or 'SPACE'\nExample valid value: ';'")


def test_parse_delimiter_names_and_single_characters() -> None:
    assert parse_delimiter("TAB") == "\t"
    assert parse_delimiter("SPACE") == " "
    assert parse_delimiter("|") == "|"
    assert parse_delimiter("T") == "T"


@pytest.mark.parametrize("text", ["", " ", "\t", "  ", "\x01"])
def test_parse_delimiter_refuses_blank_text(text: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_delimiter(text)
    assert str(e.value) == EMPTY


@pytest.mark.parametrize("text", ["<~>", "space", "Tab", "\U0001F600"])
def test_parse_delimiter_refuses_longer_text(text: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_delimiter(text)
    assert str(e.value) == (f"Invalid delimiter value: '{text}'. Delimiter must be a single "
                            "character or TAB,SPACE\nExample valid value: ';'")


def _create(session: Session, delimiter: str, key: bool = False) -> DataSource:
    which = "KEY" if key else "VALUE"
    session.execute(f"CREATE STREAM S (K STRING KEY, A INT, B STRING) WITH (KAFKA_TOPIC='s', "
                    f"FORMAT='DELIMITED', {which}_DELIMITER='{delimiter}', PARTITIONS=1);")
    return session.metastore.require("S")


@pytest.mark.parametrize(("text", "line"), [("SPACE", b"1 x"), ("TAB", b"1\tx"), ("|", b"1|x")])
def test_accepted_delimiter_builds_the_serde(text: str, line: bytes) -> None:
    src = _create(Session(), text)
    serde = value_serde(src.value_format, src.schema.value)
    assert serde.serialize((1, "x")) == line
    assert serde.deserialize(line) == (1, "x")


def test_key_delimiter_builds_the_key_serde() -> None:
    src = _create(Session(), "SPACE", key=True)
    assert key_serde(src.key_format, src.schema.key).serialize(("k",)) == b"k"


@pytest.mark.parametrize(("text", "message"), [
    ("", EMPTY), (" ", EMPTY),
    ("<~>", "Invalid delimiter value: '<~>'. Delimiter must be a single character or TAB,SPACE"),
])
def test_refused_delimiter_is_a_statement_error(text: str, message: str) -> None:
    with pytest.raises(StatementError) as e:
        _create(Session(), text)
    assert e.value.message.startswith(
        "Failed to prepare statement: Configuration VALUE_DELIMITER is invalid: " + message)


def test_sink_inherits_the_source_delimiter() -> None:
    session = Session()
    _create(session, "SPACE")
    session.execute("CREATE STREAM S2 AS SELECT * FROM S;")
    sink = session.metastore.require("S2")
    assert value_serde(sink.value_format, sink.schema.value).serialize((2, "y")) == b"2 y"


@pytest.mark.parametrize(("with_clause", "message"), [
    ("VALUE_FORMAT='DELIMITED', VALUE_DELIMITER=''", "Configuration VALUE_DELIMITER is invalid"),
    ("VALUE_FORMAT='JSON', VALUE_DELIMITER='|'",
     "JSON does not support the following configs: [delimiter]"),
])
def test_delimiters_are_checked_before_the_columns(with_clause: str, message: str) -> None:
    with pytest.raises(StatementError, match=message.replace("[", r"\[")):
        Session().execute(f"CREATE STREAM S WITH (KAFKA_TOPIC='s', {with_clause});")
