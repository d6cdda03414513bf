"""String and bytes functions."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
import unicodedata
import urllib.parse
import uuid as uuid_mod
from collections.abc import Callable
from functools import lru_cache
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


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _pair(m: re.Match[str]) -> str:
    v = ord(m.group()) - 0x10000
    return chr(0xD800 + (v >> 10)) + chr(0xDC00 + (v & 0x3FF))


def to_units(s: str) -> str:
    """The string as Java holds it: one Python character per UTF-16 code unit (a character
    above U+FFFF becomes its surrogate pair), so indexes and lengths count as Java's do."""
    return s if s.isascii() else _ASTRAL.sub(_pair, s)


def from_units(u: str) -> str:
    """Back from :func:`to_units`: pairs join into characters; a surrogate left alone by a cut
    becomes '?', as Java's UTF-8 encoder writes it."""
    if u.isascii():
        return u
    joined = u.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return _LONE_SURROGATE.sub("?", joined)


def _in_units(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn`` over UTF-16 units: its string arguments converted, a string result back."""
    @functools.wraps(fn)
    def wrapped(*args: Any) -> Any:
        r = fn(*(to_units(a) if isinstance(a, str) else a for a in args))
        return from_units(r) if isinstance(r, str) else r
    return wrapped


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
                     (["BYTES", "INT"], BYTES), (["BYTES", "INT", "INT"], BYTES)],
       _in_units(_substring),
       category="STRING")
def _len(v: str | bytes) -> int:
    """String.length(): UTF-16 code units (a character outside the BMP counts 2)."""
    return len(v) if isinstance(v, bytes) else len(to_units(v))


simple("LEN", [([S], INTEGER), (["BYTES"], INTEGER)], _len, category="STRING")
simple("LCASE", [([S], STRING)], str.lower, category="STRING")
simple("UCASE", [([S], STRING)], str.upper, category="STRING")


_JAVA_TRIM = "".join(chr(i) for i in range(33))  # String.trim(): every char <= U+0020


def _trim(s: str) -> str:
    return s.strip(_JAVA_TRIM)


simple("TRIM", [([S], STRING)], _trim, category="STRING")


_JAVA_SPACE = " \t\n\x0b\f\r"  # Java regex \s (ASCII whitespace only)
_INITCAP_WORD = re.compile(f"[^{_JAVA_SPACE}]+[{_JAVA_SPACE}]*")


def _initcap(s: str) -> str:
    # Each run of non-space characters (with its trailing spaces) gets a capital first letter;
    # leading whitespace is dropped, as ksqlDB does.
    return "".join(w[:1].upper() + w[1:] for w in _INITCAP_WORD.findall(s.lower()))


simple("INITCAP", [([S], STRING)], _initcap, category="STRING")


def _concat(*parts: Any) -> Any:
    return "".join(p for p in parts if p is not None)


def _concat_bytes(*parts: Any) -> Any:
    return b"".join(p for p in parts if p is not None)


def _concat_bind(types: list[SqlType], literals: list[Any]) -> Bound:
    bases = {t.base for t in types if t.base != "NULL"}
    if not types or len(bases) > 1 or (bases and bases - {"STRING", "BYTES"}):
        raise FunctionArgError(f"Function 'concat' does not accept parameters "
                               f"({format_types(types)}).")
    if bases == {"BYTES"}:
        return Bound(BYTES, _concat_bytes, nulls=False)
    return Bound(STRING, _concat, nulls=False)


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


# java.util.regex constructs Python's re spells differently.
_JAVA_CLASSES = {"Lower": "a-z", "Upper": "A-Z", "ASCII": "\\x00-\\x7F", "Alpha": "a-zA-Z",
                 "Digit": "0-9", "Alnum": "a-zA-Z0-9", "Punct": "!-/:-@\\[-`{-~",
                 "Graph": "!-~", "Print": " -~", "Blank": " \\t", "Cntrl": "\\x00-\\x1F\\x7F",
                 "XDigit": "0-9a-fA-F", "Space": " \\t\\n\\x0B\\f\\r", "L": "^\\W\\d_",
                 "IsAlphabetic": "^\\W\\d_", "IsDigit": "\\d", "N": "\\d"}


def _translate_java_regex(p: str) -> str:
    # \Q...\E quotes its text; \z is the very end (Python's \Z); \Z may precede a last newline.
    p = re.sub(r"\\Q(.*?)(?:\\E|$)", lambda m: re.escape(m.group(1)), p, flags=re.DOTALL)
    p = re.sub(r"(?<!\\)((?:\\\\)*)\\Z", r"\1(?=\\n?\\Z)", p)
    p = re.sub(r"(?<!\\)((?:\\\\)*)\\z", r"\1\\Z", p)
    p = re.sub(r"\(\?<([A-Za-z][A-Za-z0-9]*)>", r"(?P<\1>", p)
    p = re.sub(r"\\k<([A-Za-z][A-Za-z0-9]*)>", r"(?P=\1)", p)

    def cls(m: re.Match[str]) -> str:
        body = _JAVA_CLASSES.get(m.group(2))
        if body is None:
            return m.group(0)
        negate = m.group(1) == "P"
        if body.startswith("^"):  # a class already written negated
            body = body[1:]
            negate = not negate
        return f"[{'^' if negate else ''}{body}]"
    return re.sub(r"\\([pP])\{(?:Is)?([A-Za-z]+)\}", cls, p)


@lru_cache(maxsize=256)
def _java_regex(p: str) -> re.Pattern[str]:
    try:
        return re.compile(_translate_java_regex(p))
    except re.error as e:
        raise KsqlRuntimeError(f"Invalid regular expression pattern: {p}. {e}") from None


@lru_cache(maxsize=256)
def _java_replacement(r: str, groups: int, names: tuple[tuple[str, int], ...]) -> list[str | int]:
    """Matcher.replaceAll's replacement: ``$n``/``${name}`` refer to groups, ``\\x`` is ``x``."""
    out: list[str | int] = []
    lit: list[str] = []
    i = 0
    while i < len(r):
        ch = r[i]
        if ch == "\\":
            if i + 1 >= len(r):
                raise KsqlRuntimeError("character to be escaped is missing")
            lit.append(r[i + 1])
            i += 2
            continue
        if ch != "$":
            lit.append(ch)
            i += 1
            continue
        if i + 1 >= len(r):
            raise KsqlRuntimeError("Illegal group reference: group index is missing")
        ref: int
        if r[i + 1] == "{":
            end = r.find("}", i + 2)
            index = dict(names).get(r[i + 2:end]) if end > 0 else None
            if index is None:
                raise KsqlRuntimeError(f"No group with name {r[i + 2:end]}")
            ref, i = index, end + 1
        elif r[i + 1].isdigit():
            num, i = int(r[i + 1]), i + 2
            if num > groups:
                raise KsqlRuntimeError(f"No group {num}")
            while i < len(r) and r[i].isdigit() and num * 10 + int(r[i]) <= groups:
                num, i = num * 10 + int(r[i]), i + 1
            ref = num
        else:
            raise KsqlRuntimeError("Illegal group reference")
        out.append("".join(lit))
        lit = []
        out.append(ref)
    out.append("".join(lit))
    return out


def _regexp_replace(s: str, p: str, r: str) -> str:
    rx = _java_regex(p)
    parts = _java_replacement(r, rx.groups, tuple(rx.groupindex.items()))

    def repl(m: re.Match[str]) -> str:
        return "".join(x if isinstance(x, str) else (m.group(x) or "") for x in parts)
    return rx.sub(repl, s)


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


def _java_split(rx: re.Pattern[str], s: str) -> list[str]:
    """Pattern.split(s): no leading empty piece for a zero-width match at 0, trailing empty
    pieces dropped; the whole input when nothing matches."""
    out: list[str] = []
    index = 0
    for m in rx.finditer(s):
        if index == 0 and m.start() == 0 and m.end() == 0:
            continue
        out.append(s[index:m.start()])
        index = m.end()
    if index == 0 and not out:
        return [s]
    out.append(s[index:])
    while out and out[-1] == "":
        out.pop()
    return out


def _regexp_split(s: str, p: str) -> list[str]:
    """ksqlDB: Pattern.split when the pattern can match the empty string, else Guava's
    Splitter.on(pattern), which keeps every empty piece (and never returns capture groups)."""
    rx = _java_regex(p)
    if p == "" or rx.fullmatch(""):
        return _java_split(rx, s)
    out: list[str] = []
    index = 0
    for m in rx.finditer(s):
        out.append(s[index:m.start()])
        index = m.end()
    out.append(s[index:])
    return out


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
       _in_units(_instr), category="STRING", nulls=False)


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


