"""String, bytes and URL functions at their edges, as ksqlDB's UDFs compute them."""

from __future__ import annotations

import pytest
from tests.sql.conftest import evaluate

from hayase.sql.errors import StatementError


@pytest.mark.parametrize(("expr", "cols", "row", "expected"), [
    # CONCAT of BYTES stays BYTES even when every argument is null.
    ("CONCAT(B, B)", "B BYTES", (None,), b""),
    ("CONCAT(B, B)", "B BYTES", (b"a",), b"aa"),
    # Java replacement strings: $n and ${name} refer to groups, a backslash quotes.
    ("REGEXP_REPLACE(S, '(\\w+) (\\w+)', '$2 $1')", "S STRING", ("hello world",), "world hello"),
    ("REGEXP_REPLACE(S, '\\.', '\\$')", "S STRING", ("a.b",), "a$b"),
    ("REGEXP_REPLACE(S, '(?<x>a)\\k<x>', '[$1]')", "S STRING", ("aab",), "[a]b"),
    ("REGEXP_REPLACE(S, 'x*', '-')", "S STRING", ("abc",), "-a-b-c-"),
    ("REGEXP_REPLACE(S, 'a', '$1')", "S STRING", ("abc",), None),  # no group 1: the call fails
    ("REGEXP_EXTRACT('\\p{Alpha}+', S)", "S STRING", ("12ab3",), "ab"),
    # REGEXP_SPLIT_TO_ARRAY never returns capture groups; Guava keeps empty pieces.
    ("REGEXP_SPLIT_TO_ARRAY(S, '(\\d)+')", "S STRING", ("a1b22c",), ["a", "b", "c"]),
    ("REGEXP_SPLIT_TO_ARRAY(S, ',')", "S STRING", ("a,b,,",), ["a", "b", "", ""]),
    ("REGEXP_SPLIT_TO_ARRAY(S, '')", "S STRING", ("abc",), ["a", "b", "c"]),
    # CHR of text is unescapeJava of text starting with \u.
    ("CHR(S)", "S STRING", ("\\u004bxy",), "Kxy"),
    ("CHR(S)", "S STRING", ("\\ud83d\\ude00",), "\U0001F600"),
    ("CHR(S)", "S STRING", ("\\u00",), None),
    ("CHR(S)", "S STRING", ("\\u00zz!",), None),
    ("CHR(I)", "I INT", (0x110000,), None),
    # ENCODE reads base64 leniently (commons-codec); an encoding to itself is unsupported.
    ("ENCODE(S, 'base64', 'utf8')", "S STRING", ("SGVsbG8",), "Hello"),
    ("ENCODE(S, 'base64', 'hex')", "S STRING", ("SGV sbG8=",), "48656c6c6f"),
    ("ENCODE(S, 'utf8', 'utf8')", "S STRING", ("x",), None),
    ("TO_BYTES(S, 'base64')", "S STRING", ("SGVsbG8",), b"Hello"),  # padding optional
    ("TO_BYTES(S, 'base64')", "S STRING", ("SGVsbG8*",), None),
    # INITCAP splits words on Java's ASCII whitespace only.
    ("INITCAP(S)", "S STRING", ("a\u00a0b c",), "A\u00a0b C"),
    # URL functions read text the way java.net.URI does.
    ("URL_EXTRACT_PARAMETER(S, 'b')", "S STRING", ("http://x.com/?a=1&b&c=3",), ""),
    ("URL_EXTRACT_PARAMETER(S, 'a')", "S STRING", ("http://x.com/?a=1%202+3",), "1 2+3"),
    ("URL_EXTRACT_PARAMETER(S, 'z')", "S STRING", ("http://x.com/?a=1",), None),
    ("URL_EXTRACT_HOST(S)", "S STRING", ("http://a b.com/",), None),
    ("URL_ENCODE_PARAM(S)", "S STRING", ("a b*~c",), "a+b*%7Ec"),
    ("URL_DECODE_PARAM(S)", "S STRING", ("a+b%20c",), "a b c"),
    ("URL_DECODE_PARAM(S)", "S STRING", ("100%",), None),
])
def test_string_edges(expr: str, cols: str, row: tuple[object, ...], expected: object) -> None:
    assert evaluate(expr, cols, row) == expected


