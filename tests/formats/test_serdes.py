from decimal import Decimal

import pytest

from hayase.formats import FormatError, SerdeError, key_serde, validate, value_serde
from hayase.formats.delimited import split_line
from hayase.formats.javafmt import java_double
from hayase.sql.plan import Column, FormatInfo, Namespace
from hayase.sql.types import (
    BIGINT,
    BOOLEAN,
    BYTES,
    DOUBLE,
    INTEGER,
    STRING,
    array_of,
    decimal_type,
    map_of,
    struct_of,
)

JSON = FormatInfo("JSON")
UNWRAPPED = FormatInfo("JSON", features=frozenset({"UNWRAP_SINGLES"}))


def cols(*spec, ns=Namespace.VALUE):
    return tuple(Column(n, t, ns) for n, t in spec)


class TestJson:
    def test_case_insensitive_fields_and_coercions(self):
        serde = value_serde(JSON, cols(("NAME", STRING), ("AGE", INTEGER), ("SCORE", DOUBLE),
                                       ("D", decimal_type(6, 4)), ("OK", BOOLEAN)))
        got = serde.deserialize(b'{"name": 12, "Age": "22", "score": 3, "d": 10.1, "ok": true}')
        assert got == ("12", 22, 3.0, Decimal("10.1000"), True)
        assert str(got[3]) == "10.1000"

    def test_field_resolution_is_per_record_shape(self):
        # A quoted lower-case column matches only its exact name: ksqlDB upper-cases the JSON
        # field names, never the column's.
        serde = value_serde(JSON, cols(("A", INTEGER), ("b", STRING)))
        assert serde.deserialize(b'{"a": 1, "B": "x"}') == (1, None)
        assert serde.deserialize(b'{"A": 2, "b": "y", "B": "z"}') == (2, "y")
        assert serde.deserialize(b'{"b": "w"}') == (None, "w")
        assert serde.deserialize(b'{"a": 3, "B": "v", "b": "u"}') == (3, "u")

    def test_missing_fields_are_null_and_nested_struct_is_case_insensitive(self):
        serde = value_serde(JSON, cols(("A", struct_of([("TOWN", STRING), ("N", BIGINT)]))))
        assert serde.deserialize(b'{"a": {"Town": "Oxford"}}') == ({"TOWN": "Oxford", "N": None},)
        assert serde.deserialize(b"{}") == (None,)

    def test_unwrapped_single_value(self):
        serde = value_serde(UNWRAPPED, cols(("V", array_of(STRING))))
        assert serde.deserialize(b"[1, 2, null]") == (["1", "2", None],)
        assert serde.serialize((["a"],)) == b'["a"]'

    def test_serialize_keeps_decimal_scale_and_base64_bytes(self):
        serde = value_serde(JSON, cols(("D", decimal_type(6, 4)), ("B", BYTES)))
        assert serde.serialize((Decimal("10.0000"), b"\x01")) == b'{"D":10.0000,"B":"AQ=="}'

    def test_decimals_must_fit_without_rounding(self):
        serde = value_serde(UNWRAPPED, cols(("D", decimal_type(4, 2))))
        assert str(serde.deserialize(b"1.5")[0]) == "1.50"
        with pytest.raises(SerdeError, match="without rounding"):
            serde.deserialize(b"1.234")
        with pytest.raises(SerdeError, match="overflow"):
            serde.deserialize(b"123.4")

    def test_tombstone_and_bad_json(self):
        serde = value_serde(JSON, cols(("V", INTEGER)))
        assert serde.deserialize(None) is None
        assert serde.serialize(None) is None
        with pytest.raises(SerdeError):
            serde.deserialize(b"{not json")
        with pytest.raises(SerdeError):
            serde.deserialize(b'{"V": "abc"}')
        with pytest.raises(SerdeError):
            serde.deserialize(b'"a string where an object is needed"')

    def test_single_key_is_unwrapped_multi_key_is_an_object(self):
        single = key_serde(JSON, cols(("K", INTEGER), ns=Namespace.KEY))
        assert single.serialize((33,)) == b"33"
        assert single.deserialize(b"33") == (33,)
        assert single.deserialize(None) is None  # a null key, not a key of NULL columns
        assert single.serialize((None,)) is None
        multi = key_serde(JSON, cols(("K1", STRING), ("K2", INTEGER), ns=Namespace.KEY))
        assert multi.deserialize(b'{"k1": "a", "K2": 1}') == ("a", 1)
        assert multi.serialize((None, None)) == b'{"K1":null,"K2":null}'

    def test_non_finite_doubles_and_null_map_keys(self):
        serde = value_serde(JSON, cols(("D", DOUBLE), ("M", map_of(STRING, INTEGER))))
        assert serde.serialize((float("nan"), {None: 1})) == b'{"D":"NaN","M":{"null":1}}'
        assert serde.deserialize(b'{"D": "-Infinity"}')[0] == float("-inf")

    def test_bigint_beyond_64_bits_is_parsed_exactly_then_wraps(self):
        serde = value_serde(UNWRAPPED, cols(("V", BIGINT)))
        assert serde.deserialize(b"998877665544332211") == (998877665544332211,)


