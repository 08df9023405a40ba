"""Fixtures of the deep-tag browser tests: a server for their pages and a test video.

Two kinds of tests use them. test_deep_media.py and test_deep_tracks.py check what the
beacon SENDS: every event that passes the load balancer in front of the collector is in
`page_server.lb_hits` (see ../conftest.py), and the collector's answer to each request
in `page_server.lb_log` (it must accept them all: 204, no 400). test_deep_counts.py
checks what the collector COUNTS from it, end to end: the real collector process behind
the balancer aggregates the deep events into Redis (collector/features/), and the test
reads them back from its `/api/stats` (media, interactions, click tracks, breakdowns by
resource, item, target..., the cardinality caps), once everything sent has been flushed.

The pages in `pages/` are served on their own port (another origin than the collector,
as on a real platform), `{{NAME}}` replaced by `page_server.vars[NAME]` (COLLECTOR,
APP) or MEDIA (this server). `/media/NAME` serves the videos made by ffmpeg, with Range
support so that seeking works.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from aiohttp import web

from ..kit import free_port

PAGES = Path(__file__).resolve().parent / "pages"

# A short real video: 6 s of the ffmpeg test pattern, VP8 in WebM (Chromium plays it
# without proprietary codecs).
VIDEO_SECONDS = 6


class DeepServer:
    def __init__(self, media_dir: Path) -> None:
        self.port = free_port()
        self.media_dir = media_dir
        self.vars: dict[str, str] = {}
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deep-page-server", daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _page(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if "/" in name or not (PAGES / name).is_file():
            raise web.HTTPNotFound()
        text = (PAGES / name).read_text(encoding="utf-8")
        for key, value in {**self.vars, "MEDIA": self.url("/media")}.items():
            text = text.replace("{{" + key + "}}", value)
        return web.Response(text=text, content_type="text/html", charset="utf-8", headers={"Cache-Control": "no-store"})

    async def _media(self, request: web.Request) -> web.StreamResponse:
        path = self.media_dir / request.match_info["name"]
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Cache-Control": "no-store"})

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/media/{name}", self._media)
        app.router.add_get("/{name}", self._page)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def start(self) -> DeepServer:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("deep page server did not start")
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="session")
def test_video(tmp_path_factory) -> Path:
    ffmpeg = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
    if not Path(ffmpeg).exists():
        pytest.skip("no ffmpeg: apt-get install ffmpeg")
    out = tmp_path_factory.mktemp("media") / "clip.webm"
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-f", "lavfi", "-i", f"testsrc=duration={VIDEO_SECONDS}:size=160x120:rate=10",
         "-pix_fmt", "yuv420p", "-c:v", "libvpx", "-b:v", "200k", "-y", str(out)],
        check=True,
    )
    return out


@pytest.fixture(scope="session")
def deep_server_session(test_video):
    server = DeepServer(test_video.parent).start()
    yield server
    server.stop()


@pytest.fixture
def deep(tracked, page_server, deep_server_session):
    """The deep pages' server, its pages pointing at the collector behind the balancer."""
    deep_server_session.vars = dict(page_server.vars)
    return deep_server_session
