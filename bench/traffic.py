"""Realistic traffic for the load tests: who visits, from where, with what, and which pages.

Everything is pre-generated here (seeded, deterministic) so the load generator only
replays it:

* **Regions.** Client IPs are drawn from real networks that the collector's own geo lookup
  places in each region (bench/data/ip_pool.json, built by `python -m bench.ippool`). The
  mix follows the PV share of each Zhejiang prefecture in the monthly report of the
  Zhejiang education resource platform (seeds/000_10efc746d3d0e541.txt, table 省内各地区访问量,
  2017-08-21..09-20). Its shares are of the platform's whole PV and add up to 94.18 %; the
  5.82 % it does not attribute to a prefecture we send as other provinces (4.62 %) and
  abroad (1.20 %).
* **Clients.** A User-Agent pool of real browsers and devices (tests/ua_samples.py),
  weighted for Chinese education traffic: WeChat / DingTalk webviews and domestic mobile
  browsers heavy, a few crawlers and HTTP libraries. Screens and touch points match the
  device, Chromium browsers send Sec-CH-UA-Mobile, some mobile clients come over IPv6.
* **Visitors.** A fixed population of (IP, User-Agent) visitors per region, some sharing
  an IP (school and carrier NAT); each hit picks its visitor Zipf-distributed, so a few
  visitors come back often and most once or twice.
* **Pages.** Four access platforms (app keys), each with a catalogue of pages chosen
  Zipf-distributed (home and channel pages on top, a long tail of resources), referrers
  from search engines, WeChat, DingTalk, internal navigation or none.

The client IP travels in `X-Forwarded-For` from 127.0.0.1, which the collector is told to
trust (`--trusted-proxies 127.0.0.1/32`): exactly what a load balancer in front of it does.
"""

from __future__ import annotations

import ipaddress
import random
import re
import string
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # tests/ua_samples.py: the shared real-UA table


# ---- regions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionShare:
    key: str  # the city value /api/stats reports: "CN/330000/330700"
    name: str
    share: float  # percent of all page views
    group: str  # "zhejiang", "china" (other provinces) or "abroad"
    seed_pv_wan: float | None = None  # PV in 万 (10^4) in the seed report's table


# Seed report (浙江教育资源公共服务平台月度工作简报, 2017-09), 表 省内各地区访问量: PV (万次) and 占比 (%).
SEED_TABLE = [
    ("CN/330000/330100", "杭州市", 126.93, 13.95),
    ("CN/330000/330200", "宁波市", 89.25, 9.81),
    ("CN/330000/330300", "温州市", 63.30, 6.95),
    ("CN/330000/330400", "嘉兴市", 19.97, 2.20),
    ("CN/330000/330500", "湖州市", 109.32, 12.01),
    ("CN/330000/330600", "绍兴市", 114.57, 12.59),
    ("CN/330000/330700", "金华市", 159.59, 17.53),
    ("CN/330000/330800", "衢州市", 33.41, 3.67),
    ("CN/330000/330900", "舟山市", 12.58, 1.38),
    ("CN/330000/331000", "台州市", 113.48, 12.47),
    ("CN/330000/331100", "丽水市", 14.78, 1.62),
]

REGION_MIX: list[RegionShare] = [RegionShare(k, n, s, "zhejiang", pv) for k, n, pv, s in SEED_TABLE] + [
    RegionShare("CN/310000/310100", "上海市", 1.00, "china"),
    RegionShare("CN/320000/320100", "南京市", 0.80, "china"),
    RegionShare("CN/110000/110100", "北京市", 0.80, "china"),
    RegionShare("CN/440000/440100", "广州市", 0.60, "china"),
    RegionShare("CN/340000/340100", "合肥市", 0.50, "china"),
    RegionShare("CN/350000/350100", "福州市", 0.32, "china"),
    RegionShare("CN/360000/360100", "南昌市", 0.30, "china"),
    RegionShare("CN/370000/370100", "济南市", 0.30, "china"),
    RegionShare("HK/Kowloon/Hong Kong", "Hong Kong", 0.25, "abroad"),
    RegionShare("US/California/Los Angeles", "Los Angeles", 0.25, "abroad"),
    RegionShare("JP/Tokyo/Chiyoda City", "Tokyo", 0.20, "abroad"),
    RegionShare("SG/(unknown)/Singapore", "Singapore", 0.15, "abroad"),
    RegionShare("US/Virginia/Ashburn", "Ashburn (cloud)", 0.15, "abroad"),
    RegionShare("GB/England/London", "London", 0.10, "abroad"),
    RegionShare("AU/New South Wales/Sydney", "Sydney", 0.10, "abroad"),
]
assert abs(sum(r.share for r in REGION_MIX) - 100.0) < 1e-6


