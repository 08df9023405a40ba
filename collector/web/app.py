"""`create_app(settings)`: wires routes and resources; does no I/O itself.

Resources start in dependency order through one cleanup context each — Redis, then
enrichment (geo database, device classifier), then counting (salts, flusher) — and stop
in reverse, so the final flush runs after the server has stopped taking requests and
before the Redis connection closes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from importlib import resources
from pathlib import Path
from typing import AsyncIterator, Callable

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from collector.store import redis_client
from collector.store.aggregate import Aggregator
from collector.web.appkeys import AGGREGATOR, CALENDAR, CLOCK, FLUSHER, GEO, HTTP_STATS, INGEST, JOURNAL, REDIS, REDIS_OUTAGE, SETTINGS
from collector.web.admin_routes import add_registry_routes
from collector.web.beacon_routes import add_beacon_routes
from collector.web.platform_health import health_ctx
from collector.store.buckets import Calendar
from collector.enrich.device import DeviceClassifier
from collector.store.flusher import Flusher
from collector.enrich.geo import GeoResolver
from collector.web.http_limits import HttpStats
from collector.hit.ingest import Answer, Ingest
from collector.store.journal import Journal
from collector.store.periodic import Periodic
from collector.hit.protocol import decode_query
from collector.store.rollup import RollupBuilder
from collector.settings import Settings, SettingsError, redacted_url, resolve_path
from collector.api.stats import StatsReader
from collector.web.stats_routes import ReadAccess, RedisOutageLog, StatsAPI, operator_refusal, warn_if_read_api_closed
from collector.hit.visitors import VisitorHasher
from collector.store.salts import SaltKeeper

log = logging.getLogger(__name__)


def create_app(settings: Settings, clock: Callable[[], float] = time.time, worker: int = 0) -> web.Application:
    """`worker` numbers the processes sharing one data dir: each has its own journal."""
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[CALENDAR] = Calendar(settings.timezone)
    app[AGGREGATOR] = Aggregator()
    app[HTTP_STATS] = HttpStats()  # kept by hit_server.py's HitServer
    app[JOURNAL] = (
        Journal(Path(settings.data_dir) / "journal" / f"w{worker}", settings.journal_fsync, settings.journal_max_bytes)
        if settings.journal
        else None
    )
    app[REDIS_OUTAGE] = RedisOutageLog()
    app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(enrichment_ctx)
    app.cleanup_ctx.append(counting_ctx)
    app.cleanup_ctx.append(health_ctx)  # platform health rounds, one process per deployment
    app.on_startup.append(warn_if_read_api_closed)

    # allow_head=False: a HEAD is answered 405 (Allow: GET, POST, OPTIONS), never counted.
    app.router.add_get("/c", hit_get, allow_head=False)
    app.router.add_post("/c", hit_post)
    app.router.add_route("OPTIONS", "/c", hit_options)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/stats", api_stats)
    app.router.add_get("/api/apps", api_apps)
    app.router.add_put("/api/catalogue", api_catalogue)
    app.router.add_get("/api/collector", collector_metrics)
    app.router.add_get("/api/openapi.json", openapi_description)
    add_beacon_routes(app, resolve_path(settings.beacon_dir))
    add_registry_routes(app)
    return app


# Routes are fixed before startup; the objects behind them are made at startup.


# Hits mostly arrive through hit_server.py's fast path; these routes serve the connections
# it hands over to aiohttp (see there), with the same Ingest behind both.


async def hit_get(request: web.Request) -> web.Response:
    ingest = request.app[INGEST]
    return as_response(ingest, ingest.hit_query(decode_query(request.rel_url.raw_query_string), *sender(request)))


async def hit_post(request: web.Request) -> web.Response:
    ingest = request.app[INGEST]
    try:
        body: bytes | None = await request.read()
    except web.HTTPRequestEntityTooLarge:
        body = None
    return as_response(ingest, ingest.hit_body(body, *sender(request)))


async def hit_options(request: web.Request) -> web.Response:
    ingest = request.app[INGEST]
    return as_response(ingest, ingest.preflight())


def sender(request: web.Request) -> tuple[str | None, str | None, str, str | None]:
    """(TCP peer, X-Forwarded-For, User-Agent, Sec-CH-UA-Mobile), as Ingest's handlers take them.

    A proxy may add its hop as another X-Forwarded-For line: the lines are one list.
    """
    headers = request.headers
    hops = headers.getall("X-Forwarded-For", ())
    forwarded_for = ",".join(hops) if hops else None
    return request.remote, forwarded_for, headers.get("User-Agent", ""), headers.get("Sec-CH-UA-Mobile")


def as_response(ingest: Ingest, answer: Answer) -> web.Response:
    headers = {**ingest.cors, **dict(answer.headers)}
    return web.Response(status=answer.status, body=answer.body or None, content_type=answer.content_type, headers=headers)


async def api_stats(request: web.Request) -> web.Response:
    return await _stats_api(request).stats(request)


async def api_apps(request: web.Request) -> web.Response:
    return await _stats_api(request).apps(request)


async def api_catalogue(request: web.Request) -> web.Response:
    return await _stats_api(request).catalogue(request)


def _stats_api(request: web.Request) -> StatsAPI:
    app = request.app
    return StatsAPI(StatsReader(app[REDIS], app[CALENDAR], app[CLOCK]), ReadAccess.of(app), app[REDIS_OUTAGE])


async def openapi_description(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of every endpoint (collector/web/openapi.json), for client
    generators; open like /healthz, since it holds no data."""
    return web.Response(body=_openapi_bytes(), content_type="application/json")


