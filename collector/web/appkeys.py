"""Typed keys of everything the aiohttp application holds, declared in one place.

create_app sets the first group (settings and in-memory objects, no I/O); each cleanup
context of resources.py sets its resource's keys at startup, in the order listed there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from aiohttp import web

if TYPE_CHECKING:
    from pathlib import Path

    from collector.enrich.geo import GeoResolver
    from collector.hit.ingest import Ingest
    from collector.hit.visitors import VisitorHasher
    from collector.registry.health_job import HealthJob
    from collector.registry.release import BeaconRelease
    from collector.settings import Settings
    from collector.store.aggregate import Aggregator
    from collector.store.buckets import Calendar
    from collector.store.finality import FinalityKeeper
    from collector.store.flusher import Flusher
    from collector.store.journal import Journal, Segment
    from collector.web.beacon_routes import BeaconAssets
    from collector.web.dashboard_routes import DashboardAssets
    from collector.web.http_limits import HttpStats
    from collector.web.metrics import MetricsBoard
    from collector.web.stats_routes import RedisOutageLog

# Set by create_app.
SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
CALENDAR: web.AppKey[Calendar] = web.AppKey("calendar")
AGGREGATOR: web.AppKey[Aggregator] = web.AppKey("aggregator")
HASHER: web.AppKey[VisitorHasher] = web.AppKey("hasher")  # its salts come from the salts context
# This process's writer id (flush sequence markers, journal segment names) and its
# number among the processes sharing one data dir (each has its own journal).
WRITER: web.AppKey[str] = web.AppKey("writer")
JOURNAL_DIR: web.AppKey[Path] = web.AppKey("journal_dir")
WORKER_NUMBER: web.AppKey[int] = web.AppKey("worker_number")  # its number among `--workers N`: 0..N-1
REDIS_OUTAGE: web.AppKey[RedisOutageLog] = web.AppKey("redis_outage")
HTTP_STATS: web.AppKey[HttpStats] = web.AppKey("http_stats")

# Set at startup by the cleanup contexts (resources.py, platform_health.py).
REDIS: web.AppKey[aioredis.Redis] = web.AppKey("redis")
JOURNAL: web.AppKey[Journal | None] = web.AppKey("journal")
# The segments earlier runs left in the journal: the flusher replays them first.
JOURNAL_LEFTOVERS: web.AppKey[list[Segment]] = web.AppKey("journal_leftovers")
GEO: web.AppKey[GeoResolver | None] = web.AppKey("geo")
INGEST: web.AppKey[Ingest] = web.AppKey("ingest")
FLUSHER: web.AppKey[Flusher] = web.AppKey("flusher")
FINALITY: web.AppKey[FinalityKeeper | None] = web.AppKey("finality")  # None: finality_interval 0
BEACON: web.AppKey[BeaconAssets] = web.AppKey("beacon")
BEACON_RELEASE: web.AppKey[BeaconRelease | None] = web.AppKey("beacon_release")  # for the integration kit
HEALTH_JOB: web.AppKey[HealthJob] = web.AppKey("health_job")
METRICS_BOARD: web.AppKey[MetricsBoard] = web.AppKey("metrics_board")  # GET /metrics (web/metrics.py)
DASHBOARD: web.AppKey[DashboardAssets] = web.AppKey("dashboard")  # dashboard_routes.py's context
