"""The beacon's size on the wire: raw, gzip -9 and brotli (quality 11) of beacon_js/dist/beacon.js."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

DIST = Path(__file__).resolve().parent.parent / "beacon_js" / "dist"


def _brotli(data: bytes) -> tuple[int | None, str]:
    try:
        import brotli

        return len(brotli.compress(data, quality=11)), "brotli (Python module), quality 11"
    except ImportError:
        pass
    exe = shutil.which("brotli")
    if exe:
        out = subprocess.run([exe, "-c", "-q", "11"], input=data, capture_output=True, check=True).stdout
        return len(out), "brotli CLI, quality 11"
    return None, "no brotli encoder installed"


def sizes(dist: Path = DIST) -> dict:
    path = dist / "beacon.js"
    if not path.exists():
        return {"error": f"{path} missing: build the beacon (cd beacon_js && npm run build)"}
    data = path.read_bytes()
    br, how = _brotli(data)
    out = {
        "file": "beacon_js/dist/beacon.js",
        "raw": len(data),
        "gzip": len(gzip.compress(data, compresslevel=9, mtime=0)),
        "brotli": br,
        "brotli_how": how,
    }
    manifest = dist / "manifest.json"
    if manifest.exists():
        m = json.loads(manifest.read_text())
        out["manifest_version"] = m.get("version")
        out["manifest_sizes"] = m.get("sizes")
    return out