@functools.cache
def _openapi_bytes() -> bytes:
    return resources.files(__package__).joinpath("openapi.json").read_bytes()


# ---- resources ------------------------------------------------------------------------


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # Short timeouts: a hung Redis must not hold a flush (or shutdown) for long; a failed
    # flush is simply retried, and the journal keeps its events meanwhile.
    client = redis_client.connect(
        settings.redis_url, socket_timeout=settings.redis_timeout, socket_connect_timeout=2, health_check_interval=30
    )
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
        app[JOURNAL],
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
    journal = app[JOURNAL]
    flusher = Flusher(
        app[REDIS], app[AGGREGATOR], RollupBuilder(app[CALENDAR], ttls), settings.flush_interval, journal,
        completed_percent=settings.completed_percent, round_trip_timeout=settings.redis_timeout,
        batch_max_cells=settings.batch_max_cells, memory_max_cells=settings.memory_max_cells,
    )
    app[FLUSHER] = flusher
    flusher.recover()  # what a crashed or cut-off earlier run left in the journal goes first
    flusher.start()
    syncer = None
    if journal and settings.journal_fsync == "everysec":
        loop = asyncio.get_running_loop()

        async def sync_journal() -> float:
            await loop.run_in_executor(None, journal.sync)
            return 1.0

        syncer = Periodic("journal-fsync", sync_journal, 1.0)
        syncer.start()
    yield
    await salts.close()
    await flusher.close()
    if syncer:
        await syncer.close()
    if journal:
        journal.close()


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
    """Ready while hits can be stored durably and counting keeps up.

    Durably: Redis answers, or the journal has room. With the journal on, a Redis outage
    does not make the collector unready (it keeps taking hits and catches up later); a
    full journal does, and so does (journal off) a full memory budget. Keeping up: the
    oldest batch not yet in Redis has waited less than flush_stall_seconds — a flush
    that keeps failing while Redis answers pings is otherwise invisible. The body
    shows the backlog, its age included.
    """
    app = request.app
    body = backlog(app)
    outage = app[REDIS_OUTAGE]
    try:
        await asyncio.wait_for(app[REDIS].ping(), timeout=1.0)
        body["redis"] = "ok"
        outage.recovered()
    except (RedisError, OSError, asyncio.TimeoutError) as exc:
        body["redis"] = "unreachable"  # the reason names Redis's address: logged, not answered
        outage.failed(exc)
    journal = app[JOURNAL]
    durable = (body["redis"] == "ok" or (journal is not None and not journal.full)) and not app[AGGREGATOR].refusing
    body["flush_stalled"] = body["backlog_age_s"] >= app[SETTINGS].flush_stall_seconds
    ready = durable and not body["flush_stalled"]
    return web.Response(body=orjson.dumps(body), status=200 if ready else 503, content_type="application/json")


async def collector_metrics(request: web.Request) -> web.Response:
    """This process's flush and journal backlog (each worker answers for itself)."""
    refused = await operator_refusal(request)
    if refused is not None:
        return refused
    return web.Response(body=orjson.dumps(backlog(request.app)), content_type="application/json")


def backlog(app: web.Application) -> dict:
    flusher, journal = app[FLUSHER], app[JOURNAL]
    stats = flusher.stats
    return {
        "writer": flusher.writer,
        "pending_flushes": len(flusher.pending),
        # Seconds the oldest batch not yet in Redis has waited (0: none waits).
        "backlog_age_s": round(flusher.backlog_age(), 1),
        "pending_events": app[AGGREGATOR].pending_events + sum(b.events for b in flusher.pending),
        "flushes": stats.flushes,
        "events_flushed": stats.events_flushed,
        "flush_retries": stats.failures,
        "flush_round_trips": stats.round_trips,
        "early_seals": stats.early_seals,
        "batches_recovered": stats.batches_recovered,
        "last_flush": stats.last_success or None,
        "last_flush_ms": round(stats.last_duration_ms, 2),
        "journal_bytes": journal.bytes if journal else None,
        "journal_max_bytes": journal.max_bytes if journal else None,
        # Journal records replay could not decode: set aside in quarantine.jsonl, not counted.
        "records_quarantined": journal.quarantine.records if journal else 0,
        # Events counted under (other) because a cardinality cap was full (caps.py).
        "capped_events": dict(app[INGEST].caps.overflowed),
        # Connections and requests the HTTP layer closed or refused (http_limits.py).
        "http": app[HTTP_STATS].as_dict(),
    }

