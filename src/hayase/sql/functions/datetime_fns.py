"""Date and time functions, and Java DateTimeFormatter patterns translated to Python."""

from __future__ import annotations

import datetime
from collections.abc import Callable

from hayase.sql.errors import KsqlRuntimeError
from hayase.sql.functions import (
    BIGINT,
    DATE,
    INTEGER,
    STRING,
    TIME,
    TIMESTAMP,
    simple,
)
from hayase.sql.functions.javatime import (
    Moment,
    format_moment,
    lenient_date,
    moment_of,
    parse_fields,
    resolve_date,
    resolve_time,
    zone_of,
)

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_UTC = datetime.UTC

def _zone(tz: str | None) -> datetime.tzinfo:
    return _UTC if tz is None else zone_of(tz)[0]


def _zone_id(tz: str | None) -> str:
    return "UTC" if tz is None else tz


def parse_with_pattern(text: str, pattern: str, tz: str | None = None) -> datetime.datetime:
    """A timestamp from text, as ksqlDB's StringToTimestampParser resolves it: fields the pattern
    lacks default to 1970-01-01T00:00 in the zone (the text's own zone first, then ``tz``)."""
    try:
        p = parse_fields(text, pattern)
        d = resolve_date(p, defaults=True)
        hour, minute, second, nano = resolve_time(p, require_hour=False)
        zone = p.zone or _zone(tz)
        return datetime.datetime(d.year, d.month, d.day, hour, minute, second, nano // 1000,
                                 tzinfo=zone)
    except (KsqlRuntimeError, ValueError, OverflowError) as e:
        raise KsqlRuntimeError(f"Failed to parse timestamp '{text}' with formatter "
                               f"'{pattern}': {e}") from None


def format_with_pattern(dt: datetime.datetime, pattern: str, zone_id: str = "UTC") -> str:
    return format_moment(moment_of(dt, zone_id), pattern)


def make_timestamp_parser(pattern: str) -> Callable[[str], int]:
    """TIMESTAMP_FORMAT of a source: text -> epoch ms; empty pattern means ISO-8601."""
    from hayase.sql import runtime

    if not pattern:
        return runtime.parse_timestamp

    def parse(text: str) -> int:
        return to_ms(parse_with_pattern(text, pattern))
    return parse


def to_ms(dt: datetime.datetime) -> int:
    return (dt - _EPOCH) // datetime.timedelta(milliseconds=1)


def from_ms(ms: int, tz: datetime.tzinfo = _UTC) -> datetime.datetime:
    return (_EPOCH + datetime.timedelta(milliseconds=ms)).astimezone(tz)


def _days(d: datetime.date) -> int:
    return (d - datetime.date(1970, 1, 1)).days


# --------------------------------------------------------------------------- functions


def _timestamptostring(ms: int, pattern: str, tz: str | None = None) -> str:
    return format_with_pattern(from_ms(ms, _zone(tz)), pattern, _zone_id(tz))


def _stringtotimestamp(text: str, pattern: str, tz: str | None = None) -> int:
    return to_ms(parse_with_pattern(text, pattern, tz))


def _format_timestamp(ms: int, pattern: str, tz: str | None = None) -> str:
    return _timestamptostring(ms, pattern, tz)


def _parse_timestamp(text: str, pattern: str, tz: str | None = None) -> int:
    return _stringtotimestamp(text, pattern, tz)


def _format_date(days: int, pattern: str) -> str:
    """A LocalDate formatted: time and zone fields are unsupported (the call fails)."""
    d = datetime.date(1970, 1, 1) + datetime.timedelta(days=days)
    return format_moment(Moment(d, None), pattern)


def _stringtodate(text: str, pattern: str) -> int:
    """STRINGTODATE: LocalDate.parse with a case-insensitive formatter, so the text needs a full
    date (time fields may come too)."""
    return _days(resolve_date(parse_fields(text, pattern, case_insensitive=True), defaults=False))


def _parse_date(text: str, pattern: str) -> int:
    """PARSE_DATE reads as commons-lang's FastDateFormat in GMT: case-insensitive names, missing
    fields from 1970-01-01, lenient roll-over, text after the match ignored; a time field other
    than midnight fails the call."""
    p = parse_fields(text, pattern, case_insensitive=True, prefix=True)
    if any(p.fields.get(k) for k in "HhKkmsnA") or (p.fields.get("a") and "h" not in p.fields):
        raise KsqlRuntimeError("Date format contains time field.")
    if p.fields.get("h", 12) != 12 or p.fields.get("a"):
        raise KsqlRuntimeError("Date format contains time field.")
    return _days(lenient_date(p))


def _format_time(ms: int, pattern: str) -> str:
    """A LocalTime formatted: date and zone fields are unsupported (the call fails)."""
    t = (datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=ms)).time()
    return format_moment(Moment(None, t, (ms % 1000) * 1_000_000), pattern)


def _parse_time(text: str, pattern: str) -> int:
    """PARSE_TIME: an hour is needed and no date field may be present."""
    p = parse_fields(text, pattern, case_insensitive=True)
    if p.has_any("GuyDMdQEFwWY"):
        raise KsqlRuntimeError("Time format contains date field.")
    hour, minute, second, nano = resolve_time(p, require_hour=True)
    return ((hour * 60 + minute) * 60 + second) * 1000 + nano // 1_000_000


def _offset_ms(zone: datetime.tzinfo, ms: int) -> int:
    off = from_ms(ms, zone).utcoffset()
    return 0 if off is None else off // datetime.timedelta(milliseconds=1)