# ---- User-Agents -----------------------------------------------------------------------

# Relative weights per (class, browser, os) row of tests/ua_samples.UA_TABLE: visitors of
# Chinese education platforms (phones first, in-app webviews of WeChat and DingTalk, the
# domestic browsers; Windows PCs in schools; Baidu/Bytedance/Sogou/360 crawlers).
UA_WEIGHTS: dict[tuple[str, str | None, str | None], float] = {
    ("pc", "Chrome", "Windows"): 9.0, ("pc", "Edge", "Windows"): 3.0, ("pc", "Firefox", "Windows"): 0.6,
    ("pc", "IE", "Windows"): 0.5, ("pc", "Opera", "Windows"): 0.1, ("pc", "QQ Browser", "Windows"): 4.0,
    ("pc", "WeChat", "Windows"): 3.0, ("pc", "Chrome", "Mac OS X"): 1.2, ("pc", "Safari", "Mac OS X"): 0.8,
    ("pc", "Firefox", "Mac OS X"): 0.1, ("pc", "Chrome", "Linux"): 0.2, ("pc", "Firefox", "Ubuntu"): 0.1,
    ("pc", "Chrome", "Chrome OS"): 0.05, ("pc", "ArkWeb", "HarmonyOS"): 0.3,
    ("mobile", "Mobile Safari", "iOS"): 3.0, ("mobile", "Chrome Mobile iOS", "iOS"): 0.3,
    ("mobile", "WeChat", "iOS"): 8.0, ("mobile", "Baidu App", "iOS"): 1.0, ("mobile", "DingTalk", "iOS"): 2.0,
    ("mobile", "QQ Browser Mobile", "iOS"): 0.8, ("mobile", "QQ", "iOS"): 0.8,
    ("mobile", "Chrome Mobile", "Android"): 0.5, ("mobile", "Edge Mobile", "Android"): 0.1,
    ("mobile", "Samsung Internet", "Android"): 0.1, ("mobile", "Firefox Mobile", "Android"): 0.05,
    ("mobile", "MiuiBrowser", "Android"): 3.0, ("mobile", "WeChat", "Android"): 12.0,
    ("mobile", "QQ Browser Mobile", "Android"): 3.0, ("mobile", "QQ", "Android"): 1.5,
    ("mobile", "UC Browser", "Android"): 2.0, ("mobile", "Baidu App", "Android"): 2.0,
    ("mobile", "DingTalk", "Android"): 4.0, ("mobile", "Quark", "Android"): 1.5,
    ("mobile", "Huawei Browser", "HarmonyOS"): 2.5,
    ("tablet", "Mobile Safari", "iOS"): 2.5, ("tablet", "Chrome", "Android"): 0.5,
    ("tablet", "Samsung Internet", "Android"): 0.1, ("tablet", "Huawei Browser", "HarmonyOS"): 1.2,
    ("tablet", "ArkWeb", "HarmonyOS"): 0.3,
    ("bot", "Baiduspider", None): 0.6, ("bot", "Baiduspider-render", None): 0.2,
    ("bot", "Bytespider", None): 0.4, ("bot", "Googlebot", None): 0.1, ("bot", "bingbot", None): 0.1,
    ("bot", "YisouSpider", None): 0.15, ("bot", "Sogou web spider", None): 0.15, ("bot", "360Spider", None): 0.15,
    ("bot", "GPTBot", None): 0.05, ("bot", "HeadlessChrome", "Linux"): 0.05,
}
DEFAULT_UA_WEIGHT = {"pc": 0.05, "mobile": 0.05, "tablet": 0.02, "bot": 0.01, "other": 0.02}
CHROMIUM = ("Chrome", "Chrome Mobile", "Edge", "Edge Mobile", "Samsung Internet", "Opera", "ArkWeb", "Huawei Browser")

