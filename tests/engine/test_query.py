import json

import pytest

from hayase.engine.processing_log import DESERIALIZATION_ERROR, ProcessingLog
from hayase.engine.query import StatelessQuery
from hayase.engine.record import Record
from hayase.sql.errors import KsqlRuntimeError
from hayase.sql.plan import (
    Column,
    DataSource,
    FilterStep,
    FormatInfo,
    LogicalSchema,
    Namespace,
    ProjectStep,
    QueryPlan,
    SelectKeyStep,
    SinkDescriptor,
    SourceType,
)
from hayase.sql.types import BIGINT, INTEGER, STRING

KEY = Namespace.KEY


def source(name, topic, columns, value_format="JSON", key_format="KAFKA", **kw):
    return DataSource(name, SourceType.STREAM, LogicalSchema(tuple(columns)), topic,
                      FormatInfo(key_format), FormatInfo(value_format), **kw)


INPUT = source("INPUT", "input", [Column("ID", INTEGER, KEY), Column("NAME", STRING),
                                  Column("AGE", INTEGER)])


def plan(steps, sink, src=INPUT):
    return QueryPlan("CSAS_OUTPUT_0", [src], steps, SinkDescriptor(sink))


def rec(value, key=b"\x00\x00\x00\x0a", ts=5, offset=0, headers=()):
    data = None if value is None else json.dumps(value).encode()
    return Record("input", 0, offset, ts, key, data, headers)


def test_filter_and_project_keep_key_and_timestamp():
    sink = source("OUTPUT", "OUTPUT", [Column("ID", INTEGER, KEY), Column("NAME", STRING)])
    q = StatelessQuery(plan([
        FilterStep(lambda row: row[2] is not None and row[2] > 18),
        ProjectStep(lambda row, key: (row[0], row[1].upper(), row[3]), sink.schema),
    ], sink), ProcessingLog())
    assert q.process(rec({"name": "kid", "age": 3})) == []
    [out] = q.process(rec({"name": "bob", "age": 22}, headers=(("h", b"1"),)))
    assert (out.topic, out.key, out.value, out.timestamp) == (
        "OUTPUT", b"\x00\x00\x00\x0a", b'{"NAME":"BOB"}', 5)
    assert out.headers == (("h", b"1"),)


def test_partition_by_rekeys_and_tombstones_keep_the_new_key():
    sink = source("OUTPUT", "OUTPUT", [Column("NAME", STRING, KEY), Column("ID", INTEGER)])
    q = StatelessQuery(plan([
        SelectKeyStep(lambda row: (row[1],), (sink.schema.columns[0],)),
        ProjectStep(lambda row, key: (key[0], row[0], row[3]), sink.schema),
    ], sink), ProcessingLog())
    [out] = q.process(rec({"NAME": "n", "AGE": 1}))
    assert (out.key, out.value) == (b"n", b'{"ID":10}')
    [tomb] = q.process(rec(None))
    assert (tomb.key, tomb.value) == (None, None)


def test_bad_records_go_to_the_processing_log_and_processing_continues():
    log = ProcessingLog()
    sink = source("OUTPUT", "OUTPUT", [Column("ID", INTEGER, KEY), Column("NAME", STRING)])
    q = StatelessQuery(plan([ProjectStep(lambda row, key: (row[0], row[1], row[3]), sink.schema)],
                            sink), log)
    bad = Record("input", 0, 7, 1, b"\x00\x00\x00\x01", b"{oops", ())
    assert q.process(bad) == []
    assert q.process(Record("input", 0, 8, 1, b"\x01", b"{}", ())) == []  # short INT key
    assert len(q.process(rec({"NAME": "ok"}))) == 1
    assert log.counts["CSAS_OUTPUT_0"] == 2
    entries = log.drain()
    assert entries[0].type == DESERIALIZATION_ERROR and entries[0].target == "value"
    assert entries[0].offset == 7 and entries[1].target == "key"
    error = json.loads(entries[0].to_json())["message"]["deserializationError"]
    assert error["recordB64"] is None and error["target"] == "value"  # rows only on request
    with_row = json.loads(entries[0].to_json(include_rows=True))
    assert with_row["message"]["deserializationError"]["recordB64"] == "e29vcHM="


def test_expression_errors_are_logged_through_the_plan_error_handler():
    log = ProcessingLog()
    sink = source("OUTPUT", "OUTPUT", [Column("ID", INTEGER, KEY), Column("X", INTEGER)])
    p = plan([], sink)

    def project(row, key):
        p._runtime["on_error"](KsqlRuntimeError("division by zero"))
        return (row[0], None, row[3])

    p.steps.append(ProjectStep(project, sink.schema))
    q = StatelessQuery(p, log)
    [out] = q.process(rec({"NAME": "a"}))
    assert out.value == b'{"X":null}'
    assert log.drain()[0].error_message == "division by zero"


