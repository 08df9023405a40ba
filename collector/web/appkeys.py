"""Typed keys of everything the aiohttp application holds, declared in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import redis.asyncio as aioredis
from aiohttp import web

if TYPE_CHECKING:
    from collector.store.aggregate import Aggregator
    from collector.store.buckets import Calendar
    from collector.store.flusher import Flusher
    from collector.enrich.geo import GeoResolver
    from collector.web.http_limits import HttpStats
    from collector.hit.ingest import Ingest
    from collector.store.journal import Journal
    from collector.settings import Settings
    from collector.web.stats_routes import RedisOutageLog

SETTINGS: web.AppKey["Settings"] = web.AppKey("settings")
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
CALENDAR: web.AppKey["Calendar"] = web.AppKey("calendar")
REDIS: web.AppKey[aioredis.Redis] = web.AppKey("redis")
AGGREGATOR: web.AppKey["Aggregator"] = web.AppKey("aggregator")
GEO: web.AppKey["GeoResolver | None"] = web.AppKey("geo")
INGEST: web.AppKey["Ingest"] = web.AppKey("ingest")
FLUSHER: web.AppKey["Flusher"] = web.AppKey("flusher")
JOURNAL: web.AppKey["Journal | None"] = web.AppKey("journal")
REDIS_OUTAGE: web.AppKey["RedisOutageLog"] = web.AppKey("redis_outage")
HTTP_STATS: web.AppKey["HttpStats"] = web.AppKey("http_stats")