class TestDelimited:
    def test_round_trip_with_nulls_and_quotes(self):
        serde = value_serde(FormatInfo("DELIMITED"), cols(("A", INTEGER), ("B", STRING),
                                                          ("C", DOUBLE)))
        assert serde.deserialize(b'4,,1.5') == (4, None, 1.5)
        assert serde.deserialize(b'4,"a,b",2') == (4, "a,b", 2.0)
        assert serde.serialize((1, "a,b", 10.0)) == b'1,"a,b",10.0'
        assert serde.serialize((None, None, None)) == b",,"

    def test_minimal_quoting_like_commons_csv(self):
        serde = value_serde(FormatInfo("DELIMITED"), cols(("A", STRING), ("B", STRING),
                                                          ("C", STRING)))
        assert serde.serialize(("-10", "-1", "")) == b'"-10",-1,'
        assert serde.serialize(("!", "#", "x ")) == b'"!","#","x "'
        assert serde.serialize(("", "a\"b", "c")) == b'"","a""b",c'

    def test_field_count_mismatch_is_an_error(self):
        serde = value_serde(FormatInfo("DELIMITED"), cols(("A", INTEGER), ("B", STRING)))
        with pytest.raises(SerdeError):
            serde.deserialize(b"1,2,3")

    def test_named_and_custom_delimiters(self):
        two = cols(("A", INTEGER), ("B", STRING))
        for text, line in (("TAB", b"0\tzero"), ("SPACE", b"0 zero"), ("|", b"0|zero")):
            serde = value_serde(FormatInfo("DELIMITED", (("delimiter", text),)), two)
            assert serde.deserialize(line) == (0, "zero"), text
            assert serde.serialize((0, "zero")) == line, text
        key = key_serde(FormatInfo("DELIMITED", (("delimiter", "SPACE"),)), two)
        assert key.serialize((1, "a")) == b"1 a"

    def test_delimiters_ksqldb_refuses(self):
        for bad in ("", " ", "\t", "ab", "space"):
            with pytest.raises(ValueError):
                value_serde(FormatInfo("DELIMITED", (("delimiter", bad),)),
                            cols(("A", INTEGER)))

    def test_decimal_keeps_trailing_zeros(self):
        serde = value_serde(FormatInfo("DELIMITED"), cols(("D", decimal_type(6, 4))))
        assert serde.deserialize(b"12.0") == (Decimal("12.0000"),)
        assert serde.serialize((Decimal("12.0000"),)) == b"12.0000"
        assert serde.serialize((None,)) == b""

    def test_split_line(self):
        assert split_line('"true"', ",") == ["true"]
        assert split_line("a,", ",") == ["a", None]
        assert split_line('"",x', ",") == ["", "x"]


class TestKafka:
    def test_big_endian_primitives(self):
        assert value_serde(FormatInfo("KAFKA"), cols(("V", INTEGER))).serialize((1,)) == \
            b"\x00\x00\x00\x01"
        k = key_serde(FormatInfo("KAFKA"), cols(("K", BIGINT), ns=Namespace.KEY))
        assert k.deserialize(b"\x00" * 7 + b"\x02") == (2,)
        d = value_serde(FormatInfo("KAFKA"), cols(("V", DOUBLE)))
        assert d.deserialize(d.serialize((2.2,))) == (2.2,)

    def test_wrong_size_is_an_error(self):
        with pytest.raises(SerdeError, match="not 4"):
            value_serde(FormatInfo("KAFKA"), cols(("V", INTEGER))).deserialize(b"\x00\x01")


class TestValidate:
    def test_messages(self):
        with pytest.raises(FormatError, match="'DELIMITED' format does not support type 'ARRAY'"):
            validate(FormatInfo("DELIMITED"), cols(("A", array_of(INTEGER))), is_key=False)
        with pytest.raises(FormatError, match="'NONE' format can only be used"):
            validate(FormatInfo("NONE"), cols(("A", INTEGER)), is_key=False)
        with pytest.raises(FormatError, match="STRING keys"):
            validate(JSON, cols(("M", map_of(INTEGER, DOUBLE))), is_key=False)
        with pytest.raises(FormatError, match="does not support type 'BOOLEAN'"):
            validate(FormatInfo("KAFKA"), cols(("B", BOOLEAN)), is_key=False)
        validate(JSON, cols(("M", map_of(STRING, DOUBLE))), is_key=False)


def test_java_double_text():
    assert [java_double(x) for x in (1.0, 1e7, 1.5e-4, 123.456, -0.0)] == \
        ["1.0", "1.0E7", "1.5E-4", "123.456", "-0.0"]


def test_java_number_text_rules():
    from hayase.formats.javanum import parse_boolean, parse_double, parse_int, parse_long

    assert parse_int("+5") == 5 and parse_long("-9223372036854775808") == -(2**63)
    for bad in ("1_000", " 1", "1.0", "", "2147483648"):
        with pytest.raises(ValueError):
            parse_int(bad)
    assert parse_double(" 1.5d ") == 1.5 and parse_double("1e3") == 1000.0
    assert parse_double("-Infinity") == float("-inf")
    for bad in ("inf", "1_0.5", "abc"):
        with pytest.raises(ValueError):
            parse_double(bad)
    assert parse_boolean("TRUE") and not parse_boolean("yes")
