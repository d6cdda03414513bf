"""The dashboard's data: a collector thread that tails the pipeline's sink topics and samples
consumer lag, the broker's metrics and the segment store, and keeps a JSON-able snapshot.

Folding (what a record means) is pure and lives in :class:`LiveState`; the thread only feeds it.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

from hayase.ads import results
from hayase.client.admin import Admin
from hayase.client.config import quiet_logger

SERIES_POINTS = 180
CTR_WINDOWS = 15  # minutes of CTR history per campaign


@dataclass
class LiveState:
    """Latest values folded from the sink topics (windowed tables by window start)."""

    ctr: dict[str, dict[int, tuple[int, int, float]]] = field(default_factory=dict)
    spend: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=20))
    top_ads: dict[str, dict[int, dict[str, int]]] = field(default_factory=dict)
    attributed_total: int = 0
    # attributed clicks per second of click time (the record timestamp)
    attributed_per_second: dict[int, int] = field(default_factory=dict)
    series: dict[str, deque[tuple[int, float]]] = field(default_factory=dict)

    def apply(self, topic: str, key: bytes | None, value: bytes | None, now_s: int,
              timestamp_ms: int = 0) -> None:
        k, start = results.split_key(topic, key)
        doc = orjson.loads(value) if value is not None else None
        if topic == results.ATTRIBUTED and doc is not None:
            self.attributed_total += 1
            second = timestamp_ms // 1000
            per = self.attributed_per_second
            per[second] = per.get(second, 0) + 1
            if len(per) > 2 * SERIES_POINTS:
                for old in sorted(per)[:-SERIES_POINTS]:
                    del per[old]
        elif topic == results.CTR and start is not None and doc is not None:
            windows = self.ctr.setdefault(k, {})
            windows[start] = (doc["IMPRESSIONS"], doc["CLICKS"], results._double(doc["CTR"]))
            for old in sorted(windows)[:-CTR_WINDOWS]:
                del windows[old]
        elif topic == results.SPEND and doc is not None:
            self.spend[k] = {"name": doc["NAME"], "spend": doc["SPEND"],
                             "clicks": doc["CLICKS"], "budget": doc["BUDGET"]}
        elif topic == results.ALERTS and doc is not None:
            self.alerts.append({"campaign": k, "name": doc["NAME"], "spend": doc["SPEND"],
                                "budget": doc["BUDGET"], "at": now_s})
        elif topic == results.TOP_ADS and start is not None and doc is not None:
            windows2 = self.top_ads.setdefault(k, {})
            windows2[start] = dict(doc["AD_CLICKS"])
            for old in sorted(windows2)[:-8]:
                del windows2[old]

    def sample(self, name: str, t: int, v: float) -> None:
        self.series.setdefault(name, deque(maxlen=SERIES_POINTS)).append((t, v))

    def top_ads_now(self, limit: int = 10) -> list[tuple[str, str, int]]:
        """(campaign, ad, clicks) in each campaign's latest hopping window, best first."""
        rows = []
        for camp, windows in self.top_ads.items():
            if windows:
                latest = windows[max(windows)]
                rows += [(camp, ad, n) for ad, n in latest.items()]
        return sorted(rows, key=lambda r: (-r[2], r[1]))[:limit]

    def snapshot(self) -> dict[str, Any]:
        def ctr_value(x: float) -> float | None:
            return x if x == x and x not in (float("inf"), float("-inf")) else None

        campaigns = []
        for camp in sorted(set(self.ctr) | set(self.spend)):
            windows = self.ctr.get(camp, {})
            s = self.spend.get(camp, {})
            # The current minute is still filling (clicks come ~20 s after impressions):
            # the legend shows the last full minute.
            starts = sorted(windows)
            latest = windows[starts[-2]] if len(starts) >= 2 else None
            campaigns.append({
                "id": camp, "name": s.get("name", camp), "spend": s.get("spend", 0),
                "budget": s.get("budget"), "clicks": s.get("clicks", 0),
                "ctr": [[w, ctr_value(v[2]), v[0], v[1]] for w, v in sorted(windows.items())],
                "ctr_now": ctr_value(latest[2]) if latest else None,
            })
        return {
            "campaigns": campaigns,
            "attributed_total": self.attributed_total,
            "attributed_per_second": sorted(self.attributed_per_second.items())[-SERIES_POINTS:],
            "alerts": list(self.alerts)[::-1],
            "top_ads": self.top_ads_now(),
            "series": {k: list(v) for k, v in self.series.items()},
        }


