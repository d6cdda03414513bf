"""Date/time functions with Java DateTimeFormatter patterns, as ksqlDB's UDFs read and write them."""

from __future__ import annotations

import pytest
from tests.sql.conftest import evaluate

from hayase.sql.errors import KsqlRuntimeError
from hayase.sql.functions.javatime import compile_pattern

TS = 1_600_000_000_123  # 2020-09-13T12:26:40.123Z, a Sunday


@pytest.mark.parametrize(("pattern", "tz", "expected"), [
    ("d/M/yyyy H:m:s", None, "13/9/2020 12:26:40"),  # one letter: no padding
    ("dd/MM/yy HH:mm:ss.SSS", None, "13/09/20 12:26:40.123"),
    ("EEE, d MMM yyyy", None, "Sun, 13 Sep 2020"),
    ("EEEE MMMM", None, "Sunday September"),
    ("h:mm a", "America/Los_Angeles", "5:26 AM"),
    ("yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "America/Los_Angeles", "2020-09-13T05:26:40.123-07:00"),
    ("HH:mm X", "UTC", "12:26 Z"),
    ("HH:mm x", "UTC", "12:26 +00"),
    ("HH:mm Z", "Asia/Kolkata", "17:56 +0530"),
    ("HH:mm z", "Europe/Paris", "14:26 CEST"),
    ("HH:mm z", "Europe/Paris", "14:26 CEST"),
    ("D 'day' SSSSSS", None, "257 day 123000"),
    ("yyyy-MM-dd''HH", None, "2020-09-13'12"),
])
def test_timestamptostring_patterns(pattern: str, tz: str | None, expected: str) -> None:
    args = f"X, '{pattern.replace(chr(39), chr(39) * 2)}'" + (f", '{tz}'" if tz else "")
    assert evaluate(f"TIMESTAMPTOSTRING({args})", "X BIGINT", (TS,)) == expected
    assert evaluate(f"FORMAT_TIMESTAMP({args})", "X TIMESTAMP", (TS,)) == expected


@pytest.mark.parametrize(("text", "pattern", "tz", "expected"), [
    ("2020-09-13T05:26:40.123-07:00", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX", None, TS),
    ("01:00", "HH:mm", None, 3_600_000),  # missing date fields are 1970-01-01's
    ("20200101120000", "yyyyMMddHHmmss", None, 1_577_880_000_000),  # adjacent numbers
    ("2021-02-30", "yyyy-MM-dd", None, 1_614_470_400_000),  # SMART: clamped to Feb 28
    ("2021-2-3", "yyyy-MM-dd", None, None),  # MM needs two digits
    ("2020-03-08 02:30:00", "yyyy-MM-dd HH:mm:ss", "America/Los_Angeles", 1_583_663_400_000),
    ("12/25/2020 1:05 PM", "MM/dd/yyyy h:mm a", None, 1_608_901_500_000),
    ("13 Sep 2020 PST", "dd MMM yyyy z", None, 1_599_980_400_000),
    ("13 sep 2020", "dd MMM yyyy", None, None),  # case-sensitive text
    ("2020-09-13 junk", "yyyy-MM-dd", None, None),  # the whole text must match
])
def test_stringtotimestamp_patterns(text: str, pattern: str, tz: str | None,
                                    expected: int | None) -> None:
    args = f"S, '{pattern.replace(chr(39), chr(39) * 2)}'" + (f", '{tz}'" if tz else "")
    assert evaluate(f"STRINGTOTIMESTAMP({args})", "S STRING", (text,)) == expected
    assert evaluate(f"PARSE_TIMESTAMP({args})", "S STRING", (text,)) == expected


@pytest.mark.parametrize(("expr", "cols", "row", "expected"), [
    ("PARSE_TIME(S, 'HH:mm')", "S STRING", ("10:05",), 36_300_000),
    ("PARSE_TIME(S, 'hh:mm a')", "S STRING", ("10:05 pm",), 79_500_000),  # case-insensitive
    ("PARSE_TIME(S, 'yyyy HH:mm')", "S STRING", ("2020 10:05",), None),  # a date field
    ("PARSE_TIME(S, 'mm:ss')", "S STRING", ("10:05",), None),  # no hour
    ("FORMAT_TIME(T, 'h:mm:ss.SS a')", "T TIME", (13 * 3_600_000 + 5_678,), "1:00:05.67 PM"),
    ("FORMAT_TIME(T, 'yyyy HH')", "T TIME", (0,), None),  # a LocalTime has no year
    ("FORMAT_DATE(D, 'EEEE d MMMM yy')", "D DATE", (18_993,), "Saturday 1 January 22"),
    ("FORMAT_DATE(D, 'yyyy HH')", "D DATE", (0,), None),  # a LocalDate has no hour
    ("DATETOSTRING(D, 'dd/MM/yyyy')", "D INT", (18_993,), "01/01/2022"),
    # PARSE_DATE reads like FastDateFormat: lenient, defaults, any case, a trailing rest.
    ("PARSE_DATE(S, 'yyyy-MM-dd')", "S STRING", ("2020-02-30",), 18_322),
    ("PARSE_DATE(S, 'MMM yyyy')", "S STRING", ("feb 2022",), 19_024),
    ("PARSE_DATE(S, 'yyyy-MM-dd')", "S STRING", ("2022-01-01T10",), 18_993),
    ("PARSE_DATE(S, 'yyyy-MM-dd HH')", "S STRING", ("2022-01-01 10",), None),
    ("PARSE_DATE(S, 'yyyy-MM-dd HH')", "S STRING", ("2022-01-01 00",), 18_993),
    ("STRINGTODATE(S, 'yyyy-MM')", "S STRING", ("2022-01",), None),  # LocalDate needs a day
    ("STRINGTODATE(S, 'yyyy-DDD')", "S STRING", ("2020-366",), 18_627),
    ("STRINGTODATE(S, 'dd-MMM-yyyy')", "S STRING", ("01-JAN-2022",), 18_993),
])
def test_date_and_time_patterns(expr: str, cols: str, row: tuple[object, ...],
                                expected: object) -> None:
    assert evaluate(expr, cols, row) == expected


def test_invalid_patterns_fail_the_call() -> None:
    for bad in ("yyyy-MM-dd bb", "{yyyy}", "ddd", "'open"):
        with pytest.raises(KsqlRuntimeError):
            compile_pattern(bad)
    assert evaluate("TIMESTAMPTOSTRING(X, 'yyyy bb')", "X BIGINT", (0,)) is None
    assert evaluate("TIMESTAMPTOSTRING(X, 'yyyy', 'Mars/Base')", "X BIGINT", (0,)) is None


@pytest.mark.parametrize(("expr", "cols", "row", "expected"), [
    # DATEADD/DATESUB add milliseconds, then truncate to whole days toward zero.
    ("DATEADD(HOURS, 25, D)", "D DATE", (10,), 11),
    ("DATESUB(HOURS, 1, D)", "D DATE", (0,), 0),
    ("DATESUB(HOURS, 25, D)", "D DATE", (0,), -1),
    ("DATEADD(DAYS, NULL, D)", "D DATE", (0,), None),
    ("TIMEADD(HOURS, 25, T)", "T TIME", (0,), 3_600_000),  # wraps around midnight
    ("TIMESUB(MINUTES, 1, T)", "T TIME", (0,), 86_340_000),
    # CONVERT_TZ adds the zones' offset difference, both offsets taken at the instant itself.
    ("CONVERT_TZ(T, 'UTC', 'America/Los_Angeles')", "T TIMESTAMP", (TS,), TS - 7 * 3_600_000),
    ("CONVERT_TZ(T, 'America/Los_Angeles', 'UTC')", "T TIMESTAMP", (TS,), TS + 7 * 3_600_000),
    ("CONVERT_TZ(T, 'Asia/Kolkata', '+01:00')", "T TIMESTAMP", (TS,), TS - 16_200_000),
    ("CONVERT_TZ(T, 'UTC', 'PST')", "T TIMESTAMP", (TS,), None),  # ZoneId.of has no PST
])
def test_date_arithmetic_and_zones(expr: str, cols: str, row: tuple[object, ...],
                                   expected: object) -> None:
    assert evaluate(expr, cols, row) == expected


def test_timestampadd_takes_an_int_interval() -> None:
    from hayase.sql.errors import StatementError

    assert evaluate("TIMESTAMPADD(SECONDS, N, T)", "N INT, T TIMESTAMP", (2, 1_000)) == 3_000
    with pytest.raises(StatementError, match="does not accept parameters"):
        evaluate("TIMESTAMPADD(SECONDS, N, T)", "N BIGINT, T TIMESTAMP", (2, 1_000))


def test_parse_date_two_digit_year_window() -> None:
    import datetime

    from hayase.sql.functions.javatime import lenient_date, parse_fields

    today = datetime.date(2026, 6, 1)  # the window is 1946..2045
    assert lenient_date(parse_fields("01/02/45", "dd/MM/yy"), today) == datetime.date(2045, 2, 1)
    assert lenient_date(parse_fields("01/02/46", "dd/MM/yy"), today) == datetime.date(1946, 2, 1)
    assert lenient_date(parse_fields("01/02/0046", "dd/MM/yyyy"), today).year == 46


@pytest.mark.parametrize(("text", "pattern", "expected"), [
    ("2020-1-5", "yyyy-MM-dd", 18_266),  # any digit count where numbers are not adjacent
    ("5/1/2020", "dd/MM/yyyy", 18_266),
    ("20200105", "yyyyMMdd", 18_266),  # adjacent numbers keep their widths
    ("05-jan-2020", "dd-MMM-yyyy", 18_266),
    ("05/01/2020", "dd/MM/yy", 18_266),  # more than two digits: the year as written
])
def test_parse_date_free_widths(text: str, pattern: str, expected: int) -> None:
    assert evaluate(f"PARSE_DATE(S, '{pattern}')", "S STRING", (text,)) == expected
