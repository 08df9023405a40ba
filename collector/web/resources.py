"""The application's resources: one cleanup context each, in dependency order.

create_app lists them (app.RESOURCES); aiohttp starts them in that order at startup
and stops them in reverse at cleanup — and only those that started: when one fails to
start, the ones before it are stopped (server.py cleans up after a failed startup) and
the ones after it never ran. So the final
flush (the flusher's cleanup) runs after the server stopped taking requests and before
the journal and Redis close.

Each context sets its resource's keys (appkeys.py) before it yields, for the contexts
after it and for the request handlers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from collector.enrich.device import DeviceClassifier
from collector.enrich.geo import GeoResolver
from collector.hit.ingest import Ingest
from collector.registry.live import LiveRegistry
from collector.registry.release import load_release
from collector.registry.store import RegistryStore
from collector.settings import Settings, SettingsError, redacted_url, resolve_path
from collector.store import redis_client
from collector.store.capping import DeploymentCaps
from collector.store.finality import Finality, FinalityKeeper
from collector.store.flusher import FIRST_SEQ, Flusher
from collector.store.journal import Journal
from collector.store.journal_keeper import JournalKeeper
from collector.store.rollup import RollupBuilder
from collector.store.salts import SaltKeeper
from collector.web.appkeys import (
    AGGREGATOR,
    BEACON,
    BEACON_RELEASE,
    CALENDAR,
    CLOCK,
    FINALITY,
    FLUSHER,
    GEO,
    HASHER,
    INGEST,
    JOURNAL,
    JOURNAL_DIR,
    JOURNAL_LEFTOVERS,
    REDIS,
    SETTINGS,
    WRITER,
)
from collector.web.beacon_routes import BeaconAssets

log = logging.getLogger(__name__)

CONNECT_ATTEMPTS = 10  # 0.2 s apart: a Redis started alongside the collector gets two seconds


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # Short timeouts: a hung Redis must not hold a flush (or shutdown) for long; a failed
    # flush is simply retried, and the journal keeps its events meanwhile.
    client = redis_client.connect(
        settings.redis_url, socket_timeout=settings.redis_timeout, socket_connect_timeout=2, health_check_interval=30
    )
    app[REDIS] = client
    await _reach(client, settings.redis_url)
    yield
    await client.aclose()


async def _reach(client: aioredis.Redis, url: str) -> None:
    """Log the Redis reached; an unreachable one is a warning, not a failed start."""
    for attempt in range(CONNECT_ATTEMPTS):
        try:
            info = await client.info("server")
            log.info("redis: reached %s (redis %s)", redacted_url(url), info.get("redis_version"))
            return
        except (RedisError, OSError) as exc:
            if attempt == CONNECT_ATTEMPTS - 1:
                # Keep serving: hits are aggregated in memory and flushed once Redis is back.
                log.warning("redis: %s unreachable (%s); counting in memory until it answers", redacted_url(url), exc)
            else:
                await asyncio.sleep(0.2)


async def journal_ctx(app: web.Application) -> AsyncIterator[None]:
    """The journal's whole lifecycle (journal_keeper.py); None when it is off."""
    settings = app[SETTINGS]
    app[JOURNAL_LEFTOVERS] = []
    if not settings.journal:
        app[JOURNAL] = None
        yield
        return
    journal = Journal(app[JOURNAL_DIR], settings.journal_fsync, settings.journal_max_bytes)
    keeper = JournalKeeper(journal)
    app[JOURNAL_LEFTOVERS] = keeper.start(app[WRITER], FIRST_SEQ)
    app[JOURNAL] = journal
    yield
    await keeper.close()


async def geo_ctx(app: web.Application) -> AsyncIterator[None]:
    geo = app[GEO] = open_geo(app[SETTINGS])
    yield
    if geo:
        geo.close()


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


async def salts_ctx(app: web.Application) -> AsyncIterator[None]:
    salts = SaltKeeper(app[REDIS], app[HASHER], app[CALENDAR], app[CLOCK])
    await salts.refresh()  # before the first hit, so every replica hashes with the shared salt
    salts.start()
    yield
    await salts.close()


async def ingest_ctx(app: web.Application) -> AsyncIterator[None]:
    """The per-hit path; it holds nothing to release."""
    settings = app[SETTINGS]
    app[INGEST] = Ingest(
        settings, app[AGGREGATOR], app[GEO], DeviceClassifier(settings.ua_cache_size, settings.ua_memo_size), app[HASHER],
        app[CALENDAR], app[CLOCK], app[JOURNAL],
    )
    yield


async def registry_ctx(app: web.Application) -> AsyncIterator[None]:
    """With `registry=enforce`, the hit path's in-memory registry: loaded before the first
    hit is served, then kept fresh (registry/live.py). `open` needs none."""
    admission = app[INGEST].admission
    if admission.mode != "enforce":
        yield
        return
    live = LiveRegistry(RegistryStore(app[REDIS], app[CLOCK]), admission.use, admission.take_first_hits)
    await live.start()
    yield
    await live.close()


async def flusher_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    ttls = {"minute": settings.ttl_minute, "hour": settings.ttl_hour, "day": settings.ttl_day, "month": settings.ttl_month}
    finality_on = settings.finality_interval > 0
    flusher = app[FLUSHER] = Flusher(
        app[REDIS], app[AGGREGATOR], RollupBuilder(app[CALENDAR], ttls), settings.flush_interval, app[JOURNAL],
        writer=app[WRITER], completed_percent=settings.completed_percent, round_trip_timeout=settings.redis_timeout,
        batch_max_cells=settings.batch_max_cells, memory_max_cells=settings.memory_max_cells,
        clock=app[CLOCK], record_touched=settings.finality_granularities if finality_on else (),
        finality=Finality(app[REDIS], app[WRITER], settings.finality_writer_ttl) if finality_on else None,
        dedupe_window=settings.dedupe_window, dedupe_hold_max=settings.dedupe_hold_max,
        wait_replicas=settings.redis_wait_replicas, flush_cpu_share=settings.flush_cpu_share,
        build_process=settings.flush_build_process,
        caps=DeploymentCaps(settings.cap_limits(), app[CALENDAR], app[INGEST].caps),
    )
    flusher.recover(app[JOURNAL_LEFTOVERS])  # what a crashed or cut-off earlier run left goes first
    keeper = app[FINALITY] = finality_keeper(app, flusher) if finality_on else None
    flusher.start()
    if keeper:
        await keeper.round()  # the watermark is published (held back by a journal replay) before the first flush
        keeper.start()
    yield
    await flusher.close()  # the final flush
    if keeper:
        await keeper.close(leave=not flusher.pending)


def finality_keeper(app: web.Application, flusher: Flusher) -> FinalityKeeper:
    """This writer's watermark publisher and, while it holds the lease, the announcer."""
    settings = app[SETTINGS]
    assert flusher.finality is not None  # finality is on
    return FinalityKeeper(
        flusher.finality, lambda: (flusher.watermark(), flusher.firsts_watermark()),
        settings.finality_interval, settings.client_ts_window, settings.finality_stream_maxlen,
    )


async def beacon_ctx(app: web.Application) -> AsyncIterator[None]:
    """The beacon build, read and compressed once (beacon_routes.py), and its release
    manifest for the integration kit (admin_routes.py)."""
    dist_dir = resolve_path(app[SETTINGS].beacon_dir)
    app[BEACON] = BeaconAssets.load(dist_dir)
    app[BEACON_RELEASE] = load_release(dist_dir)
    yield
