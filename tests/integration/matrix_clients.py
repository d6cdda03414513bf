"""The four Kafka clients of the client matrix behind one small interface: produce a list of
records to a topic, and read one partition from offset 0 to its high watermark by assigning it
(no group, no commits)."""

from __future__ import annotations

import asyncio
import importlib
import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Headers = tuple[tuple[str, bytes], ...]
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
TIMEOUT = 60.0


@dataclass(frozen=True)
class Rec:
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


@dataclass(frozen=True)
class Read:
    partition: int
    offset: int
    rec: Rec


class Client:
    name = ""

    def codecs(self) -> set[str]:
        return set(CODECS)

    def produce(self, bootstrap: str, topic: str, recs: Sequence[Rec], codec: str) -> None:
        raise NotImplementedError

    def read(self, bootstrap: str, topic: str, partition: int, end: int) -> list[Read]:
        raise NotImplementedError


class PurePythonClient(Client):
    """What kafka-python and aiokafka have in common: gzip always, snappy, lz4 and zstd only
    when their optional libraries are installed (both probe `<package>.codec` the same way), and
    ConsumerRecords with the same attributes."""

    package = ""

    def codecs(self) -> set[str]:
        codec = importlib.import_module(f"{self.package}.codec")
        ok = {"none", "gzip"}
        ok |= {"snappy"} if codec.has_snappy() else set()
        ok |= {"lz4"} if codec.has_lz4() else set()
        ok |= {"zstd"} if codec.has_zstd() else set()
        return ok

    @staticmethod
    def read_of(m: Any) -> Read:
        """A ConsumerRecord of either library (the same attributes in both)."""
        return Read(m.partition, m.offset, Rec(m.key, m.value, tuple((k, v) for k, v in m.headers)))


class ConfluentClient(Client):
    name = "confluent-kafka"

    def produce(self, bootstrap: str, topic: str, recs: Sequence[Rec], codec: str) -> None:
        from confluent_kafka import Producer

        p = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random",
                      "compression.type": codec, "enable.idempotence": True, "linger.ms": 20})
        failures: list[object] = []
        for r in recs:
            p.produce(topic, key=r.key, value=r.value, headers=list(r.headers) or None,
                      on_delivery=lambda err, _m: failures.append(err) if err else None)
        assert p.flush(TIMEOUT) == 0
        assert failures == []

    def read(self, bootstrap: str, topic: str, partition: int, end: int) -> list[Read]:
        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "matrix-unused",
                      "enable.auto.commit": False, "enable.auto.offset.store": False})
        out: list[Read] = []
        try:
            c.assign([TopicPartition(topic, partition, 0)])
            while len(out) < end:
                m = c.poll(TIMEOUT)
                assert m is not None, f"confluent-kafka: no record after {len(out)}"
                assert m.error() is None, m.error()
                hdrs = tuple((k, v) for k, v in (m.headers() or []))
                out.append(Read(m.partition(), m.offset(), Rec(m.key(), m.value(), hdrs)))
        finally:
            c.close()
        return out


class KafkaPythonClient(PurePythonClient):
    name = "kafka-python"
    package = "kafka"

    def produce(self, bootstrap: str, topic: str, recs: Sequence[Rec], codec: str) -> None:
        from kafka import KafkaProducer

        p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                          compression_type=None if codec == "none" else codec)
        try:
            futures = [p.send(topic, key=r.key, value=r.value, headers=list(r.headers))
                       for r in recs]
            p.flush(TIMEOUT)
            for f in futures:
                f.get(TIMEOUT)
        finally:
            p.close(TIMEOUT)

    def read(self, bootstrap: str, topic: str, partition: int, end: int) -> list[Read]:
        from kafka import KafkaConsumer, TopicPartition

        c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
        tp = TopicPartition(topic, partition)
        out: list[Read] = []
        try:
            c.assign([tp])
            c.seek(tp, 0)
            for _ in range(200):
                if len(out) >= end:
                    break
                for msgs in c.poll(timeout_ms=500).values():
                    out.extend(map(self.read_of, msgs))
        finally:
            c.close()
        return out