simple("LPAD", [([S, "INT", S], STRING), (["BYTES", "INT", "BYTES"], BYTES)],
       _in_units(_pad(True)),
       category="STRING")
simple("RPAD", [([S, "INT", S], STRING), (["BYTES", "INT", "BYTES"], BYTES)],
       _in_units(_pad(False)),
       category="STRING")


_JAVA_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "'": "'",
                 "\\": "\\"}


def _unescape_java(text: str) -> str:
    """commons-text StringEscapeUtils.unescapeJava: \\uXXXX (UTF-16 units, pairs joined), octal
    and the usual backslash escapes; other text stays."""
    units: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\" or i + 1 >= len(text):
            units.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "u":
            j = i + 1
            while j < len(text) and text[j] == "u":
                j += 1
            hex4 = text[j:j + 4]
            if len(hex4) < 4 or not re.fullmatch(r"[0-9a-fA-F]{4}", hex4):
                raise ValueError(f"Unable to parse unicode value: {hex4}")
            units.append(chr(int(hex4, 16)))
            i = j + 4
        elif nxt in _JAVA_ESCAPES:
            units.append(_JAVA_ESCAPES[nxt])
            i += 2
        elif nxt in "01234567":
            m = re.match(r"[0-3][0-7]{0,2}|[4-7][0-7]?", text[i + 1:])
            assert m is not None
            units.append(chr(int(m.group(0), 8)))
            i += 1 + len(m.group(0))
        else:
            units.append(nxt)
            i += 2
    # Join surrogate pairs written as two \\u escapes into one code point.
    return "".join(units).encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace")


