"""The pipeline's sink topics folded into final results, and the comparison with the batch
computation (:mod:`hayase.ads.batch`). Pure: records in, findings out.

Sink formats (see pipeline.sql): keys are KAFKA strings (windowed tables append the 8-byte
big-endian window start, Kafka Streams' TimeWindowedSerializer), values are JSON objects with
upper-case column names. A table's final value is its last record per key; a tombstone deletes.
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from hayase.ads.batch import Expected

ATTRIBUTED = "ATTRIBUTED_CLICKS"
CTR = "CTR_PER_MINUTE"
SPEND = "SPEND_VS_BUDGET"
ALERTS = "BUDGET_ALERTS"
TOP_ADS = "TOP_ADS_HOURLY"
SINK_TOPICS = (ATTRIBUTED, CTR, SPEND, ALERTS, TOP_ADS)
WINDOWED = (CTR, TOP_ADS)


@dataclass
class Actual:
    attributed: Counter[tuple[str, str, str, str, int, int]] = field(default_factory=Counter)
    ctr: dict[tuple[str, int], tuple[int, int, float]] = field(default_factory=dict)
    spend: dict[str, tuple[str, int, int, int]] = field(default_factory=dict)
    alerts: set[str] = field(default_factory=set)
    top_ads: dict[tuple[str, int], dict[str, int]] = field(default_factory=dict)
    records: Counter[str] = field(default_factory=Counter)


def split_key(topic: str, key: bytes | None) -> tuple[str, int | None]:
    raw = key or b""
    if topic in WINDOWED:
        return raw[:-8].decode(), struct.unpack(">q", raw[-8:])[0]
    return raw.decode(), None


def _double(v: Any) -> float:
    if isinstance(v, str):  # ksqlDB writes "NaN" / "Infinity" / "-Infinity" as strings
        return float(v.replace("Infinity", "inf"))
    return float(v)


def fold(records: Iterable[tuple[str, bytes | None, bytes | None]]) -> Actual:
    """Records of the sink topics in each topic's partition order."""
    act = Actual()
    for topic, key, value in records:
        act.records[topic] += 1
        k, start = split_key(topic, key)
        doc: dict[str, Any] | None = orjson.loads(value) if value is not None else None
        if topic == ATTRIBUTED and doc is not None:
            act.attributed[(doc["IMPRESSION_ID"], doc["CLICK_ID"], doc["AD_ID"], k,
                            doc["CPC"], doc["CLICK_TS"])] += 1
        elif topic == CTR and start is not None:
            if doc is None:
                act.ctr.pop((k, start), None)
            else:
                act.ctr[(k, start)] = (doc["IMPRESSIONS"], doc["CLICKS"], _double(doc["CTR"]))
        elif topic == SPEND:
            if doc is None:
                act.spend.pop(k, None)
            else:
                act.spend[k] = (doc["NAME"], doc["SPEND"], doc["CLICKS"], doc["BUDGET"])
        elif topic == ALERTS and doc is not None:
            act.alerts.add(k)
        elif topic == TOP_ADS and start is not None:
            if doc is None:
                act.top_ads.pop((k, start), None)
            else:
                act.top_ads[(k, start)] = dict(doc["AD_CLICKS"])
    return act


@dataclass
class Finding:
    name: str
    expected: int
    actual: int
    differences: list[str]

    @property
    def ok(self) -> bool:
        return not self.differences


def _same_float(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _diff_maps(name: str, exp: dict[Any, Any], act: dict[Any, Any], limit: int = 5,
               eq: Any = None) -> list[str]:
    out = []
    for k in sorted(set(exp) | set(act), key=repr):
        e, a = exp.get(k), act.get(k)
        same = (e is not None and a is not None and eq(e, a)) if eq else e == a
        if not same:
            out.append(f"{name} {k}: expected {e}, got {a}")
    return out[:limit] + ([f"... {len(out) - limit} more"] if len(out) > limit else [])


def compare(exp: Expected, act: Actual) -> list[Finding]:
    findings = []
    want = {(imp, *rest[:2], rest[2], rest[3], rest[4]) for imp, rest in exp.attributed.items()}
    diffs = []
    extra = [r for r in act.attributed if r not in want]
    missing = [r for r in want if r not in act.attributed]
    repeated = [r for r, n in act.attributed.items() if n > 1]
    diffs += [f"unexpected attributed click {r}" for r in extra[:5]]
    diffs += [f"missing attributed click {r}" for r in missing[:5]]
    diffs += [f"attributed click emitted {act.attributed[r]} times: {r}" for r in repeated[:5]]
    findings.append(Finding("attributed clicks", len(want), sum(act.attributed.values()), diffs))

    def ctr_eq(e: tuple[int, int, float], a: tuple[int, int, float]) -> bool:
        return e[:2] == a[:2] and _same_float(e[2], a[2])

    findings.append(Finding("CTR per campaign per minute (windows)", len(exp.ctr), len(act.ctr),
                            _diff_maps("ctr", exp.ctr, act.ctr, eq=ctr_eq)))
    findings.append(Finding("spend per campaign vs budget", len(exp.spend), len(act.spend),
                            _diff_maps("spend", exp.spend, act.spend)))
    alert_diffs = [f"alerts: expected {sorted(exp.alerts)}, got {sorted(act.alerts)}"] \
        if exp.alerts != act.alerts else []
    findings.append(Finding("campaigns alerted at 90% of budget", len(exp.alerts),
                            len(act.alerts), alert_diffs))
    findings.append(Finding("top ads per hour (hopping windows)", len(exp.top_ads),
                            len(act.top_ads), _diff_maps("top_ads", exp.top_ads, act.top_ads)))
    return findings