class AioKafkaClient(PurePythonClient):
    name = "aiokafka"
    package = "aiokafka"

    def produce(self, bootstrap: str, topic: str, recs: Sequence[Rec], codec: str) -> None:
        asyncio.run(self._produce(bootstrap, topic, recs, codec))

    async def _produce(self, bootstrap: str, topic: str, recs: Sequence[Rec], codec: str) -> None:
        from aiokafka import AIOKafkaProducer

        p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                             compression_type=None if codec == "none" else codec,
                             enable_idempotence=True)
        await p.start()
        try:
            futures = [await p.send(topic, key=r.key, value=r.value, headers=list(r.headers))
                       for r in recs]
            for f in futures:
                await asyncio.wait_for(f, TIMEOUT)
        finally:
            await p.stop()

    def read(self, bootstrap: str, topic: str, partition: int, end: int) -> list[Read]:
        return asyncio.run(self._read(bootstrap, topic, partition, end))

    async def _read(self, bootstrap: str, topic: str, partition: int, end: int) -> list[Read]:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False)
        await c.start()
        tp = TopicPartition(topic, partition)
        out: list[Read] = []
        try:
            c.assign([tp])
            c.seek(tp, 0)
            for _ in range(200):
                if len(out) >= end:
                    break
                batches = await c.getmany(tp, timeout_ms=500)
                out.extend(map(self.read_of, batches.get(tp, [])))
        finally:
            await c.stop()
        return out


class KcatClient(Client):
    """kcat (librdkafka 2.0.2 from Debian). Lines are `key<TAB>value`; a line without a tab has
    a null key; with -Z an empty value is a null value. -H headers apply to every record, so
    records are produced in groups of equal headers."""

    name = "kcat"
    path = shutil.which("kcat") or "/usr/bin/kcat"

    def produce(self, bootstrap: str, topic: str, recs: Sequence[Rec], codec: str) -> None:
        groups: dict[Headers, list[Rec]] = {}
        for r in recs:  # order within a headers group is preserved
            groups.setdefault(r.headers, []).append(r)
        for headers, group in groups.items():
            lines = []
            for r in group:
                assert r.value is None or (b"\n" not in r.value and r.value != b"")
                value = r.value or b""
                lines.append(value if r.key is None else r.key + b"\t" + value)
            cmd = [self.path, "-P", "-b", bootstrap, "-t", topic, "-K", "\t", "-Z",
                   "-X", "topic.partitioner=murmur2_random", "-X", "enable.idempotence=true"]
            if codec != "none":
                cmd += ["-z", codec]
            for k, v in headers:
                cmd += ["-H", f"{k}={v.decode()}"]
            subprocess.run(cmd, input=b"\n".join(lines) + b"\n", check=True, timeout=TIMEOUT,
                           capture_output=True)

    def read(self, bootstrap: str, topic: str, partition: int, end: int) -> list[Read]:
        if end == 0:
            return []
        cmd = [self.path, "-C", "-b", bootstrap, "-t", topic, "-p", str(partition), "-o", "0",
               "-c", str(end), "-J", "-q", "-e"]
        res = subprocess.run(cmd, check=True, timeout=TIMEOUT, capture_output=True)
        out = []
        for line in res.stdout.decode().splitlines():
            j = json.loads(line)
            h = j.get("headers") or []
            hdrs = tuple((h[i], h[i + 1].encode()) for i in range(0, len(h), 2))
            key = None if j["key"] is None else j["key"].encode()
            value = None if j["payload"] is None else j["payload"].encode()
            out.append(Read(j["partition"], j["offset"], Rec(key, value, hdrs)))
        return out


CLIENTS: dict[str, Client] = {c.name: c for c in (ConfluentClient(), KafkaPythonClient(),
                                                    AioKafkaClient(), KcatClient())}
