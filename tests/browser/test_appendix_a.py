"""The standard's appendix-A snippet (aplus_queue), verbatim but for the script src."""

from __future__ import annotations

import time

import pytest

from .kit import APPENDIX_A_HOST, PAGES, ROOT, wait_until

pytestmark = pytest.mark.browser

# The placeholder app key of the standard's example, as it stands: a valid key by the
# protocol. These tests run with registry=open (the `tracked` collector), which counts
# it; with the registry enforced it is refused (test_registry.py).
STANDARD_APP_KEY = "申请应用时颁发的 appKey"
SEED = ROOT.parent / "shared" / "seeds" / "001_9e839c06ac66063e.txt"


def snippet_lines(text: str) -> list[str]:
    start = text.index("//将该代码放在页面 head 标签内")
    end = text.index("arguments: ['DEBUG', true]", start)
    end = text.index("});", end) + 3
    return [line.rstrip() for line in text[start:end].splitlines()]


def test_the_fixture_page_is_the_standard_snippet_verbatim_but_for_src():
    if not SEED.exists():
        pytest.skip(f"the standard's text is not beside the repository ({SEED})")
    standard = snippet_lines(SEED.read_text(encoding="utf-8"))
    ours = snippet_lines((PAGES / "appendix_a.html").read_text(encoding="utf-8"))
    assert len(standard) == len(ours)
    differing = [(a, b) for a, b in zip(standard, ours, strict=True) if a != b]
    assert differing == [("    j.src='https://d.alicdn.com/alilog/mlog/aplus/204458013.JavaScript';",
                          "    j.src='{{COLLECTOR}}/beacon.js';")]


def test_appendix_a_snippet_counts_a_pageview_under_its_app_key_with_debug_output(tracked, page_server, open_tab):
    tab = open_tab(page_server.url("/appendix_a.html"))
    wait_until(lambda: tracked.stats(STANDARD_APP_KEY)["totals"]["pv"] == 1, message="page view under the appKey")
    tab.page.wait_for_timeout(500)
    s = tracked.stats(STANDARD_APP_KEY, breakdown="page,region")
    assert s["totals"]["pv"] == 1
    assert s["breakdowns"]["page"] == [{"value": page_server.url("/appendix_a.html"), "pv": 1}]
    assert s["breakdowns"]["region"]["city"][0]["city_name"] == "杭州市"
    # The hits went to aplus-rhost-v (the name resolves to our load balancer here).
    assert ("POST", "/c", 204) in page_server.lb_log
    # DEBUG true: the console shows the commands, the settings and the payload.
    lines = tab.beacon_lines()
    assert any("aplus.setMetaInfo" in line and "appKey" in line for line in lines), lines
    assert any(f"send to http://{APPENDIX_A_HOST}/c" in line for line in lines), lines
    assert tab.errors == []


def test_aplus_commands_manual_pageview_hold_user_id_and_record(tracked, page_server, open_tab):
    """aplus-waiting MAN, _hold BLOCK ... START, _user_id, sendPV, record CLK/EXP/OTHER."""
    tab = open_tab(page_server.url("/aplus_commands.html?eb_debug=1"))
    tab.page.wait_for_timeout(400)
    # Held: nothing has been sent before START (at 1.5 s).
    assert tracked.stats("browser-test")["totals"]["pv"] == 0
    assert not any(path.startswith("/c") for _, path, _ in page_server.lb_log)
    wait_until(lambda: tracked.stats("browser-test")["totals"]["events"].get("custom") == 1, message="the events")
    time.sleep(0.5)
    totals = tracked.stats("browser-test")["totals"]
    assert totals["pv"] == 1, "one manual page view, no automatic one"
    assert totals["events"] == {"click": 1, "exposure": 1, "custom": 1}
    assert totals["rejected"] == {}
    # The hits held until START carry the user id that came with it.
    hits = page_server.lb_hits
    assert sorted(h["t"] for h in hits) == ["click", "custom", "exposure", "pageview"]
    assert {h.get("uid") for h in hits} == {"teacher-42"}
    (pv,) = [h for h in hits if h["t"] == "pageview"]
    assert pv["p"] == {"page_name": "课程详情"}
    (exposure,) = [h for h in hits if h["t"] == "exposure"]
    assert (exposure["n"], exposure["p"]) == ("course_card", {"course_id": "c-7"})