SCREENS = {
    "mobile": [(390, 844, 5), (360, 800, 5), (414, 896, 5), (393, 873, 10), (375, 667, 5), (412, 915, 5)],
    "tablet": [(820, 1180, 5), (800, 1280, 10), (768, 1024, 5), (1024, 1366, 5)],
    "pc": [(1920, 1080, 0), (1366, 768, 0), (1536, 864, 0), (2560, 1440, 0), (1440, 900, 0), (1280, 1024, 0)],
    "other": [(1920, 1080, 0), (1280, 720, 0)],
}


@dataclass(frozen=True)
class UAChoice:
    ua: str
    cls: str
    browser: str | None
    weight: float


def ua_pool() -> list[UAChoice]:
    from ua_samples import UA_TABLE

    rows = {}
    for ua, cls, browser, os_family in UA_TABLE:
        rows.setdefault((cls, browser, os_family), []).append(ua)
    pool = []
    for key, uas in rows.items():
        weight = UA_WEIGHTS.get(key, DEFAULT_UA_WEIGHT.get(key[0], 0.02))
        pool.extend(UAChoice(ua, key[0], key[1], weight / len(uas)) for ua in uas)
    return pool


UA_VARIANT_SHARE, UA_VARIANTS = 0.7, 60
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def unique_ua(ua: str, n: int) -> str:
    """A never-seen variant of `ua`: its last number gets `n` appended (Safari/604.1 -> 604.1123)."""
    out, count = _LAST_NUMBER.subn(lambda m: m.group(1) + str(n), ua, count=1)
    return out if count else f"{ua} {n}"


# ---- platforms and pages --------------------------------------------------------------

APPS = [  # (app key, host, share of hits, platform name)
    ("zjer", "www.zjer.cn", 0.55, "浙江教育资源公共服务平台"),
    ("zjer-space", "space.zjer.cn", 0.25, "浙江省网络学习空间"),
    ("zjer-mooc", "mooc.zjer.cn", 0.12, "之江汇教育广场·微课"),
    ("zjedu-mgmt", "gl.zjer.cn", 0.08, "浙江省教育管理平台"),
]
PAGES_PER_APP = 5000
ZIPF_PAGES = 1.05
ZIPF_VISITORS = 0.9

STAGES = ["小学", "初中", "高中", "中职"]
GRADES = ["一年级", "二年级", "三年级", "四年级", "五年级", "六年级", "七年级", "八年级", "九年级", "高一", "高二", "高三"]
SUBJECTS = ["语文", "数学", "英语", "物理", "化学", "生物", "历史", "地理", "道德与法治", "信息技术", "科学", "美术", "音乐"]
KINDS = ["微课", "课件", "教案", "试卷", "学案", "素材", "电子教材"]
TOPICS = ["一元二次方程", "勾股定理", "光合作用", "牛顿第二定律", "古诗词鉴赏", "现在完成时", "化学方程式", "函数的单调性",
          "二次函数", "细胞的结构", "丝绸之路", "地球的运动", "作文指导", "期末复习", "单元测试", "概率初步"]
CHANNELS = ["resource", "course", "live", "space", "teacher", "school", "activity", "news", "search", "help"]


@dataclass(frozen=True)
class Page:
    url: str
    title: str
    code: str


def page_catalogue(rng: random.Random, app: str, host: str, platform: str, n: int = PAGES_PER_APP) -> list[Page]:
    pages = [Page(f"https://{host}/", f"首页 - {platform}", "home")]
    for ch in CHANNELS:
        pages.append(Page(f"https://{host}/{ch}/", f"{ch} - {platform}", "channel-" + ch))
    while len(pages) < n:
        kind = rng.choice(KINDS)
        title = f"{rng.choice(GRADES)}{rng.choice(SUBJECTS)} · {rng.choice(TOPICS)}（{kind}） - {platform}"
        rid = rng.randrange(10**6, 10**8)
        if rng.random() < 0.5:
            pages.append(Page(f"https://{host}/res/{rid}.html", title, "res-detail"))
        elif rng.random() < 0.6:
            pages.append(Page(f"https://{host}/course/{rid}?stage={rng.choice(STAGES)}&chapter={rng.randrange(1, 30)}", title, "course"))
        else:
            pages.append(Page(f"https://{host}/space/{rid}/article/{rng.randrange(10**5)}", title, ""))
    return pages


