"""Hits that cannot be delivered wait in localStorage and go with the next page load,
exactly once."""

from __future__ import annotations

import json
import time

import pytest

from .kit import free_port, wait_until

pytestmark = pytest.mark.browser


def totals(collector):
    return collector.stats("browser-test")["totals"]


def kept(tab) -> list[dict]:
    return json.loads(tab.page.evaluate("localStorage.getItem('eb_q') || '[]'"))


def test_collector_down_then_up_delivers_the_kept_page_view_exactly_once(
    tracked, page_server, open_tab, collector_on_port
):
    down_port = free_port()  # nothing listens there yet: connection refused
    page_server.vars["HOST"] = f"127.0.0.1:{down_port}"
    tab = open_tab(page_server.url("/basic.html?visit=1"))
    (event,) = wait_until(lambda: kept(tab), message="the page view kept in localStorage")
    assert event["t"] == "pageview" and event["u"].endswith("?visit=1")

    collector_on_port(down_port)  # the collector comes back (same Redis)
    tab.page.goto(page_server.url("/basic.html?visit=2"))
    wait_until(lambda: totals(tracked)["pv"] == 2, message="the kept and the new page view")
    assert kept(tab) == []
    tab.page.reload()
    wait_until(lambda: totals(tracked)["pv"] == 3, message="the reload")
    time.sleep(0.8)
    s = tracked.stats("browser-test", breakdown="page")
    assert s["totals"]["pv"] == 3, "the kept page view went once"
    pages = {row["value"]: row["pv"] for row in s["breakdowns"]["page"]}
    assert pages == {page_server.url("/basic.html?visit=1"): 1, page_server.url("/basic.html?visit=2"): 2}
    # The replayed page view still opened the visit: one visit of three page views.
    assert (s["totals"]["visits"], s["totals"]["bounces"]) == (1, 0)


@pytest.mark.parametrize("cors", [False, True], ids=["502-page-without-cors", "502-with-cors"])
def test_load_balancer_answering_502_then_the_collector_again(collector_factory, page_server, open_tab, cors):
    """A 502 without CORS headers is, to fetch, a network error: the <img> fallback tries
    and fails too. With CORS headers fetch sees the 502 and keeps the hit at once."""
    collector = collector_factory()
    # The script from the collector itself, the hits through the balancer, whose
    # upstream is gone.
    page_server.vars.update(COLLECTOR=collector.base_url, APP="browser-test", HOST=page_server.lb_url)
    page_server.lb_target = None
    page_server.lb_cors_on_errors = cors
    tab = open_tab(page_server.url("/basic.html"))
    (event,) = wait_until(lambda: kept(tab), message="the page view kept after a 502")
    tries = [(method, status) for method, path, status in page_server.lb_log if path.startswith("/c")]
    assert tries == ([("POST", 502)] if cors else [("POST", 502), ("GET", 502)])

    page_server.lb_target = collector.base_url
    tab.page.reload()
    wait_until(lambda: totals(collector)["pv"] == 2, message="the kept and the new page view")
    time.sleep(0.8)
    assert totals(collector)["pv"] == 2, "the kept page view counted once"
    passed = [h["id"] for h in page_server.lb_hits if h["t"] == "pageview"]
    assert passed.count(event["id"]) == len(tries) + 1
    assert kept(tab) == []


def test_browser_offline_keeps_hits_without_trying_then_sends_them(tracked, page_server, open_tab):
    tab = open_tab(page_server.url("/basic.html"))
    wait_until(lambda: totals(tracked)["pv"] == 1, message="the online page view")
    tab.page.context.set_offline(True)
    tab.page.evaluate("eb_queue.push({action: 'pageview', arguments: [{url: location.href + '?step=offline'}]})")
    tab.page.evaluate("eb_queue.push({action: 'record', arguments: ['download', 'CLK', {file: 'a.pdf'}]})")
    tab.page.wait_for_timeout(4500)  # the click waits 3 s for company, then is kept too
    assert sorted(e["t"] for e in kept(tab)) == ["click", "pageview"]
    tab.page.context.set_offline(False)
    tab.page.reload()
    wait_until(lambda: totals(tracked)["pv"] == 3, message="the kept and the new page view")
    wait_until(lambda: totals(tracked)["events"].get("click") == 1, message="the kept click")
    time.sleep(0.5)
    assert totals(tracked)["pv"] == 3
    assert kept(tab) == []


def test_rate_limited_page_views_are_kept_and_sent_with_the_next_page(collector_factory, page_server, open_tab):
    """A 429 (rate limited) counted nothing of the request: the beacon keeps the events, as
    after a 5xx, and the next page load sends them (docs/protocol.md, "Rate limits")."""
    collector = collector_factory(rate_client=1, rate_client_burst=3)
    page_server.vars.update(COLLECTOR=collector.base_url, APP="browser-test")
    tab = open_tab(page_server.url("/basic.html"))
    wait_until(lambda: totals(collector)["pv"] == 1, message="the first page view")
    steps = [page_server.url(f"/basic.html?step={i}") for i in range(5)]
    tab.page.evaluate("steps => steps.forEach(url => eb_queue.push({action: 'pageview', arguments: [{url}]}))", steps)
    wait_until(lambda: kept(tab), message="refused page views kept in localStorage")
    wait_until(lambda: collector.stats("(unknown)")["totals"]["rejected"].get("rate_limited_client"),
               message="the refusals counted")
    time.sleep(3.5)  # the bucket full again: the unload's engagement and the replay go through
    tab.page.reload()

    def step_views():
        rows = collector.stats("browser-test", breakdown="page")["breakdowns"]["page"]
        return [{row["value"]: row["pv"] for row in rows}.get(url) for url in steps]

    wait_until(lambda: step_views() == [1] * len(steps), message="every kept page view")
    time.sleep(0.8)
    assert step_views() == [1] * len(steps), "each kept page view went once"
    assert all(event["u"] not in steps for event in kept(tab))
