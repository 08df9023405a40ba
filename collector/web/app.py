"""`create_app(settings)`: wires routes and resources; does no I/O itself.

The routes are fixed here, before startup; the resources behind them start at startup,
each in its own cleanup context (resources.py), in the order of RESOURCES.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from collector.hit.visitors import VisitorHasher
from collector.settings import Settings
from collector.store.aggregate import Aggregator
from collector.store.buckets import Calendar
from collector.store.flusher import new_writer_id
from collector.web.admin_routes import add_registry_routes
from collector.web.appkeys import (
    AGGREGATOR,
    CALENDAR,
    CLOCK,
    HASHER,
    HTTP_STATS,
    JOURNAL_DIR,
    REDIS_OUTAGE,
    SETTINGS,
    WORKER_NUMBER,
    WRITER,
)
from collector.web.beacon_routes import add_beacon_routes
from collector.web.dashboard_routes import add_dashboard_routes, dashboard_ctx
from collector.web.health import add_health_routes
from collector.web.hit_routes import add_hit_routes
from collector.web.http_limits import HttpStats
from collector.web.metrics import add_metrics_routes, metrics_ctx
from collector.web.platform_health import health_ctx
from collector.web.report_routes import add_report_routes, report_ctx
from collector.web.resources import (
    beacon_ctx,
    flusher_ctx,
    geo_ctx,
    ingest_ctx,
    journal_ctx,
    redis_ctx,
    registry_ctx,
    salts_ctx,
)
from collector.web.stats_routes import RedisOutageLog, add_stats_routes

# Each needs only those before it; cleanup runs in reverse, so the final flush (the
# flusher's) comes after the server stopped taking hits and before the journal and
# Redis close.
RESOURCES = (
    redis_ctx,
    journal_ctx,  # locks this worker's journal, finds what earlier runs left
    geo_ctx,
    salts_ctx,  # Redis: the shared visitor salts, before the first hit
    ingest_ctx,  # geo, salts (the hasher), journal
    registry_ctx,  # Redis, ingest: the registry the hit path enforces, loaded before the first hit
    flusher_ctx,  # Redis, journal (replays its leftovers first), ingest (its caps learn the deployment's)
    beacon_ctx,  # the beacon build served at /beacon.js, the release the kit names
    dashboard_ctx,  # the dashboard's build served at /dashboard
    health_ctx,  # platform health rounds, one process per deployment (Redis)
    report_ctx,  # the monthly reports, one process per deployment (Redis, registry)
    metrics_ctx,  # last: GET /metrics' snapshots read the resources above, and stop first
)


def create_app(settings: Settings, clock: Callable[[], float] = time.time, worker: int = 0) -> web.Application:
    """`worker` numbers the processes sharing one data dir: each has its own journal."""
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[CALENDAR] = Calendar(settings.timezone)
    app[AGGREGATOR] = Aggregator()
    app[HASHER] = VisitorHasher()
    app[WRITER] = new_writer_id()
    app[JOURNAL_DIR] = Path(settings.data_dir) / "journal" / f"w{worker}"
    app[WORKER_NUMBER] = worker
    app[HTTP_STATS] = HttpStats()  # kept by hit_server.py's HitServer
    app[REDIS_OUTAGE] = RedisOutageLog()
    app.cleanup_ctx.extend(RESOURCES)

    add_hit_routes(app)
    add_health_routes(app)
    add_stats_routes(app)
    add_beacon_routes(app)
    add_registry_routes(app)
    add_dashboard_routes(app)
    add_report_routes(app)
    add_metrics_routes(app)
    return app
