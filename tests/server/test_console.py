"""The web console in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
the sidebar lists the stream, a push query typed in the SQL editor shows rows as they are
inserted, and the queries panel shows it with its records/s and lag charts."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from server_helpers import Running, wait_until

from hayase.client.ksql import KsqlClient

CHROMIUM = "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium not installed")


def test_console_runs_a_push_query_and_shows_rows(make_server: Callable[..., Running]) -> None:
    srv = make_server()
    with KsqlClient(srv.url) as c:
        c.ksql("CREATE STREAM CLICKS (K STRING KEY, N INT) WITH (KAFKA_TOPIC='clicks', "
               "VALUE_FORMAT='JSON', PARTITIONS=1);")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page()
            page.goto(srv.url + "/")
            page.wait_for_selector("#streams li:has-text('CLICKS')")
            page.fill("#sql", "SELECT K, N FROM CLICKS EMIT CHANGES;")
            page.click("#run")
            page.wait_for_selector("#rows thead th:has-text('N')")
            assert wait_until(lambda: bool(srv.server.transient))
            with KsqlClient(srv.url) as c:
                c.ksql("INSERT INTO CLICKS (K, N) VALUES ('a', 1);"
                       "INSERT INTO CLICKS (K, N) VALUES ('b', 2);")
            page.wait_for_selector("#rows tbody tr:nth-child(2)")
            rows = page.eval_on_selector_all(
                "#rows tbody tr", "trs => trs.map(tr => [...tr.cells].map(td => td.textContent))")
            assert rows == [["a", "1"], ["b", "2"]]
            qid = next(iter(srv.server.transient))
            page.wait_for_selector(f"#queries tr[data-query-id='{qid}'] canvas.spark")
            page.click("#stop")
            page.wait_for_selector("#status:has-text('stopped')")
            assert wait_until(lambda: not srv.server.transient)  # the server freed it
        finally:
            browser.close()
