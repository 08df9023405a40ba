"""HTTP of the registry: the open application form, the admin API and the kit page.

- `POST /api/platforms/apply`: anyone may apply (§8.2 "online"), so it is bounded three
  ways: every field is checked (400 with reasons), each client IP has a token bucket
  (429 + Retry-After), and the pending applications are capped (429).
- `/api/admin/…`: never open. An admin token (`collector admin-token create`) comes as
  `Authorization: Bearer …`: none is 401, a wrong one 403.
- `/kit/{id}`: the developer page, for the platform's kit token or an admin token
  (Bearer, or `?token=` so the link opens in a browser).
"""

from __future__ import annotations

import math
import os

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from collector.hit.clientip import ClientIPResolver
from collector.hit.ratelimit import TokenBuckets
from collector.registry import credentials
from collector.registry.application import ApplicationInvalid, parse_application
from collector.registry.groups import BadGroup
from collector.registry.health_store import HealthStore
from collector.registry.kit import KitUnavailable, build_kit
from collector.registry.kit_page import render_html, render_markdown
from collector.registry.model import STATE_NAMES, TRANSITIONS, TransitionError
from collector.registry.release import BeaconRelease
from collector.registry.store import AlreadyExists, NotFound, RegistryStore, TooManyPending
from collector.web.appkeys import BEACON_RELEASE, CALENDAR, CLOCK, INGEST, REDIS, SETTINGS

ACTIONS = (*TRANSITIONS, "rotate-key", "kit-token", "read-token")
MAX_APPLICATION_BYTES = 8192  # a full application is well under 2 KB
MAX_SET_BYTES = 512 * 1024  # a named set of 10,000 platform ids of up to 32 characters, quoted
PENDING_RETRY_AFTER = 3600  # seconds: reviews happen on a human scale


def add_registry_routes(app: web.Application) -> None:
    routes = RegistryRoutes(app)
    for method, path, handler in (
        ("POST", "/api/platforms/apply", routes.apply),
        ("GET", "/api/admin/platforms", routes.list),
        ("GET", "/api/admin/platforms/{id}", routes.show),
        ("POST", "/api/admin/platforms/{id}/{action}", routes.act),
        ("GET", "/api/admin/platforms/{id}/kit", routes.admin_kit),
        ("GET", "/api/admin/audit", routes.audit),
        ("GET", "/api/admin/health", routes.health_all),
        ("GET", "/api/admin/platforms/{id}/health", routes.health_one),
        ("GET", "/api/admin/anomalies", routes.anomalies),
        ("GET", "/api/admin/refused-keys", routes.refused_keys),
        ("PUT", "/api/admin/groups/{name}", routes.save_set),
        ("DELETE", "/api/admin/groups/{name}", routes.delete_set),
        ("GET", "/kit/{id}", routes.kit_page),
    ):
        app.router.add_route(method, path, _answered(handler))


