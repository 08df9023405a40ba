"""Engaged time (visible and focused) and scroll depth, reported when the page view ends."""

from __future__ import annotations

import time

import pytest

from .kit import wait_until

pytestmark = pytest.mark.browser

# Makes document.visibilityState controllable: headless Chromium has no background tabs
# (every page stays "visible"), so a hidden tab is emulated the way the browser shows
# one to a page: the two properties, and a visibilitychange event on every change.
EMULATE_VISIBILITY = """
(() => {
  let state = 'hidden';
  Object.defineProperty(Document.prototype, 'visibilityState', {get: () => state, configurable: true});
  Object.defineProperty(Document.prototype, 'hidden', {get: () => state === 'hidden', configurable: true});
  window.__setVisibility = (s) => { state = s; document.dispatchEvent(new Event('visibilitychange')); };
})();
"""


def totals(collector):
    return collector.stats("browser-test")["totals"]


def test_time_visible_and_focused_is_reported_when_the_page_is_left(tracked, page_server, open_tab):
    tab = open_tab(page_server.url("/basic.html"))
    wait_until(lambda: totals(tracked)["pv"] == 1, message="page view")
    shown = time.monotonic()
    tab.page.mouse.wheel(0, 5000)  # to the bottom
    tab.page.wait_for_timeout(1500)
    tab.page.goto("about:blank")  # pagehide: the beacon reports with sendBeacon
    left = time.monotonic()
    wait_until(lambda: totals(tracked)["engagements"] == 1, message="the engagement")
    t = totals(tracked)
    on_page_ms = (left - shown) * 1000
    # The page view went out once the beacon started; the page was left at `left`.
    assert on_page_ms - 300 <= t["engaged_ms"] <= on_page_ms + 1500, (t["engaged_ms"], on_page_ms)
    assert t["avg_scroll_depth"] == 100
    assert t["avg_engaged_ms_per_pageview"] == t["engaged_ms"]


def test_a_hidden_tab_accrues_nothing_and_counts_no_page_view_until_shown(tracked, page_server, open_tab):
    tab = open_tab(None, init_script=EMULATE_VISIBILITY)
    tab.page.goto(page_server.url("/basic.html"))
    tab.page.wait_for_timeout(1200)
    assert totals(tracked)["pv"] == 0, "a tab opened in the background is not a page view yet"

    tab.page.evaluate("__setVisibility('visible')")
    wait_until(lambda: totals(tracked)["pv"] == 1, message="the page view once shown")
    tab.page.wait_for_timeout(800)
    tab.page.evaluate("__setVisibility('hidden')")  # the user switches tabs: report now
    wait_until(lambda: totals(tracked)["engagements"] == 1, message="the first engagement")
    first = totals(tracked)["engaged_ms"]
    assert 700 <= first <= 1500, first

    tab.page.wait_for_timeout(1500)  # hidden: nothing accrues
    tab.page.evaluate("__setVisibility('visible')")
    tab.page.wait_for_timeout(500)
    tab.page.evaluate("__setVisibility('hidden')")
    wait_until(lambda: totals(tracked)["engagements"] == 2, message="the second engagement")
    second = totals(tracked)["engaged_ms"] - first
    assert 400 <= second <= 1100, second
    assert totals(tracked)["pv"] == 1, "coming back to a tab is not a new page view"


def test_a_page_whose_window_loses_focus_stops_accruing(tracked, page_server, open_tab):
    tab = open_tab(page_server.url("/basic.html"))
    wait_until(lambda: totals(tracked)["pv"] == 1, message="page view")
    # Another window comes to the front (Playwright otherwise keeps every page focused).
    tab.page.context.new_cdp_session(tab.page).send("Emulation.setFocusEmulationEnabled", {"enabled": False})
    tab.page.context.new_page().bring_to_front()
    assert tab.page.evaluate("document.hasFocus()") is False
    tab.page.wait_for_timeout(2000)  # visible, but not focused
    tab.page.goto("about:blank")
    wait_until(lambda: totals(tracked)["engagements"] == 1, message="the engagement")
    # Only the moments before the window lost focus count.
    assert totals(tracked)["engaged_ms"] < 1000
