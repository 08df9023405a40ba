"""The process's own health: `/healthz` (alive), `/readyz` (ready to take hits) and
`/api/collector` (this process's flush and journal backlog, behind a read credential: stats_routes.py operator_refusal)."""

from __future__ import annotations

import asyncio
import os

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from collector import native
from collector.hit.uvguard import UvGuard
from collector.web.appkeys import AGGREGATOR, FLUSHER, HTTP_STATS, INGEST, JOURNAL, REDIS, REDIS_OUTAGE, SETTINGS
from collector.web.stats_routes import operator_refusal


def add_health_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/collector", collector_metrics)


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
    except (TimeoutError, RedisError, OSError) as exc:
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


def uv_suspect(guard: UvGuard | None) -> dict:
    """The UV guard's counts; `unjudged`: identities counted unjudged as its memory was full."""
    if guard is None:
        return {}
    return {**guard.suspect, "unjudged": guard.unjudged}


def backlog(app: web.Application) -> dict:
    flusher, journal = app[FLUSHER], app[JOURNAL]
    stats = flusher.stats
    return {
        # Which process answered: with workers > 1 each has its own backlog, and a request
        # reaches one of them (SO_REUSEPORT), so a caller asks until it has heard each.
        "pid": os.getpid(),
        "writer": flusher.writer,
        # Whether the hot modules run compiled by mypyc (collector/native.py) or as Python.
        "native": native.in_use(),
        "pending_flushes": len(flusher.pending),
        # Seconds the oldest batch not yet in Redis has waited (0: none waits).
        "backlog_age_s": round(flusher.backlog_age(), 1),
        "pending_events": app[AGGREGATOR].pending_events + sum(b.events for b in flusher.pending),
        "flushes": stats.flushes,
        "events_flushed": stats.events_flushed,
        "flush_retries": stats.failures,
        "flush_round_trips": stats.round_trips,
        "early_seals": stats.early_seals,
        # Seconds flush builds slept so the hit loop kept the CPU (store/pacing.py).
        "flush_paced_seconds": round(stats.paced_seconds, 3),
        # Batch parts built by the build process, and in the flusher's thread (store/build_worker.py).
        "flush_parts_built_apart": stats.parts_built_apart,
        "flush_parts_built_in_thread": stats.parts_built_in_thread,
        # Of those, why not by the build process: behind, starting, busy, late, failed.
        **{f"flush_parts_built_in_thread_{reason}": n for reason, n in stats.thread_builds.items()},
        "batches_recovered": stats.batches_recovered,
        # Entries of this run's batches sealed behind another, and of them those let wait live (store/flusher.py).
        "queued_cells": stats.queued_cells,
        "queued_cells_live": stats.queued_cells_live,
        # This run's batches that waited on disk (past memory_max_cells, or behind a failing
        # flush) and were rebuilt from the journal when due, and their events.
        "batches_rebuilt": stats.batches_rebuilt,
        "events_rebuilt": stats.events_rebuilt,
        # This run's queued batches whose packed parts waited in a spill file (store/spill.py),
        # and those whose file could not be read back (rebuilt from the journal instead).
        "batches_spilled": stats.batches_spilled,
        "spills_lost": stats.spills_lost,
        # Re-sent events (re=1, store/dedupe.py): counted, dropped as duplicates, and the
        # times another writer's watermark did not catch up within dedupe_hold_max.
        "resent_admitted": stats.resent_admitted,
        "resent_duplicates": stats.resent_duplicates,
        "resent_unchecked_waits": stats.resent_unchecked_waits,
        "watermark": flusher.watermark(),
        "last_flush": stats.last_success or None,
        "last_flush_ms": round(stats.last_duration_ms, 2),
        "journal_bytes": journal.bytes if journal else None,
        "journal_max_bytes": journal.max_bytes if journal else None,
        # Journal records replay could not decode: set aside in quarantine.jsonl, not counted.
        "records_quarantined": journal.quarantine.records if journal else 0,
        # Events counted under (other) because a cardinality cap was full (caps.py).
        "capped_events": dict(app[INGEST].caps.overflowed),
        # Requests (per client or address) and events (per app) refused 429 by the rate limits (hit/ratelimit.py).
        "rate_limited": dict(app[INGEST].limits.refused),
        # The UV guard (hit/uvguard.py): hits whose visitor, vid or uid was set aside as suspect, by kind.
        "uv_suspect": uv_suspect(app[INGEST].uv_guard),
        # Connections and requests the HTTP layer closed or refused (http_limits.py).
        "http": app[HTTP_STATS].as_dict(),
    }
