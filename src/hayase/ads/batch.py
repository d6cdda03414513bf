"""The pipeline's results computed in plain Python over a finished list of events: what the
check mode compares the streaming results with. Written from the SQL's meaning, not from the
engine's code:

- a click is attributed when its impression exists and |click time - impression time| <= 1 h
  (Kafka Streams' JoinWindows bounds are inclusive); one attribution per impression (the first
  click; re-sent clicks are exact copies);
- CTR per campaign per one-minute tumbling window: impressions by impression time, attributed
  clicks by click time, ctr = clicks / impressions as a Java double (x/0 is Infinity);
- spend per campaign = sum of the cpc of its attributed clicks, with the campaign's budget;
  alerts for campaigns whose spend reached 90% of the budget;
- top ads: attributed clicks per ad per campaign in one-hour windows advancing by ten minutes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hayase.ads.generator import CAMPAIGNS, CLICKS, HOUR_MS, IMPRESSIONS, Event

MINUTE_MS = 60_000
HOP_SIZE_MS = HOUR_MS
HOP_ADVANCE_MS = 10 * MINUTE_MS


@dataclass
class Expected:
    # impression_id -> (click_id, ad_id, campaign_id, cpc, click_ts)
    attributed: dict[str, tuple[str, str, str, int, int]] = field(default_factory=dict)
    # (campaign_id, window start) -> (impressions, clicks, ctr)
    ctr: dict[tuple[str, int], tuple[int, int, float]] = field(default_factory=dict)
    # campaign_id -> (name, spend, clicks, budget)
    spend: dict[str, tuple[str, int, int, int]] = field(default_factory=dict)
    alerts: set[str] = field(default_factory=set)
    # (campaign_id, window start) -> {ad_id: clicks}
    top_ads: dict[tuple[str, int], dict[str, int]] = field(default_factory=dict)
    clicks_sent: int = 0
    duplicates: int = 0
    outside_window: int = 0


def java_div(a: int, b: int) -> float:
    if b == 0:
        return float("nan") if a == 0 else float("inf")
    return a / b


def hopping_starts(ts: int, size: int, advance: int) -> list[int]:
    """Kafka Streams' TimeWindows: every start s (a multiple of advance) with s <= ts < s+size."""
    last = ts - ts % advance
    first = max(0, last - size + advance)
    return list(range(first, last + 1, advance))


def compute(events: Iterable[Event]) -> Expected:
    exp = Expected()
    campaigns: dict[str, dict[str, Any]] = {}
    impressions: dict[str, Event] = {}
    clicks: list[Event] = []
    for e in events:
        if e.topic == CAMPAIGNS and e.value is not None:
            campaigns[e.key] = e.value
        elif e.topic == IMPRESSIONS:
            impressions[e.key] = e
        elif e.topic == CLICKS:
            clicks.append(e)
    exp.clicks_sent = len(clicks)
    for c in clicks:
        imp = impressions.get(c.key)
        assert c.value is not None
        if imp is None or abs(c.timestamp - imp.timestamp) > HOUR_MS:
            exp.outside_window += 1
            continue
        if c.key in exp.attributed:
            exp.duplicates += 1
            continue
        v = imp.value
        assert v is not None
        exp.attributed[c.key] = (c.value["click_id"], v["ad_id"], v["campaign_id"], v["cpc"],
                                 c.timestamp)
    imps: Counter[tuple[str, int]] = Counter()
    for imp in impressions.values():
        assert imp.value is not None
        imps[(imp.value["campaign_id"], imp.timestamp - imp.timestamp % MINUTE_MS)] += 1
    clks: Counter[tuple[str, int]] = Counter()
    spend: Counter[str] = Counter()
    nclicks: Counter[str] = Counter()
    top: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    for _click_id, ad, camp, cpc, ts in exp.attributed.values():
        clks[(camp, ts - ts % MINUTE_MS)] += 1
        spend[camp] += cpc
        nclicks[camp] += 1
        for start in hopping_starts(ts, HOP_SIZE_MS, HOP_ADVANCE_MS):
            top[(camp, start)][ad] += 1
    for k in set(imps) | set(clks):
        exp.ctr[k] = (imps[k], clks[k], java_div(clks[k], imps[k]))
    for camp, total in spend.items():
        master = campaigns.get(camp)
        if master is None:  # an inner table-table join: no campaign row, no output
            continue
        exp.spend[camp] = (master["name"], total, nclicks[camp], master["budget"])
        if total * 10 >= master["budget"] * 9:
            exp.alerts.add(camp)
    exp.top_ads = {k: dict(v) for k, v in top.items()}
    return exp
