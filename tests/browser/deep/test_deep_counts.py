"""The deep tag's counts end to end: headless Chromium -> balancer -> a real collector
process -> real Redis, read back from `/api/stats` (collector/features/).

test_deep_media.py and test_deep_tracks.py check what the beacon sends; these check
what the collector makes of it. Each test waits for a barrier before it asserts: the
page sends a marker event at once (`settle`), and the collector must have counted every
event that passed the balancer, the marker included. So an assertion never races a flush,
and "nothing more" (no footer exposure, no second entry) is checked after everything the
page sent has landed.
"""

from __future__ import annotations

import httputil as http
import pytest

from ..kit import wait_until
from .common import all_accepted, open_home, open_video
from .conftest import VIDEO_SECONDS

pytestmark = pytest.mark.browser

APP = "browser-test"
VIDEO = "res-video-1"


# ---- reading the collector ------------------------------------------------------------


def stats(collector, breakdown: str = "", limit: int | None = None) -> dict:
    params = {"granularity": "day"}
    if breakdown:
        params["breakdown"] = breakdown
    if limit:
        params["limit"] = limit
    return collector.stats(APP, **params)


def row(s: dict, dim: str, value: str) -> dict | None:
    found = [r for r in s["breakdowns"][dim] if r["value"] == value]
    assert len(found) <= 1, found
    return found[0] if found else None


def counted(totals: dict) -> int:
    """Events counted: page views and engagement reports have counters of their own."""
    return totals["pv"] + totals["engagements"] + sum(totals["events"].values())


def settle(tab, collector, page_server, timeout: float = 10.0) -> None:
    """Sends whatever the page holds, plus a marker, now; waits until the marker and every
    event that passed the balancer are counted, none rejected.

    (`set hold false` flushes the beacon's batch at once instead of after FLUSH_MS.)
    """
    markers = sum(1 for h in page_server.lb_hits if h.get("t") == "custom") + 1
    tab.page.evaluate("""() => {
      eb_queue.push({action: 'record', arguments: ['settle', 'custom']});
      eb_queue.push({action: 'set', arguments: ['hold', false]});
    }""")
    last: dict = {}

    def landed() -> bool:
        totals = last["totals"] = stats(collector)["totals"]
        return (totals["events"].get("custom", 0) == markers and counted(totals) == len(page_server.lb_hits)
                and not totals["rejected"])

    try:
        wait_until(landed, timeout=timeout, message="everything sent is counted")
    except AssertionError:
        totals = last["totals"]
        raise AssertionError(f"sent {len(page_server.lb_hits)} events, counted {counted(totals)}: "
                             f"pv {totals['pv']}, events {totals['events']}, rejected {totals['rejected']}") from None
    all_accepted(page_server)


# ---- media ----------------------------------------------------------------------------


def sent_media(page_server, name: str) -> bool:
    return any(h.get("t") == "media" and h.get("rid") == VIDEO and h["n"] == name for h in page_server.lb_hits)


def test_a_video_played_to_the_end_is_one_complete_view(tracked, deep, page_server, open_tab):
    tab = open_video(open_tab, deep)
    tab.page.evaluate("document.getElementById('v').play()")
    wait_until(lambda: sent_media(page_server, "ended"), timeout=VIDEO_SECONDS + 10, message="ended")
    settle(tab, tracked, page_server)
    s = stats(tracked, "resource,rtype,subject")
    video = row(s, "resource", VIDEO)
    assert video is not None, s["breakdowns"]["resource"]
    assert video["views"] == 1 and video["viewers"] == 1
    assert abs(video["watched_s"] - VIDEO_SECONDS) <= 1, video
    completion = video["completion"]
    assert completion["sessions"] == 1 and completion["avg"] == 1.0, completion
    assert completion["completed"] == 1 and completion["completed_rate"] == 1.0
    assert completion["histogram"] == {"0-25": 0, "25-50": 0, "50-75": 0, "75-90": 0, "90-100": 1}
    assert video["progress"] == {"10": 1, "25": 1, "50": 1, "75": 1, "90": 1, "100": 1}
    assert VIDEO_SECONDS * 1000 - 500 <= video["watch_ms"] <= VIDEO_SECONDS * 1000 + 1500, video
    # The same session under the resource's labels, and in the app's totals.
    assert row(s, "rtype", "video")["views"] == 1 and row(s, "subject", "math")["completion"]["completed"] == 1
    media = s["totals"]["media"]
    assert media["views"] == 1 and media["viewers"] == 1 and media["completion"]["completed"] == 1
    assert tab.errors == []


