"""Single-page apps: route changes through pushState, replaceState, popstate and (with
the `hash` setting) hash changes count once per real URL change."""

from __future__ import annotations

import time

import pytest

from .kit import wait_until

pytestmark = pytest.mark.browser

SETTLE = 500  # ms between navigations: more than the beacon's 200 ms debounce


def pv(collector):
    return collector.stats("browser-test")["totals"]["pv"]


def pages(collector):
    rows = collector.stats("browser-test", breakdown="page")["breakdowns"]["page"]
    return {row["value"]: row["pv"] for row in rows}


def test_three_pushes_a_replace_to_the_same_path_and_back(tracked, page_server, open_tab):
    tab = open_tab(page_server.url("/spa/"))
    page = tab.page
    wait_until(lambda: pv(tracked) == 1, message="the landing page view")
    for path in ("/spa/a", "/spa/b", "/spa/c"):
        page.evaluate("(p) => go(p)", path)
        page.wait_for_timeout(SETTLE)
    page.evaluate("() => go('/spa/c', true)")  # replaceState, same path: no page view
    page.wait_for_timeout(SETTLE)
    page.go_back()  # popstate to /spa/b
    page.wait_for_timeout(SETTLE)

    wait_until(lambda: pv(tracked) >= 5, message="five page views")
    time.sleep(0.8)
    assert pv(tracked) == 5
    url = page_server.url
    assert pages(tracked) == {url("/spa/"): 1, url("/spa/a"): 1, url("/spa/b"): 2, url("/spa/c"): 1}
    s = tracked.stats("browser-test", breakdown="referrer")
    # Route changes are referred by the previous route: same site.
    assert {r["value"]: r["pv"] for r in s["breakdowns"]["referrer"]} == {"(direct)": 1, "(internal)": 4}
    totals = s["totals"]
    assert (totals["visits"], totals["bounces"]) == (1, 0)
    # Each route change ended the previous page view: its engaged time was reported.
    assert totals["engagements"] >= 4
    assert totals["engaged_ms"] > 0
    assert tab.errors == []


def test_a_burst_of_history_changes_counts_once_with_the_final_url(tracked, page_server, open_tab):
    tab = open_tab(page_server.url("/spa/"))
    wait_until(lambda: pv(tracked) == 1, message="the landing page view")
    # A router redirect: push, push, replace within a few milliseconds.
    tab.page.evaluate("() => { go('/spa/login'); go('/spa/redirect'); go('/spa/home', true); }")
    tab.page.wait_for_timeout(SETTLE)
    wait_until(lambda: pv(tracked) == 2, message="one more page view")
    time.sleep(0.6)
    assert pages(tracked) == {page_server.url("/spa/"): 1, page_server.url("/spa/home"): 1}


def test_hash_changes_count_only_with_the_hash_setting(tracked, page_server, open_tab):
    tab = open_tab(page_server.url("/spa/"))
    wait_until(lambda: pv(tracked) == 1, message="the landing page view")
    tab.page.evaluate("() => { location.hash = '#/course/1' }")
    tab.page.wait_for_timeout(SETTLE)
    time.sleep(0.5)
    assert pv(tracked) == 1, "without `hash`, the fragment is not part of the page"

    page_server.vars["HASH"] = "true"
    tab = open_tab(page_server.url("/spa/#/home"))
    wait_until(lambda: pv(tracked) == 2, message="the second landing page view")
    for route in ("#/course/1", "#/course/2"):
        tab.page.evaluate("(h) => { location.hash = h }", route)
        tab.page.wait_for_timeout(SETTLE)
    wait_until(lambda: pv(tracked) == 4, message="a page view per hash route")
    routes = [h["u"] for h in page_server.lb_hits if h["t"] == "pageview"]
    assert routes[-3:] == [page_server.url(p) for p in ("/spa/#/home", "/spa/#/course/1", "/spa/#/course/2")]


def test_manual_mode_sends_no_automatic_page_views(tracked, page_server, open_tab):
    tab = open_tab(None)
    tab.page.add_init_script("window.eb_queue = [{action: 'set', arguments: ['manual', true]}]")
    tab.page.goto(page_server.url("/spa/"))
    tab.page.evaluate("() => go('/spa/a')")
    tab.page.wait_for_timeout(SETTLE)
    assert pv(tracked) == 0
    tab.page.evaluate("() => eb_queue.push({action: 'pageview', arguments: [{pageCode: 'course-list'}]})")
    wait_until(lambda: pv(tracked) == 1, message="the manual page view")
    s = tracked.stats("browser-test", breakdown="page,page_code")
    assert s["breakdowns"]["page"] == [{"value": page_server.url("/spa/a"), "pv": 1}]
    assert s["breakdowns"]["page_code"][0]["value"] == "course-list"
