"""Helpers the deep-tag browser tests share: opening their pages, checking the answers."""

from __future__ import annotations


def open_video(open_tab, deep):
    """media.html, once the video's metadata and the beacon are loaded."""
    tab = open_tab(deep.url("/media.html"))
    tab.page.wait_for_function("document.getElementById('v').readyState >= 1 && window.__edu_beacon")
    return tab


def open_home(open_tab, deep):
    """tracks.html (nav bar, carousel, lists) in a 1000×700 viewport, the beacon loaded."""
    tab = open_tab(deep.url("/tracks.html"), viewport={"width": 1000, "height": 700})
    tab.page.wait_for_function("window.__edu_beacon")
    return tab


def all_accepted(page_server):
    """Every hit request the balancer passed was answered 200/204 by the collector."""
    statuses = [status for method, path, status in page_server.lb_log if path.startswith("/c")]
    assert statuses and all(status in (200, 204) for status in statuses), page_server.lb_log