def zipf_cum_weights(n: int, s: float) -> list[float]:
    cum, total = [], 0.0
    for rank in range(1, n + 1):
        total += 1.0 / rank**s
        cum.append(total)
    return cum


EXTERNAL_REFERRERS = [
    ("https://www.baidu.com/link?url=", 0.16),
    ("https://m.baidu.com/from=844b/s?word=", 0.08),
    ("http://mp.weixin.qq.com/s/", 0.08),
    ("https://servicewechat.com/wx3a8e8d1e7f1c2b3a/12/page-frame.html", 0.04),
    ("https://h5.dingtalk.com/", 0.05),
    ("https://www.sogou.com/link?url=", 0.02),
    ("https://www.so.com/link?m=", 0.02),
    ("https://cn.bing.com/search?q=", 0.02),
    ("https://www.zjedu.gov.cn/", 0.03),
]
INTERNAL_REFERRER, DIRECT = 0.3, 0.2  # the rest of the probability


# ---- visitors --------------------------------------------------------------------------


@dataclass
class Visitor:
    ip: str
    ua: str
    cls: str  # expected class from the UA table (bot / mobile / ...)
    browser: str | None
    region: str  # region key (RegionShare.key)
    screen: tuple[int, int, int] | None
    ch_mobile: str | None
    vid: str
    lang: str
    pageviews: int = 0
    sid: str = ""

    @property
    def is_bot(self) -> bool:
        return self.cls == "bot"


class IPDrawer:
    """Distinct addresses drawn from the pool's networks of one region."""

    def __init__(self, pool_entry: dict, rng: random.Random) -> None:
        self.rng = rng
        self.v4 = [ipaddress.ip_network(n) for n in pool_entry.get("v4", [])]
        self.v6 = [ipaddress.ip_network(n) for n in pool_entry.get("v6", [])]
        self.v4_weights = [min(n.num_addresses, 1 << 16) for n in self.v4]  # spread over networks
        self.used: set[str] = set()

    def draw(self, v6: bool = False) -> str:
        rng = self.rng
        for _ in range(1000):
            if v6 and self.v6:
                net = rng.choice(self.v6)
                host = rng.randrange(1, min(net.num_addresses, 1 << 64))
            else:
                net = rng.choices(self.v4, weights=self.v4_weights)[0]
                size = net.num_addresses
                host = rng.randrange(1, size - 1) if size > 2 else 0
            ip = str(net[host])
            if ip not in self.used:
                self.used.add(ip)
                return ip
        raise RuntimeError("IP pool exhausted for a region: rebuild bench/data/ip_pool.json with more networks")


def _rid(rng: random.Random, n: int = 8) -> str:
    return "".join(rng.choices(string.ascii_lowercase + string.digits, k=n))


