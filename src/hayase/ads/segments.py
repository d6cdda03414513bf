"""The segment updater of the ads platform (talk 3): app events -> each user's segments in
Redis, through the parallel consumer and the consumer helper's SegmentUpdater sink; and a
redis-server child process for the demo and the check mode."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hayase.ads.generator import APP_EVENTS, Event

SEGMENTS_GROUP = "hayase-ads-segments"
SEGMENT_PREFIX = "segments:"


def expected_segments(events: Iterable[Event]) -> dict[str, set[str]]:
    """What the updater must leave in Redis: each user's app events applied in order (one
    user's events are in one partition, in send order), adds before removes per event."""
    out: dict[str, set[str]] = {}
    for e in events:
        if e.topic != APP_EVENTS or e.value is None:
            continue
        segs = out.setdefault(e.key, set())
        segs.update(e.value.get("add", []))
        segs.difference_update(e.value.get("remove", []))
    return {u: s for u, s in out.items() if s}


class RedisProcess:
    """redis-server on 127.0.0.1 with its data in a folder (append-only, fsync every second)."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port = data_dir, port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / "redis.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                 "--dir", str(self.data_dir.resolve()), "--appendonly", "yes",
                 "--save", "", "--protected-mode", "yes"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode} "
                                   f"(see {self.data_dir / 'redis.log'})")
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("redis-server did not answer within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class SegmentUpdaterThread:
    """The segment updater (hayase.consumer.sinks.segments.SegmentUpdater behind a
    ParallelConsumer, ordering by user) on its own event loop thread."""

    def __init__(self, conf: Mapping[str, object], topic: str, redis_url: str,
                 group: str = SEGMENTS_GROUP, key_prefix: str = SEGMENT_PREFIX) -> None:
        from hayase.consumer import ParallelConsumer
        from hayase.consumer.sinks.segments import SegmentUpdater

        self.sink = SegmentUpdater(redis_url, key_prefix)
        self.redis_url, self.key_prefix = redis_url, key_prefix
        self.consumer = ParallelConsumer(
            {**conf, "group.id": group, "auto.offset.reset": "earliest"},
            topics=[topic], process_batch=self.sink.write, ordering="key",
            max_in_flight_per_partition=20, max_pending_per_partition=1000,
            handle_signals=False)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="segment-updater", daemon=True)

    def _run(self) -> None:
        from hayase.consumer.loop import run_precise

        async def main() -> None:
            await self.sink.open()
            try:
                await self.consumer.run_async()
            finally:
                await self.sink.close()

        try:
            run_precise(main())
        except BaseException as e:  # reported by the demo, which then stops
            self.error = e

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.consumer.stop()
        self.thread.join(60)

    def read_all(self) -> dict[str, set[str]]:
        """Every user's segments (user id without the key prefix)."""
        import redis

        r = redis.Redis.from_url(self.redis_url)
        try:
            out = {}
            for name in r.scan_iter(match=self.key_prefix + "*", count=500):
                raw = name.decode() if isinstance(name, bytes) else str(name)
                members = r.smembers(name)
                out[raw[len(self.key_prefix):]] = {
                    m.decode() if isinstance(m, bytes) else str(m)
                    for m in members}  # type: ignore[union-attr]
            return out
        finally:
            r.close()

    def probe(self) -> dict[str, Any]:
        """Users with segments and the most common segments (a SCAN of at most 2000 keys)."""
        import redis

        r = redis.Redis.from_url(self.redis_url)
        try:
            counts: dict[str, int] = {}
            users = 0
            for i, name in enumerate(r.scan_iter(match=self.key_prefix + "*", count=500)):
                if i >= 2000:
                    break
                users += 1
                for m in r.smembers(name):  # type: ignore[union-attr]
                    seg = m.decode() if isinstance(m, bytes) else str(m)
                    counts[seg] = counts.get(seg, 0) + 1
            top = dict(sorted(counts.items(), key=lambda kv: -kv[1])[:6])
            return {"users": users, "top": top}
        finally:
            r.close()
