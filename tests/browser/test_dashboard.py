"""The dashboard (/dashboard) in real Chromium against a real collector and Redis.

Two registered platforms receive hits from addresses of known provinces (the test MMDB:
Hangzhou and Ningbo in Zhejiang, Beijing, Xi'an; Hubei for the other platform), sent
straight to the collector with X-Forwarded-For (it trusts 127.0.0.1). The read API is
closed (api_token is set), so the dashboard must sign in: with an admin token, or with
one platform's read token.

Every page is checked for console errors; numbers are compared with /api/stats for the
query the page names in its data-query attribute; screenshots go to
test-artifacts/dashboard/ (a CI artefact; docs/img/dashboard.png is one of them).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from test_enforce import register

from collector.registry.store import RegistryStore
from collector.store import redis_client

from .kit import DESKTOP_UA, ROOT, wait_until

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
API_TOKEN = "dashboard-test-api-token"
NO_HITS = "#eceff1"  # svg.js NO_HITS
# Page views per address: (platform, X-Forwarded-For, province, prefecture)
VISITS = [
    ("alpha", "100.64.0.1", "330000", "330100"),  # Hangzhou
    ("alpha", "100.64.0.2", "330000", "330100"),
    ("alpha", "100.64.0.3", "330000", "330100"),
    ("alpha", "100.65.0.1", "330000", "330200"),  # Ningbo
    ("alpha", "100.65.0.2", "330000", "330200"),
    ("alpha", "198.18.0.1", "110000", "110100"),  # Beijing
    ("alpha", "198.18.1.1", "610000", "610100"),  # Xi'an
    ("beta", "198.18.9.1", "420000", ""),  # Hubei, province only
    ("beta", "198.18.9.2", "420000", ""),
]
PLATFORMS = ("alpha", "beta")
DOMAINS = {"alpha": "www.alpha.edu.cn", "beta": "www.beta.edu.cn", "zjedu": "www.zjedu.cn"}


def _run(coro):
    """Playwright's sync API holds this thread's event loop: async setup runs in another."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _credentials(redis_url: str) -> tuple[str, str]:
    store = RegistryStore(redis_client.connect(redis_url))
    admin = await store.create_admin_token("dashboard-test", "test")
    reader = (await store.issue_read_token("alpha", "test")).read_token
    return admin, reader


