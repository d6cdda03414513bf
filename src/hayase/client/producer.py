"""Producing records from lines of text: the parsing is pure (`parse_line`), the sending is a
thin loop over confluent-kafka's Producer that waits for every delivery report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from hayase.client.config import quiet_logger
from hayase.client.errors import BrokerUnreachable, ClientError

ACKS = ("all", "-1", "0", "1")


@dataclass(frozen=True)
class Record:
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int | None = None


def strip_newline(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return line[:-2]
    return line[:-1] if line.endswith(b"\n") else line


def parse_line(line: bytes, key_separator: bytes | None, lineno: int) -> tuple[bytes | None, bytes]:
    """One input line -> (key, value). With a separator the key is everything before its first
    occurrence; a line without it is an error, not a silently unkeyed record."""
    body = strip_newline(line)
    if key_separator is None:
        return None, body
    key, sep, value = body.partition(key_separator)
    if not sep:
        raise ClientError(f"line {lineno} has no key separator {key_separator.decode(errors='replace')!r}")
    return key, value


def parse_headers(pairs: Iterable[str]) -> tuple[tuple[str, bytes], ...]:
    """`--header k=v` pairs; a header name may repeat, as Kafka allows."""
    out = []
    for p in pairs:
        name, sep, value = p.partition("=")
        if not sep or not name:
            raise ClientError(f"--header expects name=value, got {p!r}")
        out.append((name, value.encode()))
    return tuple(out)


def producer_config(conf: Mapping[str, object], acks: str = "all",
                    idempotence: bool | None = None) -> dict[str, object]:
    """Idempotence is on unless turned off or acks is not `all` (librdkafka refuses
    idempotence with acks other than all)."""
    if acks not in ACKS:
        raise ClientError(f"acks must be one of {', '.join(ACKS)}, got {acks!r}")
    strong = acks in ("all", "-1")
    if idempotence is None:
        idempotence = strong
    if idempotence and not strong:
        raise ClientError("idempotence needs --acks all (or pass --no-idempotence)")
    # murmur2_random is Java's default partitioner: a key lands on the same partition whether
    # hayase or a Java client produced it (librdkafka's own default is consistent_random).
    out: dict[str, object] = {"acks": acks, "enable.idempotence": idempotence,
                              "partitioner": "murmur2_random"}
    out.update(conf)  # explicit --config wins
    out.setdefault("logger", quiet_logger())
    return out


@dataclass
class DeliveryTracker:
    """Counts delivery reports; keeps the first error so it can be shown."""

    delivered: int = 0
    failed: int = 0
    first_error: KafkaError | None = None
    offsets: list[tuple[int, int]] = field(default_factory=list)
    keep_offsets: bool = False

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.failed += 1
            if self.first_error is None:
                self.first_error = err
            return
        self.delivered += 1
        if self.keep_offsets:
            self.offsets.append((msg.partition() or 0, msg.offset() or 0))


class LineProducer:
    """Sends records and reports failures as ClientError after flushing."""

    def __init__(self, conf: Mapping[str, object], topic: str, timeout: float = 30.0) -> None:
        self.topic = topic
        self.timeout = timeout
        self.bootstrap = conf.get("bootstrap.servers")
        self.errors: list[KafkaError] = []
        conf = dict(conf)
        conf.setdefault("error_cb", self._on_error)
        # Bound how long an undeliverable record waits (broker down) before failing.
        conf.setdefault("message.timeout.ms", int(timeout * 1000))
        try:
            self.producer = Producer(conf)
        except (KafkaException, ValueError, TypeError) as e:
            raise ClientError(f"invalid producer configuration: {e}") from None
        self.tracker = DeliveryTracker()

    def _on_error(self, err: KafkaError) -> None:
        self.errors.append(err)

    def send(self, record: Record) -> None:
        kwargs: dict[str, object] = {"value": record.value, "key": record.key,
                                     "on_delivery": self.tracker}
        if record.headers:
            kwargs["headers"] = list(record.headers)
        if record.partition is not None:
            kwargs["partition"] = record.partition
        while True:
            try:
                self.producer.produce(self.topic, **kwargs)  # type: ignore[arg-type]
                break
            except BufferError:  # local queue full: let deliveries drain, then retry
                self.producer.poll(0.1)
            except KafkaException as e:
                raise ClientError(f"cannot produce to {self.topic!r}: {e.args[0].str()}") from None
        self.producer.poll(0)

    def send_all(self, records: Iterable[Record]) -> None:
        for r in records:
            self.send(r)

    def flush(self) -> DeliveryTracker:
        remaining = self.producer.flush(self.timeout + 5)
        t = self.tracker
        if remaining:
            t.failed += remaining
        if t.failed:
            err = t.first_error or (self.errors[0] if self.errors else None)
            if err is None or err.code() == KafkaError._MSG_TIMED_OUT:
                raise BrokerUnreachable(self.bootstrap, f"{t.failed} record(s) not delivered in "
                                                        f"{self.timeout:g}s; {t.delivered} delivered")
            raise ClientError(f"{t.failed} record(s) failed ({err.str()}); {t.delivered} delivered")
        return t


def records_from_lines(lines: Iterable[bytes], key_separator: bytes | None,
                       headers: Sequence[tuple[str, bytes]] = (),
                       partition: int | None = None) -> Iterable[Record]:
    for lineno, line in enumerate(lines, start=1):
        key, value = parse_line(line, key_separator, lineno)
        yield Record(value, key, tuple(headers), partition)
