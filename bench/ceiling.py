"""The ceiling: a bare aiohttp + uvloop server answering 204 on /c, nothing else.

It runs exactly like the collector (web.AppRunner, access log off, TCPSite with
SO_REUSEPORT for several workers), so the gap between the two is what the collector does
per hit. POST bodies are read (the collector must read them too); nothing is parsed.

    python -m bench.ceiling --port 8081 [--workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import time

import uvloop
from aiohttp import web

from collector.server import until_signalled


async def get(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def post(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=204)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


def make_app() -> web.Application:
    app = web.Application(client_max_size=16384)
    app.router.add_get("/c", get)
    app.router.add_post("/c", post)
    app.router.add_get("/healthz", healthz)
    return app


async def _serve(host: str, port: int, reuse_port: bool) -> None:
    runner = web.AppRunner(make_app(), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_port=reuse_port or None, backlog=2048).start()
    await until_signalled()
    await runner.cleanup()


def run_worker(host: str, port: int, reuse_port: bool) -> None:
    uvloop.run(_serve(host, port, reuse_port))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="bare aiohttp + uvloop 204 server (the ceiling)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    if args.workers == 1:
        run_worker(args.host, args.port, False)
        return
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=run_worker, args=(args.host, args.port, True)) for _ in range(args.workers)]
    for w in workers:
        w.start()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *a: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *a: stopping.append(1))
    while not stopping and all(w.is_alive() for w in workers):
        time.sleep(0.2)
    for w in workers:
        if w.is_alive():
            os.kill(w.pid, signal.SIGTERM)
    for w in workers:
        w.join(5)


if __name__ == "__main__":
    main()
