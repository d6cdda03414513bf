"""String and bytes functions."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
import urllib.parse
import uuid as uuid_mod
from typing import Any

from hayase.sql.errors import KsqlRuntimeError
from hayase.sql.functions import (
    BYTES,
    INTEGER,
    STRING,
    Bound,
    FunctionArgError,
    Udf,
    format_types,
    register,
    simple,
)
from hayase.sql.types import BIGINT, DOUBLE, SqlType, array_of, map_of

S = "STRING"


def _substring(s: str | bytes, pos: int, length: int | None = None) -> str | bytes:
    """ksqlDB SUBSTRING: 1-based start; negative start counts from the end."""
    n = len(s)
    if pos > 0:
        start = pos - 1
    elif pos < 0:
        start = max(n + pos, 0)
    else:
        start = 0
    if start > n:
        return s[0:0]
    if length is None:
        return s[start:]
    if length < 0:
        return s[0:0]
    return s[start:start + length]


simple("SUBSTRING", [([S, "INT"], STRING), ([S, "INT", "INT"], STRING),
                     (["BYTES", "INT"], BYTES), (["BYTES", "INT", "INT"], BYTES)], _substring,
       category="STRING")
simple("LEN", [([S], INTEGER), (["BYTES"], INTEGER)], len, category="STRING")
simple("LCASE", [([S], STRING)], str.lower, category="STRING")
simple("UCASE", [([S], STRING)], str.upper, category="STRING")


_JAVA_TRIM = "".join(chr(i) for i in range(33))  # String.trim(): every char <= U+0020


def _trim(s: str) -> str:
    return s.strip(_JAVA_TRIM)


simple("TRIM", [([S], STRING)], _trim, category="STRING")


def _initcap(s: str) -> str:
    # Each run of non-space characters (with its trailing spaces) gets a capital first letter;
    # leading whitespace is dropped, as ksqlDB does.
    return "".join(w[:1].upper() + w[1:] for w in re.findall(r"\S+\s*", s.lower()))


simple("INITCAP", [([S], STRING)], _initcap, category="STRING")


def _concat(*parts: Any) -> Any:
    vals = [p for p in parts if p is not None]
    if vals and isinstance(vals[0], bytes):
        return b"".join(vals)
    return "".join(vals)


def _concat_bind(types: list[SqlType], literals: list[Any]) -> Bound:
    bases = {t.base for t in types if t.base != "NULL"}
    if not types or len(bases) > 1 or (bases and bases - {"STRING", "BYTES"}):
        raise FunctionArgError(f"Function 'concat' does not accept parameters "
                               f"({format_types(types)}).")
    rt = BYTES if bases == {"BYTES"} else STRING
    return Bound(rt, _concat, nulls=False)


register(Udf("CONCAT", _concat_bind, category="STRING"))


def _concat_ws(sep: Any, *parts: Any) -> Any:
    if sep is None:
        return None
    return sep.join(p for p in parts if p is not None)


def _concat_ws_bind(types: list[SqlType], literals: list[Any]) -> Bound:
    bases = {t.base for t in types if t.base != "NULL"}
    if len(types) < 2 or len(bases) > 1 or (bases and bases - {"STRING", "BYTES"}):
        raise FunctionArgError(f"Function 'concat_ws' does not accept parameters "
                               f"({format_types(types)}).")
    return Bound(BYTES if bases == {"BYTES"} else STRING, _concat_ws, nulls=False)


register(Udf("CONCAT_WS", _concat_ws_bind, category="STRING"))


def _replace(s: str, old: str, new: str) -> str:
    return s.replace(old, new)


simple("REPLACE", [([S, S, S], STRING)], _replace, category="STRING")


def _java_regex(p: str) -> re.Pattern[str]:
    try:
        return re.compile(p)
    except re.error as e:
        raise KsqlRuntimeError(f"Invalid regular expression pattern: {p}. {e}") from None


def _java_replacement(r: str) -> str:
    # Java uses $1 for groups; Python uses \1.
    return re.sub(r"\$(\d+)", r"\\\1", r.replace("\\", "\\\\"))


def _regexp_replace(s: str, p: str, r: str) -> str:
    return _java_regex(p).sub(_java_replacement(r), s)


def _regexp_extract(p: str, s: str, group: int = 0) -> str | None:
    rx = _java_regex(p)
    if group > rx.groups:
        return None
    m = rx.search(s)
    return None if m is None else m.group(group)


def _regexp_extract_all(p: str, s: str, group: int = 0) -> list[str | None] | None:
    rx = _java_regex(p)
    if group > rx.groups:
        return None
    return [m.group(group) for m in rx.finditer(s)]


def _regexp_split(s: str, p: str) -> list[str]:
    if p == "":
        return list(s) if s else [""]
    return _java_regex(p).split(s)


simple("REGEXP_REPLACE", [([S, S, S], STRING)], _regexp_replace, category="STRING")
simple("REGEXP_EXTRACT", [([S, S], STRING), ([S, S, "INT"], STRING)], _regexp_extract,
       category="STRING")
simple("REGEXP_EXTRACT_ALL", [([S, S], array_of(STRING)), ([S, S, "INT"], array_of(STRING))],
       _regexp_extract_all, category="STRING")
simple("REGEXP_SPLIT_TO_ARRAY", [([S, S], array_of(STRING))], _regexp_split, category="STRING")


def _split(s: Any, delim: Any) -> list[Any]:
    if len(delim) == 0:
        # Java's split on an empty pattern: one element per character ("" -> [""]).
        return [s[i:i + 1] for i in range(len(s))] if len(s) else [s]
    return s.split(delim)


simple("SPLIT", [([S, S], array_of(STRING)), (["BYTES", "BYTES"], array_of(BYTES))], _split,
       category="STRING")


def _split_to_map(s: str, entry: str, kv: str) -> dict[str, str] | None:
    if not entry or not kv or entry == kv:
        return None
    out: dict[str, str] = {}
    for part in s.split(entry):
        if part and kv in part:
            pieces = part.split(kv)
            out[pieces[0]] = pieces[1]  # later keys win; text after a second kv is dropped
    return out


simple("SPLIT_TO_MAP", [([S, S, S], map_of(STRING, STRING))], _split_to_map, category="STRING")


def _ordinal_index(s: str, sub: str, ordinal: int) -> int:
    """commons-lang StringUtils.ordinalIndexOf (overlapping matches)."""
    if ordinal <= 0:
        return -1
    if sub == "":
        return 0
    index = -1
    for _ in range(ordinal):
        index = s.find(sub, index + 1)
        if index < 0:
            return -1
    return index


def _tail(s: str, start: int) -> str:
    """commons-lang StringUtils.substring(s, start)."""
    if start < 0:
        start = max(len(s) + start, 0)
    return s[start:] if start <= len(s) else ""


def _instr(s: str | None, sub: str | None, pos: int = 1, occurrence: int = 1) -> int:
    """ksqlDB's INSTR: 1-based position of the n-th occurrence from ``pos``; 0 when absent."""
    if s is None or sub is None:
        return 0
    if abs(pos) > len(s):
        return 0
    if pos < 0:
        rs, rsub, p = s[::-1], sub[::-1], -pos
        i = _ordinal_index(_tail(rs, p - 1), rsub, occurrence)
        return 0 if i < 0 else len(rs) - p - i
    i = _ordinal_index(_tail(s, pos - 1), sub, occurrence)
    return 0 if i < 0 else i + pos