def _chr(v: Any) -> str | None:
    if isinstance(v, str):
        # ksqlDB reads text that starts with \\u (6 characters at least) with unescapeJava.
        if len(v) < 6 or not v.startswith("\\u"):
            return None
        return _unescape_java(v)
    if not 0 <= v <= 0x10FFFF:
        return None
    return chr(v)


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
    # ksqlDB declares two overloads: the default masks, or all four mask characters.
    simple(_name, [([S, *_lead, *([S] * k)], STRING) for k in (0, 4)], _masker(_sel),
           nulls=False, category="STRING")


simple("UUID", [([], STRING), (["BYTES"], STRING)],
       lambda b=None: str(uuid_mod.uuid4()) if b is None else str(uuid_mod.UUID(bytes=b)),
       deterministic=False, category="STRING")


def _hex_strict(s: str) -> bytes:
    """DatatypeConverter.parseHexBinary (TO_BYTES): an even number of hex digits, any case."""
    if len(s) % 2 or not re.fullmatch(r"[0-9a-fA-F]*", s):
        raise ValueError(f"invalid hex string '{s}'")
    return bytes.fromhex(s)


def _hex_strip(s: str) -> str:
    """ENCODE's hexStrip: drops a 0x prefix (an odd digit count gets a leading zero) or the
    X'..' literal form; anything else is left as it is."""
    if s.startswith("0x"):
        return ("0" if len(s) % 2 else "") + s[2:]
    if len(s) >= 3 and s[0] in "xX" and s[1] == "'" and s[-1] == "'":
        return s[2:-1]
    return s


def _base64_strict(s: str) -> bytes:
    """java.util.Base64.getDecoder(): the alphabet only; '=' padding optional."""
    if len(s) % 4 == 1 or not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", s):
        raise ValueError(f"Illegal base64 text '{s}'")
    body = s.rstrip("=")
    if s != body and len(s) % 4:
        raise ValueError(f"Illegal base64 padding in '{s}'")
    return base64.b64decode(body + "=" * (-len(body) % 4))


def _base64_lenient(s: str) -> bytes:
    """commons-codec Base64.decodeBase64: characters outside the alphabet are skipped, the
    URL-safe alphabet is read too, a trailing partial group is dropped."""
    body = re.sub(r"[^A-Za-z0-9+/\-_]", "", s.split("=", 1)[0]).replace("-", "+").replace("_", "/")
    if len(body) % 4 == 1:
        body = body[:-1]
    return base64.b64decode(body + "=" * (-len(body) % 4))


def _to_bytes(s: str, enc: str) -> bytes:
    e = enc.lower()
    try:
        if e == "hex":
            return _hex_strict(s)
        if e == "utf8":
            return s.encode("utf-8")
        if e == "ascii":
            return s.encode("ascii", errors="replace")
        if e == "base64":
            return _base64_strict(s)
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
    if in_enc.lower() + out_enc.lower() not in _ENCODE_PAIRS:
        raise KsqlRuntimeError("Supported input and output encodings are: hex, utf8, ascii and "
                               "base64")
    src = in_enc.lower()
    if src == "base64":
        raw = _base64_lenient(s)
    else:
        raw = _to_bytes(_hex_strip(s) if src == "hex" else s, in_enc)
    out = _from_bytes(raw, out_enc)
    return out.lower() if out_enc.lower() == "hex" else out


_ENCODINGS = ("hex", "utf8", "ascii", "base64")
_ENCODE_PAIRS = {a + b for a in _ENCODINGS for b in _ENCODINGS if a != b}

simple("ENCODE", [([S, S, S], STRING)], _encode, category="STRING")


def _md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()  # noqa: S324 - ksqlDB's MD5 function


simple("MD5", [([S], STRING)], _md5, category="STRING")


def _from_bytes_num(kind: str) -> Any:
    import struct

    def conv(b: bytes, order: str = "BIG_ENDIAN") -> Any:
        if order.upper() not in ("BIG_ENDIAN", "LITTLE_ENDIAN"):
            raise KsqlRuntimeError("Byte order must be BIG_ENDIAN or LITTLE_ENDIAN. Unknown byte "
                                   f"order '{order}'.")
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


