"""`create_app(settings)`: wires routes and resources; does no I/O itself.

Resources start in dependency order through one cleanup context each — Redis, then
enrichment (geo database, device classifier), then counting (salts, flusher) — and stop
in reverse, so the final flush runs after the server has stopped taking requests and
before the Redis connection closes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import AsyncIterator, Callable

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from .aggregate import Aggregator
from .appkeys import AGGREGATOR, CALENDAR, CLOCK, FLUSHER, GEO, INGEST, REDIS, SETTINGS
from .beacon_routes import add_beacon_routes
from .buckets import Calendar
from .device import DeviceClassifier
from .flusher import Flusher
from .geo import GeoResolver
from .ingest import Ingest
from .rollup import RollupBuilder
from .settings import Settings, SettingsError, redacted_url, resolve_path
from .stats import StatsAPI, StatsReader
from .visitors import SaltKeeper, VisitorHasher

log = logging.getLogger(__name__)


def create_app(settings: Settings, clock: Callable[[], float] = time.time) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[CALENDAR] = Calendar(settings.timezone)
    app[AGGREGATOR] = Aggregator()
    app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(enrichment_ctx)
    app.cleanup_ctx.append(counting_ctx)

    app.router.add_get("/c", lambda r: r.app[INGEST].get(r))
    app.router.add_post("/c", lambda r: r.app[INGEST].post(r))
    app.router.add_route("OPTIONS", "/c", lambda r: r.app[INGEST].options(r))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/stats", lambda r: _stats_api(r).stats(r))
    app.router.add_get("/api/apps", lambda r: _stats_api(r).apps(r))
    add_beacon_routes(app, resolve_path(settings.beacon_dir))
    return app


def _stats_api(request: web.Request) -> StatsAPI:
    app = request.app
    return StatsAPI(StatsReader(app[REDIS], app[CALENDAR], app[CLOCK]), app[SETTINGS].api_token)


# ---- resources ------------------------------------------------------------------------


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    client = aioredis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30)
    app[REDIS] = client
    for attempt in range(10):
        try:
            info = await client.info("server")
            log.info("redis: reached %s (redis %s)", redacted_url(settings.redis_url), info.get("redis_version"))
            break
        except (RedisError, OSError) as exc:
            if attempt == 9:
                # Keep serving: hits are aggregated in memory and flushed once Redis is back.
                log.warning("redis: %s unreachable (%s); counting in memory until it answers", redacted_url(settings.redis_url), exc)
            else:
                await asyncio.sleep(0.2)
    yield
    await client.aclose()


async def enrichment_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    geo = open_geo(settings)
    app[GEO] = geo
    app[INGEST] = Ingest(
        settings,
        app[AGGREGATOR],
        geo,
        DeviceClassifier(settings.ua_cache_size),
        VisitorHasher(),
        app[CALENDAR],
        app[CLOCK],
    )
    yield
    if geo:
        geo.close()


async def counting_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    salts = SaltKeeper(app[REDIS], app[INGEST].hasher, app[CALENDAR], app[CLOCK])
    await salts.refresh()  # before the first hit, so every replica hashes with the shared salt
    salts.start()
    ttls = {"minute": settings.ttl_minute, "hour": settings.ttl_hour, "day": settings.ttl_day, "month": settings.ttl_month}
    flusher = Flusher(app[REDIS], app[AGGREGATOR], RollupBuilder(app[CALENDAR], ttls), settings.flush_interval)
    app[FLUSHER] = flusher
    flusher.start()
    yield
    await salts.close()
    await flusher.close()


def open_geo(settings: Settings) -> GeoResolver | None:
    paths = [resolve_path(p) for p in settings.geo_db]
    missing = [p for p in paths if not p.exists()]
    if missing:
        if settings.geo_db == Settings().geo_db:
            log.warning("no geo database at %s: regions are counted as unknown (run geo_data/fetch_dbip.sh)", missing[0])
            return None
        raise SettingsError(f"COLLECTOR_GEO_DB / --geo-db: {missing[0]} does not exist")
    geo = GeoResolver([str(p) for p in paths], settings.geo_cache_size)
    for line in geo.descriptions:
        log.info("geo: %s", line)
    return geo


# ---- health ---------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


async def readyz(request: web.Request) -> web.Response:
    """Ready when Redis answers; the body shows the flush backlog either way."""
    flusher = request.app[FLUSHER]
    body = {
        "redis": "ok",
        "pending_flushes": len(flusher.pending),
        "pending_events": request.app[AGGREGATOR].pending_events + sum(b.events for b in flusher.pending),
        "last_flush": flusher.stats.last_success or None,
        "flush_failures": flusher.stats.failures,
    }
    status = 200
    try:
        await asyncio.wait_for(request.app[REDIS].ping(), timeout=1.0)
    except (RedisError, OSError, asyncio.TimeoutError) as exc:
        body["redis"] = f"unreachable: {exc}"
        status = 503
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")

