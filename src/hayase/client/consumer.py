"""Reading records for the CLI: where to start (`parse_offset`), how a record is shown
(`format_record`), and `RecordReader`, a loop over confluent-kafka's Consumer.

Without a group the reader assigns partitions itself and never commits (nothing about the read
is stored on the broker); with a group it subscribes, or assigns the given partition, and lets
the client commit."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_STORED,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from hayase.client.config import quiet_logger
from hayase.client.errors import ClientError, TopicNotFound

FORMATS = ("lines", "json")
_TRANSIENT = {KafkaError._PARTITION_EOF, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN}
_NAMED_OFFSETS = {"beginning": OFFSET_BEGINNING, "earliest": OFFSET_BEGINNING,
                  "end": OFFSET_END, "latest": OFFSET_END}


def parse_offset(text: str) -> int:
    """`beginning`/`earliest`, `end`/`latest` or a non-negative offset -> the value for
    TopicPartition.offset."""
    named = _NAMED_OFFSETS.get(text.strip().lower())
    if named is not None:
        return named
    try:
        offset = int(text)
    except ValueError:
        raise ClientError(f"--offset must be a number, beginning or end, got {text!r}") from None
    if offset < 0:
        raise ClientError(f"--offset must not be negative, got {offset}")
    return offset


def _text(data: bytes | None) -> Any:
    """JSON for key/value/header bytes: a string when they are UTF-8, else {"base64": ...}
    so that no byte is lost or mangled."""
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def _bytes(data: str | bytes | None) -> bytes | None:
    """Keys and values are bytes without a deserializer; the stubs also allow str."""
    return data.encode() if isinstance(data, str) else data


def record_dict(msg: Message) -> dict[str, Any]:
    _, ts = msg.timestamp()
    headers: list[tuple[str, bytes]] = msg.headers() or []  # type: ignore[assignment]
    return {
        "topic": msg.topic(),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "timestamp": ts,
        "key": _text(_bytes(msg.key())),
        "value": _text(_bytes(msg.value())),
        "headers": [{"key": k, "value": _text(v)} for k, v in headers],
    }


def format_record(msg: Message, fmt: str = "lines", key_separator: bytes | None = None) -> bytes:
    """One output line (without the newline). `lines` prints the value (a null value as an
    empty line), preceded by key and separator when a separator is given."""
    if fmt == "json":
        return orjson.dumps(record_dict(msg))
    value = _bytes(msg.value()) or b""
    if key_separator is None:
        return value
    return (_bytes(msg.key()) or b"") + key_separator + value


class RecordReader:
    """Yields messages of one topic until `max_messages` are read or nothing arrives for
    `timeout` seconds (None: forever).

    Where reading starts: `offset` when given (for every partition read); otherwise, without a
    group, the beginning or the end (`from_beginning`); with a group, its committed offsets,
    falling back to the beginning or the end when it has none."""

    def __init__(
        self,
        conf: Mapping[str, object],
        topic: str,
        partitions: Sequence[int],
        offset: int | None = None,
        from_beginning: bool = False,
        group: str | None = None,
        subscribe: bool = False,
    ) -> None:
        self.topic = topic
        self.bootstrap = conf.get("bootstrap.servers")
        c = dict(conf)
        c.setdefault("logger", quiet_logger())
        if group is None:
            # librdkafka insists on a group.id; this one is never joined nor committed to.
            c.setdefault("group.id", f"hayase-cli-{uuid.uuid4().hex[:12]}")
            c["enable.auto.commit"] = False
            c["enable.auto.offset.store"] = False
        else:
            c["group.id"] = group
            c.setdefault("auto.offset.reset", "earliest" if from_beginning else "latest")
        if offset is not None:
            start = offset
        elif group is not None:
            start = OFFSET_STORED
        else:
            start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        try:
            self.consumer = Consumer(c)
        except (KafkaException, ValueError, TypeError) as e:
            raise ClientError(f"invalid consumer configuration: {e}") from None
        if subscribe:
            self.consumer.subscribe([topic], on_assign=self._on_assign(start))
        else:
            self.consumer.assign([TopicPartition(topic, p, start) for p in partitions])

    @staticmethod
    def _on_assign(start: int) -> Any:
        def on_assign(consumer: Consumer, tps: list[TopicPartition]) -> None:
            if start != OFFSET_STORED:
                for tp in tps:  # an explicit offset applies to every partition we get
                    tp.offset = start
                consumer.assign(tps)
        return on_assign

    def messages(self, max_messages: int | None = None,
                 timeout: float | None = None) -> Iterator[Message]:
        count = 0
        last = time.monotonic()
        while max_messages is None or count < max_messages:
            wait = 1.0 if timeout is None else max(0.0, min(1.0, last + timeout - time.monotonic()))
            msg = self.consumer.poll(wait)
            if msg is None:
                if timeout is not None and time.monotonic() - last >= timeout:
                    return
                continue
            err = msg.error()
            if err is not None:
                self._raise_for(err)
                continue
            last = time.monotonic()
            count += 1
            yield msg

    def _raise_for(self, err: KafkaError) -> None:
        """Stop on what will not heal; ride out what librdkafka retries itself (a broker
        restarting mid-read must not end a long-running consume)."""
        code = err.code()
        if code in _TRANSIENT:
            return
        if code in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC):
            raise TopicNotFound(self.topic)
        if err.fatal() or not err.retriable():
            raise ClientError(f"consuming {self.topic!r} failed: {err.str()}")

    def close(self) -> None:
        self.consumer.close()

    def __enter__(self) -> RecordReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
