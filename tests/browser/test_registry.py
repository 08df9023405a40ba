"""The registry enforced on real pages: the kit's generated snippet in Chromium.

The pages are served from 127.0.0.1 and, as another origin, from localhost; the platform
registers 127.0.0.1 only. The beacon's hits reach the collector through the balancer,
which passes the browser's Origin and Referer on, as a real one does.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from test_enforce import register

from collector.registry.kit import eb_queue_snippet

from .kit import wait_until
from .test_appendix_a import STANDARD_APP_KEY

pytestmark = pytest.mark.browser


def registered(redis_url: str, pid: str, **fields) -> str:
    """A platform registered and active; its app key. (In a thread: Playwright's sync API
    holds this thread's event loop.)"""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, register(redis_url, pid, "activate", **fields)).result()[1]


def enforcing(collector_factory, page_server):
    collector = collector_factory(registry="enforce")
    page_server.lb_target = collector.base_url
    page_server.vars.update(COLLECTOR=page_server.lb_url)
    return collector


@pytest.mark.parametrize("policy", ["reject", "flag"])
def test_the_kit_snippet_counts_on_the_platforms_domain_and_not_elsewhere(
    collector_factory, page_server, open_tab, redis_url, policy
):
    key = registered(redis_url, "kitpage", domains=["127.0.0.1"], foreign_origin=policy)
    collector = enforcing(collector_factory, page_server)
    page_server.vars["SNIPPET"] = eb_queue_snippet(page_server.lb_url, "beacon.js", key)

    open_tab(page_server.url("/kit_snippet.html"))
    wait_until(lambda: collector.stats("kitpage")["totals"]["pv"] == 1, message="the page view on 127.0.0.1")

    open_tab(page_server.url("/kit_snippet.html", host="localhost"))  # the snippet copied to another site
    if policy == "reject":
        wait_until(lambda: collector.stats("kitpage")["totals"]["rejected"].get("foreign_origin") == 1,
                   message="the foreign page view refused")
        assert any(path.startswith("/c") and status == 400 for _, path, status in page_server.lb_log)
        assert collector.stats("kitpage")["totals"]["pv"] == 1
    else:
        wait_until(lambda: collector.stats("kitpage")["totals"]["pv"] == 2, message="the foreign page view counted")
        assert collector.stats("kitpage")["totals"]["flagged"] == {"foreign_origin": 1}
    assert collector.stats(key)["totals"]["pv"] == 0  # never under the key itself


def test_the_standards_placeholder_app_key_is_refused_under_enforce(collector_factory, page_server, open_tab):
    """The appendix-A snippet verbatim sends the placeholder `申请应用时颁发的 appKey`:
    no platform holds it, so with the registry enforced it counts nowhere but as a
    refusal. (test_appendix_a.py runs the same page with registry=open.)"""
    collector = enforcing(collector_factory, page_server)
    open_tab(page_server.url("/appendix_a.html"))
    wait_until(lambda: collector.stats("(unregistered)")["totals"]["rejected"].get("unknown_app", 0) >= 1,
               message="the placeholder key refused")
    assert ("POST", "/c", 400) in page_server.lb_log
    assert collector.stats(STANDARD_APP_KEY)["totals"]["pv"] == 0
