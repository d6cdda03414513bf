"""The ads platform's dashboard, served next to the server's REST API and console.

Not part of the server's own app: :func:`with_dashboard` wraps any ASGI app (the KsqlApp) and
answers two paths itself, ``/dashboard`` (a static page, no external scripts) and
``/dashboard/api/state`` (a JSON snapshot from the given function); everything else goes to the
wrapped app. `hayase demo` uses it with hayase.ads.live.Collector.snapshot."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import orjson

PAGE = Path(__file__).parent / "dashboard_static" / "ads.html"
PATHS = ("/dashboard", "/dashboard/", "/dashboard/api/state")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _default(o: Any) -> Any:
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    return str(o)


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()),
                            (b"cache-control", b"no-store"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def with_dashboard(app: ASGIApp, snapshot: Callable[[], dict[str, Any]]) -> ASGIApp:
    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") not in PATHS:
            await app(scope, receive, send)
            return
        if scope.get("method") not in ("GET", "HEAD"):
            await _respond(send, 405, b"method not allowed", "text/plain")
        elif scope["path"] == "/dashboard/api/state":
            body = orjson.dumps(snapshot(), default=_default,
                                option=orjson.OPT_NON_STR_KEYS)
            await _respond(send, 200, body, "application/json")
        else:
            await _respond(send, 200, PAGE.read_bytes(), "text/html; charset=utf-8")

    return dispatch
