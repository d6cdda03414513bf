"""A tiny in-memory stand-in for hayase.broker.storage's LogManager (tests only), following
/work/team/STORAGE_API.md closely enough to drive the server with real clients."""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

from hayase.broker.storage import AppendResult, ReadResult


class FakeStorageError(Exception):
    error_code = -1


class UnknownTopic(FakeStorageError):
    error_code = 3


class TopicExists(FakeStorageError):
    error_code = 36


class OutOfRange(FakeStorageError):
    error_code = 1


class Corrupt(FakeStorageError):
    error_code = 2


@dataclass
class FakeTopicConfig:
    configs: dict[str, str] = field(default_factory=dict)


class FakePartitionLog:
    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self.log_start_offset = 0
        self.high_watermark = 0
        self.batches: list[tuple[int, int, int, bytes]] = []  # base, last, max_ts, bytes
        self.flushes = 0

    def append(self, records: bytes, now_ms: int) -> AppendResult:
        pos = 0
        base = self.high_watermark
        while pos < len(records):
            if pos + 61 > len(records):
                raise Corrupt("short batch")
            (length,) = struct.unpack_from(">i", records, pos + 8)
            size = length + 12
            if length <= 0 or pos + size > len(records) or records[pos + 16] != 2:
                raise Corrupt("bad batch")
            batch = bytearray(records[pos:pos + size])
            (delta,) = struct.unpack_from(">i", batch, 23)
            (max_ts,) = struct.unpack_from(">q", batch, 35)
            struct.pack_into(">q", batch, 0, self.high_watermark)
            last = self.high_watermark + delta
            self.batches.append((self.high_watermark, last, max_ts, bytes(batch)))
            self.high_watermark = last + 1
            pos += size
        return AppendResult(base, self.high_watermark - 1, -1, self.log_start_offset, False)

    def read(self, offset: int, max_bytes: int) -> ReadResult:
        if not self.log_start_offset <= offset <= self.high_watermark:
            raise OutOfRange(f"offset {offset}")
        out = b""
        for _base, last, _ts, data in self.batches:
            if last < offset:
                continue
            if out and len(out) + len(data) > max_bytes:
                break
            out += data
        return ReadResult(out, self.high_watermark, self.log_start_offset, self.high_watermark)

    def offset_for_timestamp(self, timestamp_ms: int) -> tuple[int, int] | None:
        for base, _last, max_ts, _data in self.batches:
            if max_ts >= timestamp_ms:
                return base, max_ts
        return None

    def flush(self) -> None:
        self.flushes += 1

    def size_bytes(self) -> int:
        return sum(len(b[3]) for b in self.batches)

    def close(self) -> None:
        pass


class FakeLogManager:
    def __init__(self, data_dir: Any = None, broker_config: dict[str, str] | None = None) -> None:
        self._topics: dict[str, list[FakePartitionLog]] = {}
        self._ids: dict[str, uuid.UUID] = {}
        self._configs: dict[str, FakeTopicConfig] = {}
        self.closed = False

    def create_topic(self, name: str, partitions: int, configs: dict[str, str]) -> None:
        if name in self._topics:
            raise TopicExists(name)
        self._topics[name] = [FakePartitionLog(name, p) for p in range(partitions)]
        self._ids[name] = uuid.uuid4()
        self._configs[name] = FakeTopicConfig(dict(configs))

    def delete_topic(self, name: str) -> None:
        if name not in self._topics:
            raise UnknownTopic(name)
        del self._topics[name]

    def create_partitions(self, name: str, total: int) -> None:
        logs = self._topics[name]
        logs += [FakePartitionLog(name, p) for p in range(len(logs), total)]

    def topics(self) -> dict[str, int]:
        return {n: len(p) for n, p in self._topics.items()}

    def topic_id(self, name: str) -> uuid.UUID:
        return self._ids[name]

    def topic_config(self, name: str) -> FakeTopicConfig:
        return self._configs[name]

    def log(self, topic: str, partition: int) -> FakePartitionLog:
        try:
            return self._topics[topic][partition]
        except (KeyError, IndexError):
            raise UnknownTopic(f"{topic}-{partition}") from None

    def run_retention(self, now_ms: int) -> int:
        return 0

    def flush_all(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True
