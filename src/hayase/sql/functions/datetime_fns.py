"""Date and time functions, and Java DateTimeFormatter patterns translated to Python."""

from __future__ import annotations

import datetime
import re
import zoneinfo
from collections.abc import Callable
from functools import lru_cache

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

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_UTC = datetime.UTC

# Java pattern letter runs -> strftime directives (parse and format).
_DIRECTIVES = {
    "yyyy": "%Y", "uuuu": "%Y", "yy": "%y", "y": "%Y", "u": "%Y",
    "MMMM": "%B", "MMM": "%b", "MM": "%m", "M": "%m",
    "dd": "%d", "d": "%d", "DDD": "%j", "D": "%j",
    "HH": "%H", "H": "%H", "hh": "%I", "h": "%I", "kk": "%H",
    "mm": "%M", "m": "%M", "ss": "%S", "s": "%S",
    "a": "%p", "EEEE": "%A", "EEE": "%a", "E": "%a",
    "Z": "%z", "X": "%z", "XX": "%z", "XXX": "%z", "x": "%z", "xx": "%z", "xxx": "%z",
    "z": "%Z", "zzz": "%Z", "VV": "%Z",
}


@lru_cache(maxsize=256)
def _translate(pattern: str) -> tuple[str, int]:
    """Java pattern -> (strftime pattern with ``%f`` for fractions, fraction digits)."""
    out: list[str] = []
    frac = 0
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "'":
            j = pattern.find("'", i + 1)
            if j == i + 1:
                out.append("'")
                i += 2
                continue
            lit = pattern[i + 1:j if j > 0 else len(pattern)]
            out.append(lit.replace("%", "%%"))
            i = (j + 1) if j > 0 else len(pattern)
            continue
        if ch.isalpha():
            j = i
            while j < len(pattern) and pattern[j] == ch:
                j += 1
            run = pattern[i:j]
            if ch in ("S", "n"):
                frac = len(run)
                out.append("%f")
            elif run in _DIRECTIVES:
                out.append(_DIRECTIVES[run])
            elif ch in _DIRECTIVES:
                out.append(_DIRECTIVES[ch])
            else:
                raise KsqlRuntimeError(f"Unknown pattern letter: {ch}")
            i = j
            continue
        out.append("%%" if ch == "%" else ch)
        i += 1
    return "".join(out), frac


def _zone(tz: str | None) -> datetime.tzinfo:
    if tz is None:
        return _UTC
    try:
        if tz.upper() in ("UTC", "Z", "GMT"):
            return _UTC
        m = re.fullmatch(r"(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?", tz)
        if m:
            sign = -1 if m.group(1) == "-" else 1
            return datetime.timezone(sign * datetime.timedelta(hours=int(m.group(2)),
                                                               minutes=int(m.group(3) or 0)))
        return zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise KsqlRuntimeError(f"Unknown time-zone ID: {tz}") from None


def parse_with_pattern(text: str, pattern: str, tz: str | None = None) -> datetime.datetime:
    fmt, frac = _translate(pattern)
    value = text
    if frac:
        # Python's %f takes 1-6 digits; pad or trim to what the pattern declared.
        m = re.search(r"%f", fmt)
        assert m is not None
    try:
        dt = datetime.datetime.strptime(value, fmt)
    except ValueError as e:
        raise KsqlRuntimeError(f"Failed to parse timestamp '{text}' with formatter "
                               f"'{pattern}': {e}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_zone(tz))
    return dt


def format_with_pattern(dt: datetime.datetime, pattern: str) -> str:
    fmt, frac = _translate(pattern)
    if frac:
        digits = f"{dt.microsecond:06d}"[:frac].ljust(frac, "0")
        fmt = fmt.replace("%f", digits.replace("%", "%%"))
    out = dt.strftime(fmt)
    if "%z" in fmt and dt.utcoffset() == datetime.timedelta(0) and "X" in pattern:
        out = out.replace("+0000", "Z")
    return out


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
    return format_with_pattern(from_ms(ms, _zone(tz)), pattern)


def _stringtotimestamp(text: str, pattern: str, tz: str | None = None) -> int:
    return to_ms(parse_with_pattern(text, pattern, tz))


def _format_timestamp(ms: int, pattern: str, tz: str | None = None) -> str:
    return _timestamptostring(ms, pattern, tz)


def _parse_timestamp(text: str, pattern: str, tz: str | None = None) -> int:
    return _stringtotimestamp(text, pattern, tz)


def _datetostring(days: int, pattern: str) -> str:
    d = datetime.datetime(1970, 1, 1, tzinfo=_UTC) + datetime.timedelta(days=days)
    return format_with_pattern(d, pattern)


def _stringtodate(text: str, pattern: str) -> int:
    return _days(parse_with_pattern(text, pattern).date())


def _format_date(days: int, pattern: str) -> str:
    return _datetostring(days, pattern)


def _parse_date(text: str, pattern: str) -> int:
    return _stringtodate(text, pattern)


def _format_time(ms: int, pattern: str) -> str:
    return format_with_pattern(datetime.datetime(1970, 1, 1, tzinfo=_UTC)
                               + datetime.timedelta(milliseconds=ms), pattern)


def _parse_time(text: str, pattern: str) -> int:
    dt = parse_with_pattern(text, pattern)
    return ((dt.hour * 60 + dt.minute) * 60 + dt.second) * 1000 + dt.microsecond // 1000


def _convert_tz(ms: int, from_tz: str, to_tz: str) -> int:
    local = from_ms(ms).replace(tzinfo=None)
    src = local.replace(tzinfo=_zone(from_tz))
    dst = src.astimezone(_zone(to_tz)).replace(tzinfo=_UTC)
    return to_ms(dst)


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
simple("DATETOSTRING", [(["INT", "STRING"], STRING)], _datetostring, category="DATE / TIME")
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
    ms = _unit_ms(unit) * n
    if ms % 86_400_000:
        raise KsqlRuntimeError(f"Cannot add {unit} to a DATE")
    return days + ms // 86_400_000


def _time_add(unit: str, n: int, ms: int) -> int:
    return (ms + n * _unit_ms(unit)) % 86_400_000


def _neg(fn: Callable[[str, int, int], int]) -> Callable[[str, int, int], int]:
    return lambda unit, n, v: fn(unit, -n, v)


# TIMESTAMPADD(unit, n, ts): the unit is an identifier in SQL (SECONDS, ...); the compiler passes
# it as a string literal when the first argument is a bare column-like name.
simple("TIMESTAMPADD", [(["STRING", "BIGINT", "TIMESTAMP"], TIMESTAMP)], _ts_add,
       category="DATE / TIME")
simple("TIMESTAMPSUB", [(["STRING", "BIGINT", "TIMESTAMP"], TIMESTAMP)], _neg(_ts_add),
       category="DATE / TIME")
simple("DATEADD", [(["STRING", "INT", "DATE"], DATE)], _date_add, category="DATE / TIME")
simple("DATESUB", [(["STRING", "INT", "DATE"], DATE)], _neg(_date_add), category="DATE / TIME")
simple("TIMEADD", [(["STRING", "INT", "TIME"], TIME)], _time_add, category="DATE / TIME")
simple("TIMESUB", [(["STRING", "INT", "TIME"], TIME)], _neg(_time_add), category="DATE / TIME")

TIME_UNIT_FUNCTIONS = {"TIMESTAMPADD", "TIMESTAMPSUB", "DATEADD", "DATESUB", "TIMEADD", "TIMESUB"}

