"""Serves the built dashboard (`dashboard_js/dist`) at `/dashboard`: static files only.

- `/dashboard` redirects to `/dashboard/`, so the page's relative URLs resolve under it;
- `/dashboard/` is index.html; `/dashboard/dashboard.js`, `/dashboard/dashboard.css`;
- `/dashboard/map/NN.json`: a province's prefectures, fetched when a user drills into it;
- `/api/whoami`: who a credential is (the sign-in asks it; it tells an administrator,
  who may also read the registry's health, from a platform's reader).

The dashboard reads its figures from the read API (`/api/stats`, `/api/apps`, the
registry's health endpoints) with the credential the user signs in with, so these
files hold no data and need none: they are open like /beacon.js. Everything is read
and gzipped once, at startup (dashboard_ctx); no Node at run time. A missing build is
not fatal: the routes answer 404 saying how to build it.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from collector.registry.store import RegistryStore
from collector.settings import resolve_path
from collector.web.appkeys import CLOCK, DASHBOARD, REDIS, SETTINGS
from collector.web.stats_routes import ReadAccess, Refusal

log = logging.getLogger(__name__)

INDEX = "index.html"
CONTENT_TYPES = {".html": "text/html", ".js": "application/javascript", ".css": "text/css", ".json": "application/json"}
# The page runs only its own script and talks only to this collector; it may not be framed
# (sign-in form) and sends no referrer (its URL names the platform being looked at).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
# Revalidated on every load (a 304 thanks to the ETag): a new build shows at once.
CACHE = "no-cache"


@dataclass(frozen=True)
class _File:
    body: bytes
    gzipped: bytes
    etag: str
    content_type: str

    @classmethod
    def load(cls, path: Path) -> _File:
        body = path.read_bytes()
        return cls(body, gzip.compress(body, 9, mtime=0), '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
                   CONTENT_TYPES[path.suffix])

    def respond(self, request: web.Request) -> web.Response:
        gz = "gzip" in request.headers.get("Accept-Encoding", "")
        etag = self.etag[:-1] + '-gz"' if gz else self.etag
        headers = {**SECURITY_HEADERS, "Cache-Control": CACHE, "ETag": etag, "Vary": "Accept-Encoding"}
        if etag in {tag.strip().removeprefix("W/") for tag in request.headers.get("If-None-Match", "").split(",")}:
            return web.Response(status=304, headers=headers)
        if gz:
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=self.gzipped if gz else self.body, headers=headers, content_type=self.content_type,
                            charset="utf-8")


@dataclass(frozen=True)
class DashboardAssets:
    dist_dir: Path
    files: dict[str, _File]  # by path under dist: "index.html", "map/33.json", ...

    @classmethod
    def load(cls, dist_dir: Path) -> DashboardAssets:
        if not (dist_dir / INDEX).is_file():
            log.warning("dashboard: no build at %s (run `npm ci && npm run build` in dashboard_js); /dashboard answers 404",
                        dist_dir)
            return cls(dist_dir, {})
        files = {
            path.relative_to(dist_dir).as_posix(): _File.load(path)
            for path in sorted(dist_dir.rglob("*"))
            if path.is_file() and path.suffix in CONTENT_TYPES and path.name != "manifest.json"
        }
        log.info("dashboard: %d files from %s", len(files), dist_dir)
        return cls(dist_dir, files)


async def dashboard_ctx(app: web.Application) -> AsyncIterator[None]:
    """Reads the build once, at startup (one of app.py's RESOURCES)."""
    app[DASHBOARD] = DashboardAssets.load(resolve_path(app[SETTINGS].dashboard_dir))
    yield


def add_dashboard_routes(app: web.Application) -> None:
    app.router.add_get("/dashboard", to_dashboard)
    # "" (index.html), the page's script and style, and the maps; nothing else is looked up.
    app.router.add_get(r"/dashboard/{file:(?:[a-z]+\.(?:js|css|html)|map/(?:china|\d{2})\.json)?}", serve_file)
    app.router.add_get("/api/whoami", whoami)


async def to_dashboard(request: web.Request) -> web.Response:
    # (The browser keeps a link's #fragment, the view's filters, across the redirect.)
    return web.Response(status=301, headers={"Location": "/dashboard/"})


async def serve_file(request: web.Request) -> web.Response:
    assets = request.app[DASHBOARD]
    if not assets.files:
        return web.Response(status=404, text=f"dashboard not built: no {INDEX} in {assets.dist_dir}\n")
    name = request.match_info["file"] or INDEX
    found = assets.files.get(name)
    if found is None:
        raise web.HTTPNotFound(text=f"no {name} in the dashboard\n")
    return found.respond(request)


async def whoami(request: web.Request) -> web.Response:
    """{"role": "admin" | "all" | "platform" | null, "platform": ID or null}: an
    administrator (a registry admin token: every platform, and the registry's health and
    anomalies), a reader of every platform (api_token, or a loopback-only collector
    without credentials), a platform's own reader, or nobody (no credential where one is
    needed: the dashboard then shows its sign-in, without a failed request). A token
    that is no credential is a 403, as on /api/stats."""
    try:
        who = await ReadAccess.of(request.app).reader(request)
        role = "platform" if who.platform_id is not None else "all"
        token = _bearer(request)
        if role == "all" and token and await RegistryStore(request.app[REDIS], request.app[CLOCK]).admin_token_name(token):
            role = "admin"
    except Refusal as refused:
        if refused.status == 401:  # no credential, and one is needed: nobody yet (the sign-in form)
            return _reader(None, None)
        return refused.response()
    except (RedisError, OSError):
        return web.Response(body=orjson.dumps({"error": "redis unavailable"}), status=503, content_type="application/json")
    return _reader(role, who.platform_id)


def _reader(role: str | None, platform: str | None) -> web.Response:
    return web.Response(body=orjson.dumps({"role": role, "platform": platform}), content_type="application/json",
                        headers={"Cache-Control": "no-store"})


def _bearer(request: web.Request) -> str:
    """The Bearer credential, as ReadAccess reads it (stats_routes.py)."""
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else ""