_METRIC = re.compile(r"^(hayase_broker_request_handler_idle_ratio|hayase_broker_open_fds|"
                     r"hayase_broker_max_fds)(\{[^}]*\})?\s+([0-9.eE+-]+)$", re.M)


def parse_broker_metrics(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, _labels, value in _METRIC.findall(text):
        out[name] = float(value)
    return out


class Collector:
    """Tails the sink topics and samples lag / broker metrics / extra probes once a second."""

    def __init__(self, conf: Mapping[str, object],
                 groups: Callable[[], dict[str, tuple[str, list[str]]]],
                 metrics_url: str | None = None,
                 probes: Mapping[str, Callable[[], dict[str, Any]]] | None = None) -> None:
        self.conf = dict(conf)
        self.groups = groups  # label -> (group id, its source topics), asked each sample
        self.metrics_url = metrics_url
        self.probes = dict(probes or {})
        self.state = LiveState()
        self.extra: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ads-dashboard", daemon=True)
        self._offset_consumers: dict[str, Consumer] = {}
        self.admin = Admin(self.conf)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(15)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            snap = self.state.snapshot()
            snap.update(self.extra)
        snap["time"] = time.time()
        return snap

    def _assign(self, consumer: Consumer) -> set[str]:
        topics = self.admin.metadata().topics
        assign = []
        found = set()
        for t in results.SINK_TOPICS:
            md = topics.get(t)
            if md is not None and md.error is None:
                found.add(t)
                assign += [TopicPartition(t, p, -2) for p in md.partitions]  # from the start
        if assign:
            consumer.assign(assign)
        return found

    def _run(self) -> None:
        consumer = Consumer({**self.conf, "group.id": "hayase-ads-dashboard",
                             "enable.auto.commit": False, "logger": quiet_logger()})
        assigned: set[str] = set()
        next_sample = 0.0
        try:
            while not self.stop_event.is_set():
                if len(assigned) < len(results.SINK_TOPICS):
                    got = self._assign(consumer)
                    if got != assigned:
                        assigned = got
                if assigned:
                    msgs = consumer.consume(1000, 0.2)
                else:
                    msgs = []
                    self.stop_event.wait(0.5)
                now_s = int(time.time())
                with self.lock:
                    for m in msgs:
                        if not m.error():
                            self.state.apply(m.topic() or "", m.key(), m.value(), now_s,
                                             m.timestamp()[1])
                if time.monotonic() >= next_sample:
                    next_sample = time.monotonic() + 1.0
                    self._sample(now_s)
        finally:
            consumer.close()
            for c in self._offset_consumers.values():
                c.close()

    def _lag(self, group: str, topics: list[str]) -> int:
        c = self._offset_consumers.get(group)
        if c is None:
            c = Consumer({**self.conf, "group.id": group, "enable.auto.commit": False,
                          "logger": quiet_logger()})
            self._offset_consumers[group] = c
        total = 0
        for t in topics:
            parts = self.admin.partitions_of(t)
            ends = self.admin.offsets(t, parts)
            done = c.committed([TopicPartition(t, p) for p in parts], timeout=5)
            for tp in done:
                low, high = ends[tp.partition]
                total += max(0, high - max(tp.offset, low))
        return total

    def _sample(self, now_s: int) -> None:
        values: dict[str, float] = {}
        lags: dict[str, int] = {}
        try:
            for label, (group, topics) in self.groups().items():
                lags[label] = self._lag(group, topics)
        except Exception as e:  # a metadata hiccup: try again next second
            values["lag_error"] = 1.0
            self.extra["lag_error"] = str(e)
        if self.metrics_url:
            try:
                with urllib.request.urlopen(self.metrics_url, timeout=2) as r:
                    m = parse_broker_metrics(r.read().decode())
                if "hayase_broker_request_handler_idle_ratio" in m:
                    values["handler_idle"] = m["hayase_broker_request_handler_idle_ratio"]
                if "hayase_broker_open_fds" in m:
                    values["open_fds"] = m["hayase_broker_open_fds"]
                self.extra["max_fds"] = m.get("hayase_broker_max_fds")
            except OSError as e:
                self.extra["metrics_error"] = str(e)
        probed: dict[str, Any] = {}
        for name, probe in self.probes.items():
            try:
                probed[name] = probe()
            except Exception as e:  # a probe must never stop the dashboard
                probed[name] = {"error": str(e)}
        with self.lock:
            for k, v in values.items():
                self.state.sample(k, now_s, v)
            for label, lag in lags.items():
                self.state.sample(f"lag:{label}", now_s, lag)
            self.extra["lag"] = lags
            self.extra.update(probed)