def post_events(base_url: str, platform: str, key: str, ip: str, events: list[dict]) -> None:
    body = json.dumps([{"k": key, **e} for e in events]).encode()
    request = urllib.request.Request(base_url + "/c", data=body, method="POST", headers={
        "Content-Type": "text/plain", "User-Agent": DESKTOP_UA, "X-Forwarded-For": ip,
        "Origin": f"https://{DOMAINS[platform]}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status in (200, 202, 204), answer.status
    except urllib.error.HTTPError as refused:
        raise AssertionError(f"{refused.code}: {refused.read()[:300]!r}") from None


def api(base_url: str, token: str, path: str, query: str | dict = "") -> dict:
    if isinstance(query, dict):
        query = urllib.parse.urlencode(query)
    request = urllib.request.Request(f"{base_url}{path}?{query}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def deep_events(domain: str) -> list[dict]:
    media = {"t": "media", "rid": "v1", "rt": "video", "subj": "math", "stage": "junior", "src": "zjer", "ms": "m1",
             "dur": 100, "wt": 1000}
    return [
        {"t": "exposure", "n": "course-card", "tr": "home", "pos": 1, "u": f"https://{domain}/"},
        {"t": "exposure", "n": "course-card-2", "tr": "home", "pos": 2, "u": f"https://{domain}/"},
        {"t": "click", "n": "course-card", "tr": "home", "pos": 1, "u": f"https://{domain}/"},
        {**media, "n": "play", "pos": 0, "ws": 0},
        {**media, "n": "progress", "pos": 95, "ws": 95, "pb": 90},
        {"t": "interaction", "n": "rate", "rid": "v1", "rt": "video", "subj": "math", "score": 4},
        {"t": "interaction", "n": "like", "rid": "v1", "rt": "video", "subj": "math"},
    ]


@pytest.fixture
def monitored(collector_factory, redis_url):
    """A collector with two active platforms and their hits; (collector, admin token, alpha's read token)."""
    keys = {pid: _run(register(redis_url, pid, "activate", name=f"{pid} 平台", domains=[DOMAINS[pid]]))[1] for pid in PLATFORMS}
    admin, reader = _run(_credentials(redis_url))
    collector = collector_factory(registry="enforce", api_token=API_TOKEN, health_interval=1)
    wait_until(lambda: api(collector.base_url, API_TOKEN, "/api/apps")["apps"] == ["alpha", "beta"], timeout=30, message="registry loaded")
    for n, (pid, ip, _, _) in enumerate(VISITS):
        url = f"https://{DOMAINS[pid]}/course/{n % 3}"
        post_events(collector.base_url, pid, keys[pid], ip, [{"t": "pageview", "u": url, "sn": 1, "pc": f"course-{n % 2}",
                                                              "r": "https://www.baidu.com/s?wd=x"}])
    post_events(collector.base_url, "alpha", keys["alpha"], "100.64.0.1", deep_events(DOMAINS["alpha"]))
    wait_until(lambda: api(collector.base_url, API_TOKEN, "/api/stats", "app=alpha")["totals"]["media"]["views"] == 1
               and api(collector.base_url, API_TOKEN, "/api/stats", "app=alpha")["totals"]["pv"] == 7
               and api(collector.base_url, API_TOKEN, "/api/stats", "app=beta")["totals"]["pv"] == 2, timeout=30, message="hits counted")
    return collector, admin, reader


class Dashboard:
    """One tab on the dashboard: its console errors, and helpers to read what it shows."""

    def __init__(self, browser, base_url: str, viewport=None, **context) -> None:
        self.context = browser.new_context(user_agent=DESKTOP_UA, locale="zh-CN",
                                           viewport=viewport or {"width": 1280, "height": 900}, **context)
        self.page = self.context.new_page()
        self.base_url = base_url
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, fragment: str = "") -> None:
        self.page.goto(f"{self.base_url}/dashboard{fragment and '#' + fragment}")

    def sign_in(self, token: str) -> None:
        self.open()
        self.page.wait_for_selector("#token")
        self.page.keyboard.type(token)  # the field has the focus
        self.page.keyboard.press("Enter")
        self.page.wait_for_selector("[data-table=overview] tbody tr td[data-key=pv]")

    def go(self, fragment: str, ready: str) -> None:
        self.page.evaluate("f => { location.hash = f }", fragment)
        self.page.wait_for_selector(ready)

    def query_of(self, selector: str) -> str:
        return self.page.locator(selector).first.evaluate("el => el.closest('[data-query]').dataset.query")

    def cells(self, table: str, key: str) -> list[str]:
        return self.page.locator(f"[data-table='{table}'] td[data-key='{key}']").evaluate_all("els => els.map(e => e.dataset.value)")

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def dashboards(browser):
    opened: list[Dashboard] = []

    def open_(base_url: str, **options) -> Dashboard:
        opened.append(Dashboard(browser, base_url, **options))
        return opened[-1]

    yield open_
    for dashboard in opened:
        dashboard.close()


def test_an_administrator_sees_every_platform_and_the_numbers_of_the_read_api(monitored, dashboards):
    collector, admin, _ = monitored
    base = collector.base_url
    d = dashboards(base)
    d.sign_in(admin)
    token_in_url = admin in d.page.url
    assert not token_in_url
    assert d.page.evaluate("sessionStorage.getItem('eb-dashboard-token')") == admin

    # Overview: every platform (groups, when the collector has them, come after them),
    # today's PV and UV as /api/stats says for the same query.
    assert d.cells("overview", "name")[:2] == ["alpha", "beta"]
    query = d.query_of("[data-table=overview]")
    for column in ("pv", "uv"):
        expected = [str(api(base, admin, "/api/stats", f"app={pid}&{query}")["series"][-1][column]) for pid in ("alpha", "beta")]
        assert d.cells("overview", column)[:2] == expected
    assert d.cells("overview", "pv")[:2] == ["7", "2"]
    d.shot("overview")

    # One platform: headline figures.
    d.go("/app/alpha?p=today", ".card[data-metric=pv] .figure")
    totals = api(base, admin, "/api/stats", d.query_of(".card[data-metric=pv]"))["totals"]
    for metric, field in (("pv", "pv"), ("uv", "uv"), ("visits", "visits")):
        assert d.page.locator(f".card[data-metric={metric}] .figure").get_attribute("data-value") == str(totals[field])
    d.page.wait_for_selector(".live svg")
    d.shot("summary")

    # The map of China: the provinces that received hits, and only those, coloured.
    d.go("/app/alpha?p=today&tab=regions", ".map path.region")
    answer = api(base, admin, "/api/stats", d.query_of(".map"))
    hit = {p for _, _, p, _ in VISITS[:7]}
    assert set(d.page.locator(".map path.hit").evaluate_all("ps => ps.map(p => p.dataset.code)")) == hit
    fills = d.page.locator(".map path.region").evaluate_all("ps => ps.map(p => [p.dataset.code, p.getAttribute('fill')])")
    assert all((fill != NO_HITS) == (code in hit) for code, fill in fills)
    provinces = {r["province_name"]: r for r in answer["breakdowns"]["region"]["province"]}
    assert d.cells("regions", "region") == [r["province_name"] for r in sorted(provinces.values(), key=lambda r: -r["pv"])]
    assert d.cells("regions", "pv") == [str(provinces[name]["pv"]) for name in d.cells("regions", "region")]
    assert d.cells("regions", "pv")[0] == "5" and d.cells("regions", "share")[0] == str(round(100 * 5 / 7, 2))
    assert "DB-IP" in d.page.inner_text("main") and "ECharts" in d.page.inner_text("main")
    d.shot("regions")

    # Drill into Zhejiang: its prefectures that received hits, coloured.
    d.page.click("path[data-code='330000']")
    d.page.wait_for_selector("[data-table='regions-330000']")
    d.page.wait_for_selector(".map path.hit")
    assert "prov=330000" in d.page.url  # the drill-down is in the link
    assert set(d.page.locator(".map path.hit").evaluate_all("ps => ps.map(p => p.dataset.code)")) == {"330100", "330200"}
    cities = {r["city_name"]: r["pv"] for r in answer["breakdowns"]["region"]["city"] if r["province"] == "330000"}
    assert dict(zip(d.cells("regions-330000", "region"), map(int, d.cells("regions-330000", "pv")), strict=True)) == cities
    assert d.cells("regions-330000", "share") == ["60", "40"]
    d.shot("regions-zhejiang")

    # Every table exports CSV: the rows on screen.
    with d.page.expect_download() as download:
        d.page.click("[data-csv='regions-330000']")
    csv = open(download.value.path(), encoding="utf-8-sig").read().splitlines()
    assert csv[0].split(",")[:3] == ["排名", "地区", "PV"]
    assert csv[1].split(",")[1:3] == ["杭州市", "3"]

    # Devices, pages, the deep tag's resources and click tracks, health: each from its query.
    d.go("/app/alpha?p=today&tab=devices", "[data-table=device] td[data-key=pv]")
    devices = api(base, admin, "/api/stats", d.query_of("[data-table=device]"))["breakdowns"]["device"]
    assert d.cells("device", "pv") == [str(r["pv"]) for r in devices]
    d.go("/app/alpha?p=today&tab=pages", "[data-table=page_code] td[data-key=pv]")
    pages = api(base, admin, "/api/stats", d.query_of("[data-table=page]"))["breakdowns"]
    for dim in ("page", "page_code", "referrer"):
        assert d.cells(dim, "pv") == [str(r["pv"]) for r in pages[dim]]
    d.go("/app/alpha?p=today&tab=resources", "[data-table=subject] td[data-key=views]")
    deep = api(base, admin, "/api/stats", d.query_of("[data-table=subject]"))
    assert d.page.locator(".card[data-metric=views] .figure").get_attribute("data-value") == str(deep["totals"]["media"]["views"])
    assert d.cells("subject", "views") == [str(r["views"]) for r in deep["breakdowns"]["subject"]]
    assert d.cells("subject", "ratings") == ["1"] and d.cells("subject", "likes") == ["1"]
    d.shot("resources")
    d.go("/app/alpha?p=today&tab=tracks", "[data-table=track] td[data-key=exposures]")
    tracks = api(base, admin, "/api/stats", d.query_of("[data-table=track]"))
    assert d.cells("track", "exposures") == ["2"] and d.cells("track", "clicks") == ["1"]
    assert d.cells("item", "clicks") == [str(r["clicks"]) for r in tracks["breakdowns"]["item"]]
    d.go("/app/alpha?p=today&tab=health", "[data-table=anomalies]")
    wait_until(lambda: api(base, admin, "/api/admin/platforms/alpha/health")["health"], message="a health round")
    d.page.reload()
    d.page.wait_for_selector(".badge[data-state]")
    d.shot("health")

    # English.
    d.page.click("#lang")
    d.page.wait_for_selector("text=Health & anomalies")
    assert "lang=en" in d.page.url
    d.go("/app/alpha?p=today&tab=regions&lang=en", ".map path.hit")
    assert d.page.locator("th").first.inner_text() == "Rank"
    d.shot("regions-en")
    assert d.errors == []


def test_a_platform_read_token_shows_that_platform_only(monitored, dashboards):
    collector, _, reader = monitored
    d = dashboards(collector.base_url)
    d.sign_in(reader)
    names = d.cells("overview", "name")
    assert names[0] == "alpha" and "beta" not in names  # (and a group only when all of it is alpha's)
    assert d.cells("overview", "pv")[0] == "7"
    assert d.page.locator("[data-table=overview] td[data-key=health]").first.inner_text() == "—"  # the registry's: admins only
    assert d.errors == []
    d.go("/app/beta?p=today", ".error")  # another platform's link: refused by the read API
    assert "403" in " ".join(d.errors) and d.page.locator(".card").count() == 0
    d.page.click("#signout")
    d.page.wait_for_selector("#token")
    assert d.page.evaluate("sessionStorage.getItem('eb-dashboard-token')") is None


def test_a_wrong_token_is_refused_at_sign_in(monitored, dashboards):
    collector, _, _ = monitored
    d = dashboards(collector.base_url)
    d.open()
    d.page.fill("#token", "not-a-token")
    d.page.keyboard.press("Enter")
    d.page.wait_for_selector(".signin .error")
    assert d.page.evaluate("sessionStorage.getItem('eb-dashboard-token')") is None


FOCUSABLE = "a[href], button, select, input, [tabindex='0']"


def tab_walk(page, limit: int = 300) -> list[str]:
    """Presses Tab until the focus comes back round; what it reached, in order."""
    describe = ("() => { const e = document.activeElement; if (!e || e === document.body) return null;"
                " return e.id || e.dataset.code || e.dataset.csv || e.getAttribute('href') || e.textContent.trim() }")
    reached: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        now = page.evaluate(describe)
        if now is not None and reached and now == reached[0]:
            break
        if now is not None:
            reached.append(now)
    return reached


@pytest.mark.parametrize("width", [1280, 390])
def test_a_keyboard_reaches_every_control_at_desktop_and_phone_width(monitored, dashboards, width):
    collector, admin, _ = monitored
    d = dashboards(collector.base_url, viewport={"width": width, "height": 900})
    d.sign_in(admin)
    d.go("/app/alpha?p=today&tab=regions", ".map path.hit")
    controls = d.page.locator(FOCUSABLE).evaluate_all(
        "els => els.filter(e => !e.disabled && e.getClientRects().length)"
        ".map(e => e.id || e.dataset.code || e.dataset.csv || e.getAttribute('href') || e.textContent.trim())")
    d.page.locator("body").focus()
    reached = tab_walk(d.page)
    assert set(controls) <= set(reached), set(controls) - set(reached)
    # Nothing wider than the screen but the tables' own scrolling boxes.
    assert d.page.evaluate("document.documentElement.scrollWidth") <= width + 1
    # A province opens with the keyboard.
    d.page.focus("path[data-code='330000']")
    d.page.keyboard.press("Enter")
    d.page.wait_for_selector("[data-table='regions-330000']")
    if width < 600:
        d.shot("phone-regions")
    assert d.errors == []


# The seed report's prefecture mix (../shared/seeds: PV in 万次, 2017-8-21 to 9-20), halved
# for today; "yesterday" has Hangzhou lower and Huzhou higher, as in the seed's story
# (杭州地区访问量上升较快，排名上升至第二).
SEED_PV = {"330100": 126.93, "330200": 89.25, "330300": 63.30, "330400": 19.97, "330500": 109.32, "330600": 114.57,
           "330700": 159.59, "330800": 33.41, "330900": 12.58, "331000": 113.48, "331100": 14.78}
YESTERDAY_FACTOR = {"330100": 0.7, "330500": 1.2}
ZHEJIANG_NETWORK = {code: f"100.{64 + i}" for i, code in enumerate(SEED_PV)}  # geo_data/build_test_mmdb.py


def send_mix(base_url: str, key: str, pv_by_city: dict[str, int], days_ago: int = 0) -> None:
    """Each prefecture's page views from addresses of its network, five per address;
    a day ago by the client clock: 30 s inside the collector's 24-hour window, so the
    same hour as now yesterday (what the comparisons cut at), bar the last 30 s of an hour."""
    for code, pv in pv_by_city.items():
        for start in range(0, pv, 5):
            ts = {"ts": int(time.time() * 1000) - 86_400_000 + 30_000} if days_ago else {}
            events = [{"t": "pageview", "u": f"https://www.zjedu.cn/r/{n}", "sn": 1, **ts} for n in range(start, min(pv, start + 5))]
            ip = f"{ZHEJIANG_NETWORK[code]}.{start // 250}.{start % 250 + 1}"
            post_events(base_url, "zjedu", key, ip, events)


def test_the_prefecture_table_ranks_shares_and_compares_like_the_seed_report(collector_factory, redis_url, dashboards):
    key = _run(register(redis_url, "zjedu", "activate", name="浙江教育资源公共服务平台", domains=["www.zjedu.cn"]))[1]
    collector = collector_factory(registry="enforce", api_token=API_TOKEN)
    today = {code: round(pv / 2) for code, pv in SEED_PV.items()}
    yesterday = {code: round(pv / 2 * YESTERDAY_FACTOR.get(code, 1.0)) for code, pv in SEED_PV.items()}
    wait_until(lambda: api(collector.base_url, API_TOKEN, "/api/apps")["apps"] == ["zjedu"], timeout=30, message="registry loaded")
    send_mix(collector.base_url, key, today)
    send_mix(collector.base_url, key, yesterday, days_ago=1)
    wait_until(lambda: api(collector.base_url, API_TOKEN, "/api/stats", "app=zjedu&from=" +
                           str(int(time.time()) - 86_400) + "&to=" + str(int(time.time())))["totals"]["pv"]
               == sum(today.values()) + sum(yesterday.values()), timeout=30, message="both days counted")

    d = dashboards(collector.base_url)
    d.sign_in(API_TOKEN)  # the api_token setting reads every platform too
    d.go("/app/zjedu?p=today&tab=regions&prov=330000", "[data-table='regions-330000'] td[data-key=pv]")
    d.page.wait_for_selector(".map path.hit")
    names = d.cells("regions-330000", "region")
    assert names[:3] == ["金华市", "杭州市", "绍兴市"]
    total = sum(today.values())
    by_name = dict(zip(names, zip(map(int, d.cells("regions-330000", "pv")), d.cells("regions-330000", "share"),
                                  d.cells("regions-330000", "change"), d.cells("regions-330000", "rank_change"),
                                  strict=True), strict=True))
    hangzhou = by_name["杭州市"]
    assert hangzhou[0] == today["330100"]
    assert float(hangzhou[1]) == round(100 * today["330100"] / total, 2)
    assert float(hangzhou[2]) == round(100 * (today["330100"] - yesterday["330100"]) / yesterday["330100"], 1)
    def rank(day: dict[str, int], code: str) -> int:  # (no ties for these two)
        return 1 + sum(pv > day[code] for pv in day.values())

    assert hangzhou[3] == str(rank(yesterday, "330100") - rank(today, "330100")) == "4"  # sixth yesterday, second today
    assert by_name["湖州市"][3] == str(rank(yesterday, "330500") - rank(today, "330500")) == "-3"
    assert len(d.page.locator(".map path.hit").evaluate_all("ps => ps.map(p => p.dataset.code)")) == 11
    d.shot("seed-prefectures")
    # "Which prefecture grew most?": sort by the change, largest first, then smallest.
    d.page.click("[data-table='regions-330000'] [data-sort=change]")
    assert d.cells("regions-330000", "region")[0] == "杭州市"
    d.page.click("[data-table='regions-330000'] [data-sort=change]")
    assert d.cells("regions-330000", "region")[0] == "湖州市"

    # The headline figures' changes: against the previous period and last year, each from
    # the totals of the queries the page names (both cut at the same time of day).
    d.go("/app/zjedu?p=today", ".card[data-metric=pv] [data-change]")
    cards = d.page.locator(".cards").first
    now = api(collector.base_url, API_TOKEN, "/api/stats", cards.get_attribute("data-compare-now"))["totals"]
    before = api(collector.base_url, API_TOKEN, "/api/stats", cards.get_attribute("data-compare-previous"))["totals"]
    year_ago = api(collector.base_url, API_TOKEN, "/api/stats", cards.get_attribute("data-compare-last-year"))["totals"]
    assert now["pv"] == total and year_ago["pv"] == 0
    for metric in ("pv", "uv"):
        shown = d.page.locator(f".card[data-metric={metric}] [data-change=previous]").get_attribute("data-value")
        if before[metric]:
            assert float(shown) == pytest.approx((now[metric] - before[metric]) / before[metric])
        else:  # the last 30 s of an hour: yesterday's page views fell in the next hour
            assert shown == ""
        assert d.page.locator(f".card[data-metric={metric}] [data-change=last_year]").get_attribute("data-value") == ""
    assert d.errors == []


def test_groups_of_platforms_are_subjects_like_platforms_when_the_collector_has_them(monitored, dashboards):
    """Views across platforms (GET /api/groups, /api/stats?group=): listed in the overview
    and shown like a platform, with the figures of the group's own query."""
    collector, admin, _ = monitored
    base = collector.base_url
    if "/api/groups" not in api(base, admin, "/api/openapi.json")["paths"]:
        pytest.skip("this collector has no groups of platforms (GET /api/groups): the dashboard lists none")
    groups = api(base, admin, "/api/groups")["groups"]
    d = dashboards(base)
    d.sign_in(admin)
    assert d.cells("overview", "name") == ["alpha", "beta"] + [g["name"] for g in groups]
    query = d.query_of("[data-table=overview]")
    expected = [str(api(base, admin, "/api/stats", f"app={pid}&{query}")["series"][-1]["pv"]) for pid in ("alpha", "beta")]
    expected += [str(api(base, admin, "/api/stats", {"group": g["id"], **dict(urllib.parse.parse_qsl(query))})["series"][-1]["pv"])
                 for g in groups]
    assert d.cells("overview", "pv") == expected
    everything = next(g for g in groups if g["id"] == "all")
    d.go(f"/group/{everything['id']}?p=today&tab=regions", ".map path.hit")
    assert set(d.page.locator(".map path.hit").evaluate_all("ps => ps.map(p => p.dataset.code)")) == {p for _, _, p, _ in VISITS}
    answer = api(base, admin, "/api/stats", d.query_of(".map"))
    assert answer["totals"]["pv"] == len(VISITS)
    assert d.cells("regions", "pv") == [str(r["pv"]) for r in sorted(answer["breakdowns"]["region"]["province"], key=lambda r: -r["pv"])]
    assert d.page.locator("#tab-health").count() == 0  # the registry's health is per platform
    assert d.errors == []
