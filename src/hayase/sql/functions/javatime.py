"""java.time.format.DateTimeFormatter patterns: format and parse as ksqlDB's date/time UDFs do.

A pattern compiles once to tokens: a field is ``(letter, count)``, text is a ``str``, and ``[``/``]``
open and close optional sections.  Formatting follows the letter's width rules (``d`` unpadded,
``dd`` two digits, ``MMM`` short month name, ``SSS`` a truncated fraction, ...); parsing builds one
regular expression (strict widths, the whole text must match) and resolves the fields the way
ksqlDB does: a timestamp defaults the missing fields to 1970-01-01T00:00 in the given zone; a
date must not carry time fields and a time must not carry date fields.
"""

from __future__ import annotations

import calendar
import datetime
import re
import zoneinfo
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from hayase.sql.errors import KsqlRuntimeError

Token = tuple[str, int] | str

_LETTERS = set("GuyDMLdQqYwWEecFahKkHmsSAnNVzOXxZ")
_DATE_LETTERS = set("GuyDMLdQqYwWEecF")
_TIME_LETTERS = set("ahKkHmsSAnN")
_ZONE_LETTERS = set("VzOXxZ")
_MAX_COUNT = {"G": 5, "u": 19, "y": 19, "D": 3, "M": 5, "L": 5, "d": 2, "Q": 5, "q": 5, "Y": 19,
              "w": 2, "W": 1, "E": 5, "e": 5, "c": 5, "F": 1, "a": 1, "h": 2, "K": 2, "k": 2,
              "H": 2, "m": 2, "s": 2, "S": 9, "A": 19, "n": 19, "N": 19, "V": 2, "z": 4, "O": 4,
              "X": 5, "x": 5, "Z": 5}
_MONTHS = [calendar.month_name[i] for i in range(1, 13)]
_DAYS = [calendar.day_name[i] for i in range(7)]  # Monday first


class PatternError(KsqlRuntimeError):
    """The pattern is not a valid DateTimeFormatter pattern."""


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> tuple[Token, ...]:
    out: list[Token] = []
    i, n, depth = 0, len(pattern), 0
    while i < n:
        ch = pattern[i]
        if ch == "'":
            j = pattern.find("'", i + 1)
            while j > 0 and j + 1 < n and pattern[j + 1] == "'":
                j = pattern.find("'", j + 2)
            if j < 0:
                raise PatternError(f"Pattern ends with an incomplete string literal: {pattern}")
            out.append("'" if j == i + 1 else pattern[i + 1:j].replace("''", "'"))
            i = j + 1
        elif ch.isascii() and ch.isalpha():
            j = i
            while j < n and pattern[j] == ch:
                j += 1
            count = j - i
            if ch not in _LETTERS:
                raise PatternError(f"Unknown pattern letter: {ch}")
            if count > _MAX_COUNT[ch] or (ch == "V" and count != 2):
                raise PatternError(f"Too many pattern letters: {ch}")
            out.append((ch, count))
            i = j
        elif ch in "[]":
            depth += 1 if ch == "[" else -1
            if depth < 0:
                raise PatternError(f"Pattern invalid as it contains ] without previous [: {pattern}")
            out.append((ch, 0))
            i += 1
        elif ch in "{}#":
            raise PatternError(f"Pattern includes reserved character: '{ch}'")
        else:
            out.append(ch)
            i += 1
    return tuple(out)


# --------------------------------------------------------------------------- format


@dataclass
class Moment:
    """What a value offers to a formatter: a date, a time of day, a zone (any may be absent)."""

    date: datetime.date | None
    time: datetime.time | None
    nanos: int = 0  # nano-of-second (time.microsecond is its truncation)
    zone: datetime.tzinfo | None = None
    zone_id: str | None = None
    offset: datetime.timedelta | None = None


def _num(v: int, width: int) -> str:
    s = str(abs(v)).rjust(width, "0")
    return "-" + s if v < 0 else s


