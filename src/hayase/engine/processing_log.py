"""The processing log: records that could not be deserialized, evaluated or serialized.

Each entry goes to Python logging (logger ``hayase.processing``), to a counter, and to a list of
pending entries that the runtime produces to the processing-log topic (ksqlDB's
``<service id>ksql_processing_log``). Processing continues after every entry: nothing is dropped
without a trace.
"""

from __future__ import annotations

import base64
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import Counter as MetricCounter

log = logging.getLogger("hayase.processing")

PROCESSING_LOG_RECORDS = MetricCounter(
    "hayase_processing_log_records",
    "Records written to the processing log (failed to deserialize, evaluate or serialize)",
    ["query_id", "type"],
)
_TYPE_NAMES = {0: "deserialization", 1: "record_processing", 2: "production", 3: "serialization"}

DEFAULT_TOPIC = "default_ksql_processing_log"
INCLUDE_ROWS = "ksql.logging.processing.rows.include"

# ksqlDB's ProcessingLogMessageSchema message types.
DESERIALIZATION_ERROR = 0
RECORD_PROCESSING_ERROR = 1
PRODUCTION_ERROR = 2
SERIALIZATION_ERROR = 3


@dataclass
class ProcessingLogEntry:
    query_id: str
    type: int
    error_message: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    target: str | None = None
    record: bytes | None = None
    time_ms: int = 0

    def to_json(self, include_rows: bool = False) -> bytes:
        """ksqlDB's processing-log message shape (level, logger, time, message). The record's
        bytes are included only with ``ksql.logging.processing.rows.include=true``."""
        message: dict[str, Any] = {
            "type": self.type, "deserializationError": None, "recordProcessingError": None,
            "productionError": None, "serializationError": None, "kafkaStreamsThreadError": None,
        }
        body: dict[str, Any] = {"errorMessage": self.error_message, "cause": []}
        if self.type == DESERIALIZATION_ERROR:
            record = self.record if include_rows else None
            body.update(
                target=self.target,
                recordB64=None if record is None else base64.b64encode(record).decode(),
                topic=self.topic,
            )
            message["deserializationError"] = body
        elif self.type == SERIALIZATION_ERROR:
            body.update(target=self.target, topic=self.topic)
            message["serializationError"] = body
        else:
            body["record"] = None
            message["recordProcessingError"] = body
        return orjson.dumps({
            "level": "ERROR",
            "logger": f"processing.{self.query_id}",
            "time": self.time_ms,
            "message": message,
        })


@dataclass
class ProcessingLog:
    """Collects entries. ``drain()`` hands the pending ones to whoever produces the topic."""

    topic: str = DEFAULT_TOPIC
    counts: Counter[str] = field(default_factory=Counter)
    pending: list[ProcessingLogEntry] = field(default_factory=list)
    keep: bool = True

    def add(self, entry: ProcessingLogEntry) -> None:
        self.counts[entry.query_id] += 1
        PROCESSING_LOG_RECORDS.labels(entry.query_id, _TYPE_NAMES.get(entry.type, "other")).inc()
        where = "" if entry.topic is None else (
            f" (topic {entry.topic}, partition {entry.partition}, offset {entry.offset})")
        log.warning("%s: %s%s", entry.query_id, entry.error_message, where)
        if self.keep:
            self.pending.append(entry)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def drain(self) -> list[ProcessingLogEntry]:
        out, self.pending = self.pending, []
        return out


class ProcessingLogReporter:
    """What a query needs to report a failed record: the record being processed
    (``_current``), the query's ``log`` and ``query_id``, and ``_suppress_errors`` for
    evaluations whose failures ksqlDB does not log (e.g. of a tombstone)."""

    query_id: str
    log: ProcessingLog
    _current: Any
    _suppress_errors: bool

    def _entry(self, kind: int, message: str, target: str | None = None,
               data: bytes | None = None) -> None:
        rec = self._current
        self.log.add(ProcessingLogEntry(
            query_id=self.query_id, type=kind, error_message=message,
            topic=rec.topic if rec else None, partition=rec.partition if rec else None,
            offset=rec.offset if rec else None, target=target, record=data,
            time_ms=rec.timestamp if rec else 0,
        ))

    def _on_expression_error(self, error: Exception) -> None:
        if not self._suppress_errors:
            self._entry(RECORD_PROCESSING_ERROR, str(error))
