"""The deep tag's media events from a real <video>: what the beacon sends, and that the
collector accepts it (204)."""

from __future__ import annotations

import pytest

from ..kit import wait_until
from .common import all_accepted, open_video
from .conftest import VIDEO_SECONDS

pytestmark = pytest.mark.browser

MEDIA_FIELDS = {"ms", "pos", "ws", "wt", "rid"}


def media(page_server, rid="res-video-1"):
    return [h for h in page_server.lb_hits if h.get("t") == "media" and h.get("rid") == rid]


def test_a_video_played_to_the_end(deep, page_server, open_tab):
    tab = open_video(open_tab, deep)
    tab.page.evaluate("document.getElementById('v').play()")
    wait_until(lambda: any(h["n"] == "ended" for h in media(page_server)), timeout=VIDEO_SECONDS + 10, message="ended")
    events = media(page_server)
    names = [h["n"] for h in events]
    assert names[0] == "play" and "pause" in names and names[-1] == "ended", names
    assert [h["pb"] for h in events if h["n"] == "progress"] == [10, 25, 50, 75, 90, 100]
    ended = events[-1]
    assert abs(ended["ws"] - VIDEO_SECONDS) <= 1, ended
    assert ended["dur"] == VIDEO_SECONDS
    # Resource fields from the wrapper's and the element's data attributes.
    for h in events:
        assert MEDIA_FIELDS <= set(h), h
        assert (h["rid"], h["rt"], h["subj"], h["stage"], h["src"]) == ("res-video-1", "video", "math", "junior", "zjer")
        assert h["ms"] == ended["ms"]
    wall = sum(h["wt"] for h in events)
    assert VIDEO_SECONDS * 1000 - 500 <= wall <= VIDEO_SECONDS * 1000 + 1500, wall
    all_accepted(page_server)
    assert tab.errors == []


def test_seeking_straight_to_the_end_counts_a_few_seconds(deep, page_server, open_tab):
    tab = open_video(open_tab, deep)
    tab.page.evaluate("document.getElementById('v').play()")
    tab.page.wait_for_function("document.getElementById('v').currentTime > 0.6")
    tab.page.evaluate(f"document.getElementById('v').currentTime = {VIDEO_SECONDS - 0.3}")
    wait_until(lambda: any(h["n"] == "ended" for h in media(page_server)), timeout=15, message="ended")
    events = media(page_server)
    names = [h["n"] for h in events]
    assert "seek" in names, names
    ended = events[-1]
    assert ended["ws"] <= 2, ended
    assert max([h["pb"] for h in events if h["n"] == "progress"] or [0]) <= 25
    assert [h for h in events if h["n"] == "seek"][0]["pos"] >= VIDEO_SECONDS - 1
    all_accepted(page_server)


def test_pause_and_resume(deep, page_server, open_tab):
    tab = open_video(open_tab, deep)
    page = tab.page
    page.evaluate("document.getElementById('v').play()")
    page.wait_for_timeout(1200)
    page.evaluate("document.getElementById('v').pause()")
    page.wait_for_timeout(1000)
    page.evaluate("document.getElementById('v').play()")
    page.wait_for_timeout(1200)
    page.evaluate("document.getElementById('v').pause()")
    wait_until(lambda: [h["n"] for h in media(page_server)].count("pause") == 2, message="two pauses")
    events = media(page_server)
    assert [h["n"] for h in events if h["n"] in ("play", "pause")] == ["play", "pause", "play", "pause"]
    wall = sum(h["wt"] for h in events)
    assert 2000 <= wall <= 3200, wall
    assert 1 <= events[-1]["ws"] <= 3, events[-1]
    all_accepted(page_server)


def test_audio_without_attributes_and_a_custom_player(deep, page_server, open_tab):
    tab = open_video(open_tab, deep)
    page = tab.page
    page.evaluate("document.getElementById('a').play()")
    page.wait_for_timeout(1200)
    page.evaluate("document.getElementById('a').pause()")
    page.evaluate("""() => {
      var meta = {rid: 'custom-9', rt: 'audio', subj: 'music', dur: 120};
      eb_queue.push({action: 'media', arguments: ['play', 0, meta]});
      eb_queue.push({action: 'media', arguments: ['timeupdate', 0.9, meta]});
      eb_queue.push({action: 'media', arguments: ['pause', 0.9, meta]});
    }""")
    wait_until(lambda: media(page_server, "custom-9") and any(h.get("rt") == "audio" and h["rid"].endswith("clip.webm")
                                                           for h in page_server.lb_hits if h.get("t") == "media"),
               message="audio and custom player events")
    audio = [h for h in page_server.lb_hits if h.get("t") == "media" and h.get("rt") == "audio" and h["rid"].endswith("clip.webm")]
    assert audio[0]["n"] == "play" and audio[0]["rid"].startswith("http://127.0.0.1:")
    custom = media(page_server, "custom-9")
    assert [h["n"] for h in custom] == ["play", "pause"]
    assert custom[0]["dur"] == 120 and custom[0]["subj"] == "music"
    all_accepted(page_server)


EMULATE_VISIBILITY = """
(() => {
  let state = 'visible';
  Object.defineProperty(Document.prototype, 'visibilityState', {get: () => state, configurable: true});
  Object.defineProperty(Document.prototype, 'hidden', {get: () => state === 'hidden', configurable: true});
  window.__setVisibility = (s) => { state = s; document.dispatchEvent(new Event('visibilitychange')); };
})();
"""


def test_a_textbook_is_read_while_visible(deep, page_server, open_tab):
    tab = open_tab(None, init_script=EMULATE_VISIBILITY)
    tab.page.goto(deep.url("/media.html"))
    tab.page.wait_for_function("window.__edu_beacon")
    tab.page.wait_for_timeout(1500)
    tab.page.evaluate("__setVisibility('hidden')")  # reading stops: the read goes now
    wait_until(lambda: media(page_server, "book-7"), message="a read event")
    (read,) = media(page_server, "book-7")
    assert read["n"] == "read" and read["rt"] == "textbook" and read["subj"] == "chinese"
    assert 1000 <= read["wt"] <= 2500 and read["ws"] == read["wt"] // 1000, read
    tab.page.wait_for_timeout(1500)  # hidden: nothing accrues
    tab.page.evaluate("__setVisibility('visible')")
    tab.page.wait_for_timeout(1200)
    tab.page.evaluate("__setVisibility('hidden')")
    wait_until(lambda: len(media(page_server, "book-7")) == 2, message="a second read event")
    second = media(page_server, "book-7")[1]
    assert 1000 <= second["wt"] <= 2000, second
    assert second["ms"] == read["ms"]
    all_accepted(page_server)
