"""`hayase broker doctor`: read a running broker's metrics twice and name, in plain words with the
numbers, the problems the Yahoo! JAPAN talk met.

The analysis is a pure function of two scrapes (`diagnose`); the shell fetches them.
"""

from __future__ import annotations

import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

IDLE_ALERT = 0.30
FD_ALERT = 0.80


@dataclass
class Scrape:
    """One reading of /metrics: samples keyed by (name, sorted labels)."""

    at: float
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, at: float) -> Scrape:
        s = cls(at)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                s.samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return s

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def by_label(self, name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for (n, labels), v in self.samples.items():
            if n == name:
                out[dict(labels).get(label, "")] = v
        return out


@dataclass(frozen=True)
class Finding:
    problem: str
    detail: str
    cure: str

    def __str__(self) -> str:
        return f"PROBLEM: {self.problem}\n  {self.detail}\n  what to do: {self.cure}"


def _client_rates(a: Scrape, b: Scrape) -> dict[str, dict[str, float]]:
    dt = max(b.at - a.at, 1e-9)
    out: dict[str, dict[str, float]] = defaultdict(dict)
    names = {
        "requests": "hayase_broker_client_produce_requests_total",
        "partitions": "hayase_broker_client_partitions_written_total",
        "batches": "hayase_broker_client_batches_total",
        "records": "hayase_broker_client_records_total",
    }
    for key, name in names.items():
        before = a.by_label(name, "client_id")
        for cid, v in b.by_label(name, "client_id").items():
            out[cid][key] = (v - before.get(cid, 0.0)) / dt
    for cid, v in b.by_label("hayase_broker_client_partitions_active", "client_id").items():
        out[cid]["active"] = v
    return out


def tiny_batches(a: Scrape, b: Scrape) -> list[Finding]:
    findings = []
    for cid, r in sorted(_client_rates(a, b).items()):
        rate, active = r.get("requests", 0.0), r.get("active", 0.0)
        if rate <= 0 or rate >= active:
            continue
        per_req = r.get("partitions", 0.0) / rate
        per_batch = r.get("records", 0.0) / r["batches"] if r.get("batches") else 0.0
        findings.append(Finding(
            f"producer {cid or '(no client id)'} sends tiny batches",
            f"{rate:.1f} produce requests/s but writes to {active:.0f} partitions; "
            f"{per_req:.1f} partitions per request, {per_batch:.1f} records per batch",
            "give each producer instance one key (hayase's producer_key partitioner) or use the "
            "sticky partitioner, so each request carries one big batch",
        ))
    return findings


def handler_idle(b: Scrape) -> list[Finding]:
    idle = b.value("hayase_broker_request_handler_idle_ratio")
    if idle is None or idle >= IDLE_ALERT:
        return []
    return [Finding(
        "request handler is busy",
        f"idle {idle:.0%} of the time (alert below {IDLE_ALERT:.0%})",
        "look for producers with tiny batches (above); fewer, larger requests free the handler",
    )]


def file_descriptors(b: Scrape) -> list[Finding]:
    out = []
    fds, limit = b.value("hayase_broker_open_fds"), b.value("hayase_broker_max_fds")
    if fds is not None and limit and fds > FD_ALERT * limit:
        out.append(Finding(
            "file descriptors near the limit",
            f"{fds:.0f} open of {limit:.0f} ({fds / limit:.0%}; alert above {FD_ALERT:.0%})",
            "raise the limit (ulimit -n) or reduce partitions and segments (larger segment.bytes)",
        ))
    deleted = b.value("hayase_broker_deleted_open_files")
    if deleted:
        out.append(Finding(
            "deleted files still held open",
            f"{deleted:.0f} descriptors point at deleted files; their disk space is not released",
            "this is a broker bug (segments must be closed when deleted): restart the broker and report it",
        ))
    return out


def diagnose(a: Scrape, b: Scrape) -> list[Finding]:
    return tiny_batches(a, b) + handler_idle(b) + file_descriptors(b)


def summary(b: Scrape) -> str:
    idle = b.value("hayase_broker_request_handler_idle_ratio")
    fds, limit = b.value("hayase_broker_open_fds"), b.value("hayase_broker_max_fds")
    parts = [f"handler idle {idle:.0%}" if idle is not None else "handler idle n/a",
             f"fds {fds:.0f}/{limit:.0f}" if fds is not None and limit else "fds n/a"]
    total = b.value("hayase_broker_partitions")
    if total is not None:
        parts.append(f"partitions {total:.0f} ({b.value('hayase_broker_partitions_active') or 0:.0f} active)")
    return ", ".join(parts)


def fetch(url: str, timeout: float = 10.0) -> Scrape:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - operator-given URL
        return Scrape.parse(resp.read().decode(), time.monotonic())


def run(url: str, interval: float) -> tuple[str, list[Finding]]:
    a = fetch(url)
    time.sleep(interval)
    b = fetch(url)
    return summary(b), diagnose(a, b)
