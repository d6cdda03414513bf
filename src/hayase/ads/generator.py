"""The ads platform's event generator: a pure, seeded function of (seed, rate, start time).

It yields the events of a small LINE-Ads-like platform in the order a real front end would
send them (by *send time*), each with its event time as the record timestamp:

- ``ad-campaigns`` (compacted): campaign master data, key campaign_id, budget in yen;
- ``ad-impressions``: key impression_id; ad, campaign, user, placement and the price per click
  (cpc, yen) the auction settled;
- ``ad-clicks``: key impression_id (the SDK posts the impression it came from); a click follows
  some impressions after a log-normal delay (median ~20 s); a few come more than an hour later
  (outside the attribution window) and a few are re-sent by the SDK (an exact copy, sent a
  couple of seconds later: same click_id, same event time);
- ``app-events``: key user_id; a user viewed (or bought) a product; the value carries the
  segment changes the segment updater applies ({"add": [...], "remove": [...]}).

No I/O here: :mod:`hayase.ads.producer` sends these events to Kafka, :mod:`hayase.ads.batch`
computes the pipeline's expected results from the same list.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

IMPRESSIONS = "ad-impressions"
CLICKS = "ad-clicks"
CAMPAIGNS = "ad-campaigns"
APP_EVENTS = "app-events"
TOPICS = (CAMPAIGNS, IMPRESSIONS, CLICKS, APP_EVENTS)

HOUR_MS = 3600_000
PLACEMENTS = ("timeline", "news", "manga", "blog")
CATEGORIES = ("shoes", "games", "travel", "books", "food", "music")
ADVERTISERS = ("Sakura Shoes", "Kumo Games", "Fuji Travel", "Hon Books", "Umami Foods",
               "Oto Music", "Hikari Mobile", "Yama Outdoor")


@dataclass(frozen=True)
class Event:
    topic: str
    key: str
    value: dict[str, Any] | None
    timestamp: int  # event time (the record timestamp), epoch ms
    send_ms: int  # when the front end sends it (the order of the stream)


@dataclass(frozen=True)
class Ad:
    ad_id: str
    campaign_id: str
    cpc: int  # yen per click
    ctr: float  # probability that an impression is clicked


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    name: str
    category: str
    budget: int  # yen
    weight: float  # share of impressions
    ads: tuple[Ad, ...]


@dataclass
class GeneratorConfig:
    seed: int = 7
    rate: float = 50.0  # impressions per second of event time
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    campaigns: int = 8
    users: int = 500
    duplicate_ratio: float = 0.05  # clicks re-sent by the SDK
    late_ratio: float = 0.04  # clicks more than an hour after their impression
    app_event_ratio: float = 0.6  # app events per impression
    # Budgets are sized so that about half of the campaigns pass 90% of their budget after
    # this many impressions.
    budget_horizon: int = 3000
    # Put before impression and click ids: a new demo run must not reuse an earlier run's ids
    # (the pipeline would take its clicks for re-sent ones).
    id_prefix: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def make_campaigns(cfg: GeneratorConfig) -> list[Campaign]:
    rnd = random.Random(f"{cfg.seed}-campaigns")
    weights = [rnd.uniform(0.5, 2.0) for _ in range(cfg.campaigns)]
    total = sum(weights)
    out = []
    for i in range(cfg.campaigns):
        cid = f"c{i + 1:02d}"
        ads = tuple(Ad(f"{cid}-ad{j + 1}", cid, rnd.randrange(20, 121, 5), rnd.uniform(0.02, 0.10))
                    for j in range(rnd.randint(2, 4)))
        share = weights[i] / total
        expected = cfg.budget_horizon * share * sum(a.ctr * a.cpc for a in ads) / len(ads)
        # Half the campaigns get a budget near (below) the expected spend, the others plenty.
        factor = rnd.uniform(0.6, 1.0) if i % 2 == 0 else rnd.uniform(2.0, 4.0)
        budget = max(100, int(round(expected * factor / 100.0)) * 100)
        out.append(Campaign(cid, ADVERTISERS[i % len(ADVERTISERS)],
                            CATEGORIES[i % len(CATEGORIES)], budget, share, ads))
    return out


def campaign_events(cfg: GeneratorConfig) -> list[Event]:
    """The master data records, timestamped just before the first impression."""
    t = cfg.start_ms - 1000
    return [Event(CAMPAIGNS, c.campaign_id, {"name": c.name, "budget": c.budget}, t, t)
            for c in make_campaigns(cfg)]


def _click_delay_ms(rnd: random.Random, late_ratio: float) -> int:
    if rnd.random() < late_ratio:
        return int(rnd.uniform(1.02, 3.0) * HOUR_MS)  # outside the attribution window
    return min(int(rnd.lognormvariate(math.log(20_000), 1.0)), 50 * 60_000)


def events(cfg: GeneratorConfig, impressions: int | None = None) -> Iterator[Event]:
    """Impressions, clicks and app events in send order (campaign records not included).
    With ``impressions`` set, stop after that many impressions and then flush every click
    still to come; else run forever."""
    rnd = random.Random(cfg.seed)
    campaigns = make_campaigns(cfg)
    weights = [c.weight for c in campaigns]
    pending: list[tuple[int, int, Event]] = []  # (send_ms, seq, event): clicks to come
    seq = 0
    t = float(cfg.start_ms)
    n = 0
    while impressions is None or n < impressions:
        t += rnd.expovariate(cfg.rate) * 1000.0
        now = int(t)
        while pending and pending[0][0] <= now:
            yield heapq.heappop(pending)[2]
        n += 1
        camp = rnd.choices(campaigns, weights)[0]
        ad = rnd.choice(camp.ads)
        user = f"u{rnd.randrange(cfg.users):04d}"
        imp_id = f"{cfg.id_prefix}i{n:08d}"
        yield Event(IMPRESSIONS, imp_id, {"ad_id": ad.ad_id, "campaign_id": camp.campaign_id,
                                          "user_id": user, "placement": rnd.choice(PLACEMENTS),
                                          "cpc": ad.cpc}, now, now)
        if rnd.random() < ad.ctr:
            click_ts = now + _click_delay_ms(rnd, cfg.late_ratio)
            click = Event(CLICKS, imp_id, {"click_id": f"{cfg.id_prefix}k{n:08d}", "user_id": user},
                          click_ts, click_ts)
            seq += 1
            heapq.heappush(pending, (click_ts, seq, click))
            if rnd.random() < cfg.duplicate_ratio:
                resend = click_ts + rnd.randrange(500, 5000)
                seq += 1
                heapq.heappush(pending, (resend, seq, Event(CLICKS, imp_id, click.value,
                                                            click_ts, resend)))
        if rnd.random() < cfg.app_event_ratio:
            yield _app_event(rnd, user, camp, now)
    while pending:
        yield heapq.heappop(pending)[2]


def _app_event(rnd: random.Random, user: str, camp: Campaign, now: int) -> Event:
    category = camp.category if rnd.random() < 0.7 else rnd.choice(CATEGORIES)
    product = f"p-{category}-{rnd.randrange(50):02d}"
    if rnd.random() < 0.1:  # a purchase: a buyer now, no longer just browsing
        value = {"user_id": user, "event": "purchase", "product_id": product,
                 "category": category, "add": [f"buyer:{category}"],
                 "remove": [f"viewed:{category}"]}
    else:
        value = {"user_id": user, "event": "view", "product_id": product,
                 "category": category, "add": [f"viewed:{category}"]}
    return Event(APP_EVENTS, user, value, now, now)


def bounded(cfg: GeneratorConfig, impressions: int) -> list[Event]:
    """Everything the check mode sends: campaigns first, then ``impressions`` impressions with
    their clicks and app events."""
    return campaign_events(cfg) + list(events(cfg, impressions))
