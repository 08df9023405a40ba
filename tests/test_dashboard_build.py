"""The dashboard's build (dashboard_js/dist): its size budget, its maps, its two string
tables, that the committed dist is what the sources build to, and how the collector
serves it. (Its behaviour in a browser: tests/browser/test_dashboard.py.)"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "dashboard_js"
DIST = DASHBOARD / "dist"

# Everything the dashboard may ever download, every province's map included, at most
# 150 KB gzipped in all (the budget): a first visit on a school's slow line
# loads in seconds, and no charting library sneaks in.
BUDGET_GZIP = 150 * 1024


def served_files() -> list[Path]:
    return sorted(p for p in DIST.rglob("*") if p.is_file() and p.name != "manifest.json")


def test_everything_served_is_within_the_size_budget():
    sizes = {p.relative_to(DIST).as_posix(): len(gzip.compress(p.read_bytes(), 9, mtime=0)) for p in served_files()}
    total = sum(sizes.values())
    print(f"\ndashboard: {len(sizes)} files, {total} B gzip in all (budget {BUDGET_GZIP} B); "
          f"dashboard.js {sizes['dashboard.js']} B, map/china.json {sizes['map/china.json']} B")
    assert total <= BUDGET_GZIP, f"the dashboard is {total} B gzipped, over its {BUDGET_GZIP} B budget"


def test_the_maps_hold_every_province_and_each_province_its_prefectures():
    china = json.loads((DIST / "map" / "china.json").read_text())
    provinces = {code for code, *_ in china["f"]}
    assert len(provinces) == 34 and {"330000", "110000", "650000", "810000", "710000"} <= provinces
    assert china["x"].startswith("M")  # the South China Sea islands inset
    for code in provinces - {"710000"}:  # Taiwan's regions are no prefectures here (DB-IP: country TW)
        prefectures = json.loads((DIST / "map" / f"{code[:2]}.json").read_text())["f"]
        assert prefectures and all(p[0][:2] == code[:2] and p[0].endswith("00") for p in prefectures), code
    zhejiang = {code: name for code, name, *_ in json.loads((DIST / "map" / "33.json").read_text())["f"]}
    assert zhejiang["330100"] == "杭州市" and len(zhejiang) == 11  # the seed's eleven prefectures


def node() -> str:
    found = shutil.which("node")
    if not found:
        pytest.fail("node is needed to build the dashboard (apt-get install nodejs npm)")
    return found


def test_both_languages_have_every_string():
    script = "import('./src/i18n.js').then(({STRINGS}) => console.log(JSON.stringify(STRINGS)))"
    tables = json.loads(subprocess.run([node(), "--input-type=module", "-e", script], cwd=DASHBOARD, check=True,
                                       capture_output=True, text=True).stdout)
    assert set(tables) == {"zh", "en"}
    assert set(tables["zh"]) == set(tables["en"])
    assert all(text.strip() for table in tables.values() for text in table.values())


def test_node_unit_tests_pass():
    """The period arithmetic (dashboard_js/test/): comparisons, calendar months, time zones."""
    result = subprocess.run([node(), "--test", "test/"], cwd=DASHBOARD, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.mark.slow
def test_committed_dist_is_what_the_sources_build_to(tmp_path):
    if not (DASHBOARD / "node_modules" / "esbuild").exists() or not (DASHBOARD / "node_modules" / "echarts").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=DASHBOARD, check=True)
    subprocess.run([node(), "build.mjs", "--outdir", str(tmp_path)], cwd=DASHBOARD, check=True, capture_output=True)
    built = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(DIST).as_posix() for p in DIST.rglob("*") if p.is_file())
    assert built == committed, "run `npm run build` in dashboard_js and commit dist/"
    for name in built:
        assert (tmp_path / name).read_bytes() == (DIST / name).read_bytes(), (
            f"dist/{name} differs from a fresh build: run `npm run build` in dashboard_js and commit dist/")


# ---- served by the collector ---------------------------------------------------------------


async def test_the_collector_serves_the_build_with_a_strict_policy(collector_client):
    client = await collector_client()
    moved = await client.get("/dashboard", allow_redirects=False)
    assert moved.status == 301 and moved.headers["Location"] == "/dashboard/"
    page = await client.get("/dashboard/")
    assert page.status == 200 and page.content_type == "text/html"
    assert "dashboard.js" in await page.text()
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["Referrer-Policy"] == "no-referrer"
    script = await client.get("/dashboard/dashboard.js", headers={"Accept-Encoding": "gzip"})
    assert script.status == 200 and script.content_type == "application/javascript"
    assert await script.read() == (DIST / "dashboard.js").read_bytes()  # (the client undoes the gzip)
    again = await client.get("/dashboard/dashboard.js", headers={"Accept-Encoding": "gzip", "If-None-Match": script.headers["ETag"]})
    assert again.status == 304
    assert (await client.get("/dashboard/map/33.json")).status == 200


@pytest.mark.parametrize("path", ["/dashboard/map/99.json", "/dashboard/manifest.json", "/dashboard/map/../../pyproject.toml",
                                  "/dashboard/%2e%2e/pyproject.toml", "/dashboard/src/main.js", "/dashboard/Dashboard.JS"])
async def test_nothing_else_is_served(collector_client, path):
    client = await collector_client()
    assert (await client.get(path)).status == 404


async def test_without_a_build_the_dashboard_says_how_to_build_it(collector_client, tmp_path):
    client = await collector_client(dashboard_dir=str(tmp_path / "no-build"))
    answer = await client.get("/dashboard/")
    assert answer.status == 404 and "not built" in await answer.text()


async def test_whoami_tells_the_sign_in_who_a_credential_is(collector_client):
    client = await collector_client(api_token="secret")
    assert await (await client.get("/api/whoami")).json() == {"role": None, "platform": None}
    assert await (await client.get("/api/whoami", headers={"Authorization": "Bearer secret"})).json() == {"role": "all", "platform": None}
    assert (await client.get("/api/whoami", headers={"Authorization": "Bearer wrong"})).status == 403
