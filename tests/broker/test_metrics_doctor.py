"""Broker metrics and the doctor's diagnosis, without a broker process."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time

from hayase.broker.doctor import Scrape, diagnose, summary
from hayase.broker.metrics import BrokerMetrics, IdleClock


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class FakeLogs:
    class _Log:
        def size_bytes(self) -> int:
            return 4096

    def topics(self) -> dict[str, int]:
        return {"a": 2, "b": 1}

    def log(self, topic: str, partition: int) -> _Log:
        return self._Log()


def scrape(m: BrokerMetrics, at: float) -> Scrape:
    return Scrape.parse(m.exposition().decode(), at)


def test_idle_ratio_counts_waiting_time():
    clock = FakeClock()
    idle = IdleClock(clock)
    for _ in range(20):  # 0.2 s waiting, 0.8 s working, repeatedly
        idle.enter()
        clock.t += 0.2
        idle.leave()
        clock.t += 0.8
    assert abs(idle.idle_ratio() - 0.2) < 0.05


def test_idle_ratio_includes_a_wait_in_progress():
    clock = FakeClock()
    idle = IdleClock(clock)
    idle.enter()
    clock.t += 1
    idle.leave()
    idle.enter()
    clock.t += 9  # still waiting when scraped
    assert idle.idle_ratio() > 0.95


def test_timed_selector_measures_a_real_loop():
    m = BrokerMetrics()
    start = time.monotonic()
    loop = m.new_event_loop()
    try:
        # A process starved between scheduling the sleep and entering select waits less in
        # select than 0.3 s (a loaded machine): sleep again, bounded, until 0.25 s were idle.
        for _ in range(20):
            loop.run_until_complete(asyncio.sleep(0.3))
            if m.idle.idle_seconds(time.monotonic()) >= 0.25:
                break
    finally:
        loop.close()
    idle = m.idle.idle_seconds(time.monotonic())
    assert 0.25 <= idle <= time.monotonic() - start  # measured, and never more than elapsed


def test_metrics_exposition_has_the_operators_numbers():
    clock = FakeClock()
    m = BrokerMetrics(clock)
    m.attach(log_manager=FakeLogs(), group_lag=lambda: [("g", "a", 0, 7)])
    m.request_observed("Produce", 0.002, 300, 50)
    m.produce_observed("p1", [("a", 0), ("a", 1)], batches=2, records=10)
    text = m.exposition().decode()
    for name in ("hayase_broker_requests_total", "hayase_broker_request_latency_seconds_bucket",
                 "hayase_broker_bytes_in_total", "hayase_broker_client_records_total",
                 "hayase_broker_partitions 3.0", "hayase_broker_partitions_active 2.0",
                 'hayase_broker_log_size_bytes{partition="0",topic="b"} 4096.0',
                 'hayase_broker_group_lag{group="g",partition="0",topic="a"} 7.0',
                 "hayase_broker_open_fds", "hayase_broker_max_fds",
                 "hayase_broker_request_handler_idle_ratio"):
        assert name in text, name
    clock.t += 61
    assert "hayase_broker_partitions_active 0.0" in m.exposition().decode()


def test_doctor_names_tiny_batches_from_round_robin_producers(tmp_path):
    clock = FakeClock()
    m = BrokerMetrics(clock)
    m.attach(data_dir=tmp_path)
    parts = [("t", p) for p in range(48)]
    a = scrape(m, clock.t)
    for second in range(10):  # 5 requests/s, each spreading one record over 8 partitions
        for r in range(5):
            chunk = parts[(second * 5 + r) * 8 % 48:][:8]
            m.produce_observed("rr-producer", chunk, batches=len(chunk), records=len(chunk))
        m.produce_observed("keyed-producer", [("t", 0)], batches=1, records=500)
        clock.t += 1
    b = scrape(m, clock.t)
    findings = diagnose(a, b)
    assert len(findings) == 1, findings
    f = findings[0]
    assert "rr-producer" in f.problem and "tiny batches" in f.problem
    assert "5.0 produce requests/s but writes to 48 partitions" in f.detail
    assert "1.0 records per batch" in f.detail
    assert "producer_key" in f.cure


def test_doctor_names_a_busy_handler_fd_pressure_and_deleted_files():
    text = ("hayase_broker_request_handler_idle_ratio 0.12\nhayase_broker_open_fds 900\n"
            "hayase_broker_max_fds 1024\nhayase_broker_deleted_open_files 3\n")
    b = Scrape.parse(text, 10.0)
    problems = [f.problem for f in diagnose(Scrape(0.0), b)]
    assert problems == ["request handler is busy", "file descriptors near the limit",
                        "deleted files still held open"]
    assert "idle 12%" in str(diagnose(Scrape(0.0), b)[0])
    assert summary(b).startswith("handler idle 12%, fds 900/1024")


def test_healthy_broker_has_no_findings(tmp_path):
    m = BrokerMetrics()
    m.attach(data_dir=tmp_path)
    assert diagnose(scrape(m, 0.0), scrape(m, 1.0)) == []


def test_deleted_open_files_are_counted(tmp_path):
    m = BrokerMetrics()
    m.attach(data_dir=tmp_path)
    assert scrape(m, 0.0).value("hayase_broker_deleted_open_files") == 0
    fd, path = tempfile.mkstemp(dir=tmp_path)
    try:
        os.unlink(path)
        b = scrape(m, 1.0)
        assert b.value("hayase_broker_deleted_open_files") == 1
    finally:
        os.close(fd)


def test_metrics_http_endpoint():
    m = BrokerMetrics()

    async def main() -> bytes:
        server = await m.serve(0)
        port = server.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            data = await reader.read()
            writer.close()
            return data
        finally:
            server.close()
            await server.wait_closed()

    data = asyncio.run(main())
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert b"hayase_broker_open_fds" in data
