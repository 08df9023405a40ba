"""HTTP handlers of the read API: `/api/stats` (of an app or a group of platforms),
`/api/apps`, `/api/groups`, `PUT /api/catalogue`, and `/api/openapi.json`, the
description of every endpoint (open: it holds no data).

The figures come from api/stats.py (StatsReader). Who may read (ReadAccess):
- the `api_token` setting, an admin token (`collector admin-token create`): every platform;
- a platform's read token (`collector platforms read-token ID`): that platform only —
  /api/stats and PUT /api/catalogue of another are 403, /api/apps lists only its own;
  a group only when every platform of it is its own (registry/groups.py readable_by:
  a group's figures minus one's own would be the others'), and /api/groups lists only those;
- nobody else, except when the collector listens on loopback only and no `api_token`
  is set: then a request that came straight from this machine (no proxy header) reads
  everything, as on a developer's machine. Listening on any other address, a request
  without a credential is 401 — the read API is never open to the network by default.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from collector.api.stats import BadQuery, StatsReader
from collector.features.resources import parse_catalogue
from collector.hit.protocol import usable_app_key
from collector.registry.groups import BadGroup, GroupRef, readable_by
from collector.registry.model import KEYED_STATES, REVOKED, TEST_SERIES_SUFFIX, RegistrySnapshot
from collector.registry.store import RegistryStore
from collector.settings import Settings
from collector.store import redis_client
from collector.web.appkeys import CALENDAR, CLOCK, INGEST, REDIS, REDIS_OUTAGE, SETTINGS

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
# Headers a reverse proxy adds: a request carrying one did not come from this machine's
# own user, even though it reached a loopback-only collector (nginx on the same host).
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def add_stats_routes(app: web.Application) -> None:
    app.router.add_get("/api/stats", api_stats)
    app.router.add_get("/api/apps", api_apps)
    app.router.add_get("/api/groups", api_groups)
    app.router.add_put("/api/catalogue", api_catalogue)
    app.router.add_get("/api/openapi.json", openapi_description)
    app.on_startup.append(warn_if_read_api_closed)


async def api_stats(request: web.Request) -> web.Response:
    return await stats_api(request).stats(request)


async def api_apps(request: web.Request) -> web.Response:
    return await stats_api(request).apps(request)


async def api_groups(request: web.Request) -> web.Response:
    return await stats_api(request).groups(request)


async def api_catalogue(request: web.Request) -> web.Response:
    return await stats_api(request).catalogue(request)


def stats_api(request: web.Request) -> StatsAPI:
    app = request.app
    return StatsAPI(StatsReader(app[REDIS], app[CALENDAR], app[CLOCK]), ReadAccess.of(app), app[REDIS_OUTAGE])


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
        self.errors = 0  # failed reads and pings since start (GET /metrics)

    def failed(self, exc: BaseException) -> None:
        self.errors += 1
        if not self.down:
            self.down = True
            log.warning("redis unavailable to the read API and /readyz: %s", exc)

    def recovered(self) -> None:
        if self.down:
            self.down = False
            log.info("redis available again to the read API and /readyz")


def loopback_only(host: str) -> bool:
    return host.strip().strip("[]").lower() in LOOPBACK_HOSTS


@dataclass(frozen=True)
class Reader:
    """Who is reading: every platform (platform_id None) or one platform's own figures."""

    platform_id: str | None = None

    def may_read_group(self, group: GroupRef) -> bool:
        return readable_by(group, self.platform_id)

    def may_read(self, app: str) -> bool:
        """Its own counts: under its id, or ID~test for a test platform (model.Platform.series)."""
        return self.platform_id is None or app in (self.platform_id, self.platform_id + TEST_SERIES_SUFFIX)


EVERYONE = Reader()


class Refusal(Exception):
    """The request may not read: 401 (no credential) or 403 (a credential, not for this)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def response(self) -> web.Response:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return web.Response(body=orjson.dumps({"error": str(self)}), status=self.status,
                            content_type="application/json", headers=headers)


class ReadAccess:
    """Decides who a read-API request is (module docstring); tokens are checked by the
    registry's credentials.token_matches, the api_token in constant time."""

    def __init__(self, settings: Settings, registry: RegistryStore) -> None:
        self.settings = settings
        self.registry = registry

    @classmethod
    def of(cls, app: web.Application) -> ReadAccess:
        return cls(app[SETTINGS], RegistryStore(app[REDIS], app[CLOCK]))

    def open_without_credential(self, request: web.Request) -> bool:
        if self.settings.api_token or not loopback_only(self.settings.host):
            return False
        return not any(name in request.headers for name in PROXY_HEADERS)

    async def reader(self, request: web.Request) -> Reader:
        """The reader, or Refusal; RedisError/OSError when the registry cannot be read."""
        token = _bearer(request)
        if not token:
            if self.open_without_credential(request):
                return EVERYONE
            raise Refusal(401, "a credential is required: Authorization: Bearer (api_token, an admin token "
                               "or the platform's read token)")
        if self.settings.api_token and hmac.compare_digest(token.encode(), self.settings.api_token.encode()):
            return EVERYONE
        found = await self.registry.read_credential(token)
        if found is None:
            raise Refusal(403, "not a read credential")
        return EVERYONE if found.admin is not None else Reader(found.platform_id)


