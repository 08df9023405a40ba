"""The health job in the running collector (registry/health_job.py), and its webhook's HTTP.

Every process starts the loop; the Redis lease makes one of them do the rounds. The
webhook is sent with aiohttp's client here, in web/, the layer that speaks HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from redis.exceptions import RedisError

from collector.registry.health import Thresholds
from collector.registry.health_job import HealthJob, HealthSettings
from collector.registry.health_store import HealthStore
from collector.registry.store import RegistryStore
from collector.settings import Settings
from collector.store import keys
from collector.store.lease import Lease
from collector.store.periodic import Periodic
from collector.web.appkeys import CALENDAR, CLOCK, HEALTH_JOB, REDIS, SETTINGS

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = aiohttp.ClientTimeout(total=10)


def health_settings(settings: Settings) -> HealthSettings:
    return HealthSettings(
        interval=settings.health_interval,
        thresholds=Thresholds(settings.health_silent_minutes, settings.health_reject_percent),
        sensitivity=settings.anomaly_sensitivity,
        baseline_days=settings.anomaly_days,
        webhook_url=settings.webhook_url,
        webhook_secret=settings.webhook_secret,
    )


class WebhookSender:
    """POSTs a signed body; None on a 2xx answer, else the reason (the job retries)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, url: str, headers: dict, body: bytes) -> str | None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=WEBHOOK_TIMEOUT)
        try:
            async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as answer:
                if 200 <= answer.status < 300:
                    return None
                return f"HTTP {answer.status}"
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"[:300]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def quiet_outages(job: HealthJob):
    """The job's tick, with a Redis outage logged once as a line, not a traceback a round:
    the counting path has its own outage handling, and health simply waits for Redis."""
    down = False

    async def tick() -> float:
        nonlocal down
        try:
            delay = await job.tick()
        except (RedisError, OSError) as exc:
            if not down:
                log.warning("health: Redis unavailable, rounds paused until it answers (%s)", type(exc).__name__)
            down = True
            return job.settings.interval
        if down:
            log.info("health: Redis answers again, rounds resume")
        down = False
        return delay

    return tick


def build_job(app: web.Application, send=None) -> HealthJob:
    settings = app[SETTINGS]
    # The lease outlives three rounds: a holder that misses two renewals in a row (a slow
    # round, a Redis blip) keeps it; one that is gone is replaced within three intervals.
    lease = Lease(app[REDIS], keys.HEALTH_LEASE, ttl_seconds=3 * settings.health_interval)
    return HealthJob(RegistryStore(app[REDIS], app[CLOCK]), HealthStore(app[REDIS], app[CALENDAR]), lease,
                     health_settings(settings), app[CLOCK], send)


async def health_ctx(app: web.Application) -> AsyncIterator[None]:
    """Runs the health rounds while the app runs (health_interval 0: not at all)."""
    if app[SETTINGS].health_interval <= 0:
        yield
        return
    sender = WebhookSender()
    job = app[HEALTH_JOB] = build_job(app, sender)
    loop = Periodic("platform-health", quiet_outages(job), first_delay=min(5.0, app[SETTINGS].health_interval))
    loop.start()
    yield
    await loop.close()
    try:
        await job.lease.release()  # another process takes over at once, not after the TTL
    except Exception as exc:  # Redis may be gone at shutdown; the lease then simply expires
        log.debug("health: lease not released: %s", exc)
    await sender.close()