def _offset_text(off: datetime.timedelta, colon: bool, with_minutes: str, zero: str | None) -> str:
    total = int(off.total_seconds())
    if total == 0 and zero is not None:
        return zero
    sign = "-" if total < 0 else "+"
    h, rem = divmod(abs(total), 3600)
    m, s = divmod(rem, 60)
    sep = ":" if colon else ""
    text = f"{sign}{h:02d}"
    if with_minutes == "always" or (with_minutes == "if-set" and (m or s)):
        text += f"{sep}{m:02d}"
        if s:
            text += f"{sep}{s:02d}"
    return text


def _need(value: Any, letter: str) -> Any:
    if value is None:
        raise KsqlRuntimeError(f"Unsupported field: {_FIELD_NAMES.get(letter, letter)}")
    return value


_FIELD_NAMES = {"y": "YearOfEra", "u": "Year", "M": "MonthOfYear", "d": "DayOfMonth",
                "D": "DayOfYear", "E": "DayOfWeek", "H": "HourOfDay", "h": "ClockHourOfAmPm",
                "m": "MinuteOfHour", "s": "SecondOfMinute", "S": "NanoOfSecond", "a": "AmPmOfDay",
                "V": "ZoneId", "z": "ZoneId", "X": "OffsetSeconds", "x": "OffsetSeconds",
                "Z": "OffsetSeconds", "O": "OffsetSeconds"}