class Population:
    """Visitors per region and the machinery to draw hits from them."""

    def __init__(self, pool: dict, size: int, seed: int = 1, nat_share: float = 0.15, v6_share: float = 0.25) -> None:
        self.rng = rng = random.Random(seed)
        self.uas = ua_pool()
        self.ua_cum = _cum([u.weight for u in self.uas])
        self.regions = REGION_MIX
        self.drawers = {r.key: IPDrawer(pool["regions"][r.key], rng) for r in self.regions}
        self.visitors: dict[str, list[Visitor]] = {}
        for r in self.regions:
            n = max(int(round(size * r.share / 100)), 5)
            people: list[Visitor] = []
            for _ in range(n):
                ip = None
                if people and rng.random() < nat_share:
                    ip = rng.choice(people).ip  # behind the same NAT as someone else
                people.append(self.new_visitor(r.key, ip, v6_share=v6_share))
            self.visitors[r.key] = people
        self.visitor_cum = {k: zipf_cum_weights(len(v), ZIPF_VISITORS) for k, v in self.visitors.items()}
        self.apps = [(a, host, platform, page_catalogue(rng, a, host, platform)) for a, host, _, platform in APPS]
        self.app_cum = _cum([share for _, _, share, _ in APPS])
        self.page_cum = zipf_cum_weights(PAGES_PER_APP, ZIPF_PAGES)
        self.ref_cum = _cum([w for _, w in EXTERNAL_REFERRERS] + [INTERNAL_REFERRER, DIRECT])

    def new_visitor(self, region: str, ip: str | None = None, ua_serial: int | None = None, v6_share: float = 0.25) -> Visitor:
        rng = self.rng
        choice = rng.choices(self.uas, cum_weights=self.ua_cum)[0]
        if ua_serial is not None:
            ua = unique_ua(choice.ua, ua_serial)
        elif choice.cls != "bot" and rng.random() < UA_VARIANT_SHARE:
            # Real browsers differ in build numbers, app versions and device models: a
            # few thousand distinct strings instead of one per row of the table.
            ua = unique_ua(choice.ua, rng.randrange(UA_VARIANTS))
        else:
            ua = choice.ua
        if ip is None:
            ip = self.drawers[region].draw(v6=choice.cls == "mobile" and rng.random() < v6_share)
        screen = None if choice.cls == "bot" else rng.choice(SCREENS[choice.cls])
        ch = None
        if choice.browser in CHROMIUM:
            ch = "?1" if choice.cls == "mobile" else "?0"
        lang = "zh-CN" if rng.random() < 0.95 else rng.choice(["en-US", "zh-TW", "zh-HK", "ja-JP"])
        return Visitor(ip, ua, choice.cls, choice.browser, region, screen, ch, _rid(rng) + _rid(rng, 8), lang)

    # -- per hit ----------------------------------------------------------------------

    def region_sequence(self, n: int) -> list[str]:
        """n region keys, exactly proportional to the shares (largest remainder), shuffled."""
        exact = [(r.key, n * r.share / 100) for r in self.regions]
        counts = {k: int(x) for k, x in exact}
        rest = n - sum(counts.values())
        for k, _share in sorted(exact, key=lambda kx: -(kx[1] - int(kx[1])))[:rest]:
            counts[k] += 1
        seq = [k for k, c in counts.items() for _ in range(c)]
        self.rng.shuffle(seq)
        return seq

    def pick_visitor(self, region: str) -> Visitor:
        return self.rng.choices(self.visitors[region], cum_weights=self.visitor_cum[region])[0]

    def pick_page(self) -> tuple[str, str, str, Page, list[Page]]:
        rng = self.rng
        app, host, platform, pages = rng.choices(self.apps, cum_weights=self.app_cum)[0]
        page = rng.choices(pages, cum_weights=self.page_cum)[0]
        return app, host, platform, page, pages

    def referrer(self, page: Page, pages: list[Page]) -> str:
        rng = self.rng
        i = rng.choices(range(len(EXTERNAL_REFERRERS) + 2), cum_weights=self.ref_cum)[0]
        if i < len(EXTERNAL_REFERRERS):
            base = EXTERNAL_REFERRERS[i][0]
            return base + _rid(rng, 16) if base.endswith(("=", "/")) else base
        if i == len(EXTERNAL_REFERRERS):
            return rng.choices(pages, cum_weights=self.page_cum)[0].url
        return ""


