"""Parse text with a Java ``DateTimeFormatter`` pattern into epoch milliseconds.

Used for a source's TIMESTAMP column with TIMESTAMP_FORMAT when the SQL layer does not provide
its own parser. Supports the pattern letters ksqlDB users write: y u M d D H h k K m s S a E X x Z
z V and quoted literals. Fields that are absent default to 1970-01-01T00:00:00 in ``tz``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

_MONTHS = ["JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY", "AUGUST",
           "SEPTEMBER", "OCTOBER", "NOVEMBER", "DECEMBER"]


def _tokens(pattern: str) -> list[tuple[str, str]]:
    """[(kind, text)]: kind "L" literal, else a pattern letter with its repeat count as text."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "'":
            j = i + 1
            buf: list[str] = []
            while j < n:
                if pattern[j] == "'":
                    if j + 1 < n and pattern[j + 1] == "'":
                        buf.append("'")
                        j += 2
                        continue
                    break
                buf.append(pattern[j])
                j += 1
            out.append(("L", "".join(buf) if j > i + 1 else "'"))
            i = j + 1
        elif c.isalpha():
            j = i
            while j < n and pattern[j] == c:
                j += 1
            out.append((c, pattern[i:j]))
            i = j
        elif c in "[]":
            i += 1  # optional sections: treated as required
        else:
            out.append(("L", c))
            i += 1
    return out


_NUMERIC = {"y": "year", "u": "year", "d": "day", "D": "doy", "H": "hour", "k": "hour24",
            "h": "hour12", "K": "hour12", "m": "minute", "s": "second"}


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Callable[[str, tzinfo], int]:
    regex: list[str] = []
    fields: list[str] = []
    for kind, text in _tokens(pattern):
        width = len(text)
        if kind == "L":
            regex.append(re.escape(text))
            continue
        if kind in _NUMERIC:
            if kind in "yu" and width == 2:
                regex.append(r"(\d{2})")
                fields.append("year2")
            else:
                hi = 9 if kind in "yu" else (width if width > 1 else 3 if kind == "D" else 2)
                regex.append(rf"([+-]?\d{{{width},{max(width, hi)}}}?)")
                fields.append(_NUMERIC[kind])
        elif kind == "M" or kind == "L":
            if width >= 3:
                regex.append(r"([A-Za-z]+)")
                fields.append("monthname")
            else:
                regex.append(r"(\d{1,2})")
                fields.append("month")
        elif kind == "S":
            regex.append(rf"(\d{{{width}}})")
            fields.append("fraction")
        elif kind == "a":
            regex.append(r"([AaPp][Mm])")
            fields.append("ampm")
        elif kind == "E":
            regex.append(r"([A-Za-z]+)")
            fields.append("ignore")
        elif kind in "XxZ":
            regex.append(r"(Z|[+-]\d{2}(?::?\d{2})?(?::?\d{2})?)")
            fields.append("offset")
        elif kind in "zVO":
            regex.append(r"([A-Za-z_/+\-0-9:]+)")
            fields.append("zone")
        else:
            raise ValueError(f"Unsupported pattern letter '{kind}' in '{pattern}'")
    compiled = re.compile("".join(regex) + r"\Z")

    def parse(text: str, tz: tzinfo) -> int:
        m = compiled.match(text)
        if m is None:
            raise ValueError(f"Text '{text}' could not be parsed with pattern '{pattern}'")
        v: dict[str, int] = {"year": 1970, "month": 1, "day": 1, "hour": 0, "minute": 0,
                             "second": 0, "micro": 0}
        zone: tzinfo = tz
        pm: bool | None = None
        doy: int | None = None
        for name, raw in zip(fields, m.groups(), strict=True):
            if name == "year2":
                v["year"] = 2000 + int(raw)
            elif name == "monthname":
                up = raw.upper()
                matches = [i for i, mn in enumerate(_MONTHS) if mn.startswith(up[:3])]
                if not matches:
                    raise ValueError(f"Unknown month '{raw}'")
                v["month"] = matches[0] + 1
            elif name == "fraction":
                v["micro"] = int((raw + "000000")[:6])
            elif name == "ampm":
                pm = raw.upper() == "PM"
            elif name == "offset":
                zone = _offset(raw)
            elif name == "zone":
                zone = ZoneInfo(raw) if raw not in ("Z", "UTC", "GMT") else UTC
            elif name == "doy":
                doy = int(raw)
            elif name == "hour12":
                v["hour"] = int(raw) % 12
            elif name == "hour24":
                v["hour"] = int(raw) % 24
            elif name != "ignore":
                v[name] = int(raw)
        if pm:
            v["hour"] = v["hour"] % 12 + 12
        base = datetime(v["year"], v["month"], v["day"], v["hour"], v["minute"], v["second"],
                        v["micro"])
        if doy is not None:
            base = base.replace(month=1, day=1) + timedelta(days=doy - 1)
        aware = base.replace(tzinfo=zone)
        return calendar.timegm(aware.utctimetuple()) * 1000 + aware.microsecond // 1000

    return parse


def _offset(raw: str) -> tzinfo:
    if raw == "Z":
        return UTC
    sign = -1 if raw[0] == "-" else 1
    digits = raw[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    seconds = int(digits[4:6] or 0)
    return timezone(sign * timedelta(hours=hours, minutes=minutes, seconds=seconds))


def parse_timestamp_ms(text: str, pattern: str, tz: str = "UTC") -> int:
    zone: tzinfo = UTC if tz in ("UTC", "Z", "GMT") else ZoneInfo(tz)
    return compile_pattern(pattern)(text.strip(), zone)
