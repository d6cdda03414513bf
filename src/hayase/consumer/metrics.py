"""Prometheus metrics of a ParallelConsumer. Each consumer has its own registry (so several
consumers in one process, as in tests, do not collide); `serve(port)` exposes it over HTTP on
127.0.0.1 unless another address is given."""

from __future__ import annotations

import contextlib
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

_PART = ["topic", "partition"]


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.processed = Counter("hayase_consumer_processed_records",
                                 "Records completed (processed or dead-lettered)", _PART,
                                 registry=r)
        self.processed_rate = Gauge("hayase_consumer_processed_per_second",
                                    "Records completed per second over the last interval",
                                    registry=r)
        self.in_flight = Gauge("hayase_consumer_in_flight_records",
                               "Records being processed now", _PART, registry=r)
        self.pending = Gauge("hayase_consumer_pending_records",
                             "Fetched records not yet committable", _PART, registry=r)
        self.oldest_pending_age = Gauge("hayase_consumer_oldest_pending_age_seconds",
                                        "Age of the smallest incomplete fetched offset", _PART,
                                        registry=r)
        self.paused = Gauge("hayase_consumer_partition_paused",
                            "1 while the partition is paused for back-pressure", _PART,
                            registry=r)
        self.commit_lag = Gauge("hayase_consumer_commit_lag_records",
                                "Fetched offsets past the last committed offset", _PART,
                                registry=r)
        self.committed = Gauge("hayase_consumer_committed_offset",
                               "Last offset committed", _PART, registry=r)
        self.retries = Counter("hayase_consumer_retries", "Processing retries", _PART,
                               registry=r)
        self.dead_lettered = Counter("hayase_consumer_dead_lettered_records",
                                     "Records written to the dead-letter topic", _PART,
                                     registry=r)
        self.dead_letter_failures = Counter("hayase_consumer_dead_letter_failures",
                                            "Failed dead-letter writes (retried)", _PART,
                                            registry=r)
        self._server: Any = None

    def forget(self, topic: str, partition: int) -> None:
        """Drop the per-partition gauges of a partition no longer assigned."""
        labels = (topic, str(partition))
        for g in (self.in_flight, self.pending, self.oldest_pending_age, self.paused,
                  self.commit_lag):
            with contextlib.suppress(KeyError):
                g.remove(*labels)

    def sample(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)

    def serve(self, port: int, addr: str = "127.0.0.1") -> int:
        """Start the HTTP exporter; returns the bound port (useful with port 0)."""
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        self._server = server
        return int(server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