def test_seeking_straight_to_the_end_is_not_completion(tracked, deep, page_server, open_tab):
    tab = open_video(open_tab, deep)
    tab.page.evaluate(f"document.getElementById('v').currentTime = {VIDEO_SECONDS - 0.3}")
    tab.page.wait_for_function("!document.getElementById('v').seeking")
    tab.page.evaluate("document.getElementById('v').play()")
    wait_until(lambda: sent_media(page_server, "ended"), timeout=15, message="ended")
    settle(tab, tracked, page_server)
    video = row(stats(tracked, "resource"), "resource", VIDEO)
    assert video["views"] == 1, video
    assert video["completion"]["sessions"] == 1
    assert video["completion"]["avg"] < 0.10, video["completion"]
    assert video["completion"]["completed"] == 0 and video["completion"]["histogram"]["0-25"] == 1
    assert video["watched_s"] <= 1 and video["progress"]["100"] == 0, video


def test_pause_and_resume_is_one_view(tracked, deep, page_server, open_tab):
    tab = open_video(open_tab, deep)
    page = tab.page
    page.evaluate("document.getElementById('v').play()")
    page.wait_for_function("document.getElementById('v').currentTime > 1.2")
    page.evaluate("document.getElementById('v').pause()")
    # The first part is counted before the second starts: the session spans flushes.
    settle(tab, tracked, page_server)
    assert row(stats(tracked, "resource"), "resource", VIDEO)["views"] == 1
    page.evaluate("document.getElementById('v').play()")
    page.wait_for_function("document.getElementById('v').currentTime > 2.6")
    page.evaluate("document.getElementById('v').pause()")
    wait_until(lambda: [h["n"] for h in page_server.lb_hits if h.get("rid") == VIDEO].count("pause") == 2, message="two pauses")
    settle(tab, tracked, page_server)
    names = [h["n"] for h in page_server.lb_hits if h.get("rid") == VIDEO]
    assert names.count("play") == 2, names
    video = row(stats(tracked, "resource"), "resource", VIDEO)
    assert video["views"] == 1, video
    assert video["completion"]["sessions"] == 1, video["completion"]
    assert 2 <= video["watched_s"] <= 3, video
    assert 2000 <= video["watch_ms"] <= 3500, video


# ---- click tracks ---------------------------------------------------------------------


def test_carousel_slides_are_each_exposed_once_and_the_footer_not_at_all(tracked, deep, page_server, open_tab):
    tab = open_home(open_tab, deep)
    tab.page.evaluate("rotate(500)")
    wait_until(lambda: len([h for h in page_server.lb_hits if h.get("tr") == "banner"]) == 3, message="three slides")
    # Let every slide come round a second time, then count: still once each.
    tab.page.wait_for_timeout(1600)
    settle(tab, tracked, page_server)
    s = stats(tracked, "item,track")
    items = {r["value"]: r for r in s["breakdowns"]["item"]}
    assert [items.get(f"banner#{i}", {}).get("exposures") for i in (1, 2, 3)] == [1, 1, 1], items
    assert "footer#1" not in items, "an item below the fold is not seen"
    assert row(s, "track", "banner")["exposures"] == 3
    assert row(s, "track", "footer") is None
    assert row(s, "track", "navbar")["exposures"] == 3
    assert s["totals"]["tracks"]["exposures"] == 6 and s["totals"]["tracks"]["clicks"] == 0


def test_a_nav_click_counts_the_click_and_the_entry_it_leads_to(tracked, deep, page_server, open_tab):
    tab = open_home(open_tab, deep)
    tab.page.click("#nav-courses")
    tab.page.wait_for_url("**page=courses")
    tab.page.wait_for_function("window.__edu_beacon")
    wait_until(lambda: any(h.get("t") == "click" for h in page_server.lb_hits), message="the click, sent as the page was left")
    settle(tab, tracked, page_server)
    s = stats(tracked, "item,track,target")
    nav2 = row(s, "item", "navbar#2")
    assert nav2 is not None and nav2["clicks"] == 1 and nav2["entries"] == 1, nav2
    assert row(s, "target", "courses") == {"value": "courses", "clicks": 1, "exposures": 0, "ctr": None}
    assert row(s, "track", "navbar")["clicks"] == 1 and row(s, "track", "navbar")["entries"] == 1
    assert s["totals"]["clicks"] == 1 and s["totals"]["pv"] == 2
    assert s["totals"]["tracks"]["clicks"] == 1 and s["totals"]["tracks"]["entries"] == 1
    # A reload is not another entry through the nav bar.
    tab.page.reload()
    tab.page.wait_for_function("window.__edu_beacon")
    settle(tab, tracked, page_server)
    s = stats(tracked, "item")
    assert s["totals"]["pv"] == 3
    assert row(s, "item", "navbar#2")["entries"] == 1 and s["totals"]["tracks"]["entries"] == 1


# ---- interactions ---------------------------------------------------------------------


