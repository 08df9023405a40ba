"""Clicks, click tracks (exposure, entry attribution) and interactions from the full
build: what the beacon sends, and that the collector accepts it (204)."""

from __future__ import annotations

import pytest

from ..kit import wait_until
from . import common
from .common import open_home

pytestmark = pytest.mark.browser


def hits(page_server, t):
    return [h for h in page_server.lb_hits if h.get("t") == t]


def exposures(page_server, tr=None):
    return [(h["tr"], h["pos"], h["n"]) for h in hits(page_server, "exposure") if tr is None or h["tr"] == tr]


def all_accepted(page_server):
    """As common.all_accepted, and no event was sent twice."""
    common.all_accepted(page_server)
    ids = [h["id"] for h in page_server.lb_hits]
    assert len(ids) == len(set(ids)), "an event was sent twice"


def test_visible_items_exposed_once_carousel_slides_each_off_screen_none(deep, page_server, open_tab):
    tab = open_home(open_tab, deep)
    tab.page.evaluate("rotate(600)")
    tab.page.wait_for_timeout(4500)  # every slide shown twice
    wait_until(lambda: len(exposures(page_server, "banner")) == 3, message="three slides")
    tab.page.wait_for_timeout(3500)  # the batch of anything else
    assert sorted(exposures(page_server, "banner")) == [("banner", 1, "slide-a"), ("banner", 2, "slide-b"), ("banner", 3, "slide-c")]
    assert sorted(exposures(page_server, "navbar")) == [("navbar", 1, "首页"), ("navbar", 2, "courses"), ("navbar", 3, "教材")]
    assert exposures(page_server, "footer") == [], "an item below the fold is not seen"
    all_accepted(page_server)
    assert tab.errors == []


def test_items_added_later_are_exposed_when_shown(deep, page_server, open_tab):
    tab = open_home(open_tab, deep)
    tab.page.wait_for_timeout(500)
    tab.page.evaluate("addItems('list', ['物理', '化学']); addItems('late-far', ['later'])")
    wait_until(lambda: len(exposures(page_server, "list")) == 2, message="the new items")
    assert sorted(exposures(page_server, "list")) == [("list", 1, "物理"), ("list", 2, "化学")]
    assert exposures(page_server, "late-far") == []
    tab.page.evaluate("document.querySelector('#late-far li').scrollIntoView()")
    wait_until(lambda: exposures(page_server, "late-far") == [("late-far", 1, "later")], message="shown at last")
    wait_until(lambda: exposures(page_server, "footer") == [("footer", 1, "far away")], message="the footer too")
    all_accepted(page_server)


def test_a_nav_click_that_navigates_is_sent_and_stamps_the_next_page_view(deep, page_server, open_tab):
    tab = open_home(open_tab, deep)
    wait_until(lambda: hits(page_server, "pageview"), message="first page view")
    first = hits(page_server, "pageview")[0]
    assert "etr" not in first and "epos" not in first
    tab.page.click("#nav-courses")
    tab.page.wait_for_url("**page=courses")
    wait_until(lambda: len(hits(page_server, "pageview")) == 2, message="second page view")
    wait_until(lambda: hits(page_server, "click"), message="the click, sent as the page was left")
    (click,) = hits(page_server, "click")
    assert (click["n"], click["tr"], click["pos"]) == ("courses", "navbar", 2)
    second = hits(page_server, "pageview")[1]
    assert (second["etr"], second["epos"]) == ("navbar", 2)
    assert second["u"].endswith("/tracks.html?page=courses")
    # Used up: a reload is not another entry through the nav bar.
    tab.page.reload()
    wait_until(lambda: len(hits(page_server, "pageview")) >= 3, message="third page view")
    tab.page.wait_for_timeout(300)  # time for a fourth: the second sent again
    assert "etr" not in hits(page_server, "pageview")[2]
    all_accepted(page_server)


def test_declared_and_configured_clicks(deep, page_server, open_tab):
    tab = open_home(open_tab, deep)
    tab.page.evaluate("eb_queue.push({action: 'set', arguments: ['clicks', [{selector: '.download', name: 'dl', props: {fmt: 'pdf'}}]]})")
    tab.page.click("#declared")
    tab.page.click("#configured")
    tab.page.click("#plain")  # neither declared nor configured nor in a track
    tab.page.mouse.click(5, 690)  # nowhere
    wait_until(lambda: len(hits(page_server, "click")) >= 2, message="two clicks")
    tab.page.wait_for_timeout(500)
    clicks = [(h["n"], h.get("p"), h.get("tr")) for h in hits(page_server, "click")]
    assert clicks == [("signup", {"plan": "free", "n": 3}, None), ("dl", {"fmt": "pdf"}, None)]
    all_accepted(page_server)


def test_interactions_and_the_user_id(deep, page_server, open_tab):
    tab = open_home(open_tab, deep)
    tab.page.evaluate("""() => {
      var meta = {rt: 'video', subj: 'math', stage: 'junior', src: 'zjer'};
      eb_queue.push({action: 'setUser', arguments: [42]});
      eb_queue.push({action: 'rate', arguments: ['res-1', 4, meta]});
      eb_queue.push({action: 'rate', arguments: ['res-1', 9, meta]});   // not a score: not sent
      eb_queue.push({action: 'like', arguments: ['res-1', meta]});
      eb_queue.push({action: 'unlike', arguments: ['res-1']});
      eb_queue.push({action: 'share', arguments: ['res-1', 'wechat', meta]});
      eb_queue.push({action: 'favorite', arguments: ['res-1', meta]});
      eb_queue.push({action: 'unfavorite', arguments: ['res-1', meta]});
      eb_queue.push({action: 'comment', arguments: ['res-1', {p: {len: 20}}]});
      eb_queue.push({action: 'like', arguments: []});                   // no resource: not sent
      eb_queue.push({action: 'setUser'});                               // logout
      eb_queue.push({action: 'favorite', arguments: ['res-2']});
    }""")
    wait_until(lambda: len(hits(page_server, "interaction")) == 8, message="eight interactions")
    got = hits(page_server, "interaction")
    assert [h["n"] for h in got] == ["rate", "like", "unlike", "share", "favorite", "unfavorite", "comment", "favorite"]
    rate, like, unlike, share = got[:4]
    assert rate["score"] == 4 and rate["rid"] == "res-1" and "ch" not in rate
    assert (like["rt"], like["subj"], like["stage"], like["src"]) == ("video", "math", "junior", "zjer")
    assert "rt" not in unlike
    assert share["ch"] == "wechat"
    assert got[6]["p"] == {"len": 20}
    assert all(h["uid"] == "42" for h in got[:7]), "logged in: the id, as a string"
    assert "uid" not in got[7], "logged out"
    all_accepted(page_server)