def _format_date_field(d: datetime.date, letter: str, count: int) -> str:
    if letter in "yuY":
        year = d.isocalendar()[0] if letter == "Y" else d.year
        if letter == "y" and year <= 0:
            year = 1 - year
        return f"{year % 100:02d}" if count == 2 else _num(year, count)
    if letter in "ML":
        if count >= 3:
            name = _MONTHS[d.month - 1]
            return {3: name[:3], 4: name, 5: name[:1]}[count]
        return _num(d.month, count)
    if letter == "d":
        return _num(d.day, count)
    if letter == "D":
        return _num(d.timetuple().tm_yday, count)
    if letter in "Qq":
        q = (d.month - 1) // 3 + 1
        return {1: str(q), 2: f"{q:02d}", 3: f"Q{q}",
                4: ["1st", "2nd", "3rd", "4th"][q - 1] + " quarter", 5: str(q)}[count]
    if letter in "Eec":
        name = _DAYS[d.weekday()]
        if letter != "E" and count <= 2:
            return _num((d.weekday() + 1) % 7 + 1, count)  # Sunday first, as en-US numbers them
        return {1: name[:3], 2: name[:3], 3: name[:3], 4: name, 5: name[:1]}[count]
    if letter == "w":
        return _num(d.isocalendar()[1], count)
    if letter == "W":
        return str((d.day - 1 + datetime.date(d.year, d.month, 1).weekday()) // 7 + 1)
    if letter == "F":
        return str((d.day - 1) % 7 + 1)
    if letter == "G":
        return {4: "Anno Domini", 5: "A"}.get(count, "AD" if d.year > 0 else "BC")
    raise PatternError(f"Unknown pattern letter: {letter}")


def _format_time_field(t: datetime.time, nanos: int, letter: str, count: int) -> str:
    if letter == "H":
        return _num(t.hour, count)
    if letter == "k":
        return _num(t.hour or 24, count)
    if letter == "K":
        return _num(t.hour % 12, count)
    if letter == "h":
        return _num(t.hour % 12 or 12, count)
    if letter == "m":
        return _num(t.minute, count)
    if letter == "s":
        return _num(t.second, count)
    if letter == "S":
        return f"{nanos:09d}"[:count]
    if letter == "a":
        return "AM" if t.hour < 12 else "PM"
    if letter == "n":
        return _num(nanos, count)
    day_nanos = ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000_000 + nanos
    if letter == "A":
        return _num(day_nanos // 1_000_000, count)
    return _num(day_nanos, count)  # N


def _format_zone_field(m: Moment, letter: str, count: int) -> str:
    if letter in "Vz" and m.zone_id is None:
        raise KsqlRuntimeError("Unable to extract ZoneId from temporal")
    off = _need(m.offset, letter)
    if letter == "V":
        return str(m.zone_id)
    if letter == "z":
        if isinstance(m.zone, datetime.timezone) or m.zone is None:
            return str(m.zone_id)
        return m.zone.tzname(datetime.datetime.combine(m.date or datetime.date(1970, 1, 1),
                                                       m.time or datetime.time(),
                                                       tzinfo=m.zone)) or str(m.zone_id)
    if letter == "O":
        if not off:
            return "GMT"
        if count == 4:
            return "GMT" + _offset_text(off, True, "always", None)
        total = int(off.total_seconds())
        h, rem = divmod(abs(total), 3600)
        text = f"GMT{'-' if total < 0 else '+'}{h}"
        return text + (f":{rem // 60:02d}" if rem else "")
    if letter == "Z":
        if count <= 3:
            return _offset_text(off, False, "always", None)
        if count == 4:
            return "GMT" if not off else "GMT" + _offset_text(off, True, "always", None)
        return _offset_text(off, True, "always", "Z")
    zero = "Z" if letter == "X" else None
    if count == 1:
        return _offset_text(off, False, "if-set", zero)
    return _offset_text(off, count in (3, 5), "always", zero)


def format_moment(m: Moment, pattern: str) -> str:
    out: list[str] = []
    for tok in compile_pattern(pattern):
        if isinstance(tok, str):
            out.append(tok)
            continue
        letter, count = tok
        if letter in "[]":
            continue
        if letter in _DATE_LETTERS:
            out.append(_format_date_field(_need(m.date, letter), letter, count))
        elif letter in _TIME_LETTERS:
            out.append(_format_time_field(_need(m.time, letter), m.nanos, letter, count))
        else:
            out.append(_format_zone_field(m, letter, count))
    return "".join(out)


def moment_of(dt: datetime.datetime, zone_id: str | None) -> Moment:
    """A zoned date-time (a TIMESTAMP shown in a zone)."""
    return Moment(dt.date(), dt.timetz().replace(tzinfo=None), dt.microsecond * 1000,
                  dt.tzinfo, zone_id, dt.utcoffset())


# --------------------------------------------------------------------------- parse

_NAME_ALTERNATIVES = {
    ("M", 3): [n[:3] for n in _MONTHS], ("M", 4): _MONTHS,
    ("E", 3): [n[:3] for n in _DAYS], ("E", 4): _DAYS,
}
_ZONE_ID = r"[A-Za-z][A-Za-z0-9_/+\-]*|[+\-]\d{2}(?::?\d{2})?"


def _field_regex(letter: str, count: int, following_numeric: bool) -> str:
    if letter in "yuY":
        if count == 2:
            return r"\d{2}"
        return rf"[+\-]?\d{{{count},19}}" if count > 2 else r"[+\-]?\d+"
    if letter in "ML" and count >= 3:
        names = _NAME_ALTERNATIVES[("M", min(count, 4))]
        return "|".join(names)
    if letter in "Eec" and (letter == "E" or count >= 3):
        names = _NAME_ALTERNATIVES[("E", 4 if count == 4 else 3)]
        return "|".join(names)
    if letter == "a":
        return "AM|PM"
    if letter == "G":
        return "AD|BC|Anno Domini|Before Christ|A|B"
    if letter == "S":
        return rf"\d{{{count}}}"
    if letter == "V" or letter == "z":
        return _ZONE_ID
    if letter == "O":
        return r"GMT(?:[+\-]\d{1,2}(?::\d{2})?)?"
    if letter in "XxZ":
        z = "Z|" if letter == "X" or (letter == "Z" and count == 5) else ""
        if letter == "Z" and count == 4:
            return r"GMT(?:[+\-]\d{2}:\d{2})?"
        if letter == "Z" and count <= 3:
            return r"[+\-]\d{4}"
        if count == 1:
            return z + r"[+\-]\d{2}(?:\d{2})?"
        if count in (3, 5):
            return z + r"[+\-]\d{2}:\d{2}(?::\d{2})?"
        return z + r"[+\-]\d{4}(?:\d{2})?"
    if letter in "Qq" and count >= 3:
        return r"Q[1-4]" if count == 3 else r"[1-4](?:st|nd|rd|th) quarter"
    # numbers: 1 letter is 1+ digits (fewer when followed by a fixed-width number), else fixed.
    if count == 1:
        return r"\d+?" if following_numeric else r"\d+"
    return rf"\d{{{count}}}"


_NUMERIC_LETTERS = set("uyYDdHhKkmsSAnNwWFQqMLeEc")


def _is_number(letter: str, count: int) -> bool:
    if letter in "MLQqEec":
        return count <= 2 and letter != "E"
    return letter in _NUMERIC_LETTERS


def _regex_for(tokens: tuple[Token, ...], case_insensitive: bool,
               free_width: bool = False) -> tuple[re.Pattern[str], list[tuple[str, int]]]:
    """``free_width``: a number not followed by another number takes any count of digits
    (FastDateFormat); otherwise widths are DateTimeFormatter's strict ones."""
    parts: list[str] = []
    fields: list[tuple[str, int]] = []
    for idx, tok in enumerate(tokens):
        if isinstance(tok, str):
            parts.append(re.escape(tok))
            continue
        letter, count = tok
        if letter == "[":
            parts.append("(?:")
            continue
        if letter == "]":
            parts.append(")?")
            continue
        nxt = tokens[idx + 1] if idx + 1 < len(tokens) else None
        following = not isinstance(nxt, str) and nxt is not None and nxt[0] not in "[]"
        if free_width and _is_number(letter, count):
            adjacent = following and nxt is not None and _is_number(*nxt)  # type: ignore[misc]
            parts.append(rf"(\d{{{count}}})" if adjacent or letter == "S" else r"(\d+)")
        else:
            parts.append(f"({_field_regex(letter, count, following)})")
        fields.append((letter, count))
    flags = re.IGNORECASE if case_insensitive else 0
    return re.compile("".join(parts), flags), fields


@lru_cache(maxsize=512)
def _parser(pattern: str, case_insensitive: bool,
            free_width: bool) -> tuple[re.Pattern[str], list[tuple[str, int]]]:
    return _regex_for(compile_pattern(pattern), case_insensitive, free_width)


def zone_of(text: str, short_ids: bool = False) -> tuple[datetime.tzinfo, str]:
    """A Java ZoneId text -> (tzinfo, id); ``short_ids`` also reads three-letter names such as
    PST (a pattern's zone text does; ZoneId.of, for a time zone argument, does not)."""
    up = text.upper()
    if up in ("Z", "UTC", "GMT", "UT"):
        return datetime.UTC, "Z" if up == "Z" else text
    m = re.fullmatch(r"(?:UTC|GMT|UT)?([+\-])(\d{1,2})(?::?(\d{2}))?(?::?(\d{2}))?", text)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        off = datetime.timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0),
                                 seconds=int(m.group(4) or 0))
        if off > datetime.timedelta(hours=18):
            raise KsqlRuntimeError(f"Zone offset not in valid range: {text}")
        return datetime.timezone(sign * off), text
    try:
        return zoneinfo.ZoneInfo(_SHORT_IDS.get(text, text) if short_ids else text), text
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise KsqlRuntimeError(f"Unknown time-zone ID: {text}") from None