def test_ratings_average_and_a_like_taken_back(tracked, deep, page_server, open_tab):
    tab = open_home(open_tab, deep)
    tab.page.evaluate("""() => {
      var meta = {rt: 'video', subj: 'math'};
      [5, 4, 3].forEach(score => eb_queue.push({action: 'rate', arguments: ['res-r', score, meta]}));
      eb_queue.push({action: 'rate', arguments: ['res-r', 0, meta]});   // not a score: not sent
      eb_queue.push({action: 'like', arguments: ['res-r', meta]});
      eb_queue.push({action: 'unlike', arguments: ['res-r', meta]});
      eb_queue.push({action: 'rate', arguments: ['res-s', 1, {rt: 'audio', subj: 'music'}]});
    }""")
    settle(tab, tracked, page_server)
    s = stats(tracked, "resource,subject")
    for figures in (row(s, "resource", "res-r"), row(s, "subject", "math")):
        assert (figures["ratings"], figures["rating_sum"], figures["rating_avg"]) == (3, 12, 4.0), figures
        assert (figures["likes"], figures["unlikes"], figures["likes_net"]) == (1, 1, 0), figures
        assert figures["favorites_net"] == 0 and figures["shares"] == 0 and figures["views"] == 0
    other = row(s, "resource", "res-s")
    assert (other["ratings"], other["rating_avg"], other["likes_net"]) == (1, 1.0, 0), other
    totals = s["totals"]["interactions"]
    assert (totals["ratings"], totals["rating_sum"], totals["rating_avg"]) == (4, 13, 3.25), totals
    assert (totals["likes"], totals["unlikes"], totals["likes_net"]) == (1, 1, 0), totals


# ---- cardinality cap ------------------------------------------------------------------

CAP = 1000
FLOOD = 100_000
BATCH = 100  # the collector's max_batch_events default

# From the page: FLOOD likes of random resource ids (from a pool of 20 000, so ids that
# got in come back later and must still count as themselves) in batches of BATCH, posted
# as the beacon posts them (text/plain JSON, no preflight) but one after the other, so
# the collector sees them in the order sent and the ids that fill the cap are known.
# (Not through eb_queue: a burst that large outruns the 64 KiB keepalive budget and the
# beacon falls back to one <img> GET per event, a few hundred events a second.)
FLOOD_JS = """async ([url, app, total, batch]) => {
  const rids = [];
  let accepted = 0;
  const statuses = {};
  for (let start = 0; start < total; start += batch) {
    const events = [];
    for (let i = start; i < Math.min(start + batch, total); i++) {
      const rid = 'r' + Math.floor(Math.random() * 20000);
      rids.push(rid);
      events.push({k: app, t: 'interaction', n: 'like', rid: rid});
    }
    const answer = await fetch(url + '/c', {method: 'POST', body: JSON.stringify(events)});
    statuses[answer.status] = (statuses[answer.status] || 0) + 1;
    if (answer.status === 204) accepted += events.length;
    else if (answer.status === 400) accepted += (await answer.json()).accepted;
  }
  return {rids, accepted, statuses};
}"""


@pytest.fixture
def capped(collector_factory, page_server):
    """A collector that counts at most CAP resource ids per app and day, behind the balancer."""
    collector = collector_factory(cap_resources=CAP)
    page_server.lb_target = collector.base_url
    page_server.vars.update(COLLECTOR=page_server.lb_url, APP=APP)
    return collector


def test_a_flood_of_resource_ids_is_capped_and_nothing_is_lost(capped, page_server, deep_server_session, open_tab):
    deep_server_session.vars = dict(page_server.vars)
    tab = open_tab(deep_server_session.url("/tracks.html"))
    tab.page.wait_for_function("window.__edu_beacon")
    sent = tab.page.evaluate(FLOOD_JS, [page_server.lb_url, APP, FLOOD, BATCH])
    assert sent["statuses"] == {"204": FLOOD // BATCH}, sent["statuses"]
    assert sent["accepted"] == FLOOD and len(sent["rids"]) == FLOOD
    settle(tab, capped, page_server, timeout=20)
    s = stats(capped, "resource", limit=10_000)
    rows = s["breakdowns"]["resource"]
    assert len(rows) <= CAP + 1, len(rows)
    likes = {r["value"]: r["likes"] for r in rows}
    assert sum(likes.values()) == FLOOD == s["totals"]["interactions"]["likes"]
    # Which ids filled the cap: the first CAP distinct ones, in the order sent.
    first: dict[str, int] = {}
    for rid in sent["rids"]:
        if rid not in first and len(first) < CAP:
            first[rid] = 0
        if rid in first:
            first[rid] += 1
    expected = {**first, "(other)": FLOOD - sum(first.values())}
    assert likes == expected
    _, metrics = http.get_json(capped.base_url + "/api/collector")
    assert metrics["capped_events"]["resource"] == expected["(other)"]
