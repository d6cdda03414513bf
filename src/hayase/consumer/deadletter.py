"""Dead-letter records: what is written for a record that failed its last retry."""

from __future__ import annotations

from hayase.consumer.record import Record

HEADER_TOPIC = "hayase.dlq.topic"
HEADER_PARTITION = "hayase.dlq.partition"
HEADER_OFFSET = "hayase.dlq.offset"
HEADER_ERROR = "hayase.dlq.error"
HEADER_ATTEMPTS = "hayase.dlq.attempts"
MAX_ERROR_BYTES = 4096


def dead_letter_headers(record: Record, error: BaseException, attempts: int
                        ) -> list[tuple[str, bytes | None]]:
    """The record's own headers, then headers naming its origin, the error and the attempts."""
    text = f"{type(error).__name__}: {error}".encode(errors="replace")[:MAX_ERROR_BYTES]
    return [*record.headers,
            (HEADER_TOPIC, record.topic.encode()),
            (HEADER_PARTITION, str(record.partition).encode()),
            (HEADER_OFFSET, str(record.offset).encode()),
            (HEADER_ERROR, text),
            (HEADER_ATTEMPTS, str(attempts).encode())]