simple("INSTR", [([S, S], INTEGER), ([S, S, "INT"], INTEGER), ([S, S, "INT", "INT"], INTEGER)],
       _instr, category="STRING", nulls=False)


def _pad(left: bool) -> Any:
    def pad(s: Any, length: int, fill: Any) -> Any:
        if length < 0 or len(fill) == 0:
            return None
        if length <= len(s):
            return s[:length]
        need = length - len(s)
        padding = (fill * (need // len(fill) + 1))[:need]
        return padding + s if left else s + padding
    return pad


simple("LPAD", [([S, "INT", S], STRING), (["BYTES", "INT", "BYTES"], BYTES)], _pad(True),
       category="STRING")
simple("RPAD", [([S, "INT", S], STRING), (["BYTES", "INT", "BYTES"], BYTES)], _pad(False),
       category="STRING")


def _chr(v: Any) -> str | None:
    if isinstance(v, str):
        # One code point written as Java \uXXXX escapes (a surrogate pair takes two).
        units = re.fullmatch(r"(?:\\u[0-9a-fA-F]{4})+", v)
        if not units:
            return None
        raw = b"".join(int(h, 16).to_bytes(2, "big") for h in re.findall(r"[0-9a-fA-F]{4}", v))
        try:
            text = raw.decode("utf-16-be")
        except UnicodeDecodeError:
            return None
        return text if len(text) == 1 else None
    try:
        return chr(v)
    except (ValueError, OverflowError):
        return None


simple("CHR", [(["INT"], STRING), ([S], STRING)], _chr, category="STRING")


def _mask_kind(c: str) -> int:
    cat = unicodedata.category(c)
    return {"Lu": 0, "Ll": 1, "Nd": 2}.get(cat, 3)


def _mask_chars(args: tuple[Any, ...]) -> list[str | None]:
    """Replacement characters for upper, lower, digit, other (None: leave unmasked)."""
    chars: list[str | None] = list(args) + ["X", "x", "n", "-"][len(args):]
    for ch in chars:
        if ch is not None and len(ch) != 1:
            raise KsqlRuntimeError("Invalid mask character. Must be only single character, but "
                                   f"was '{ch}'")
    return chars


def _mask_range(s: str, chars: list[str | None], start: int, end: int) -> str:
    out = list(s)
    for i in range(max(start, 0), min(end, len(s))):
        repl = chars[_mask_kind(out[i])]
        if repl is not None:
            out[i] = repl
    return "".join(out)


def _masker(sel: str) -> Any:
    def mask(s: str | None, *args: Any) -> str | None:
        if s is None:
            return None
        n = len(s)
        if sel == "all":
            return _mask_range(s, _mask_chars(args), 0, n)
        k = args[0]
        if k is None:
            return None
        if k < 0:
            raise KsqlRuntimeError(f"function {sel} requires a non-negative number of "
                                   "characters to mask or skip")
        chars = _mask_chars(args[1:])
        if sel == "left":
            return _mask_range(s, chars, 0, k)
        if sel == "right":
            return _mask_range(s, chars, n - k, n)
        if sel == "keep_left":
            return _mask_range(s, chars, k, n)
        return _mask_range(s, chars, 0, n - k)
    return mask


for _name, _sel, _lead in (("MASK", "all", []), ("MASK_LEFT", "left", ["INT"]),
                           ("MASK_RIGHT", "right", ["INT"]),
                           ("MASK_KEEP_LEFT", "keep_left", ["INT"]),
                           ("MASK_KEEP_RIGHT", "keep_right", ["INT"])):
    simple(_name, [([S, *_lead, *([S] * k)], STRING) for k in range(5)], _masker(_sel),
           nulls=False, category="STRING")


simple("UUID", [([], STRING), (["BYTES"], STRING)],
       lambda b=None: str(uuid_mod.uuid4()) if b is None else str(uuid_mod.UUID(bytes=b)),
       deterministic=False, category="STRING")


def _hex_decode(s: str) -> bytes:
    """Hex text as ksqlDB reads it: plain (even length), 0x-prefixed (odd length gets a leading
    zero) or the SQL literal form X'..' (even length)."""
    if s[:2] in ("0x", "0X"):
        body = s[2:]
        if len(body) % 2:
            body = "0" + body
    elif len(s) >= 3 and s[0] in "xX" and s[1] == "'" and s[-1] == "'":
        body = s[2:-1]
    else:
        body = s
    if len(body) % 2 or not re.fullmatch(r"[0-9a-fA-F]*", body):
        raise ValueError(f"invalid hex string '{s}'")
    return bytes.fromhex(body)


def _to_bytes(s: str, enc: str) -> bytes:
    e = enc.lower()
    try:
        if e == "hex":
            return _hex_decode(s)
        if e == "utf8":
            return s.encode("utf-8")
        if e == "ascii":
            return s.encode("ascii", errors="replace")
        if e == "base64":
            return base64.b64decode(s, validate=True)
    except (ValueError, binascii.Error, UnicodeEncodeError) as err:
        raise KsqlRuntimeError(f"Failed to encode '{s}' as {enc}: {err}") from None
    raise KsqlRuntimeError(f"Supported input encodings are: hex, utf8, ascii and base64, got {enc}")


def _from_bytes(b: bytes, enc: str) -> str:
    e = enc.lower()
    if e == "hex":
        return b.hex().upper()
    if e == "utf8":
        return b.decode("utf-8", errors="replace")
    if e == "ascii":
        return b.decode("ascii", errors="replace")
    if e == "base64":
        return base64.b64encode(b).decode()
    raise KsqlRuntimeError(f"Supported output encodings are: hex, utf8, ascii and base64, got {enc}")


simple("TO_BYTES", [([S, S], BYTES)], _to_bytes, category="STRING")
simple("FROM_BYTES", [(["BYTES", S], STRING)], _from_bytes, category="STRING")


def _encode(s: str, in_enc: str, out_enc: str) -> str:
    out = _from_bytes(_to_bytes(s, in_enc), out_enc)
    return out.lower() if out_enc.lower() == "hex" else out


simple("ENCODE", [([S, S, S], STRING)], _encode, category="STRING")


def _md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()  # noqa: S324 - ksqlDB's MD5 function


simple("MD5", [([S], STRING)], _md5, category="STRING")


def _from_bytes_num(kind: str) -> Any:
    import struct

    def conv(b: bytes, order: str = "BIG_ENDIAN") -> Any:
        o = ">" if order.upper() == "BIG_ENDIAN" else "<"
        fmt = {"int": "i", "bigint": "q", "double": "d"}[kind]
        size = struct.calcsize(fmt)
        if len(b) != size:
            raise KsqlRuntimeError(f"Number of bytes must be equal to {size}, but found {len(b)}")
        return struct.unpack(o + fmt, b)[0]
    return conv


simple("INT_FROM_BYTES", [(["BYTES"], INTEGER), (["BYTES", S], INTEGER)], _from_bytes_num("int"))
simple("BIGINT_FROM_BYTES", [(["BYTES"], BIGINT), (["BYTES", S], BIGINT)],
       _from_bytes_num("bigint"))
simple("DOUBLE_FROM_BYTES", [(["BYTES"], DOUBLE), (["BYTES", S], DOUBLE)],
       _from_bytes_num("double"))
simple("INT_FROM_BOOLEAN", [(["BOOLEAN"], INTEGER)], lambda b: 1 if b else 0,
       category="CONVERSIONS", description="Converts a Boolean value to an Integer value")


# --------------------------------------------------------------------------- URL


def _url(fn: Any) -> Any:
    def wrapped(u: str, *a: Any) -> Any:
        try:
            return fn(urllib.parse.urlsplit(u), *a)
        except ValueError:
            return None
    return wrapped


def _param(parts: urllib.parse.SplitResult, name: str) -> str | None:
    for piece in parts.query.split("&"):
        if not piece:
            continue
        k, sep, v = piece.partition("=")
        if urllib.parse.unquote_plus(k) == name:
            return urllib.parse.unquote_plus(v) if sep else None
    return None


simple("URL_EXTRACT_HOST", [([S], STRING)], _url(lambda p: p.hostname), category="URL")
simple("URL_EXTRACT_PORT", [([S], INTEGER)], _url(lambda p: p.port), category="URL")
simple("URL_EXTRACT_PROTOCOL", [([S], STRING)], _url(lambda p: p.scheme or None), category="URL")
simple("URL_EXTRACT_PATH", [([S], STRING)], _url(lambda p: p.path), category="URL")
simple("URL_EXTRACT_QUERY", [([S], STRING)],
       _url(lambda p: urllib.parse.unquote(p.query) if p.query else None), category="URL")
simple("URL_EXTRACT_FRAGMENT", [([S], STRING)],
       _url(lambda p: urllib.parse.unquote(p.fragment) if p.fragment else None), category="URL")
simple("URL_EXTRACT_PARAMETER", [([S, S], STRING)], _url(_param), category="URL")
simple("URL_ENCODE_PARAM", [([S], STRING)], lambda s: urllib.parse.quote_plus(s), category="URL")
simple("URL_DECODE_PARAM", [([S], STRING)], lambda s: urllib.parse.unquote_plus(s),
       category="URL")

