"""The dashboard's data folding and its ASGI wrapper, without a broker or a server."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import orjson

from hayase.ads import results
from hayase.ads.live import LiveState, parse_broker_metrics
from hayase.server.dashboard import with_dashboard


def _wkey(key: str, start: int) -> bytes:
    return key.encode() + struct.pack(">q", start)


def test_live_state_folds_sink_records() -> None:
    st = LiveState()
    for start, imps, clicks, ctr in ((0, 10, 1, 0.1), (60_000, 20, 1, 0.05),
                                     (120_000, 0, 1, "Infinity")):
        st.apply(results.CTR, _wkey("c01", start), orjson.dumps(
            {"IMPRESSIONS": imps, "CLICKS": clicks, "CTR": ctr}), 0)
    st.apply(results.SPEND, b"c01", orjson.dumps(
        {"NAME": "Sakura", "SPEND": 950, "CLICKS": 12, "BUDGET": 1000}), 0)
    st.apply(results.ALERTS, b"c01", orjson.dumps(
        {"NAME": "Sakura", "SPEND": 950, "BUDGET": 1000}), 7)
    st.apply(results.TOP_ADS, _wkey("c01", 0), orjson.dumps(
        {"AD_CLICKS": {"c01-ad1": 3, "c01-ad2": 5}, "CLICKS": 8}), 0)
    for ts in (1_000, 1_500, 2_000):
        st.apply(results.ATTRIBUTED, b"c01", b'{"CLICK_ID":"k"}', 0, ts)
    st.apply(results.ATTRIBUTED, b"c01", None, 0, 3_000)  # a tombstone is not a click
    snap = st.snapshot()
    (camp,) = snap["campaigns"]
    assert camp["spend"] == 950 and camp["budget"] == 1000 and camp["name"] == "Sakura"
    assert camp["ctr_now"] == 0.05  # the last full minute, not the one still filling
    assert [p[1] for p in camp["ctr"]] == [0.1, 0.05, None]  # Infinity is not drawn
    assert snap["attributed_total"] == 3
    assert snap["attributed_per_second"] == [(1, 2), (2, 1)]
    assert snap["alerts"][0]["campaign"] == "c01"
    assert snap["top_ads"] == [("c01", "c01-ad2", 5), ("c01", "c01-ad1", 3)]


def test_parse_broker_metrics() -> None:
    text = ("# HELP x\nhayase_broker_request_handler_idle_ratio 0.75\n"
            "hayase_broker_open_fds 130.0\nhayase_broker_max_fds 20000.0\n"
            "hayase_broker_requests_total{api=\"Fetch\"} 5.0\n")
    assert parse_broker_metrics(text) == {
        "hayase_broker_request_handler_idle_ratio": 0.75, "hayase_broker_open_fds": 130.0,
        "hayase_broker_max_fds": 20000.0}


def _call(app: Any, path: str, method: str = "GET") -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(msg: dict[str, Any]) -> None:
        sent.append(msg)

    scope = {"type": "http", "path": path, "method": method, "headers": []}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_dashboard_wrapper_routes() -> None:
    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"inner"})

    app = with_dashboard(inner, lambda: {"attributed_total": 3, "keys": {1: "a"}})
    assert _call(app, "/info") == (299, b"inner")  # everything else: the server's app
    status, body = _call(app, "/dashboard/api/state")
    assert status == 200 and orjson.loads(body) == {"attributed_total": 3, "keys": {"1": "a"}}
    status, body = _call(app, "/dashboard")
    assert status == 200 and b"CTR per campaign" in body
    assert _call(app, "/dashboard", "POST")[0] == 405


def test_budget_top_ups_once_per_raise() -> None:
    from hayase.ads.app import budget_top_ups

    topped: dict[str, int] = {}
    camps = [{"id": "c01", "name": "Sakura", "spend": 1010, "budget": 1000},
             {"id": "c02", "name": "Kumo", "spend": 10, "budget": 1000},
             {"id": "c03", "name": "Fuji", "spend": 5, "budget": None}]
    (e,) = budget_top_ups(camps, topped, 42)
    assert (e.topic, e.key, e.value, e.timestamp) == \
        ("ad-campaigns", "c01", {"name": "Sakura", "budget": 1600}, 42)
    assert budget_top_ups(camps, topped, 43) == []  # the pipeline does not show it yet
    camps[0].update(budget=1600, spend=1700)
    assert [x.value["budget"] for x in budget_top_ups(camps, topped, 44)
            if x.value] == [2600]