class StatsAPI:
    """HTTP handlers; each asks ReadAccess who is reading first."""

    def __init__(self, reader: StatsReader, access: ReadAccess, outage: RedisOutageLog) -> None:
        self.reader = reader
        self.access = access
        self.outage = outage

    async def stats(self, request: web.Request) -> web.Response:
        async def read() -> dict:
            who = await self.access.reader(request)
            try:
                subject, granularity, buckets, breakdowns, limit = self.reader.parse(request.query)
            except BadQuery as exc:
                raise Refusal(400, str(exc)) from None
            group, series = await self.readable(who, subject, self.reader.subject_kind(request.query))
            try:
                answer = await self.reader.read(series, granularity, buckets, breakdowns, limit, label=subject)
            except BadQuery as exc:  # the answer would be too large (api/stats.py ReadBudget)
                raise Refusal(400, str(exc)) from None
            if group is not None:
                answer["group"] = group.as_dict()
            return answer

        return await self._answer(read)

    async def readable(self, who: Reader, subject: str, kind: str) -> tuple[GroupRef | None, list[str]]:
        """(the group or None for an app, the series to read), or Refusal: 400 for a group
        that is malformed or unknown, 403 for what this credential may not read."""
        if kind == "app":
            if not who.may_read(subject):
                raise Refusal(403, f"this credential reads platform {who.platform_id!r} only")
            return None, [subject]
        try:
            group, series = await self.access.registry.group(subject)
        except BadGroup as exc:
            raise Refusal(400, str(exc)) from None
        if not who.may_read_group(group):
            raise Refusal(403, f"this credential reads platform {who.platform_id!r} only, and group {group.id!r} "
                               "holds other platforms")
        return group, series

    async def groups(self, request: web.Request) -> web.Response:
        async def groups() -> dict:
            who = await self.access.reader(request)
            return {"groups": [g.as_dict() for g in await self.access.registry.groups() if who.may_read_group(g)]}

        return await self._answer(groups)

    async def catalogue(self, request: web.Request) -> web.Response:
        """PUT /api/catalogue?app=A: the true resource counts, for views per resource."""
        try:
            who = await self.access.reader(request)
        except Refusal as refused:
            return refused.response()
        except (RedisError, OSError) as exc:
            self.outage.failed(exc)
            return _json({"error": "redis unavailable"}, 503)
        app = request.query.get("app", "")
        if not usable_app_key(app):
            return _json({"error": "app is required"}, 400)
        if not who.may_read(app):
            return _json({"error": f"this credential writes platform {who.platform_id!r} only"}, 403)
        try:
            fields = parse_catalogue(orjson.loads(await request.read()))
        except (ValueError, orjson.JSONDecodeError) as exc:
            return _json({"error": f"catalogue: {exc}"}, 400)

        async def upload() -> dict:
            await self.reader.upload_catalogue(app, fields)
            return {"app": app, "fields": len(fields)}

        return await self._answer(upload)

    async def apps(self, request: web.Request) -> web.Response:
        admission = request.app[INGEST].admission

        async def apps() -> dict:
            who = await self.access.reader(request)
            if admission.mode == "enforce":
                # The registered platforms' series, not every key ever sent: with the registry
                # enforced, no other app has counts (refusals are all under "(unregistered)").
                seen = registered_apps(admission.snapshot)
            else:
                seen = await self.reader.apps()
            return {"apps": [app for app in seen if who.may_read(app)]}

        return await self._answer(apps)

    async def _answer(self, reading: Callable[[], Awaitable[dict]]) -> web.Response:
        """200 with what `reading()` returns, its refusal, or 503 when Redis cannot be reached."""
        outcome = await self.guarded(reading)
        return outcome if isinstance(outcome, web.Response) else _json(outcome)

    async def guarded(self, reading: Callable[[], Awaitable[dict]]) -> dict | web.Response:
        """What `reading()` returns, or the answer that refuses it (its refusal, or 503 when
        Redis cannot be reached): for handlers that render the figures themselves. A read
        whose connection Redis dropped (just after a restart) is made once more."""
        try:
            body = await redis_client.again_after_a_dropped_connection(reading)
        except Refusal as refused:
            return refused.response()
        except (RedisError, OSError) as exc:
            self.outage.failed(exc)
            return _json({"error": "redis unavailable"}, 503)
        self.outage.recovered()
        return body


def registered_apps(snapshot: RegistrySnapshot | None) -> list[str]:
    """The series of every platform that may have counts: those that ever held a key."""
    if snapshot is None:
        return []
    return sorted(p.series for p in snapshot.platforms.values() if p.state in KEYED_STATES or p.state == REVOKED)


async def operator_refusal(request: web.Request) -> web.Response | None:
    """None when the request may read the whole collector (api_token, an admin token, or
    open on loopback), else the 401/403/503 answer: for /api/collector, which is about the
    process, not one platform."""
    try:
        who = await ReadAccess.of(request.app).reader(request)
    except Refusal as refused:
        return refused.response()
    except (RedisError, OSError):
        return _json({"error": "redis unavailable"}, 503)
    return None if who is EVERYONE else _json({"error": "a platform's read token reads its own figures only"}, 403)


async def warn_if_read_api_closed(app: web.Application) -> None:
    """Startup: say clearly when the read API answers 401 to everyone (listening on the
    network with no credential configured at all), and how to open it."""
    settings = app[SETTINGS]
    if settings.api_token or loopback_only(settings.host):
        return
    try:
        if await RegistryStore(app[REDIS]).any_read_credential():
            return
    except (RedisError, OSError):
        pass  # Redis is not up yet: warn anyway, it costs nothing
    log.warning(
        "read API closed: listening on %s with no credential configured, so /api/stats, /api/apps and "
        "/api/catalogue answer 401 to everyone. Create one: `collector admin-token create --name NAME`, "
        "`collector platforms read-token ID`, or set api_token (COLLECTOR_API_TOKEN); or listen on 127.0.0.1 only.",
        settings.host,
    )


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else ""


def _json(body: dict, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")
