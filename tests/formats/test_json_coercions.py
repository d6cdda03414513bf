"""JSON values read and written as ksqlDB's KsqlJsonDeserializer / serializer do."""

from decimal import Decimal

import pytest

from hayase.formats import SerdeError, value_serde
from hayase.sql.plan import Column, FormatInfo, Namespace
from hayase.sql.types import (
    BIGINT,
    BOOLEAN,
    BYTES,
    DATE,
    DOUBLE,
    INTEGER,
    STRING,
    TIME,
    TIMESTAMP,
    array_of,
    decimal_type,
    map_of,
    struct_of,
)

JSON = FormatInfo("JSON")
UNWRAPPED = FormatInfo("JSON", features=frozenset({"UNWRAP_SINGLES"}))


def one(t, data: bytes):
    return value_serde(UNWRAPPED, (Column("V", t, Namespace.VALUE),)).deserialize(data)[0]


def write(t, value) -> bytes:
    return value_serde(UNWRAPPED, (Column("V", t, Namespace.VALUE),)).serialize((value,))


def test_text_to_numbers_uses_java_parsing():
    assert one(INTEGER, b'"12"') == 12
    assert one(BIGINT, '"\u0661\u0662"'.encode()) == 12
    assert one(DOUBLE, b'" 1.5 "') == 1.5
    assert one(decimal_type(4, 2), b'"1.5"') == Decimal("1.50")
    for t, text in ((INTEGER, b'" 12"'), (INTEGER, b'"2147483648"'), (BIGINT, b'"1_0"'),
                    (DOUBLE, '"\u0661"'.encode()), (decimal_type(4, 2), b'" 1.5"'),
                    (decimal_type(4, 2), b'"NaN"')):
        with pytest.raises(SerdeError):
            one(t, text)


def test_failed_text_coercion_message():
    with pytest.raises(SerdeError, match="Can't coerce string to type. targetType: INTEGER"):
        one(INTEGER, b'"x"')


def test_numbers_wrap_and_truncate_like_java():
    assert one(INTEGER, b"2147483648") == -(2**31)
    assert one(INTEGER, b"-1.9") == -1
    assert one(BIGINT, b"12.7") == 12


def test_boolean_only_from_json_booleans():
    assert one(BOOLEAN, b"true") is True
    for data in (b'"true"', b"1", b'"false"'):
        with pytest.raises(SerdeError, match="requiredType: BOOLEAN"):
            one(BOOLEAN, data)


def test_numbers_as_text_keep_their_literal():
    assert one(STRING, b"1.50") == "1.50"
    assert one(STRING, b"1e3") == "1E+3"
    assert one(STRING, b"-0.0") == "0.0"
    assert one(STRING, b"12") == "12"
    assert one(STRING, b"true") == "true"


def test_arrays_and_objects_as_text():
    assert one(STRING, b'[1, "a", null, [2.50], {"x": 1.0}]') == '[1, a, null, [2.50], {"x":1.0}]'
    assert one(STRING, b'{"a": [1, "b"], "c": 1e2}') == '{"a":[1,"b"],"c":1E+2}'


def test_struct_in_wrapped_record_reads_literals_even_after_a_float_shape():
    serde = value_serde(JSON, (Column("S", STRING, Namespace.VALUE),
                               Column("D", DOUBLE, Namespace.VALUE)))
    assert serde.deserialize(b'{"s": 2.0, "d": 2.0}') == ("2.0", 2.0)
    assert serde.deserialize(b'{"s": 1.10, "d": 1.10}') == ("1.10", 1.1)


def test_negative_zero_double_reads_as_zero():
    got = one(DOUBLE, b"-0.0")
    assert got == 0.0 and str(got) == "0.0"


def test_time_must_be_within_a_day_and_date_is_int_days():
    assert one(TIME, b'"1000"') == 1000
    with pytest.raises(SerdeError, match="86400000"):
        one(TIME, b"-1")
    assert one(DATE, b"19000") == 19000
    assert one(TIMESTAMP, b'"1600000000000"') == 1600000000000


def test_bytes_from_base64_text_only():
    assert one(BYTES, b'"AQI="') == b"\x01\x02"
    with pytest.raises(SerdeError, match="Base64"):
        one(BYTES, b'"not base64!"')
    with pytest.raises(SerdeError):
        one(BYTES, b"12")


def test_non_standard_numbers_are_refused():
    for data in (b"NaN", b"Infinity", b"-Infinity"):
        with pytest.raises(SerdeError):
            one(DOUBLE, data)


def test_trailing_content_after_the_value_is_ignored():
    assert one(INTEGER, b"12 garbage") == 12
    serde = value_serde(JSON, (Column("A", INTEGER, Namespace.VALUE),))
    assert serde.deserialize(b'{"A": 1} {"A": 2}') == (1,)


def test_case_insensitive_match_prefers_exact_then_last():
    serde = value_serde(JSON, (Column("A", INTEGER, Namespace.VALUE),))
    assert serde.deserialize(b'{"a": 1, "A": 2}') == (2,)
    assert serde.deserialize(b'{"a": 1, "a ": 3}') == (1,)
    nested = one(struct_of([("X", INTEGER)]), b'{"x": 1, "X": 2, "y": 0}')
    assert nested == {"X": 2}
    nested = one(struct_of([("X", INTEGER)]), b'{"x": 1, "x2": 2}')
    assert nested == {"X": 1}


