"""PRINT topic over /query, as ksqlDB users issue it: the statement's parts, the key and value
formats narrowed over the records, the record lines, FROM BEGINNING / INTERVAL / LIMIT, the
errors; and PRINT refused on /ksql and /query-stream as ksqlDB refuses it there."""

from __future__ import annotations

import struct

import httpx
import pytest
from server_helpers import Running

from hayase.server.print_topic import (
    NO_DATA,
    FormatGuesser,
    Printer,
    PrintSyntaxError,
    PrintTopic,
    parse_print,
    rowtime,
)


@pytest.mark.parametrize(("sql", "want"), [
    ("PRINT clicks;", PrintTopic("clicks")),
    ("print 'My-Topic' FROM BEGINNING LIMIT 3;", PrintTopic("My-Topic", True, 1, 3)),
    ("PRINT `t` from beginning INTERVAL 2", PrintTopic("t", True, 2, None)),
    ("PRINT t SAMPLE 5 LIMIT 1;", PrintTopic("t", False, 5, 1)),
    ("PRINT 'it''s';", PrintTopic("it's")),
])
def test_parse_print(sql: str, want: PrintTopic) -> None:
    assert parse_print(sql) == want


def test_parse_print_refuses_other_clauses() -> None:
    with pytest.raises(PrintSyntaxError):
        parse_print("PRINT t LIMIT 1 FROM BEGINNING;")


def test_formats_narrow_over_records() -> None:
    g = FormatGuesser()
    assert g.possible() == NO_DATA
    assert g.format(None) == "<null>" and g.possible() == NO_DATA  # a null says nothing
    assert g.format(struct.pack(">i", 7)) == "7"
    assert g.possible() == "KAFKA_INT or KAFKA_STRING"
    assert g.format(b"abcd") == "1633837924"  # 4 bytes: still an INT, the first format
    assert g.format(b"hello") == "hello"
    assert g.possible() == "KAFKA_STRING"
    values = FormatGuesser()
    assert values.format(b'{"a": 10}') == '{"a": 10}'
    assert values.possible() == "JSON or KAFKA_STRING"
    assert values.format(b"plain") == "plain"
    assert values.possible() == "KAFKA_STRING"
    assert values.format(b"\xff\x00") == "\\xFF\\x00"  # nothing reads it: its bytes
    assert values.possible() == "UNRECOGNISED_BYTES"
    doubles = FormatGuesser()
    assert doubles.format(struct.pack(">d", 1.5)) == str(struct.unpack(">q", struct.pack(
        ">d", 1.5))[0])  # 8 bytes: BIGINT first
    assert doubles.possible() == "KAFKA_BIGINT or KAFKA_DOUBLE"


def test_printer_lines_interval_and_limit() -> None:
    p = Printer(PrintTopic("t", True, 2, 2))
    assert p.lines(b"k1", b'{"v":1}', 0, 0) == [
        "Key format: KAFKA_STRING", "Value format: JSON or KAFKA_STRING",
        'rowtime: 1970/01/01 00:00:00.000 Z, key: k1, value: {"v":1}, partition: 0']
    assert p.lines(b"k2", b"x", 1, 0) == []  # every 2nd record
    assert p.lines(b"k3", b'{"v":3}', 61001, 1) == [
        'rowtime: 1970/01/01 00:01:01.001 Z, key: k3, value: {"v":3}, partition: 1']
    assert p.done and p.lines(b"k4", b"{}", 2, 0) == []
    assert rowtime(None) == "N/A"


def test_print_over_query(running: Running) -> None:
    url = running.url
    r = httpx.post(url + "/ksql", json={"ksql": (
        "CREATE STREAM S (K STRING KEY, ID INT) WITH (KAFKA_TOPIC='Clicks', "
        "VALUE_FORMAT='JSON', PARTITIONS=1);"
        "INSERT INTO S (ROWTIME, K, ID) VALUES (1000, 'a', 10);"
        "INSERT INTO S (ROWTIME, K, ID) VALUES (2000, 'b', 20);")}, timeout=30)
    assert r.status_code == 200
    r = httpx.post(url + "/query", json={"ksql": "PRINT 'Clicks' FROM BEGINNING LIMIT 2;"},
                   timeout=30)
    assert r.status_code == 200
    assert r.text.splitlines() == [
        "Key format: KAFKA_STRING",
        "Value format: JSON or KAFKA_STRING",
        'rowtime: 1970/01/01 00:00:01.000 Z, key: a, value: {"ID":10}, partition: 0',
        'rowtime: 1970/01/01 00:00:02.000 Z, key: b, value: {"ID":20}, partition: 0']
    assert running.app.active == 0  # the query slot is given back

    missing = httpx.post(url + "/query", json={"ksql": "PRINT clicks;"}, timeout=30)
    assert missing.status_code == 400
    assert missing.json()["message"] == (
        "Could not find topic 'clicks', or the KSQL user does not have permissions to list "
        "the topic. Topic names are case-sensitive.\nDid you mean:\n\tprint Clicks;")
    on_ksql = httpx.post(url + "/ksql", json={"ksql": "PRINT 'Clicks';"}, timeout=30)
    assert (on_ksql.status_code, on_ksql.json()["error_code"]) == (400, 40002)
    on_stream = httpx.post(url + "/query-stream", json={"sql": "PRINT 'Clicks';"}, timeout=30)
    assert (on_stream.status_code, on_stream.json()["message"]) == (400, "Not a query")
