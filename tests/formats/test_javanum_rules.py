"""Java's number parsing as ksqlDB's serdes see it: Integer.parseInt / new BigDecimal read
Unicode decimal digits and no spaces; Double.parseDouble trims control characters and spaces
and reads ASCII only."""

from decimal import Decimal

import pytest

from hayase.formats.javanum import parse_big_decimal, parse_double, parse_int, parse_long


def test_integers_take_unicode_decimal_digits():
    assert parse_long("\u0661\u0662") == 12  # Arabic-Indic digits
    assert parse_int("-\uff17") == -7  # fullwidth 7
    assert parse_long("+42") == 42


@pytest.mark.parametrize("text", [" 12", "12 ", "1_000", "", "+", "\U0001d7d9", "0x10", "1.0"])
def test_integers_refuse_what_java_refuses(text):
    with pytest.raises(ValueError):
        parse_long(text)


def test_int_range_is_checked():
    assert parse_int("2147483647") == 2**31 - 1
    with pytest.raises(ValueError):
        parse_int("2147483648")
    assert parse_int("2147483648", 64) == 2**31


def test_double_trims_like_string_trim():
    assert parse_double(" \t1.5\n") == 1.5
    assert parse_double("1e3d") == 1000.0
    assert parse_double("0x1.8p1") == 3.0
    assert parse_double("-Infinity") == float("-inf")


@pytest.mark.parametrize("text", ["\u0661.5", "\u00a01.5", "1.5\u2003", "1_0.5", "inf",
                                  "nan", "infinity", ""])
def test_double_refuses_unicode_digits_and_spaces(text):
    with pytest.raises(ValueError):
        parse_double(text)


def test_big_decimal_is_strict():
    assert parse_big_decimal("1.50") == Decimal("1.50")
    assert str(parse_big_decimal("1.50")) == "1.50"
    assert parse_big_decimal("\u0661.5") == Decimal("1.5")
    for bad in (" 1.5", "NaN", "Infinity", "1_0", "1.5f", ""):
        with pytest.raises(ValueError):
            parse_big_decimal(bad)