def _convert_tz(ms: int, from_tz: str, to_tz: str) -> int:
    """ksqlDB adds the difference of the two zones' offsets, both taken at the instant ``ms``."""
    return ms + _offset_ms(_zone(to_tz), ms) - _offset_ms(_zone(from_tz), ms)


_UNIT_MS = {"MILLISECONDS": 1, "SECONDS": 1000, "MINUTES": 60_000, "HOURS": 3_600_000,
            "DAYS": 86_400_000}


def _unit_ms(unit: str) -> int:
    u = unit.upper()
    if not u.endswith("S"):
        u += "S"
    if u not in _UNIT_MS:
        raise KsqlRuntimeError(f"Unknown time unit: {unit}")
    return _UNIT_MS[u]


def _unix_timestamp(ms: int | None = None) -> int:
    if ms is not None:
        return ms
    return to_ms(datetime.datetime.now(_UTC))


def _unix_date(days: int | None = None) -> int:
    if days is not None:
        return days
    return _days(datetime.datetime.now(_UTC).date())


def _from_unixtime(ms: int) -> int:
    return ms


def _from_days(days: int) -> int:
    return days


simple("TIMESTAMPTOSTRING", [(["BIGINT", "STRING"], STRING), (["BIGINT", "STRING", "STRING"], STRING)],
       _timestamptostring, category="DATE / TIME")
simple("STRINGTOTIMESTAMP", [(["STRING", "STRING"], BIGINT), (["STRING", "STRING", "STRING"], BIGINT)],
       _stringtotimestamp, category="DATE / TIME")
simple("FORMAT_TIMESTAMP", [(["TIMESTAMP", "STRING"], STRING),
                            (["TIMESTAMP", "STRING", "STRING"], STRING)],
       _format_timestamp, category="DATE / TIME")
simple("PARSE_TIMESTAMP", [(["STRING", "STRING"], TIMESTAMP),
                           (["STRING", "STRING", "STRING"], TIMESTAMP)],
       _parse_timestamp, category="DATE / TIME")
simple("DATETOSTRING", [(["INT", "STRING"], STRING)], _format_date, category="DATE / TIME")
simple("STRINGTODATE", [(["STRING", "STRING"], INTEGER)], _stringtodate, category="DATE / TIME")
simple("FORMAT_DATE", [(["DATE", "STRING"], STRING)], _format_date, category="DATE / TIME")
simple("PARSE_DATE", [(["STRING", "STRING"], DATE)], _parse_date, category="DATE / TIME")
simple("FORMAT_TIME", [(["TIME", "STRING"], STRING)], _format_time, category="DATE / TIME")
simple("PARSE_TIME", [(["STRING", "STRING"], TIME)], _parse_time, category="DATE / TIME")
simple("CONVERT_TZ", [(["TIMESTAMP", "STRING", "STRING"], TIMESTAMP)], _convert_tz,
       category="DATE / TIME")
simple("UNIX_TIMESTAMP", [([], BIGINT), (["TIMESTAMP"], BIGINT)], _unix_timestamp,
       category="DATE / TIME", deterministic=False)
simple("UNIX_DATE", [([], INTEGER), (["DATE"], INTEGER)], _unix_date, category="DATE / TIME",
       deterministic=False)
simple("FROM_UNIXTIME", [(["BIGINT"], TIMESTAMP)], _from_unixtime, category="DATE / TIME")
simple("FROM_DAYS", [(["INT"], DATE)], _from_days, category="DATE / TIME")


def _ts_add(unit: str, n: int, ms: int) -> int:
    return ms + n * _unit_ms(unit)


def _date_add(unit: str, n: int, days: int) -> int:
    """Whole days of (date + duration) in milliseconds, truncated toward zero as
    TimeUnit.MILLISECONDS.toDays does (DATEADD(HOURS, 25, d) is d + 1)."""
    total = days * 86_400_000 + _unit_ms(unit) * n
    whole = abs(total) // 86_400_000
    return whole if total >= 0 else -whole


def _time_add(unit: str, n: int, ms: int) -> int:
    return (ms + n * _unit_ms(unit)) % 86_400_000


def _neg(fn: Callable[[str, int, int], int]) -> Callable[[str, int, int], int]:
    return lambda unit, n, v: fn(unit, -n, v)


# TIMESTAMPADD(unit, n, ts): the unit is an identifier in SQL (SECONDS, ...); the compiler passes
# it as a string literal when the first argument is a bare column-like name.
simple("TIMESTAMPADD", [(["STRING", "INT", "TIMESTAMP"], TIMESTAMP)], _ts_add,
       category="DATE / TIME")
simple("TIMESTAMPSUB", [(["STRING", "INT", "TIMESTAMP"], TIMESTAMP)], _neg(_ts_add),
       category="DATE / TIME")
simple("DATEADD", [(["STRING", "INT", "DATE"], DATE)], _date_add, category="DATE / TIME")
simple("DATESUB", [(["STRING", "INT", "DATE"], DATE)], _neg(_date_add), category="DATE / TIME")
simple("TIMEADD", [(["STRING", "INT", "TIME"], TIME)], _time_add, category="DATE / TIME")
simple("TIMESUB", [(["STRING", "INT", "TIME"], TIME)], _neg(_time_add), category="DATE / TIME")

TIME_UNIT_FUNCTIONS = {"TIMESTAMPADD", "TIMESTAMPSUB", "DATEADD", "DATESUB", "TIMEADD", "TIMESUB"}