# java.time.ZoneId.SHORT_IDS, the three-letter ids ZoneId.of accepts with that map.
_SHORT_IDS = {"EST": "-05:00", "MST": "-07:00", "HST": "-10:00", "ACT": "Australia/Darwin",
              "AET": "Australia/Sydney", "AGT": "America/Argentina/Buenos_Aires",
              "ART": "Africa/Cairo", "AST": "America/Anchorage", "BET": "America/Sao_Paulo",
              "BST": "Asia/Dhaka", "CAT": "Africa/Harare", "CNT": "America/St_Johns",
              "CST": "America/Chicago", "CTT": "Asia/Shanghai", "EAT": "Africa/Addis_Ababa",
              "ECT": "Europe/Paris", "IET": "America/Indiana/Indianapolis",
              "IST": "Asia/Kolkata", "JST": "Asia/Tokyo", "MIT": "Pacific/Apia",
              "NET": "Asia/Yerevan", "NST": "Pacific/Auckland", "PLT": "Asia/Karachi",
              "PNT": "America/Phoenix", "PRT": "America/Puerto_Rico",
              "PST": "America/Los_Angeles", "SST": "Pacific/Guadalcanal",
              "VST": "Asia/Ho_Chi_Minh"}


def _offset_value(text: str) -> datetime.timedelta:
    if text.upper() in ("Z", "GMT"):
        return datetime.timedelta(0)
    m = re.fullmatch(r"(?:GMT)?([+\-])(\d{1,2}):?(\d{2})?:?(\d{2})?", text)
    if not m:
        raise KsqlRuntimeError(f"Invalid offset: {text}")
    sign = -1 if m.group(1) == "-" else 1
    return sign * datetime.timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0),
                                     seconds=int(m.group(4) or 0))


