"""/beacon.js, /beacon-<version>.js, /beacon.debug.js and /demo, through the real app."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from aiohttp import web

from collector.web.beacon_routes import add_beacon_routes, beacon_info, sri

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "beacon_js" / "dist"


def test_beacon_info_matches_the_build():
    info = beacon_info(DIST)
    manifest = json.loads((DIST / "manifest.json").read_text())
    data = (DIST / "beacon.js").read_bytes()
    assert info["version"] == manifest["version"]
    assert info["sri"] == manifest["sri"] == sri(data)
    assert info["sizes"]["raw"] == len(data)
    assert info["sizes"]["gzip"] == len(gzip.compress(data, 9, mtime=0))
    assert info["sizes"]["brotli"] == manifest["sizes"]["brotli"]
    assert info["files"]["frozen"] == f"beacon-{info['version']}.js"
    assert info["files"]["debug"] == "beacon.debug.js"


async def test_latest_is_cached_an_hour_with_an_etag(collector_client):
    client = await collector_client()
    data = (DIST / "beacon.js").read_bytes()
    resp = await client.get("/beacon.js", headers={"Accept-Encoding": "identity"})
    assert resp.status == 200
    assert await resp.read() == data
    assert resp.headers["Content-Type"] == "application/javascript; charset=utf-8"
    assert resp.headers["Cache-Control"] == "public, max-age=3600"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"  # SRI on a cross-origin script needs CORS
    etag = resp.headers["ETag"]
    again = await client.get("/beacon.js", headers={"Accept-Encoding": "identity", "If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""


async def test_gzip_when_accepted(collector_client):
    client = await collector_client()
    resp = await client.get("/beacon.js", headers={"Accept-Encoding": "gzip, br"}, auto_decompress=False)
    assert resp.headers["Content-Encoding"] == "gzip"
    assert resp.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(await resp.read()) == (DIST / "beacon.js").read_bytes()
    assert resp.headers["ETag"].endswith('-gz"')


async def test_frozen_version_is_immutable_and_matches_its_sri(collector_client):
    client = await collector_client()
    info = beacon_info(DIST)
    resp = await client.get("/" + info["files"]["frozen"], headers={"Accept-Encoding": "identity"})
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert sri(await resp.read()) == info["sri"]
    assert (await client.get("/beacon-0.0.0.js")).status == 404


async def test_debug_build_and_demo(collector_client):
    client = await collector_client()
    debug = await client.get("/beacon.debug.js")
    assert debug.status == 200
    assert "[edu-beacon]" in await debug.text()
    demo = await client.get("/demo")
    assert demo.status == 200
    page = await demo.text()
    assert "eb_queue" in page and "'debug',true" in page and "src='/beacon.js'" in page


async def test_a_missing_build_answers_404_and_does_not_stop_the_collector(aiohttp_client, tmp_path):
    app = web.Application()
    add_beacon_routes(app, tmp_path / "nothing-here")
    client = await aiohttp_client(app)
    resp = await client.get("/beacon.js")
    assert resp.status == 404
    assert "npm" in await resp.text() or "not built" in await resp.text()