def _cum(weights: list[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


# ---- requests --------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    # what was sent, for the accuracy check
    visitor: Visitor | None = None
    app: str = ""
    events: list[dict] = field(default_factory=list)


def _headers(v: Visitor, page: Page, post: bool) -> dict[str, str]:
    h = {
        "User-Agent": v.ua,
        "X-Forwarded-For": v.ip,
        "Accept": "*/*" if post else "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
        "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8" if v.lang.startswith("zh") else "en-US,en;q=0.9",
        "Accept-Encoding": "gzip, deflate, br",
        "Referer": page.url.split("/", 3)[0] + "//" + page.url.split("/", 3)[2] + "/",
    }
    if post:
        h["Content-Type"] = "text/plain;charset=UTF-8"
        h["Origin"] = h["Referer"][:-1]
    if v.ch_mobile:
        h["Sec-CH-UA-Mobile"] = v.ch_mobile
    return h


def _session(v: Visitor, rng: random.Random) -> int:
    """The session ordinal of the visitor's next page view (a new visit now and then)."""
    if not v.sid or rng.random() < 0.25:
        v.sid, v.pageviews = _rid(rng) + _rid(rng, 8), 0
    v.pageviews += 1
    return v.pageviews


def pageview_event(pop: Population, v: Visitor, app: str, page: Page, pages: list[Page], ts_ms: int, beacon: bool) -> dict:
    rng = pop.rng
    if not beacon:  # a hand-made <img> pixel: the bare minimum, no session ordinal
        ev = {"k": app, "t": "pageview", "u": page.url}
        ref = pop.referrer(page, pages)
        if ref:
            ev["r"] = ref
        return ev
    ev = {"t": "pageview", "ts": ts_ms, "id": _rid(rng) + _rid(rng, 8), "sid": "", "vid": v.vid}
    ev["sn"] = _session(v, rng)
    ev["sid"] = v.sid
    ev["u"] = page.url
    ref = pop.referrer(page, pages)
    if ref:
        ev["r"] = ref
    if page.code:
        ev["pc"] = page.code
    ev["ti"] = page.title
    ev["cs"] = "UTF-8"
    ev["lang"] = v.lang
    if v.screen:
        ev["sw"], ev["sh"], ev["tp"] = v.screen
    ev["k"] = app
    return ev


def get_request(pop: Population, v: Visitor, ts_ms: int) -> Request:
    """A single-event GET pixel: the beacon's <img> fallback (80 %) or a hand-made pixel."""
    app, host, platform, page, pages = pop.pick_page()
    beacon = pop.rng.random() < 0.8
    ev = pageview_event(pop, v, app, page, pages, ts_ms, beacon)
    query = {"img": "1", **{k: str(x) for k, x in ev.items()}} if beacon else ev
    path = "/c?" + urlencode(query, quote_via=quote, safe="")
    return Request("GET", path, _headers(v, page, post=False), b"", v, app, [ev])


EVENT_MIX = [("exposure", 0.38), ("click", 0.25), ("media", 0.17), ("engagement", 0.12), ("interaction", 0.05), ("custom", 0.03)]
_EVENT_CUM = _cum([w for _, w in EVENT_MIX])
MEDIA = ["play", "pause", "seek", "progress", "progress", "progress", "ping", "ended"]
RESOURCE_LABELS = {"rt": "video", "subj": "math", "stage": "junior", "src": "zjer"}
INTERACTIONS = ["rate", "like", "share", "favorite", "comment"]
TARGETS = ["nav-home", "nav-resource", "nav-course", "banner-1", "banner-2", "banner-3", "search-btn",
           "download", "favorite-btn", "share-btn", "tab-grade", "tab-subject", "list-item", "pager-next"]


def batch_events(pop: Population, v: Visitor, app: str, page: Page, pages: list[Page], n: int, ts_ms: int) -> list[dict]:
    """What the beacon batches from one page: its page view, then exposures, clicks, media...

    The batch is sent at `ts_ms`, so its events happened before: a real beacon sends what
    it has gathered, and events dated more than a minute ahead are flagged client_clock."""
    rng = pop.rng
    gaps = [rng.randrange(200, 5000) for _ in range(n - 1)]
    ts_ms -= sum(gaps)
    events = [pageview_event(pop, v, app, page, pages, ts_ms, beacon=True)]
    rid = page.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1].split(".")[0][:16] or "home"
    while len(events) < n:
        t = rng.choices(EVENT_MIX, cum_weights=_EVENT_CUM)[0][0]
        ts_ms += gaps[len(events) - 1]
        ev: dict = {"t": t, "ts": ts_ms, "id": _rid(rng) + _rid(rng, 8), "sid": v.sid, "vid": v.vid}
        if t == "engagement":
            ev.update(u=page.url, et=rng.randrange(1000, 600_000), sd=rng.randrange(0, 101))
            if page.code:
                ev["pc"] = page.code
        elif t == "media":
            # One session per visitor and resource, as the beacon's deep tag sends them.
            pos = rng.randrange(0, 2701)
            ev.update(n=rng.choice(MEDIA), rid=rid, ms=v.sid + rid, pos=pos, ws=min(pos, 2700), wt=rng.randrange(0, 30_001),
                      dur=2700, **RESOURCE_LABELS)
            if ev["n"] == "progress":
                ev["pb"] = rng.choice((10, 25, 50, 75, 90, 100))
        elif t == "interaction":
            name = rng.choice(INTERACTIONS)
            ev.update(n=name, rid=rid, **RESOURCE_LABELS)
            if name == "rate":
                ev["score"] = rng.randrange(1, 6)
            elif name == "share":
                ev["ch"] = rng.choice(("wechat", "qq", "link"))
        elif t == "custom":
            ev.update(n="download", p={"rid": rid, "fmt": rng.choice(["pdf", "pptx", "docx", "mp4"])})
        elif t == "exposure":
            ev.update(n=rng.choice(TARGETS), tr="banner", pos=rng.randrange(1, 6))
        else:
            ev.update(n=rng.choice(TARGETS))
            if rng.random() < 0.5:
                ev.update(tr="nav", pos=rng.randrange(1, 9))
        ev["k"] = app
        events.append(ev)
    return events


def post_request(pop: Population, v: Visitor, n_events: int, ts_ms: int) -> Request:
    app, host, platform, page, pages = pop.pick_page()
    events = batch_events(pop, v, app, page, pages, n_events, ts_ms)
    body = orjson.dumps(events)
    return Request("POST", "/c", _headers(v, page, post=True), body, v, app, events)


def realistic(pop: Population, n: int, shape: str, ts_ms: int) -> list[Request]:
    """n requests of `shape` ("get", "post10", "post50") from the population."""
    out = []
    for region in pop.region_sequence(n):
        v = pop.pick_visitor(region)
        if shape == "get":
            out.append(get_request(pop, v, ts_ms))
        else:
            out.append(post_request(pop, v, int(shape[4:]), ts_ms))
    return out


def unique(pop: Population, n: int, ts_ms: int, serial_start: int = 0) -> list[Request]:
    """n GET pixels, every one from a never-seen IP and a never-seen User-Agent."""
    out = []
    for i, region in enumerate(pop.region_sequence(n)):
        v = pop.new_visitor(region, ua_serial=serial_start + i)
        out.append(get_request(pop, v, ts_ms))
    return out


def http_bytes(r: Request) -> bytes:
    """The request as an HTTP/1.1 client (wrk) sends it."""
    headers = {"Host": "127.0.0.1", **r.headers}
    if r.method == "POST":
        headers["Content-Length"] = str(len(r.body))
    head = f"{r.method} {r.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode() + r.body


# A replay's pass over the same requests: what wrk.py's Lua `with_pass` does to a request
# file, for the in-process benches that feed `http_bytes` to the fast path round after round.
_ID_FIELDS = re.compile(rb'([?&]id=|"id":")([\w-]+)')
_TS_FIELDS = re.compile(rb'([?&]ts=|"ts":)(\d+)')
_CONTENT_LENGTH = re.compile(rb"(?im)^(content-length: *)\d+")


def with_pass(data: bytes, n: int, shift_ms: int = 0) -> bytes:
    """`data` (an `http_bytes` request) as pass `n` of a replay sends it: every event id
    gets the suffix "p<n>" (pass 1 is `data` itself) and every client timestamp moves by
    `shift_ms` (to keep it fresh). Without this a replayed hit is a re-send of the pass
    before: flagged repeated_id, journaled as a rejection, deduplicated at flush — not
    the valid hit of real traffic the bench means to measure."""
    if n <= 1 and not shift_ms:
        return data
    suffix = b"p%d" % n if n > 1 else b""
    head, sep, body = data.partition(b"\r\n\r\n")

    def renew(text: bytes) -> bytes:
        if suffix:
            text = _ID_FIELDS.sub(lambda m: m.group(1) + m.group(2) + suffix, text)
        if shift_ms:
            text = _TS_FIELDS.sub(lambda m: m.group(1) + b"%d" % (int(m.group(2)) + shift_ms), text)
        return text

    head, new_body = renew(head), renew(body)
    if len(new_body) != len(body):
        head = _CONTENT_LENGTH.sub(lambda m: m.group(1) + b"%d" % len(new_body), head)
    return head + sep + new_body


def replay_pass(raw: list[bytes], n: int, generated_ms: int) -> list[bytes]:
    """Pass `n` over the requests `raw` (generated at `generated_ms`): new ids, dated now."""
    shift = int(time.time() * 1000) - generated_ms
    return [with_pass(data, n, shift) for data in raw]


def write_wrk_file(requests: list[Request], path: Path, append: bool = False) -> int:
    """One request per line: METHOD TAB PATH TAB BODY (TAB Header: value)*; returns bytes."""
    lines = []
    for r in requests:
        body = r.body.decode()
        assert "\t" not in body and "\n" not in body
        fields = [r.method, r.path, body] + [f"{k}: {v}" for k, v in r.headers.items()]
        lines.append("\t".join(fields))
    data = ("\n".join(lines) + "\n").encode()
    with open(path, "ab" if append else "wb") as fh:
        fh.write(data)
    return len(data)