@dataclass
class Parsed:
    fields: dict[str, int]
    zone: datetime.tzinfo | None = None
    two_digit_year: bool = False  # the year came from 'yy' (read as 20yy)

    def has_any(self, letters: str) -> bool:
        return any(k in letters for k in self.fields)


def parse_fields(text: str, pattern: str, case_insensitive: bool = False,
                 prefix: bool = False) -> Parsed:
    """The fields of ``text``; ``prefix`` reads as SimpleDateFormat does: text may follow the
    match and a number not next to another number takes any count of digits."""
    rx, fields = _parser(pattern, case_insensitive, prefix)
    m = rx.match(text) if prefix else rx.fullmatch(text)
    if m is None:
        raise KsqlRuntimeError(f"Text '{text}' could not be parsed with pattern '{pattern}'")
    out = Parsed({})
    for (letter, count), value in zip(fields, m.groups(), strict=True):
        if value is None:
            continue  # an optional section that did not match
        out_letter, v = _field_value(letter, count, value)
        out.two_digit_year = out.two_digit_year or (letter in "yuY" and count == 2
                                                     and len(value) <= 2)
        if out_letter == "zone":
            out.zone = zone_of(value, short_ids=True)[0] if letter in "Vz" else datetime.timezone(
                _offset_value(value))
            continue
        if out_letter in out.fields and out.fields[out_letter] != v:
            raise KsqlRuntimeError(f"Text '{text}' could not be parsed: conflicting {letter}")
        out.fields[out_letter] = v
    return out


def _field_value(letter: str, count: int, value: str) -> tuple[str, int]:
    if letter in "VzOXxZ":
        return "zone", 0
    low = value.lower()
    if letter in "ML" and count >= 3:
        names = _NAME_ALTERNATIVES[("M", min(count, 4))]
        return "M", [n.lower() for n in names].index(low) + 1
    if letter in "Eec" and (letter == "E" or count >= 3):
        names = _NAME_ALTERNATIVES[("E", 4 if count == 4 else 3)]
        return "E", [n.lower() for n in names].index(low) + 1
    if letter == "a":
        return "a", 0 if low == "am" else 1
    if letter == "G":
        return "G", 1 if low.startswith("a") else 0
    if letter == "S":
        return "n", int(value.ljust(9, "0"))
    if letter in "Qq":
        return "Q", int(re.sub(r"\D", "", value)[:1])
    v = int(value)
    if letter in "yuY" and count == 2 and len(value) <= 2:
        return letter.replace("Y", "y"), 2000 + v
    if letter == "L":
        return "M", v
    return letter, v