_URI_ILLEGAL = re.compile(r'[\x00-\x20"<>\\^`{|}\x7f]|%(?![0-9a-fA-F]{2})')


def _url(fn: Any, with_text: bool = False) -> Any:
    """A URL function over the parsed URL (and, ``with_text``, the text as written)."""
    def wrapped(u: str, *a: Any) -> Any:
        if _URI_ILLEGAL.search(u):
            # java.net.URI rejects the text: the call fails.
            raise KsqlRuntimeError(f"URL input has invalid syntax: {u}")
        try:
            parts = urllib.parse.urlsplit(u)
            return fn(parts, u, *a) if with_text else fn(parts, *a)
        except ValueError:
            return None
    return wrapped


def _param(parts: urllib.parse.SplitResult, name: str) -> str | None:
    """URI.getQuery (percent-decoded), split on '&' then on the first '='; a bare key is ''."""
    if not parts.query or _opaque(parts):
        return None
    for piece in urllib.parse.unquote(parts.query).split("&"):
        k, sep, v = piece.partition("=")
        if k == name:
            return v if sep else ""
    return None


def _url_encode(s: str) -> str:
    """URLEncoder.encode(s, UTF-8): '*' stays, '~' is escaped, a space is '+'."""
    return urllib.parse.quote_plus(s, safe="*").replace("~", "%7E")


def _url_decode(s: str) -> str:
    """URLDecoder.decode(s, UTF-8): a '%' must start a two-digit hex escape."""
    if re.search(r"%(?![0-9a-fA-F]{2})", s):
        raise KsqlRuntimeError(f"URLDecoder: Illegal hex characters in escape (%) pattern: {s}")
    return urllib.parse.unquote_plus(s)


_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")


def _host(p: urllib.parse.SplitResult) -> str | None:
    """URI.getHost: the host as written (case kept, IPv6 in brackets); null when the authority
    is not a server name (java.net.URI then reads it as registry-based)."""
    if _opaque(p) or not p.netloc:
        return None
    hostport = p.netloc.rpartition("@")[2]
    if hostport.startswith("["):
        end = hostport.find("]")
        return hostport[:end + 1] if end > 0 else None
    host = hostport.partition(":")[0]
    labels = host.rstrip(".").split(".")
    if not host or not all(_HOST_LABEL.fullmatch(x) for x in labels):
        return None
    if all(x.isdigit() for x in labels):
        return host if len(labels) == 4 and all(int(x) < 256 for x in labels) else None
    return host if labels[-1][0].isalpha() else None


def _opaque(p: urllib.parse.SplitResult) -> bool:
    """scheme:rest without a '/' after the colon (mailto:a@b) has no path, query or host."""
    return bool(p.scheme) and not p.netloc and not p.path.startswith("/")


def _protocol(p: urllib.parse.SplitResult, u: str) -> str | None:
    return u[:len(p.scheme)] if p.scheme else None  # as written: HTTP stays HTTP


def _path(p: urllib.parse.SplitResult) -> str | None:
    return None if _opaque(p) else urllib.parse.unquote(p.path)


simple("URL_EXTRACT_HOST", [([S], STRING)], _url(_host), category="URL")
simple("URL_EXTRACT_PORT", [([S], INTEGER)], _url(lambda p: p.port if _host(p) else None),
       category="URL")
simple("URL_EXTRACT_PROTOCOL", [([S], STRING)], _url(_protocol, with_text=True), category="URL")
simple("URL_EXTRACT_PATH", [([S], STRING)], _url(_path), category="URL")
def _query(p: urllib.parse.SplitResult, u: str) -> str | None:
    """URI.getQuery, decoded: '' after a bare '?', null without one (or in an opaque URI)."""
    if _opaque(p) or "?" not in u.partition("#")[0]:
        return None
    return urllib.parse.unquote(p.query)


def _fragment(p: urllib.parse.SplitResult, u: str) -> str | None:
    """URI.getFragment, decoded: '' after a bare '#', null without one."""
    return urllib.parse.unquote(p.fragment) if "#" in u else None


simple("URL_EXTRACT_QUERY", [([S], STRING)], _url(_query, with_text=True), category="URL")
simple("URL_EXTRACT_FRAGMENT", [([S], STRING)], _url(_fragment, with_text=True), category="URL")
simple("URL_EXTRACT_PARAMETER", [([S, S], STRING)], _url(_param), category="URL")
simple("URL_ENCODE_PARAM", [([S], STRING)], _url_encode, category="URL")
simple("URL_DECODE_PARAM", [([S], STRING)], _url_decode, category="URL")

