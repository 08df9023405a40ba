"""HTTP handlers of the read API: `/api/stats`, `/api/apps`, `PUT /api/catalogue`, and
`/api/openapi.json`, the description of every endpoint.

The figures come from api/stats.py (StatsReader); an `api_token` setting, when set,
must come as a Bearer token.
"""

from __future__ import annotations

import functools
import hmac
import logging
from importlib import resources
from typing import Awaitable

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from collector.api.stats import StatsReader, BadQuery
from collector.features.resources import parse_catalogue
from collector.hit.protocol import usable_app_key
from collector.registry.model import KEYED_STATES, REVOKED, RegistrySnapshot
from collector.web.appkeys import CALENDAR, CLOCK, INGEST, REDIS, REDIS_OUTAGE, SETTINGS

log = logging.getLogger(__name__)


def add_stats_routes(app: web.Application) -> None:
    app.router.add_get("/api/stats", api_stats)
    app.router.add_get("/api/apps", api_apps)
    app.router.add_put("/api/catalogue", api_catalogue)
    app.router.add_get("/api/openapi.json", openapi_description)


async def api_stats(request: web.Request) -> web.Response:
    return await _stats_api(request).stats(request)


async def api_apps(request: web.Request) -> web.Response:
    return await _stats_api(request).apps(request)


async def api_catalogue(request: web.Request) -> web.Response:
    return await _stats_api(request).catalogue(request)


def _stats_api(request: web.Request) -> "StatsAPI":
    app = request.app
    return StatsAPI(StatsReader(app[REDIS], app[CALENDAR], app[CLOCK]), app[SETTINGS].api_token, app[REDIS_OUTAGE])


async def openapi_description(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of every endpoint (collector/web/openapi.json), for client
    generators; open like /healthz, since it holds no data."""
    return web.Response(body=_openapi_bytes(), content_type="application/json")


@functools.cache
def _openapi_bytes() -> bytes:
    return resources.files(__package__).joinpath("openapi.json").read_bytes()


class RedisOutageLog:
    """Why Redis cannot be read, logged once per outage rather than on every request.

    Error bodies say only "redis unavailable": the exception's text names Redis's host
    and port, which are nobody's business outside the collector.
    """

    def __init__(self) -> None:
        self.down = False

    def failed(self, exc: BaseException) -> None:
        if not self.down:
            self.down = True
            log.warning("redis unavailable to the read API and /readyz: %s", exc)

    def recovered(self) -> None:
        if self.down:
            self.down = False
            log.info("redis available again to the read API and /readyz")


class StatsAPI:
    """HTTP handlers; an `api_token` setting, when set, must come as a Bearer token."""

    def __init__(self, reader: StatsReader, token: str, outage: RedisOutageLog) -> None:
        self.reader = reader
        self.token = token
        self.outage = outage

    async def stats(self, request: web.Request) -> web.Response:
        if not authorized(request, self.token):
            return _json({"error": "unauthorized"}, 401)
        try:
            app, granularity, buckets, breakdowns, limit = self.reader.parse(request.query)
        except BadQuery as exc:
            return _json({"error": str(exc)}, 400)
        return await self._answer(self.reader.read(app, granularity, buckets, breakdowns, limit))

    async def catalogue(self, request: web.Request) -> web.Response:
        """PUT /api/catalogue?app=A: the true resource counts, for views per resource."""
        if not authorized(request, self.token):
            return _json({"error": "unauthorized"}, 401)
        app = request.query.get("app", "")
        if not usable_app_key(app):
            return _json({"error": "app is required"}, 400)
        try:
            fields = parse_catalogue(orjson.loads(await request.read()))
        except (ValueError, orjson.JSONDecodeError) as exc:
            return _json({"error": f"catalogue: {exc}"}, 400)

        async def upload() -> dict:
            await self.reader.upload_catalogue(app, fields)
            return {"app": app, "fields": len(fields)}

        return await self._answer(upload())

    async def apps(self, request: web.Request) -> web.Response:
        if not authorized(request, self.token):
            return _json({"error": "unauthorized"}, 401)

        admission = request.app[INGEST].admission
        if admission.mode == "enforce":
            # The registered platforms' series, not every key ever sent: with the registry
            # enforced, no other app has counts (refusals are all under "(unregistered)").
            return _json({"apps": registered_apps(admission.snapshot)})

        async def apps() -> dict:
            return {"apps": await self.reader.apps()}

        return await self._answer(apps())

    async def _answer(self, reading: Awaitable[dict]) -> web.Response:
        """200 with what `reading` returns, or 503 when Redis cannot be reached."""
        try:
            body = await reading
        except (RedisError, OSError) as exc:
            self.outage.failed(exc)
            return _json({"error": "redis unavailable"}, 503)
        self.outage.recovered()
        return _json(body)


def registered_apps(snapshot: RegistrySnapshot | None) -> list[str]:
    """The series of every platform that may have counts: those that ever held a key."""
    if snapshot is None:
        return []
    return sorted(p.series for p in snapshot.platforms.values() if p.state in KEYED_STATES or p.state == REVOKED)


def authorized(request: web.Request, token: str) -> bool:
    """True when no token is configured, or the request carries it as a Bearer token."""
    if not token:
        return True
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(given.encode(), token.encode())


def _json(body: dict, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")