def test_nested_types_coerce_their_elements():
    assert one(array_of(INTEGER), b'["1", 2.9, null]') == [1, 2, None]
    assert one(map_of(STRING, DOUBLE), b'{"k": "2", "n": null}') == {"k": 2.0, "n": None}
    with pytest.raises(SerdeError):
        one(array_of(INTEGER), b'{"a": 1}')


def test_doubles_written_as_double_to_string():
    assert write(DOUBLE, 1e10) == b"1.0E10"
    assert write(DOUBLE, 1.5e-4) == b"1.5E-4"
    assert write(DOUBLE, 12.5) == b"12.5"
    assert write(DOUBLE, 0.0) == b"0.0"
    assert write(array_of(DOUBLE), [1e21, 2.0]) == b"[1.0E21,2.0]"


def test_decimal_timestamp_bytes_written():
    assert write(decimal_type(6, 3), Decimal("1.500")) == b"1.500"
    assert write(TIMESTAMP, 1600000000000) == b"1600000000000"
    assert write(BYTES, b"\x01\x02") == b'"AQI="'


def test_wrapped_single_value_written_as_object():
    serde = value_serde(JSON, (Column("V", INTEGER, Namespace.VALUE),))
    assert serde.serialize((1,)) == b'{"V":1}'
    assert write(INTEGER, 1) == b"1"


def test_decimal_fit_messages():
    with pytest.raises(SerdeError, match=r"precision 4 and scale 2 must round to an absolute "
                                         r"value less than 10\^2. Got 100.5"):
        one(decimal_type(4, 2), b"100.5")
    with pytest.raises(SerdeError, match=r"Cannot fit decimal '99.999' into DECIMAL\(4, 2\) "
                                         r"without rounding. \(Requires 5,3\)"):
        one(decimal_type(4, 2), b'"99.999"')
    assert str(one(decimal_type(4, 2), b"-0.5")) == "-0.50"


def test_large_non_integral_numbers_truncate_from_their_literal():
    assert one(BIGINT, b"123456789012345678.9") == 123456789012345678
    assert one(INTEGER, b"4294967297.5") == 1  # low 32 bits of the exact integer part


def test_quoted_mixed_case_column_matches_only_upper_cased_json_names_equal_to_it():
    serde = value_serde(JSON, (Column("caseField", BIGINT, Namespace.VALUE),
                               Column("ID", BIGINT, Namespace.VALUE)))
    assert serde.deserialize(b'{"CASEFIELD": 1, "id": 2}') == (None, 2)
    assert serde.deserialize(b'{"casefield": 1, "Id": 2}') == (None, 2)
    assert serde.deserialize(b'{"caseField": 1}') == (1, None)
    nested = one(struct_of([("aB", INTEGER), ("C", INTEGER)]), b'{"AB": 1, "c": 2}')
    assert nested == {"aB": None, "C": 2}


def test_error_messages_name_the_type_and_path_as_ksqldb():
    def error(t, data: bytes) -> str:
        with pytest.raises(SerdeError) as e:
            one(t, data)
        return e.value.message

    assert error(BOOLEAN, b"23") == \
        "Can't convert type. sourceType: IntNode, requiredType: BOOLEAN, path: $"
    assert error(array_of(STRING), b"true") == \
        "Can't convert type. sourceType: BooleanNode, requiredType: ARRAY<VARCHAR>, path: $"
    assert error(map_of(STRING, INTEGER), b"true").startswith(
        "Can't convert type. sourceType: BooleanNode, requiredType: MAP<VARCHAR, INT>")
    assert error(decimal_type(20, 19), b"true").startswith(
        "Can't convert type. sourceType: BooleanNode, requiredType: DECIMAL(20, 19)")
    assert error(array_of(INTEGER), b'[0, "not", "numbers"]') == \
        "Can't coerce string to type. targetType: INTEGER, path: $[1]"
    assert error(map_of(STRING, INTEGER), b'{"a": 1, "b": true}').endswith("path: $.b.value")
    assert error(TIME, b"true").startswith(
        "Can't convert type. sourceType: BooleanNode, requiredType: TIME")

    serde = value_serde(JSON, (Column("ORDERTIME", BIGINT, Namespace.VALUE),
                               Column("S", struct_of([("X", DOUBLE)]), Namespace.VALUE)))
    with pytest.raises(SerdeError) as e:
        serde.deserialize(b'{"ordertime": true}')
    assert e.value.message == \
        "Can't convert type. sourceType: BooleanNode, requiredType: BIGINT, path: $.ORDERTIME"
    with pytest.raises(SerdeError, match=r"path: \$\.S\.X$"):
        serde.deserialize(b'{"ordertime": 1, "s": {"x": "no"}}')
    with pytest.raises(SerdeError, match="requiredType: STRUCT<ORDERTIME BIGINT, S STRUCT<X "
                                         "DOUBLE>>, path: \\$$"):
        serde.deserialize(b"true")


def test_objects_as_text_escape_controls_as_jackson():
    assert one(STRING, b'{"a\\u0001": "x\\ny\\u001f"}') == '{"a\\u0001":"x\\ny\\u001F"}'
