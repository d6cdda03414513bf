"""The topology test driver: run SQL statements and their persistent queries with no broker.

The driver keeps an in-memory log per topic (records written by INSERT INTO ... VALUES, piped
inputs and query outputs). Two ways to drive it:

- ``pipe(topic, key, value, ...)`` / ``pipe_json(...)``: process one input record at once
  through every query reading the topic, and recursively through queries reading their sinks
  (INSERT INTO ... VALUES rows too, by default).
- ``run_case(inputs)`` with ``immediate=False``: ksqlDB's test-executor order (conformance
  README, section 6): for each persistent query in statement order, pipe the given inputs of its
  source topics one at a time in file order; topics with no given inputs are piped from the
  topic log (INSERT VALUES rows and earlier queries' outputs).

The operators are the engine's own (:class:`hayase.engine.query.StatelessQuery`), the same ones
``hayase run`` drives over Kafka.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hayase.engine.joins import make_query
from hayase.engine.processing_log import ProcessingLog
from hayase.engine.query import StatelessQuery
from hayase.engine.record import Headers, OutputRecord, Record
from hayase.engine.upgrade import carry_state
from hayase.formats import key_serde, value_serde
from hayase.sql.plan import DataSource, DdlResult, InsertValues, QueryPlan
from hayase.testing import specs
from hayase.testing.compare import ActualRecord
from hayase.testing.qtt import ABSENT, RecordSpec


@dataclass
class TopicLog:
    records: list[OutputRecord]


class TestDriver:
    """SQL in, records in, records out; deterministic and in memory."""

    __test__ = False  # not a pytest test class

    def __init__(self, properties: Mapping[str, Any] | None = None,
                 session: Any = None, immediate: bool = True) -> None:
        """``immediate``: INSERT INTO ... VALUES rows and ``run_case`` inputs go through the
        running queries at once (like a live server). ``False`` keeps ksqlDB's test-executor
        order for ``run_case`` (what ``hayase test`` and the conformance runner use)."""
        self.immediate = immediate
        self.properties: dict[str, Any] = {k: str(v) if not isinstance(v, str) else v
                                           for k, v in (properties or {}).items()}
        if session is None:
            from hayase.sql import Session  # type: ignore[attr-defined]

            session = Session(dict(self.properties))
        self.session = session
        self.processing_log = ProcessingLog()
        self.queries: list[StatelessQuery] = []
        self.topics: dict[str, list[OutputRecord]] = defaultdict(list)
        self.sources_by_topic: dict[str, DataSource] = {}
        self.sinks_by_topic: dict[str, DataSource] = {}
        self.created_topics: list[str] = []
        self._offsets: dict[tuple[int, str], int] = defaultdict(int)

    # ------------------------------------------------------------------ statements

    def execute(self, sql: str) -> list[Any]:
        """Run statements; returns the SQL layer's results. Raises its KsqlError subclasses."""
        results = list(self.session.execute(sql))
        for result in results:
            self._apply(result)
        return results

    def add_query(self, plan: QueryPlan) -> StatelessQuery:
        """Start a persistent query from an analyzed plan (what ``execute`` does for C*AS)."""
        self._apply(plan)
        return next(q for q in self.queries if q.query_id == plan.query_id)

    def _apply(self, result: Any) -> None:
        if isinstance(result, DdlResult):
            if result.source is not None:
                self._register(result.source)
            for t in result.topics_to_create:
                if t.name not in self.created_topics:
                    self.created_topics.append(t.name)
            for qid in result.queries_to_terminate:
                self.queries = [q for q in self.queries if q.query_id != qid]
        elif isinstance(result, QueryPlan):
            for src in result.sources:
                self.sources_by_topic.setdefault(src.topic, src)
            sink = result.sink.source
            self._register(sink)
            self.sinks_by_topic[sink.topic] = sink
            if sink.topic not in self.created_topics:
                self.created_topics.append(sink.topic)
            self._start(make_query(result, self.processing_log, self.session_properties()))
        elif isinstance(result, InsertValues):
            self._insert(result)

    def _start(self, query: StatelessQuery) -> None:
        """Run ``query``; CREATE OR REPLACE (the analyzer reuses the query id) replaces the
        running query in place, as ksqlDB does: same position, so the same consumed offsets
        (records already read are not read again), and the same state stores."""
        for i, old in enumerate(self.queries):
            if old.query_id == query.query_id:
                carry_state(old, query)
                self.queries[i] = query
                return
        self.queries.append(query)

    def session_properties(self) -> dict[str, Any]:
        props = getattr(self.session, "properties", None)
        return dict(props) if props else dict(self.properties)

    def _register(self, source: DataSource) -> None:
        self.sources_by_topic[source.topic] = source

    def _insert(self, iv: InsertValues) -> None:
        target = iv.target
        self._register(target)
        key = key_serde(target.key_format, target.schema.key).serialize(tuple(iv.key))
        value = value_serde(target.value_format, target.schema.value).serialize(tuple(iv.value))
        headers: Headers = ()
        ts = 0 if iv.timestamp is None else int(iv.timestamp)
        if self.immediate:
            self.pipe(target.topic, key, value, ts, headers)
        else:
            self.topics[target.topic].append(OutputRecord(target.topic, key, value, ts, headers))

    # ------------------------------------------------------------------ records

    def source_for(self, topic: str) -> DataSource | None:
        return self.sources_by_topic.get(topic)

    def sink_for(self, topic: str) -> DataSource | None:
        return self.sinks_by_topic.get(topic) or self.sources_by_topic.get(topic)

    def _next_offset(self, query_index: int, topic: str) -> int:
        key = (query_index, topic)
        offset = self._offsets[key]
        self._offsets[key] = offset + 1
        return offset

    def _feed(self, index: int, query: StatelessQuery, rec: OutputRecord) -> list[OutputRecord]:
        record = Record(rec.topic, 0, self._next_offset(index, rec.topic), rec.timestamp,
                        rec.key, rec.value, rec.headers)
        outputs = query.process(record)
        for out in outputs:
            self.topics[out.topic].append(out)
        return outputs

    def pipe(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int = 0,
             headers: Headers = ()) -> list[OutputRecord]:
        """Process one record now, through every query reading ``topic`` and downstream."""
        first = OutputRecord(topic, key, value, timestamp, headers)
        self.topics[topic].append(first)
        produced: list[OutputRecord] = []
        pending = [first]
        while pending:
            rec = pending.pop(0)
            for i, q in enumerate(self.queries):
                if rec.topic in q.source_topics:
                    outs = self._feed(i, q, rec)
                    produced.extend(outs)
                    pending.extend(outs)
        return produced

    def encode_spec(self, spec: RecordSpec) -> OutputRecord:
        """Bytes of a QTT record for its topic's source format."""
        source = self.source_for(spec.topic)
        key = specs.encode_key(spec.key, source, spec.window)
        value = specs.encode_value(spec.value, source)
        ts = 0 if spec.timestamp is ABSENT else int(spec.timestamp)
        return OutputRecord(spec.topic, key, value, ts, tuple(spec.headers or ()))

    def pipe_spec(self, spec: RecordSpec) -> list[OutputRecord]:
        rec = self.encode_spec(spec)
        return self.pipe(rec.topic, rec.key, rec.value, rec.timestamp, rec.headers)

    def pipe_json(self, topic: str, key: Any = None, value: Any = None, timestamp: int = 0,
                  headers: Iterable[tuple[str, bytes | None]] = ()) -> list[OutputRecord]:
        """Pipe a record given as in a QTT file (JSON-like key/value for the topic's format)."""
        return self.pipe_spec(RecordSpec(topic, key, value, timestamp, None, list(headers)))

    def run_case(self, inputs: list[RecordSpec]) -> None:
        """ksqlDB's test-executor order (see module doc); in immediate mode, each input in file
        order through every query at once."""
        if self.immediate:
            for spec in inputs:
                self.pipe_spec(spec)
            return
        input_topics = {r.topic for r in inputs}
        encoded = [self.encode_spec(r) for r in inputs]
        for rec in encoded:
            self.topics[rec.topic].append(rec)
        for i, q in enumerate(list(self.queries)):
            for rec in encoded:
                if rec.topic in q.source_topics:
                    self._feed(i, q, rec)
            for topic in q.source_topics:
                if topic not in input_topics:
                    for rec in list(self.topics.get(topic, [])):
                        self._feed(i, q, rec)

    def output(self, topic: str) -> list[OutputRecord]:
        return list(self.topics.get(topic, []))

    def read_output(self, topic: str) -> list[ActualRecord]:
        """Output records decoded as ksqlDB's test harness sees them."""
        sink = self.sink_for(topic)
        out: list[ActualRecord] = []
        for rec in self.topics.get(topic, []):
            key, window = specs.decode_key(rec.key, sink)
            out.append(ActualRecord(topic, key, specs.decode_value(rec.value, sink),
                                    rec.timestamp, window, list(rec.headers)))
        return out
