"""The beacon never throws into the host page and never depends on it behaving."""

from __future__ import annotations

import time

import pytest

from .kit import wait_until

pytestmark = pytest.mark.browser

# What the host page itself throws (hostile.html); nothing else may reach it.
HOST_ERRORS = ["host: boom during load", "undefinedFunctionOfTheHost is not defined", "rejected promise"]


def own(message: str) -> bool:
    return any(marker in message for marker in HOST_ERRORS)


def test_a_hostile_host_page_is_still_tracked_and_sees_only_its_own_errors(tracked, page_server, open_tab):
    tab = open_tab(page_server.url("/hostile.html"))
    wait_until(lambda: tracked.stats("browser-test")["totals"]["pv"] == 1, message="page view")
    # SPA navigation, a hide and show, a route change: all the beacon's paths run.
    tab.page.evaluate("history.pushState({}, '', '/hostile.html?tab=2')")
    tab.page.wait_for_timeout(600)
    tab.page.evaluate("eb_queue.push({action: 'record', arguments: [{not: 'a string'}, 'CLK', 'not an object']})")
    tab.page.evaluate("eb_queue.push({action: 'set', arguments: []}); eb_queue.push(undefined)")
    tab.page.wait_for_timeout(3500)
    host_seen = tab.page.evaluate("hostErrors")
    assert len(host_seen) == 3 and all(own(m) for m in host_seen), host_seen
    assert tab.errors and all(own(m) for m in tab.errors), tab.errors
    tab.page.goto("about:blank")
    time.sleep(0.6)
    totals = tracked.stats("browser-test")["totals"]
    # fetch was unusable: the beacon went by sendBeacon all the same.
    assert totals["pv"] == 2
    assert totals["engagements"] >= 1


def test_opt_out_and_global_privacy_control(tracked, page_server, open_tab):
    tab = open_tab(page_server.url("/basic.html"))
    wait_until(lambda: tracked.stats("browser-test")["totals"]["pv"] == 1, message="page view")
    tab.page.evaluate("eb_queue.push({action: 'optOut'})")
    tab.page.reload()
    tab.page.wait_for_timeout(800)
    assert tracked.stats("browser-test")["totals"]["pv"] == 1, "opted out: not counted"
    tab.page.evaluate("eb_queue.push({action: 'optOut', arguments: [false]})")
    tab.page.reload()
    wait_until(lambda: tracked.stats("browser-test")["totals"]["pv"] == 2, message="counted again after opting in")

    # GPC: honoured when the page asks for it (`dnt` setting), ignored otherwise.
    gpc = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"
    tab = open_tab(page_server.url("/basic.html"), init_script=gpc)
    wait_until(lambda: tracked.stats("browser-test")["totals"]["pv"] == 3, message="GPC without the dnt setting")
    tab.page.add_init_script("window.eb_queue = [{action: 'set', arguments: ['dnt', true]}]")
    tab.page.reload()
    tab.page.wait_for_timeout(800)
    assert tracked.stats("browser-test")["totals"]["pv"] == 3


def test_a_beacon_loaded_twice_counts_once(tracked, page_server, open_tab):
    tab = open_tab(page_server.url("/basic.html"))
    tab.page.add_script_tag(url=page_server.lb_url + "/beacon.js")
    tab.page.wait_for_timeout(800)
    assert tracked.stats("browser-test")["totals"]["pv"] == 1


def test_demo_page_shows_debug_output_and_counts(collector_factory, open_tab):
    collector = collector_factory()
    tab = open_tab(collector.base_url + "/demo")
    wait_until(lambda: collector.stats("demo")["totals"]["pv"] == 1, message="the demo's page view")
    tab.page.click("#spa")
    wait_until(lambda: collector.stats("demo")["totals"]["pv"] == 2, message="the demo's SPA page view")
    log = tab.page.inner_text("#log")
    assert "[edu-beacon] send to" in log
    assert tab.errors == []


@pytest.mark.parametrize("debug", ["false", "true"])
def test_a_page_pinning_the_frozen_copy_with_sri(tracked, page_server, open_tab, debug):
    """The frozen file loads under its integrity hash (cross-origin, so CORS is needed),
    and with DEBUG on it does not swap itself for the unpinned debug build."""
    from collector.web.beacon_routes import beacon_info

    from .kit import ROOT

    info = beacon_info(ROOT / "beacon_js" / "dist")
    page_server.vars.update(VERSION=info["version"], SRI=info["sri"], DEBUG=debug)
    tab = open_tab(page_server.url("/sri.html"))
    wait_until(lambda: tracked.stats("browser-test")["totals"]["pv"] == 1, message="page view")
    assert not any(path.startswith("/beacon.debug.js") for _, path, _ in page_server.lb_log)
    assert tab.errors == []

    page_server.vars["SRI"] = "sha384-" + "A" * 64  # a hash that does not match: blocked
    tab = open_tab(page_server.url("/sri.html"))
    tab.page.wait_for_timeout(800)
    assert tracked.stats("browser-test")["totals"]["pv"] == 1
