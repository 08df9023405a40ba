"""Browser fixtures: headless Chromium (Debian's) driven by Playwright, and a page server.

The pages in `pages/` are served by a tiny aiohttp server of their own, on another port
than the collector: another origin, as on a real platform, so every hit the beacon sends
is cross-origin (and must need no CORS preflight). `{{NAME}}` in a page is replaced by
`page_server.vars[NAME]` when it is served (COLLECTOR, APP, HOST).

Region: the collector trusts X-Forwarded-For from 127.0.0.1 (`--trusted-proxies`), and a
page cannot set that header. So the pages reach the collector through a small reverse
proxy, `lb`, that adds one, as the load balancer in front of a real collector does:
the visitor seems to come from `lb.client_ip` (Hangzhou in the test MMDB). (Playwright's
request routing would work too, for sendBeacon, keepalive fetch and <img> alike, but
with the sync API a routed request waits until the test next calls into Playwright, and
a page being closed may never get that far. extra_http_headers would turn the beacon's
simple CORS requests into preflighted ones.)

The standard's appendix-A snippet sends to `aplus-rhost-v` = qtedu.om.moe.edu.cn: the
browser resolves that name to the proxy (--host-resolver-rules), so that snippet runs
verbatim too.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from .kit import (
    APPENDIX_A_HOST,
    CHROMIUM_ARGS,
    DESKTOP_UA,
    HANGZHOU_IP,
    PAGES,
    ROOT,
    find_chromium,
    free_port,
)

# ---- the browser ----------------------------------------------------------------------


# Module scope, not session: while Playwright's sync API is running it owns the main
# thread's event loop, and the asyncio tests that come after the browser tests could
# not start theirs.
@pytest.fixture(scope="module")
def browser(page_server_session):
    chromium = find_chromium()
    if chromium is None:
        message = "no Chromium: apt-get install chromium (or set CHROMIUM_BIN)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    resolve = f"--host-resolver-rules=MAP {APPENDIX_A_HOST} 127.0.0.1:{page_server_session.lb_port}"
    with sync_playwright() as p:
        # The browser-wide user agent too: requests that outlive their page (sendBeacon on
        # pagehide) carry the browser's own UA, not the context's override.
        launched = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS + [resolve, "--user-agent=" + DESKTOP_UA])
        yield launched
        launched.close()


@dataclass
class Tab:
    """A page with everything it printed and raised."""

    page: object
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def beacon_lines(self) -> list[str]:
        return [line for line in self.console if line.startswith("[edu-beacon]")]


@pytest.fixture
def open_tab(browser):
    """open_tab(url, ua=..., mobile=False, ...) -> Tab, in a new browser context."""
    contexts = []

    def open_(url: str | None = None, *, ua: str = DESKTOP_UA, mobile: bool = False,
              viewport=None, init_script: str | None = None, context=None) -> Tab:
        if context is None:
            options = {"user_agent": ua, "locale": "zh-CN"}
            if mobile:
                options.update(is_mobile=True, has_touch=True, viewport=viewport or {"width": 390, "height": 844},
                               device_scale_factor=3)
            elif viewport:
                options["viewport"] = viewport
            context = browser.new_context(**options)
            contexts.append(context)
        if init_script:
            context.add_init_script(init_script)
        page = context.new_page()
        tab = Tab(page)
        page.on("console", lambda msg: tab.console.append(msg.text))
        page.on("pageerror", lambda err: tab.errors.append(str(err)))
        if url:
            page.goto(url)
        return tab

    yield open_
    for context in contexts:
        context.close()
    if contexts:
        # Closing pages send their last hits (pagehide): let them land in this test's
        # collector, not the next test's.
        time.sleep(0.5)


# ---- the page server ------------------------------------------------------------------


class PageServer:
    """Serves pages/ on 127.0.0.1 (also reachable as localhost: another site, for
    referrers), and runs the load balancer `lb` in front of the collector."""

    def __init__(self) -> None:
        self.port = free_port()
        self.lb_port = free_port()
        self.vars: dict[str, str] = {}
        self.requests: list[str] = []
        self.lb_target: str | None = None  # collector base URL
        self.lb_client_ip = HANGZHOU_IP
        self.lb_cors_on_errors = False  # most balancers' own error pages carry no CORS headers
        self.lb_log: list[tuple[str, str, int]] = []  # (method, path, status)
        self.lb_hits: list[dict] = []  # every event that passed, as JSON or query
        self.lb_agents: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="page-server", daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def start(self) -> PageServer:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("page server did not start")
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def render(self, name: str) -> str:
        text = (PAGES / name).read_text(encoding="utf-8")
        for key, value in self.vars.items():
            text = text.replace("{{" + key + "}}", value)
        return text

    async def _page(self, request: web.Request) -> web.Response:
        self.requests.append(str(request.rel_url))
        name = request.match_info["name"]
        if not (PAGES / name).is_file() or "/" in name:
            raise web.HTTPNotFound()
        return web.Response(text=self.render(name), content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store"})

    async def _spa(self, request: web.Request) -> web.Response:
        """Every /spa/... path is the same single-page app, so reloads and back work."""
        self.requests.append(str(request.rel_url))
        return web.Response(text=self.render("spa.html"), content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store"})

    async def _link(self, request: web.Request) -> web.Response:
        """/link?to=URL: a page with one link, to arrive somewhere with a referrer."""
        to = request.query["to"]
        return web.Response(text=f'<!doctype html><title>from</title><a id="go" href="{to}">go</a>',
                            content_type="text/html")

    @property
    def lb_url(self) -> str:
        return f"http://127.0.0.1:{self.lb_port}"

    async def _proxy(self, request: web.Request) -> web.StreamResponse:
        """The load balancer: forwards to the collector, adding X-Forwarded-For."""
        body = await request.read()
        if request.path == "/c":
            self._record_hits(request, body)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["X-Forwarded-For"] = self.lb_client_ip
        if self.lb_target is None:
            self.lb_log.append((request.method, request.path_qs, 502))
            cors = {"Access-Control-Allow-Origin": "*"} if self.lb_cors_on_errors else {}
            return web.Response(status=502, text="no upstream", headers=cors)
        try:
            async with self._client.request(request.method, self.lb_target + request.path_qs, data=body,
                                            headers=headers, allow_redirects=False, auto_decompress=False) as up:
                payload = await up.read()
                out = {k: v for k, v in up.headers.items() if k.lower() not in HOP_BY_HOP}
                self.lb_log.append((request.method, request.path_qs, up.status))
                return web.Response(status=up.status, body=payload, headers=out)
        except OSError:
            self.lb_log.append((request.method, request.path_qs, 502))
            return web.Response(status=502, text="upstream unreachable")

    def _record_hits(self, request: web.Request, body: bytes) -> None:
        self.lb_agents.append(request.headers.get("User-Agent", ""))
        if request.method == "GET":
            self.lb_hits.append(dict(request.query))
        elif request.method == "POST":
            try:
                payload = json.loads(body)
            except ValueError:
                return
            self.lb_hits.extend(payload if isinstance(payload, list) else [payload])

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/link", self._link)
        app.router.add_get("/spa/{tail:.*}", self._spa)
        app.router.add_get("/{name}", self._page)
        lb = web.Application()
        lb.router.add_route("*", "/{tail:.*}", self._proxy)
        runners = [web.AppRunner(app, access_log=None), web.AppRunner(lb, access_log=None)]
        for runner, port in zip(runners, (self.port, self.lb_port), strict=True):
            self._loop.run_until_complete(runner.setup())
            self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        self._client = self._loop.run_until_complete(_client())
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._client.close())
        for runner in runners:
            self._loop.run_until_complete(runner.cleanup())


HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "x-forwarded-for"}


async def _client():
    import aiohttp

    return aiohttp.ClientSession()


@pytest.fixture(scope="session")
def page_server_session():
    server = PageServer().start()
    yield server
    server.stop()


@pytest.fixture
def page_server(page_server_session):
    server = page_server_session
    server.vars = {"HOST": "", "HASH": "false"}
    server.requests.clear()
    server.lb_target = None
    server.lb_client_ip = HANGZHOU_IP
    server.lb_cors_on_errors = False
    server.lb_log.clear()
    server.lb_hits.clear()
    yield server
    server.lb_target = None


@pytest.fixture
def tracked(collector_factory, page_server):
    """A running collector behind the load balancer, the pages pointing at the balancer."""
    collector = collector_factory()
    page_server.lb_target = collector.base_url
    page_server.vars.update(COLLECTOR=page_server.lb_url, APP="browser-test")
    return collector


# ---- a collector started on a port chosen in advance ----------------------------------


@pytest.fixture
def collector_on_port(redis_url, test_geo_db, tmp_path):
    """start(port) runs `python -m collector serve` on that port, sharing the test Redis."""
    procs = []

    def start(port: int):
        log = open(tmp_path / f"collector-{port}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "collector", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--redis-url", redis_url, "--geo-db", ",".join(test_geo_db), "--flush-interval", "0.2",
             "--trusted-proxies", "127.0.0.1/32", "--data-dir", str(tmp_path / f"data-{port}"),
             "--registry", "open"],  # ad-hoc app keys, as in collector_factory
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        procs.append(proc)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return proc
            if proc.poll() is not None:
                raise RuntimeError((tmp_path / f"collector-{port}.log").read_text())
            time.sleep(0.1)
        raise RuntimeError("collector did not listen")

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
