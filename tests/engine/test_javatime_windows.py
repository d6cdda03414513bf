import pytest

from hayase.engine import windows
from hayase.engine.javatime import parse_timestamp_ms


@pytest.mark.parametrize(("text", "pattern", "ms"), [
    ("10-04-19 12:00:17Z", "yy-MM-dd HH:mm:ssX", 1271678417000),
    ("2018-05-11T21:58:33Z", "yyyy-MM-dd'T'HH:mm:ssX", 1526075913000),
    ("2019-08-27T13:31:09.2+0000", "yyyy-MM-dd'T'HH:mm:ss.SX", 1566912669200),
    ("2019-01-01T00:00:00+04:45", "yyyy-MM-dd'T'HH:mm:ssXXX", 1546283700000),
    ("20190827", "yyyyMMdd", 1566864000000),
    ("27 Aug 2019 01:02:03 PM", "dd MMM yyyy hh:mm:ss a", 1566910923000),
])
def test_java_patterns(text: str, pattern: str, ms: int) -> None:
    assert parse_timestamp_ms(text, pattern) == ms


def test_zone_default_and_bad_text() -> None:
    assert parse_timestamp_ms("1970-01-01 09:00", "yyyy-MM-dd HH:mm", "Asia/Tokyo") == 0
    with pytest.raises(ValueError):
        parse_timestamp_ms("not a time", "yyyy-MM-dd")


def test_windowed_keys_round_trip() -> None:
    data = windows.wrap(b"k", "TIME", 30000, 60000)
    assert windows.unwrap(data, "TIME", 30000) == (b"k", 30000, 60000)
    data = windows.wrap(b"k", "SESSION", 5, 9)
    assert windows.unwrap(data, "SESSION", None) == (b"k", 5, 9)
    with pytest.raises(ValueError):
        windows.unwrap(b"short", "TIME", 1)
