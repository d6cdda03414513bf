"""KAFKA values as Kafka's own deserializers read them."""

import pytest

from hayase.formats import SerdeError, value_serde
from hayase.sql.plan import Column, FormatInfo, Namespace
from hayase.sql.types import DOUBLE, STRING


def test_kafka_string_reads_malformed_utf8_as_replacement():
    s = value_serde(FormatInfo("KAFKA"), (Column("V", STRING, Namespace.VALUE),))
    assert s.deserialize(b"a\xffb") == ("a\ufffdb",)
    d = value_serde(FormatInfo("KAFKA"), (Column("V", DOUBLE, Namespace.VALUE),))
    with pytest.raises(SerdeError, match="received by Deserializer is not 8"):
        d.deserialize(b"\x00")


def test_kafka_string_writes_lone_surrogates_as_question_marks():
    s = value_serde(FormatInfo("KAFKA"), (Column("V", STRING, Namespace.VALUE),))
    assert s.serialize(("a\ud800b",)) == b"a?b"
