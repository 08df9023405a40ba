"""Accuracy: send exactly N hits with known visitors and regions, read /api/stats back.

The hits: page views whose regions are allotted exactly by the mix (largest remainder over
REGION_MIX, i.e. the seed report's prefecture shares), from human visitors drawn
Zipf-wise from a fixed population (so visitors come back); 80 % as GET pixels, 20 % as
POST batches of 10 (the page view, then clicks, exposures, engagement...); plus a few
crawler hits. Every answer must be 2xx. Then, from `/api/stats` of a fresh collector:

* PV, bot PV, engagements and events by type must be exact;
* UV (HyperLogLog) is compared with the distinct (IP, User-Agent) visitors sent, overall
  and per prefecture, and first-party UV with the distinct `vid`s;
* the prefecture shares of PV must reproduce the seed report's table.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp

from . import traffic
from .ippool import load_pool

BATCH_SHARE = 0.2
BOT_SHARE = 0.03


def build(n_hits: int, app: str, seed: int = 11) -> tuple[list[traffic.Request], dict]:
    """Requests holding exactly `n_hits` events, and what /api/stats must show for them."""
    from collector.enrich.device import DeviceClassifier

    pop = traffic.Population(load_pool(), max(n_hits // 4, 2000), seed=seed)
    a, host, platform, pages = pop.apps[0]
    pop.apps = [(app, host, platform, pages)]
    pop.app_cum = [1.0]
    rng = pop.rng
    humans = {k: [i for i, v in enumerate(vs) if not v.is_bot] for k, vs in pop.visitors.items()}
    bots = [v for vs in pop.visitors.values() for v in vs if v.is_bot]
    # Each region's human visitors, Zipf-weighted (revisits).
    cum = {k: traffic.zipf_cum_weights(len(ix), traffic.ZIPF_VISITORS) for k, ix in humans.items()}

    n_bot = int(n_hits * BOT_SHARE)
    n_human = n_hits - n_bot
    # Requests of 1 (GET) or 10 (POST) events: as many page views as requests.
    n_batches = int(n_human * BATCH_SHARE / 10)
    n_gets = n_human - 10 * n_batches
    kinds = ["post"] * n_batches + ["get"] * n_gets
    rng.shuffle(kinds)
    regions = pop.region_sequence(len(kinds))
    now_ms = int(time.time() * 1000)
    reqs: list[traffic.Request] = []
    for kind, region in zip(kinds, regions, strict=True):
        i = rng.choices(humans[region], cum_weights=cum[region])[0]
        v = pop.visitors[region][i]
        reqs.append(traffic.get_request(pop, v, now_ms) if kind == "get" else traffic.post_request(pop, v, 10, now_ms))
    for _ in range(n_bot):
        reqs.append(traffic.get_request(pop, rng.choice(bots), now_ms))
    rng.shuffle(reqs)
    for r in reqs:  # the collector buckets by receipt time: no client timestamps here
        for ev in r.events:
            ev.pop("ts", None)
        if r.method == "POST":
            import orjson

            r.body = orjson.dumps(r.events)
        else:
            from urllib.parse import quote, urlencode

            ev = r.events[0]
            beacon = "sn" in ev
            q = {"img": "1", **{k: str(x) for k, x in ev.items()}} if beacon else ev
            r.path = "/c?" + urlencode(q, quote_via=quote, safe="")

    # What the collector must count, worked out with its own device classifier.
    devices = DeviceClassifier()
    expect = {"events": sum(len(r.events) for r in reqs), "pv": 0, "bot_pv": 0, "bot_hits": 0, "by_type": Counter(),
              "engagements": 0, "engaged_ms": 0}
    uv, uv_fp = set(), set()
    city_pv, city_uv = Counter(), defaultdict(set)
    for r in reqs:
        v = r.visitor
        dev = devices.classify(v.ua, v.ch_mobile, *(v.screen or (0, 0, 0)))
        for ev in r.events:
            t = ev["t"]
            if dev.is_bot:
                expect["bot_hits"] += 1
                expect["bot_pv"] += t == "pageview"
                continue
            uv.add((v.ip, v.ua))
            city_uv[v.region].add((v.ip, v.ua))
            if ev.get("vid"):
                uv_fp.add(ev["vid"])
            if t == "pageview":
                expect["pv"] += 1
                city_pv[v.region] += 1
            elif t == "engagement":
                expect["engagements"] += 1
                expect["engaged_ms"] += ev["et"]
            else:
                expect["by_type"][t] += 1
    expect.update(uv=len(uv), uv_fp=len(uv_fp), city_pv=city_pv, city_uv={k: len(s) for k, s in city_uv.items()})
    return reqs, expect


async def send(base: str, reqs: list[traffic.Request], concurrency: int = 32) -> Counter:
    statuses: Counter = Counter()
    queue = iter(reqs)
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def worker() -> None:
            for r in queue:
                kw = {"headers": r.headers}
                if r.method == "POST":
                    kw["data"] = r.body
                async with session.request(r.method, base + r.path, skip_auto_headers=("User-Agent",), **kw) as answer:
                    await answer.read()
                    statuses[answer.status] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def read_stats(base: str, app: str) -> dict:
    import json
    import urllib.request

    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    q = f"app={app}&from={today - timedelta(days=1)}&to={today}&granularity=day&breakdown=region,device"
    with urllib.request.urlopen(f"{base}/api/stats?{q}", timeout=30) as answer:
        return json.load(answer)


def run(bench, n_hits: int) -> dict:
    app = "accuracy-" + time.strftime("%H%M%S")
    t0 = time.monotonic()
    reqs, expect = build(n_hits, app)
    s = bench.server("collector", 1)
    bench.redis.reset()
    s.start()
    try:
        t1 = time.monotonic()
        statuses = asyncio.run(send(s.url, reqs))
        send_s = time.monotonic() - t1
        bench.settle(s, expect["events"], 20)
        stats = read_stats(s.url, app)
    finally:
        s.stop()
        bench.cleanup(s)
    return compare(expect, stats, statuses, len(reqs), send_s, time.monotonic() - t0)


def compare(expect: dict, stats: dict, statuses: Counter, n_requests: int, send_s: float, total_s: float) -> dict:
    totals = stats["totals"]
    cities = {row["value"]: row for row in stats["breakdowns"]["region"]["city"]}
    pv_read = totals["pv"]
    rows = []
    for r in traffic.REGION_MIX:
        row = cities.get(r.key, {"pv": 0, "uv": 0})
        sent_uv = expect["city_uv"].get(r.key, 0)
        rows.append({
            "key": r.key,
            "name": r.name,
            "group": r.group,
            "seed_share": r.share,
            "pv_sent": expect["city_pv"].get(r.key, 0),
            "pv_read": row["pv"],
            "share_read": 100 * row["pv"] / pv_read if pv_read else 0.0,
            "uv_sent": sent_uv,
            "uv_read": row.get("uv", 0),
            "uv_error": (row.get("uv", 0) - sent_uv) / sent_uv if sent_uv else None,
        })
    unexpected = {k: v["pv"] for k, v in cities.items() if k not in {r.key for r in traffic.REGION_MIX}}
    events_read = totals.get("events", {})
    exact = {
        "pv": (expect["pv"], pv_read),
        "bot_pv": (expect["bot_pv"], totals["bot_pv"]),
        "bot_hits": (expect["bot_hits"], totals["bot_hits"]),
        "engagements": (expect["engagements"], totals["engagements"]),
        "engaged_ms": (expect["engaged_ms"], totals["engaged_ms"]),
        **{f"events:{t}": (n, events_read.get(t, 0)) for t, n in sorted(expect["by_type"].items())},
    }
    zj = [r for r in rows if r["group"] == "zhejiang"]
    summary = {
        "hits_sent": expect["events"],
        "requests": n_requests,
        "non_2xx": sum(n for code, n in statuses.items() if not 200 <= code < 300),
        "pv_exact": exact["pv"][0] == exact["pv"][1],
        "all_counts_exact": all(a == b for a, b in exact.values()),
        "uv_sent": expect["uv"],
        "uv_read": totals["uv"],
        "uv_error": (totals["uv"] - expect["uv"]) / expect["uv"],
        "uv_fp_sent": expect["uv_fp"],
        "uv_fp_read": totals["uv_first_party"],
        "uv_fp_error": (totals["uv_first_party"] - expect["uv_fp"]) / expect["uv_fp"] if expect["uv_fp"] else None,
        "max_city_uv_error": max(abs(r["uv_error"]) for r in zj if r["uv_error"] is not None),
        "max_share_deviation_pp": max(abs(r["share_read"] - r["seed_share"]) for r in rows),
        "city_pv_exact": all(r["pv_sent"] == r["pv_read"] for r in rows) and not unexpected,
        "send_seconds": round(send_s, 1),
        "total_seconds": round(total_s, 1),
    }
    return {"summary": summary, "exact": exact, "regions": rows, "unexpected_regions": unexpected,
            "statuses": {str(k): v for k, v in statuses.items()}}