def test_timestamp_column_with_format_and_invalid_values():
    src = source("TEST", "input", [Column("K", STRING, KEY), Column("TS", STRING)],
                 key_format="KAFKA", timestamp_column="TS",
                 timestamp_format="yyyy-MM-dd'T'HH:mm:ssX")
    sink = source("OUT", "OUT", [Column("K", STRING, KEY), Column("TS", STRING)])
    log = ProcessingLog()
    q = StatelessQuery(plan([ProjectStep(lambda row, key: (row[0], row[1], row[2]), sink.schema)],
                            sink, src), log)
    [out] = q.process(Record("input", 0, 0, 10, b"a", b'{"TS": "2018-05-11T21:58:33Z"}'))
    assert out.timestamp == 1526075913000
    assert q.process(Record("input", 0, 1, 10, b"a", b'{"TS": "nope"}')) == []
    assert log.total == 1
    strict = StatelessQuery(plan([ProjectStep(lambda row, key: (row[0], row[1], row[2]),
                                              sink.schema)], sink, src), log,
                            {"ksql.timestamp.throw.on.invalid": "true"})
    with pytest.raises(KsqlRuntimeError, match="TimestampExtractor"):
        strict.process(Record("input", 0, 1, 10, b"a", b'{"TS": "nope"}'))


def test_sink_timestamp_null_or_negative_is_dropped_and_logged():
    sink = source("OUT", "OUT", [Column("ID", INTEGER, KEY), Column("T", BIGINT)])
    log = ProcessingLog()
    q = StatelessQuery(plan([ProjectStep(lambda row, key: (row[0], row[2], row[2]),
                                         sink.schema)], sink), log)
    assert q.process(rec({"AGE": -2})) == []
    assert [o.timestamp for o in q.process(rec({"AGE": 3}))] == [3]
    assert log.total == 1


def test_table_filter_turns_non_matching_rows_into_tombstones():
    table = DataSource("T", SourceType.TABLE, INPUT.schema, "input", FormatInfo("KAFKA"),
                       FormatInfo("JSON"))
    sink = DataSource("T2", SourceType.TABLE, LogicalSchema((Column("ID", INTEGER, KEY),
                                                             Column("AGE", INTEGER))),
                      "T2", FormatInfo("KAFKA"), FormatInfo("JSON"))
    q = StatelessQuery(plan([FilterStep(lambda row: row[2] > 1),
                             ProjectStep(lambda row, key: (row[0], row[2], row[3]), sink.schema)],
                            sink, table), ProcessingLog())
    assert q.process(rec({"AGE": 5}))[0].value == b'{"AGE":5}'
    assert q.process(rec({"AGE": 0}))[0].value is None
    assert q.process(rec(None))[0].value is None


def test_flat_map_runs_the_following_steps_once_per_row():
    from hayase.sql.plan import FlatMapStep

    sink = source("OUTPUT", "OUTPUT", [Column("ID", INTEGER, KEY), Column("N", INTEGER)])
    q = StatelessQuery(plan([
        FlatMapStep(lambda row: [row + (n,) for n in range(row[2] or 0)]),
        ProjectStep(lambda row, key: (row[0], row[-1], row[3]), sink.schema),
    ], sink), ProcessingLog())
    assert [o.value for o in q.process(rec({"AGE": 3}))] == [b'{"N":0}', b'{"N":1}', b'{"N":2}']
    assert q.process(rec({"AGE": 0})) == []
    assert q.process(rec(None)) == []


def test_processing_log_entries_are_counted_in_the_metric():
    from prometheus_client import REGISTRY

    from hayase.engine.processing_log import ProcessingLogEntry

    def value():
        return REGISTRY.get_sample_value("hayase_processing_log_records_total",
                                         {"query_id": "Q_METRIC", "type": "deserialization"}) or 0

    before = value()
    ProcessingLog().add(ProcessingLogEntry("Q_METRIC", DESERIALIZATION_ERROR, "bad"))
    assert value() == before + 1


def test_table_records_without_a_key_are_skipped_and_logged():
    table = DataSource("T", SourceType.TABLE, INPUT.schema, "input", FormatInfo("KAFKA"),
                       FormatInfo("JSON"))
    sink = DataSource("T2", SourceType.TABLE, LogicalSchema((Column("ID", INTEGER, KEY),
                                                             Column("AGE", INTEGER))),
                      "T2", FormatInfo("KAFKA"), FormatInfo("JSON"))
    log = ProcessingLog()
    q = StatelessQuery(plan([ProjectStep(lambda row, key: (row[0], row[2], row[3]), sink.schema)],
                            sink, table), log)
    assert q.process(rec({"AGE": 5}, key=None)) == []
    assert log.total == 1
