"""The beacon build: its size budget, the unit tests of its logic, and that the committed
dist/ is exactly what the sources build to (the collector serves dist/ without node)."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BEACON = ROOT / "beacon_js"
DIST = BEACON / "dist"

# The basic tag (JY/T §7.1.2) at most 2.5 KiB minified and gzipped: the script every
# visitor of every page downloads. (Plausible's full build is ~2.7 KB, Umami's ~2.3 KB,
# Matomo's ~22 KB.) The debug build, loaded only with DEBUG on, has no budget.
BASIC_BUDGET_GZIP = 2560
# The full build (deep tag, JY/T §7.1.3: user id, clicks, click tracks, media,
# interactions) at most 5 KiB minified and gzipped, the basic tag included.
FULL_BUDGET_GZIP = 5120


def gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, 9, mtime=0))


@pytest.mark.parametrize("name, budget", [("beacon.js", BASIC_BUDGET_GZIP), ("beacon.full.js", FULL_BUDGET_GZIP)])
def test_each_build_is_within_its_size_budget(name, budget):
    data = (DIST / name).read_bytes()
    size = gzip_size(data)
    print(f"\n{name}: {len(data)} B raw, {size} B gzip (budget {budget} B)")
    assert size <= budget, f"{name} is {size} B gzipped, over its {budget} B budget"


def test_the_current_version_has_a_frozen_copy_equal_to_beacon_js():
    manifest = json.loads((DIST / "manifest.json").read_text())
    frozen = DIST / manifest["files"]["frozen"]
    assert frozen.name == f"beacon-{manifest['version']}.js"
    assert frozen.read_bytes() == (DIST / "beacon.js").read_bytes()


def test_the_full_build_has_a_frozen_copy_and_its_manifest_entry():
    manifest = json.loads((DIST / "manifest.json").read_text())
    full = manifest["full"]
    assert full["files"] == {"latest": "beacon.full.js", "frozen": f"beacon.full-{manifest['version']}.js",
                             "debug": "beacon.full.debug.js"}
    data = (DIST / "beacon.full.js").read_bytes()
    assert (DIST / full["files"]["frozen"]).read_bytes() == data
    assert full["sizes"]["raw"] == len(data)
    # The basic build's own entries are where they were.
    assert manifest["files"]["latest"] == "beacon.js" and manifest["sizes"]["raw"] == len((DIST / "beacon.js").read_bytes())


def node() -> str:
    found = shutil.which("node")
    if not found:
        pytest.fail("node is needed to build the beacon (apt-get install nodejs npm)")
    return found


def ensure_node_modules() -> None:
    if not (BEACON / "node_modules" / "esbuild").exists() or not (BEACON / "node_modules" / "terser").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BEACON, check=True)


@pytest.mark.slow
def test_committed_dist_is_what_the_sources_build_to(tmp_path):
    ensure_node_modules()
    subprocess.run([node(), "build.mjs", "--outdir", str(tmp_path)], cwd=BEACON, check=True, capture_output=True)
    built = sorted(p.name for p in tmp_path.iterdir())
    for name in built:
        assert (DIST / name).exists(), f"{name} is built but not committed: run `npm run build` in beacon_js"
        assert (tmp_path / name).read_bytes() == (DIST / name).read_bytes(), (
            f"dist/{name} differs from a fresh build: run `npm run build` in beacon_js and commit dist/"
        )


@pytest.mark.slow
def test_node_unit_tests_pass():
    result = subprocess.run([node(), "--test", "test/"], cwd=BEACON, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
