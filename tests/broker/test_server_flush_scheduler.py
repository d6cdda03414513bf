"""log.flush.scheduler.interval.ms: the server's flusher fsyncs partitions whose data is older
than their topic's flush.ms (Kafka's log flusher), in-process with the real storage."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from hayase.broker.config import BrokerConfig
from hayase.broker.context import BrokerState
from hayase.broker.server import Broker
from hayase.broker.storage import LogManager, Record, build_batch


def test_topic_flush_ms_is_honoured_by_the_scheduler(tmp_path: Path) -> None:
    cfg = BrokerConfig.build(tmp_path, port=0,
                             overrides={"log.flush.scheduler.interval.ms": "20"})
    lm = LogManager(tmp_path, cfg.storage_props())
    lm.create_topic("timed", 1, {"flush.ms": "10"})
    # (log.flush.scheduler.interval.ms is also the broker default of flush.ms, as in Kafka)
    lm.create_topic("hourly", 1, {"flush.ms": "3600000"})

    async def run() -> tuple[int, int, int]:
        broker = Broker(BrokerState(cfg, lm))
        await broker.start()
        try:
            now = int(time.time() * 1000)
            for topic in ("timed", "hourly"):
                lm.log(topic, 0).append(build_batch([Record(key=None, value=b"v")] * 3,
                                                    base_timestamp=now), now)
            deadline = asyncio.get_running_loop().time() + 30
            while (lm.log("timed", 0).recovery_point < 3
                   and asyncio.get_running_loop().time() < deadline):
                await asyncio.sleep(0.02)
            return (lm.log("timed", 0).recovery_point, lm.log("hourly", 0).recovery_point,
                    broker.state.group_commit.flushes)
        finally:
            await broker.stop()

    timed, hourly, flushes = asyncio.run(run())
    assert timed == 3
    assert hourly == 0
    assert flushes >= 1
