"""aiohttp's routes for /c.

Hits mostly arrive through hit_server.py's fast path; these routes serve the connections
it hands over to aiohttp (see there), and all of them when the fast path is off, with
the same Ingest behind both.
"""

from __future__ import annotations

from time import perf_counter

from aiohttp import web

from collector.hit.ingest import Answer, Ingest
from collector.hit.protocol import decode_query
from collector.web.appkeys import HTTP_STATS, INGEST


def add_hit_routes(app: web.Application) -> None:
    # allow_head=False: a HEAD is answered 405 (Allow: GET, POST, OPTIONS), never counted.
    app.router.add_get("/c", hit_get, allow_head=False)
    app.router.add_post("/c", hit_post)
    app.router.add_route("OPTIONS", "/c", hit_options)


async def hit_get(request: web.Request) -> web.Response:
    started, ingest = perf_counter(), request.app[INGEST]
    answer = ingest.hit_query(decode_query(request.rel_url.raw_query_string), *sender(request))
    return counted(request, as_response(ingest, answer), started)


async def hit_post(request: web.Request) -> web.Response:
    started, ingest = perf_counter(), request.app[INGEST]
    try:
        body: bytes | None = await request.read()
    except web.HTTPRequestEntityTooLarge:
        body = None
    return counted(request, as_response(ingest, ingest.hit_body(body, *sender(request))), started)


async def hit_options(request: web.Request) -> web.Response:
    started, ingest = perf_counter(), request.app[INGEST]
    return counted(request, as_response(ingest, ingest.preflight()), started)


def sender(request: web.Request) -> tuple[str | None, str | None, str, str | None, str | None, str | None]:
    """(TCP peer, X-Forwarded-For, User-Agent, Sec-CH-UA-Mobile, Origin, Referer), as Ingest's
    handlers take them.

    A proxy may add its hop as another X-Forwarded-For line: the lines are one list.
    """
    headers = request.headers
    hops = headers.getall("X-Forwarded-For", ())
    forwarded_for = ",".join(hops) if hops else None
    return (request.remote, forwarded_for, headers.get("User-Agent", ""), headers.get("Sec-CH-UA-Mobile"),
            headers.get("Origin"), headers.get("Referer"))


def as_response(ingest: Ingest, answer: Answer) -> web.Response:
    headers = {**ingest.cors, **dict(answer.headers)}
    return web.Response(status=answer.status, body=answer.body or None, content_type=answer.content_type, headers=headers)


def counted(request: web.Request, response: web.Response, started: float) -> web.Response:
    """`response`, counted as the fast path counts its answers (HttpStats.hits)."""
    request.app[HTTP_STATS].hits.answered(response.status, started)
    return response