def _clamped_date(year: int, month: int, day: int) -> datetime.date:
    """ResolverStyle.SMART: a day 29-31 past the month's end is the month's last day."""
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        raise KsqlRuntimeError(f"Invalid date: {year}-{month}-{day}")
    return datetime.date(year, month, min(day, calendar.monthrange(year, month)[1]))


def resolve_date(p: Parsed, defaults: bool) -> datetime.date:
    """The parsed date; ``defaults`` fills a missing year/month/day from 1970-01-01 (timestamps)."""
    f = p.fields
    year = f.get("u", f.get("y"))
    if year is not None and "y" in f and f.get("G") == 0:
        year = 1 - year
    if year is None:
        if not defaults:
            raise KsqlRuntimeError("Unable to obtain LocalDate: no year")
        if f.get("D") == 366:
            raise KsqlRuntimeError("Leap day cannot be parsed without supplying the year field")
        year = 1970
    if "D" in f:
        start = datetime.date(year, 1, 1)
        days_in_year = 366 if calendar.isleap(year) else 365
        if not 1 <= f["D"] <= days_in_year:
            raise KsqlRuntimeError(f"Invalid day of year: {f['D']}")
        d = start + datetime.timedelta(days=f["D"] - 1)
    elif "M" in f and "d" in f or defaults:
        d = _clamped_date(year, f.get("M", 1), f.get("d", 1))
    else:
        raise KsqlRuntimeError("Unable to obtain LocalDate: month or day missing")
    if "E" in f and d.isoweekday() != f["E"]:
        raise KsqlRuntimeError(f"Conflict found: day-of-week {f['E']} differs from {d}")
    return d


def lenient_date(p: Parsed, today: datetime.date | None = None) -> datetime.date:
    """SimpleDateFormat's lenient calendar: missing fields are 1970-01-01's, a month or day past
    its end rolls over into the next (2019-13-01 is 2020-01-01); a two-digit year falls in the
    century from 80 years before ``today`` to 20 years after it."""
    f = p.fields
    year = f.get("u", f.get("y", 1970))
    if p.two_digit_year:
        start = (today or datetime.date.today()).year - 80
        year = start + (year % 100 - start) % 100
    if "D" in f:
        return datetime.date(year, 1, 1) + datetime.timedelta(days=f["D"] - 1)
    month = f.get("M", 1) - 1
    first = datetime.date(year + month // 12, month % 12 + 1, 1)
    return first + datetime.timedelta(days=f.get("d", 1) - 1)


def resolve_time(p: Parsed, require_hour: bool) -> tuple[int, int, int, int]:
    """(hour, minute, second, nano) from the parsed fields; missing ones are zero."""
    f = p.fields
    if "H" in f:
        hour = f["H"]
    elif "k" in f:
        hour = 0 if f["k"] == 24 else f["k"]
    elif "h" in f or "K" in f:
        h = f.get("h", f.get("K", 0))
        if "h" in f and not 1 <= h <= 12:
            raise KsqlRuntimeError(f"Invalid value for ClockHourOfAmPm: {h}")
        hour = h % 12 + 12 * f.get("a", 0)
    elif "A" in f:
        ms = f["A"]
        return ms // 3_600_000, ms // 60_000 % 60, ms // 1000 % 60, ms % 1000 * 1_000_000
    elif require_hour:
        raise KsqlRuntimeError("Unable to obtain LocalTime: no hour")
    else:
        hour = 0
    minute, second, nano = f.get("m", 0), f.get("s", 0), f.get("n", 0)
    if not (0 <= hour <= 23 and 0 <= minute <= 59 and 0 <= second <= 59 and nano < 10 ** 9):
        raise KsqlRuntimeError(f"Invalid time {hour}:{minute}:{second}")
    return hour, minute, second, nano
