"""HTTP handlers of the read API: `/api/stats`, `/api/apps`, `PUT /api/catalogue`.

The figures come from api/stats.py (StatsReader); an `api_token` setting, when set,
must come as a Bearer token.
"""

from __future__ import annotations

import hmac

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from collector.api.stats import StatsReader, BadQuery
from collector.features.deep_stats import parse_catalogue
from collector.hit.protocol import usable_app_key


class StatsAPI:
    """HTTP handlers; an `api_token` setting, when set, must come as a Bearer token."""

    def __init__(self, reader: StatsReader, token: str) -> None:
        self.reader = reader
        self.token = token


    async def stats(self, request: web.Request) -> web.Response:
        if not authorized(request, self.token):
            return _json({"error": "unauthorized"}, 401)
        try:
            app, granularity, buckets, breakdowns, limit = self.reader.parse(request.query)
        except BadQuery as exc:
            return _json({"error": str(exc)}, 400)
        try:
            return _json(await self.reader.read(app, granularity, buckets, breakdowns, limit))
        except (RedisError, OSError) as exc:
            return _json({"error": f"redis unavailable: {exc}"}, 503)

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
        try:
            await self.reader.upload_catalogue(app, fields)
        except (RedisError, OSError) as exc:
            return _json({"error": f"redis unavailable: {exc}"}, 503)
        return _json({"app": app, "fields": len(fields)})

    async def apps(self, request: web.Request) -> web.Response:
        if not authorized(request, self.token):
            return _json({"error": "unauthorized"}, 401)
        try:
            return _json({"apps": await self.reader.apps()})
        except (RedisError, OSError) as exc:
            return _json({"error": f"redis unavailable: {exc}"}, 503)


def authorized(request: web.Request, token: str) -> bool:
    """True when no token is configured, or the request carries it as a Bearer token."""
    if not token:
        return True
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(given.encode(), token.encode())


def _json(body: dict, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")