def _json(body, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json", headers=headers)


class Refused(Exception):
    """Ends a handler with a JSON error answer (raised anywhere below a route)."""

    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else ""


async def _bounded_body(request: web.Request, limit: int = MAX_APPLICATION_BYTES) -> bytes:
    """The whole body, or 413 past `limit` bytes (whatever Content-Length claims)."""
    too_large = Refused(413, f"a request body here is at most {limit} bytes")
    if (request.content_length or 0) > limit:
        raise too_large
    try:
        body = await request.read()  # itself bounded by client_max_size (max_body_bytes)
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None
    if len(body) > limit:
        raise too_large
    return body


def _answered(handler):
    """Refusals become their JSON answer; a Redis outage is a 503 with a reason, never a 500."""

    async def guarded(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except Refused as refused:
            return _json({"error": str(refused)}, refused.status, refused.headers)
        except (RedisError, OSError) as exc:
            return _json({"error": f"registry unavailable: {exc}"}, 503)

    return guarded


def _limit(request: web.Request, default: str) -> int:
    limit = request.query.get("limit", default)
    if not limit.isdigit() or not 1 <= int(limit) <= 10_000:
        raise Refused(400, "limit must be 1-10000")
    return int(limit)


class RegistryRoutes:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        settings = app[SETTINGS]
        self.clients = ClientIPResolver(settings.trusted_proxies)
        self.buckets = TokenBuckets(settings.apply_per_hour / 3600, settings.apply_per_hour, app[CLOCK])

    @property
    def release(self) -> BeaconRelease | None:
        return self.app[BEACON_RELEASE]  # read at startup by the beacon context

    @property
    def store(self) -> RegistryStore:
        return RegistryStore(self.app[REDIS], self.app[CLOCK])

    async def apply(self, request: web.Request) -> web.Response:
        settings = self.app[SETTINGS]
        client = self.clients.client_ip(request.remote, ",".join(request.headers.getall("X-Forwarded-For", ())) or None)
        wait = self.buckets.take(client)
        if wait:
            raise Refused(429, "too many applications from this address", {"Retry-After": str(math.ceil(wait))})
        try:
            platform = parse_application(orjson.loads(await _bounded_body(request)))
        except orjson.JSONDecodeError as exc:
            raise Refused(400, f"not JSON: {exc}") from exc
        except ApplicationInvalid as exc:
            return _json({"error": "invalid application", "problems": [p.as_json() for p in exc.problems]}, 400)
        try:
            stored = await self.store.apply(platform, f"apply:{client}", settings.max_pending_applications)
        except AlreadyExists as exc:
            raise Refused(409, str(exc)) from exc
        except TooManyPending as exc:
            raise Refused(429, str(exc), {"Retry-After": str(PENDING_RETRY_AFTER)}) from exc
        return _json({"id": stored.id, "state": stored.state, "state_zh": STATE_NAMES[stored.state],
                      "message": "申请已收到，等待审核 application received, waiting for review"}, 201)

    async def admin(self, request: web.Request) -> str:
        """The admin token's name, or 401 (no token) / 403 (not an admin token)."""
        token = _bearer(request)
        if not token:
            raise Refused(401, "admin token required (Authorization: Bearer …)", {"WWW-Authenticate": "Bearer"})
        name = await self.store.admin_token_name(token)
        if name is None:
            raise Refused(403, "not an admin token")
        return name

    async def list(self, request: web.Request) -> web.Response:
        await self.admin(request)
        state = request.query.get("state")
        if state is not None and state not in STATE_NAMES:
            raise Refused(400, "state must be one of " + ", ".join(STATE_NAMES))
        return _json({"platforms": [p.public_dict() for p in await self.store.list(state)]})

    async def show(self, request: web.Request) -> web.Response:
        await self.admin(request)
        try:
            return _json((await self.store.get(request.match_info["id"])).public_dict())
        except NotFound as exc:
            raise Refused(404, str(exc)) from exc

    async def act(self, request: web.Request) -> web.Response:
        name = await self.admin(request)
        platform_id, action = request.match_info["id"], request.match_info["action"]
        if action not in ACTIONS:
            raise Refused(404, f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
        options = await self._options(request)
        actor, store = f"admin:{name}", self.store
        try:
            if action == "rotate-key":
                overlap = options.get("overlap", self.app[SETTINGS].key_overlap)
                if not isinstance(overlap, int) or isinstance(overlap, bool) or not 0 <= overlap <= 366 * 86400:
                    raise Refused(400, "overlap must be an integer number of seconds, 0 to 366 days")
                issued = await store.rotate_key(platform_id, actor, overlap)
            elif action == "kit-token":
                issued = await store.reissue_kit_token(platform_id, actor)
            elif action == "read-token":
                issued = await store.issue_read_token(platform_id, actor)
            else:
                issued = await store.act(platform_id, action, actor, options.get("note", ""))
        except NotFound as exc:
            raise Refused(404, str(exc)) from exc
        except TransitionError as exc:
            raise Refused(409, str(exc)) from exc
        body = {**issued.platform.public_dict(), "issued_app_key": issued.app_key, "issued_kit_token": issued.kit_token}
        if issued.read_token:
            body["issued_read_token"] = issued.read_token
        if action == "approve":  # §8.3: the kit is generated with the approval
            body["kit"] = build_kit(issued.platform, self._base_url(request), self.release).as_json()
        return _json(body)

    async def save_set(self, request: web.Request) -> web.Response:
        """PUT /api/admin/groups/NAME {"title", "platforms"}: a named set, read as group=set:NAME."""
        name = await self.admin(request)
        try:
            body = orjson.loads(await _bounded_body(request, MAX_SET_BYTES))
        except orjson.JSONDecodeError as exc:
            raise Refused(400, f"not JSON: {exc}") from exc
        if not isinstance(body, dict) or not isinstance(body.get("platforms"), list) or set(body) - {"title", "platforms"}:
            raise Refused(400, 'the body is {"title": "…", "platforms": ["id", …]}')
        try:
            saved = await self.store.save_set(request.match_info["name"], body.get("title", ""), body["platforms"], f"admin:{name}")
        except BadGroup as exc:
            raise Refused(400, str(exc)) from exc
        return _json(saved.as_dict())

    async def delete_set(self, request: web.Request) -> web.Response:
        name = await self.admin(request)
        set_name = request.match_info["name"]
        if not await self.store.delete_set(set_name, f"admin:{name}"):
            raise Refused(404, f"no set {set_name[:40]!r}")
        return _json({"deleted": set_name})

    def _base_url(self, request: web.Request) -> str:
        return self.app[SETTINGS].public_url or f"{request.scheme}://{request.host}"

    async def _options(self, request: web.Request) -> dict:
        """The optional JSON body of an action: {"note": "…"} or {"overlap": seconds}."""
        body = await _bounded_body(request)
        if not body.strip():
            return {}
        try:
            options = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise Refused(400, f"not JSON: {exc}") from exc
        if not isinstance(options, dict) or set(options) - {"note", "overlap"}:
            raise Refused(400, 'body must be an object with "note" and/or "overlap"')
        note = options.get("note", "")
        if not isinstance(note, str) or len(note) > 500:
            raise Refused(400, "note must be text of at most 500 characters")
        return options

    async def audit(self, request: web.Request) -> web.Response:
        await self.admin(request)
        limit = request.query.get("limit", "50")
        if not limit.isdigit() or not 1 <= int(limit) <= 10_000:
            raise Refused(400, "limit must be 1-10000")
        return _json({"entries": await self.store.audit(int(limit), request.query.get("platform"))})

    # ---- health (§8.4): what the health job (registry/health_job.py) recorded ---------------

    @property
    def health(self) -> HealthStore:
        return HealthStore(self.app[REDIS], self.app[CALENDAR])

    async def health_all(self, request: web.Request) -> web.Response:
        await self.admin(request)
        records = await self.health.all()
        job = await self.health.job_state()
        return _json({
            "last_run": float(job["last_run"]) if "last_run" in job else None,
            "platforms": [records[pid].as_dict() for pid in sorted(records)],
        })

    async def health_one(self, request: web.Request) -> web.Response:
        await self.admin(request)
        platform_id = request.match_info["id"]
        try:
            platform = await self.store.get(platform_id)
        except NotFound as exc:
            raise Refused(404, str(exc)) from exc
        limit = _limit(request, "50")
        record = await self.health.get(platform_id)
        return _json({
            "platform": platform_id, "registry_state": platform.state,
            # None until the job has seen it (or when its hits do not count: not approved/active)
            "health": record.as_dict() if record else None,
            "history": await self.health.history(platform_id, limit),
            "anomalies": await self.health.anomalies(limit, platform_id),
        })

    async def anomalies(self, request: web.Request) -> web.Response:
        await self.admin(request)
        platform_id = request.query.get("platform") or None
        return _json({"anomalies": await self.health.anomalies(_limit(request, "100"), platform_id)})

    async def refused_keys(self, request: web.Request) -> web.Response:
        """The app keys this worker refused lately (hit/admission.py): a bounded sample, the
        newest first, so an admin can tell a platform its key is wrong or revoked."""
        await self.admin(request)
        admission = self.app[INGEST].admission
        snapshot = admission.snapshot
        return _json({
            "registry": admission.mode,
            "registry_version": snapshot.version if snapshot is not None else None,
            "worker_pid": os.getpid(),
            "keys": admission.recent_offenders(),
        })

    async def admin_kit(self, request: web.Request) -> web.Response:
        await self.admin(request)
        return await self._kit(request)

    async def kit_page(self, request: web.Request) -> web.Response:
        """For the platform's own kit token or an admin token; nothing tells an outsider
        whether a platform id exists (a wrong token is 403 either way)."""
        token = _bearer(request) or request.query.get("token", "")
        if not token:
            raise Refused(401, "kit token required (?token=… or Authorization: Bearer …)", {"WWW-Authenticate": "Bearer"})
        try:
            platform = await self.store.get(request.match_info["id"])
        except NotFound:
            platform = None
        owner = platform is not None and credentials.token_matches(token, [platform.kit_token_sha256]) is not None
        if not owner and await self.store.admin_token_name(token) is None:
            raise Refused(403, "not this platform's kit token")
        if platform is None:
            raise Refused(404, f"no platform {request.match_info['id']!r}")
        return await self._kit(request)

    async def _kit(self, request: web.Request) -> web.Response:
        try:
            platform = await self.store.get(request.match_info["id"])
            kit = build_kit(platform, self._base_url(request), self.release)
        except NotFound as exc:
            raise Refused(404, str(exc)) from exc
        except KitUnavailable as exc:
            raise Refused(409, str(exc)) from exc
        fmt = request.query.get("format", "html" if request.path.startswith("/kit/") else "json")
        # The page carries the app key (and may be reached with a token in its URL):
        # keep it out of shared caches and out of other sites' Referer headers.
        private = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        if fmt == "md":
            return web.Response(text=render_markdown(kit), content_type="text/markdown", charset="utf-8", headers=private)
        if fmt == "html":
            return web.Response(text=render_html(kit), content_type="text/html", charset="utf-8", headers=private)
        if fmt == "json":
            return _json(kit.as_json(), headers=private)
        raise Refused(400, "format must be html, md or json")
