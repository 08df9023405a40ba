"""A page with our snippet: exactly one page view, with URL, referrer, page code, region
and device class as the collector reports them."""

from __future__ import annotations

import time

import pytest

from .kit import DESKTOP_UA, IPHONE_UA, wait_until

pytestmark = pytest.mark.browser

BREAKDOWN = "page,page_code,referrer,region,device"


def stats(collector, app="browser-test"):
    return collector.stats(app, granularity="day", breakdown=BREAKDOWN)


@pytest.mark.parametrize(
    ("ua", "mobile", "device"),
    [(DESKTOP_UA, False, "pc"), (IPHONE_UA, True, "mobile")],
    ids=["desktop", "iphone"],
)
def test_one_pageview_with_url_referrer_page_code_region_device(tracked, page_server, open_tab, ua, mobile, device):
    target = page_server.url("/basic.html?id=7&ticket=ST-1-secret")
    # Arrive by a link from another site (localhost vs 127.0.0.1): a real referrer.
    tab = open_tab(page_server.url("/link?to=" + target.replace("&", "%26"), host="localhost"),
                   ua=ua, mobile=mobile)
    tab.page.click("#go")
    tab.page.wait_for_url("**/basic.html*")

    wait_until(lambda: stats(tracked)["totals"]["pv"] >= 1, message="a page view")
    time.sleep(1.0)  # anything else in flight arrives too
    s = stats(tracked)
    assert s["totals"]["pv"] == 1
    assert s["totals"]["bot_pv"] == 0
    assert s["totals"]["visits"] == 1
    assert s["totals"]["uv_first_party"] == 1
    assert s["totals"]["rejected"] == {}
    b = s["breakdowns"]
    # The SSO ticket never left the page.
    assert b["page"] == [{"value": page_server.url("/basic.html?id=7"), "pv": 1}]
    assert b["page_code"][0]["value"] == "home"
    assert b["referrer"][0]["value"] == f"localhost:{page_server.port}"
    assert [(d["value"], d["pv"]) for d in b["device"]] == [(device, 1)]
    (city,) = b["region"]["city"]
    assert (city["province"], city["city"], city["city_name"], city["pv"]) == ("330000", "330100", "杭州市", 1)
    assert tab.errors == []
    assert tab.beacon_lines() == [], "no DEBUG output unless asked for"


def test_direct_visit_has_no_referrer_and_a_reload_is_a_second_pageview(tracked, page_server, open_tab):
    tab = open_tab(page_server.url("/basic.html"))
    wait_until(lambda: stats(tracked)["totals"]["pv"] == 1, message="first page view")
    tab.page.reload()
    wait_until(lambda: stats(tracked)["totals"]["pv"] == 2, message="second page view")
    s = stats(tracked)
    # A reload keeps the (empty) referrer of the first load.
    assert s["breakdowns"]["referrer"] == [{"value": "(direct)", "pv": 2}]
    # The same visit: two page views, one visit, no bounce.
    assert s["totals"]["visits"] == 1
    assert s["totals"]["bounces"] == 0
    assert s["totals"]["uv"] == 1


def test_hits_sent_each_way_reach_the_collector_with_the_region(tracked, page_server, open_tab):
    """sendBeacon, keepalive fetch and <img> all pass the load balancer (and no preflight)."""
    tab = open_tab(page_server.url("/basic.html"))
    wait_until(lambda: stats(tracked)["totals"]["pv"] == 1, message="page view")
    tab.page.evaluate(
        """(c) => {
            navigator.sendBeacon(c + '/c', JSON.stringify({k: 'browser-test', t: 'pageview', u: location.href}));
            new Image().src = c + '/c?img=1&k=browser-test&t=pageview&u=' + encodeURIComponent(location.href);
        }""",
        page_server.lb_url,
    )
    wait_until(lambda: stats(tracked)["totals"]["pv"] == 3, message="two more page views")
    (city,) = stats(tracked)["breakdowns"]["region"]["city"]
    assert city["city"] == "330100" and city["pv"] == 3
    # The beacon's own hit went by keepalive fetch; nothing was preflighted. (The sendBeacon
    # POST and the image GET race each other to the balancer: their order is not fixed.)
    methods = [m for m, path, status in page_server.lb_log if path.startswith("/c")]
    assert methods[0] == "POST" and sorted(methods[1:]) == ["GET", "POST"], methods
