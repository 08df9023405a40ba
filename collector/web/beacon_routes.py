"""Serves the built beacon (`beacon_js/dist`) and the demo page.

- `/beacon.js`: the current build, cached for an hour so fixes roll out the same day;
  an ETag makes revalidation a 304.
- `/beacon-<version>.js`: every frozen copy found in dist, cached for a year and
  `immutable`: pages that pin a version with Subresource Integrity load exactly these
  bytes forever (the build refuses to change a frozen file; bump the version instead).
- `/beacon.debug.js`: the same code with DEBUG logging, which beacon.js loads in its
  place when a page (or `?eb_debug=1`) switches DEBUG on.
- `/beacon.full.js`, `/beacon.full-<version>.js`, `/beacon.full.debug.js`: the same three
  for the full build (deep tag: user id, clicks, click tracks, media, interactions).
- `/demo`: a page carrying the snippet with DEBUG on, pointed at this collector.

Everything is read, compressed and hashed once, at startup (BeaconAssets.load, from the
beacon context in resources.py): the handlers only copy bytes out.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from collector.web.appkeys import BEACON

log = logging.getLogger(__name__)

LATEST = "beacon.js"
DEBUG = "beacon.debug.js"
FROZEN = re.compile(r"^beacon-(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)\.js$")
FULL = "beacon.full.js"
FULL_DEBUG = "beacon.full.debug.js"
FULL_FROZEN = re.compile(r"^beacon\.full-(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)\.js$")
LATEST_CACHE = "public, max-age=3600"
FROZEN_CACHE = "public, max-age=31536000, immutable"


def sri(data: bytes) -> str:
    """The Subresource Integrity value of a file (sha384, the browsers' common choice)."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def _frozen_version(name: str) -> str:
    """The version in a frozen build's file name; callers pass only names FROZEN matches."""
    found = FROZEN.match(name)
    if found is None:
        raise ValueError(f"not a frozen beacon file name: {name!r}")
    return found.group(1)


def _version_key(name: str) -> tuple[int | tuple[int, str], ...]:
    version = _frozen_version(name)
    core, _, pre = version.partition("-")
    # A release sorts after its own pre-releases.
    return tuple(int(x) for x in core.split(".")) + ((1, "") if not pre else (0, pre),)


def beacon_info(dist_dir: Path) -> dict:
    """Version, file names, SRI and sizes of the build in `dist_dir` (for README and bench).

    `sizes.brotli` comes from the build's manifest (Python has no brotli in the standard
    library); raw and gzip are measured here from the file itself.
    """
    dist_dir = Path(dist_dir)
    latest = (dist_dir / LATEST).read_bytes()
    manifest_path = dist_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    frozen = sorted((p.name for p in dist_dir.glob("beacon-*.js") if FROZEN.match(p.name)), key=_version_key)
    version = manifest.get("version") or (_frozen_version(frozen[-1]) if frozen else "0")
    frozen_name = f"beacon-{version}.js"
    return {
        "version": version,
        "files": {
            "latest": LATEST,
            "frozen": frozen_name if frozen_name in frozen else None,
            "debug": DEBUG if (dist_dir / DEBUG).exists() else None,
            "all_frozen": frozen,
        },
        "sri": sri(latest),
        "sizes": {
            "raw": len(latest),
            "gzip": len(gzip.compress(latest, 9, mtime=0)),
            "brotli": manifest.get("sizes", {}).get("brotli"),
        },
    }


@dataclass(frozen=True)
class _Asset:
    body: bytes
    gzipped: bytes
    etag: str
    cache_control: str

    @classmethod
    def load(cls, path: Path, cache_control: str) -> _Asset:
        body = path.read_bytes()
        return cls(body, gzip.compress(body, 9, mtime=0), '"' + hashlib.sha256(body).hexdigest()[:32] + '"', cache_control)

    def respond(self, request: web.Request) -> web.Response:
        gz = "gzip" in request.headers.get("Accept-Encoding", "")
        etag = self.etag[:-1] + '-gz"' if gz else self.etag
        headers = {
            "Cache-Control": self.cache_control,
            "ETag": etag,
            "Vary": "Accept-Encoding",
            # SRI on a cross-origin script needs CORS (`crossorigin="anonymous"` on the tag).
            "Access-Control-Allow-Origin": "*",
            # Pages with Cross-Origin-Embedder-Policy may load it too.
            "Cross-Origin-Resource-Policy": "cross-origin",
            "X-Content-Type-Options": "nosniff",
        }
        if etag in _etags(request.headers.get("If-None-Match", "")):
            return web.Response(status=304, headers=headers)
        if gz:
            headers["Content-Encoding"] = "gzip"
        return web.Response(
            body=self.gzipped if gz else self.body,
            headers=headers,
            content_type="application/javascript",
            charset="utf-8",
        )


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


@dataclass(frozen=True)
class BeaconAssets:
    """Everything the beacon routes serve, read and compressed once, at startup."""

    dist_dir: Path
    files: dict[str, _Asset]  # by file name: the latest, debug and frozen copies of both builds
    demo: bytes | None  # None: there is no build

    @classmethod
    def load(cls, dist_dir: Path) -> BeaconAssets:
        """The build in `dist_dir`. A missing build is not fatal (the collector still
        counts hits sent by other means): the routes then answer 404 saying how to build it."""
        dist_dir = Path(dist_dir)
        if not (dist_dir / LATEST).is_file():
            log.warning("beacon: no build at %s (run `npm ci && npm run build` in beacon_js); /beacon.js answers 404", dist_dir)
            return cls(dist_dir, {}, None)
        info = beacon_info(dist_dir)
        files = {LATEST: _Asset.load(dist_dir / LATEST, LATEST_CACHE)}
        if info["files"]["debug"]:
            files[DEBUG] = _Asset.load(dist_dir / DEBUG, LATEST_CACHE)
        files.update((name, _Asset.load(dist_dir / name, FROZEN_CACHE)) for name in info["files"]["all_frozen"])
        files.update(_full_assets(dist_dir))
        log.info("beacon: %s v%s, %d B (%d B gzip), %s", LATEST, info["version"], info["sizes"]["raw"], info["sizes"]["gzip"], info["sri"])
        return cls(dist_dir, files, demo_page(info).encode())

    @property
    def built(self) -> bool:
        return self.demo is not None

    def not_built(self) -> web.Response:
        return web.Response(status=404, text=f"beacon not built: no {LATEST} in {self.dist_dir}\n")


def _full_assets(dist_dir: Path) -> dict[str, _Asset]:
    """The full build (deep tag), when dist has one: latest, debug and frozen copies."""
    if not (dist_dir / FULL).is_file():
        return {}
    assets = {FULL: _Asset.load(dist_dir / FULL, LATEST_CACHE)}
    if (dist_dir / FULL_DEBUG).is_file():
        assets[FULL_DEBUG] = _Asset.load(dist_dir / FULL_DEBUG, LATEST_CACHE)
    for path in dist_dir.glob("beacon.full-*.js"):
        if FULL_FROZEN.match(path.name):
            assets[path.name] = _Asset.load(path, FROZEN_CACHE)
    return assets


VERSION = r"{version:\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?}"


def add_beacon_routes(app: web.Application) -> None:
    """Register the beacon's routes; they serve the BeaconAssets the app holds under
    BEACON, which the beacon context (resources.py) loads at startup."""
    for path in ("/" + LATEST, "/" + DEBUG, f"/beacon-{VERSION}.js", "/" + FULL, "/" + FULL_DEBUG, f"/beacon.full-{VERSION}.js"):
        app.router.add_get(path, serve_asset)
    app.router.add_get("/demo", serve_demo)


async def serve_asset(request: web.Request) -> web.Response:
    assets = request.app[BEACON]
    if not assets.built:
        return assets.not_built()
    name = request.path.lstrip("/")
    asset = assets.files.get(name)
    if asset is None:
        versioned = "version" in request.match_info
        raise web.HTTPNotFound(text="no such beacon version\n" if versioned else f"no {name} in this build\n")
    return asset.respond(request)


async def serve_demo(request: web.Request) -> web.Response:
    assets = request.app[BEACON]
    if not assets.built:
        return assets.not_built()
    return web.Response(body=assets.demo, content_type="text/html", charset="utf-8", headers={"Cache-Control": "no-cache"})


DEMO_APP_KEY = "demo"


def demo_page(info: dict) -> str:
    """The demo: our snippet with DEBUG on, loading the beacon from this same origin."""
    snippet = DEMO_SNIPPET.replace("APP_KEY", DEMO_APP_KEY)
    return DEMO_TEMPLATE.format(
        version=html.escape(info["version"]),
        sri=html.escape(info["sri"]),
        snippet=snippet,
        snippet_text=html.escape(snippet),
        app=DEMO_APP_KEY,
    )


DEMO_SNIPPET = """<script>
(function(w,d,s,q){w[q]=w[q]||[];var f=d.getElementsByTagName(s)[0],j=d.createElement(s);
j.async=true;j.src='/beacon.js';f.parentNode.insertBefore(j,f)})(window,document,'script','eb_queue');
eb_queue.push({action:'set',arguments:['appKey','APP_KEY']});
eb_queue.push({action:'set',arguments:['debug',true]});
</script>"""

DEMO_TEMPLATE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="eb-page-code" content="demo-home">
<title>edu-beacon demo</title>
<script>
// Mirrors the beacon's DEBUG lines into the page (installed before the beacon loads).
(function () {{
  var orig = console.log, lines = [];
  console.log = function () {{
    orig.apply(console, arguments);
    var line = [].map.call(arguments, function (a) {{
      try {{ return typeof a == 'string' ? a : JSON.stringify(a); }} catch (e) {{ return String(a); }}
    }}).join(' ');
    if (line.indexOf('[edu-beacon]') !== 0) return;
    lines.push(line);
    var out = document.getElementById('log');
    if (out) out.textContent = lines.join('\\n');
  }};
}})();
</script>
{snippet}
<style>
body{{font:15px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}}
pre{{background:#f4f4f4;padding:.8rem;overflow:auto;font-size:13px;white-space:pre-wrap}}
button{{margin:.2rem .4rem .2rem 0}}
</style>
</head>
<body>
<h1>edu-beacon demo</h1>
<p>This page carries the snippet below with DEBUG on: every command, every payload and
every reason for not sending is printed to the browser console and mirrored here.
Beacon v{version}; pin <code>/beacon-{version}.js</code> with <code>integrity="{sri}"</code>.</p>
<pre>{snippet_text}</pre>
<p>
<button id="spa">SPA navigation (pushState)</button>
<button id="evt">record a custom event</button>
<button id="optout">opt out</button>
<button id="optin">opt in</button>
<a href="/api/stats?app={app}&amp;breakdown=page,page_code,referrer,device,region">stats for app "{app}"</a>
</p>
<h2>console</h2>
<pre id="log"></pre>
<script>
(function () {{
  var n = 0;
  document.getElementById('spa').onclick = function () {{ history.pushState({{}}, '', '/demo?step=' + (++n)); }};
  document.getElementById('evt').onclick = function () {{
    eb_queue.push({{action: 'record', arguments: ['demo-button', 'custom', {{clicked: true}}]}});
  }};
  document.getElementById('optout').onclick = function () {{ eb_queue.push({{action: 'optOut'}}); }};
  document.getElementById('optin').onclick = function () {{ eb_queue.push({{action: 'optOut', arguments: [false]}}); }};
}})();
</script>
</body>
</html>
"""