def test_mask_takes_no_or_all_four_mask_characters() -> None:
    assert evaluate("MASK_LEFT(S, 2, '*', NULL, NULL, NULL)", "S STRING", ("AbCd",)) == "*bCd"
    with pytest.raises(StatementError, match="does not accept parameters"):
        evaluate("MASK(S, '*')", "S STRING", ("AbCd",))


def test_named_group_reference_in_replacement() -> None:
    # ${name} cannot be written in a statement (it is variable substitution), so call the UDF.
    from hayase.sql.functions.string_fns import _regexp_replace

    assert _regexp_replace("ab", "(?<x>a)", "[${x}]") == "[a]b"


def test_byte_order_must_be_known() -> None:
    row = (b"\x01\x00\x00\x00",)
    assert evaluate("INT_FROM_BYTES(B, 'little_endian')", "B BYTES", row) == 1
    assert evaluate("INT_FROM_BYTES(B, 'BIG_ENDIAN')", "B BYTES", row) == 16_777_216
    assert evaluate("INT_FROM_BYTES(B, 'MIDDLE')", "B BYTES", row) is None


def test_len_counts_utf16_units() -> None:
    assert evaluate("LEN(S)", "S STRING", ("h\u00e9\U0001F600",)) == 4
    assert evaluate("LEN(B)", "B BYTES", (b"\x00\x01",)) == 2


def test_java_regex_quoting_and_anchors() -> None:
    from hayase.sql.functions.string_fns import _regexp_replace

    assert _regexp_replace("a.*b", r"\Q.*\E", "-") == "a-b"
    assert _regexp_replace("ab\n", r"b\Z", "X") == "aX\n"  # \Z may precede a final newline
    assert _regexp_replace("ab\n", r"b\z", "X") == "ab\n"  # \z is the very end


@pytest.mark.parametrize(("expr", "expected"), [
    ("TO_BYTES('4a6B', 'hex')", b"Jk"),  # any case
    ("TO_BYTES('0x41', 'hex')", None),  # no prefix in TO_BYTES
    ("TO_BYTES('ABC', 'hex')", None),  # odd digit count
    ("ENCODE('0x4a', 'hex', 'utf8')", "J"),  # ENCODE strips 0x and X'..'
    ("ENCODE('X''4A''', 'hex', 'utf8')", "J"),
    ("ENCODE('0X4A', 'hex', 'utf8')", None),  # only a lower-case 0x is a prefix
])
def test_hex_text(expr: str, expected: object) -> None:
    assert evaluate(expr, "S STRING", ("x",)) == expected


@pytest.mark.parametrize(("fn", "url", "expected"), [
    ("HOST", "HTTP://Example.COM:8080/a%20b?x=1#f%21", "Example.COM"),  # case kept
    ("PROTOCOL", "HTTP://Example.COM:8080/", "HTTP"),
    ("PATH", "http://x.com/a%20b", "/a b"),  # decoded
    ("PATH", "http://x.com", ""),
    ("PATH", "mailto:a@b.com", None),  # an opaque URI has no path
    ("HOST", "http://my_host.com:80/", None),  # not a server name
    ("PORT", "http://my_host.com:80/", None),
    ("HOST", "http://[::1]:80/p", "[::1]"),
    ("QUERY", "http://x.com/?", ""),  # a bare '?' is an empty query
    ("QUERY", "http://x.com/", None),
    ("FRAGMENT", "http://x.com/#", ""),
    ("FRAGMENT", "http://x.com/#f%21", "f!"),
])
def test_url_parts_as_java_net_uri(fn: str, url: str, expected: object) -> None:
    assert evaluate(f"URL_EXTRACT_{fn}(S)", "S STRING", (url,)) == expected
