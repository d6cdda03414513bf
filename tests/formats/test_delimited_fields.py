"""DELIMITED fields read and written as ksqlDB's delimited serdes (Apache Commons CSV) do."""

from decimal import Decimal

import pytest

from hayase.formats import SerdeError, value_serde
from hayase.sql.plan import Column, FormatInfo, Namespace
from hayase.sql.types import (
    BIGINT,
    BOOLEAN,
    BYTES,
    DOUBLE,
    INTEGER,
    STRING,
    TIME,
    decimal_type,
)

CSV = FormatInfo("DELIMITED")


def serde(*types, fmt=CSV):
    return value_serde(fmt, tuple(Column(f"C{i}", t, Namespace.VALUE)
                                  for i, t in enumerate(types)))


def test_empty_fields_are_null_quoted_or_not_for_every_type():
    s = serde(STRING, INTEGER, STRING, DOUBLE)
    assert s.deserialize(b'"",,"",') == (None, None, None, None)
    assert s.deserialize(b'a,1,"b",2') == ("a", 1, "b", 2.0)


def test_a_line_break_ends_the_record():
    s = serde(STRING, INTEGER)
    assert s.deserialize(b"a,1\nb,2") == ("a", 1)
    assert s.deserialize(b'"a",1\r\n') == ("a", 1)
    assert s.deserialize(b'"x\ny",1') == ("x\ny", 1)


def test_wrong_field_count():
    with pytest.raises(SerdeError, match="expected: 2, got: 3"):
        serde(STRING, INTEGER).deserialize(b"a,1,2")


def test_numbers_parse_as_java_does():
    s = serde(INTEGER, BIGINT, DOUBLE, decimal_type(4, 2), BOOLEAN)
    assert s.deserialize(" 1.5 ".join([b"\xd9\xa1,2,".decode(), ",1.5,TRUE"]).encode()) == (
        1, 2, 1.5, Decimal("1.50"), True)
    for bad in (b" 1,2,3,1.5,true", b"1,2,3, 1.5,true", b"1,2,3,NaN,true",
                b"1,2,\xd9\xa1,1.5,true"):
        with pytest.raises(SerdeError):
            s.deserialize(bad)
    assert s.deserialize(b"1,2,3,1.5,yes")[4] is False  # Boolean.parseBoolean


def test_bytes_padding_is_optional_but_must_be_whole():
    s = serde(BYTES)
    assert s.deserialize(b"AQ") == (b"\x01",)
    assert s.deserialize(b"AQ==") == (b"\x01",)
    for bad in (b"AQ=", b"A", b"A*=="):
        with pytest.raises(SerdeError):
            s.deserialize(bad)


def test_each_type_written():
    s = serde(DOUBLE, decimal_type(6, 3), BYTES, BOOLEAN, STRING)
    assert s.serialize((1e10, Decimal("1.500"), b"\x01", True, "a,b")) == \
        b'1.0E10,1.500,AQ==,true,"a,b"'
    # Commons CSV quotes an empty string only as the first field (a line is never empty)
    assert s.serialize((None, None, None, None, "")) == b",,,,"
    assert serde(STRING, STRING).serialize(("", "")) == b'"",'


def test_custom_delimiter_quotes_it():
    s = serde(STRING, STRING, fmt=FormatInfo("DELIMITED", (("delimiter", "|"),)))
    assert s.serialize(("a|b", "c")) == b'"a|b"|c'
    assert s.deserialize(b'"a|b"|c') == ("a|b", "c")



def test_an_empty_record_has_no_fields():
    # ksqlDB writes a single NULL column as "", and Commons CSV reads "" as no record at all
    s = serde(STRING)
    assert s.serialize((None,)) == b""
    for data in (b"", b"\r\n", b"\n"):
        with pytest.raises(SerdeError, match="No fields in record"):
            s.deserialize(data)
    assert s.deserialize(b"\nx") == ("x",)  # empty lines before the record are skipped


def test_time_within_a_day_and_bytes_message():
    s = serde(STRING, INTEGER)
    t = value_serde(CSV, (Column("T", TIME, Namespace.VALUE),))
    assert t.deserialize(b"100") == (100,)
    for bad in (b"3000000000", b"-5"):
        with pytest.raises(SerdeError, match="less than 86400000."):
            t.deserialize(bad)
    with pytest.raises(SerdeError, match="Value is not a valid Base64 encoded string: a"):
        serde(BYTES).deserialize(b"a")
    assert s.deserialize(b'"-01",1') == ("-01", 1)
    assert serde(decimal_type(4, 2)).deserialize(b'"-01.12"') == (Decimal("-1.12"),)


def test_first_field_starting_with_a_sign_is_quoted():
    # the Commons CSV version ksqlDB uses quotes a first field not starting with [0-9A-Za-z]
    assert serde(decimal_type(4, 3)).serialize((Decimal("-1.120"),)) == b'"-1.120"'
    assert serde(decimal_type(4, 2)).serialize((Decimal("0.50"),)) == b"0.50"
    assert serde(BIGINT, decimal_type(4, 2)).serialize((-1, Decimal("-0.50"))) == b'"-1",-0.50'
    assert serde(decimal_type(12, 2)).serialize((Decimal("1234567890.00"),)) == b"1234567890.00"


def test_malformed_utf8_reads_as_replacement_characters():
    assert serde(STRING, INTEGER).deserialize(b"a\xff,1") == ("a\ufffd", 1)
    assert serde(STRING).serialize(("x\ud800",)) == b"x?"
