"""The docs stay true: README settings table, the key-schema example, the Dockerfile."""

from __future__ import annotations

import re
import subprocess
import sys

import httputil as http
from conftest import ROOT, launch_collector

from collector.settings import describe


def test_readme_settings_table_lists_every_setting_with_its_default():
    readme = (ROOT / "README.md").read_text()
    rows = {m.group(2): (m.group(1), m.group(3)) for m in re.finditer(r"^\| `(--[\w-]+)` \| `(\w+)` \| ([^|]+) \|", readme, re.M)}
    for flag, env, default, _ in describe():
        assert env in rows, f"README settings table lacks {env}"
        assert rows[env][0] == flag
        shown = rows[env][1].strip()
        assert shown == (f"`{default}`" if default else "(empty)"), (env, shown, default)
    assert set(rows) == {env for _, env, _, _ in describe()}, "README lists settings that do not exist"


def test_redis_keys_example_reads_a_real_rollup(tmp_path, redis_server, redis_url, test_geo_db, test_networks):
    ip = test_networks[0].cidr.split("/")[0]
    collector = launch_collector(tmp_path / "c.log", ["--redis-url", redis_url, "--geo-db", test_geo_db[0],
                                                      "--flush-interval", "0.1", "--trusted-proxies", "127.0.0.1/32"])
    try:
        status, _ = http.post(collector.base_url + "/c", [{"k": "demo", "t": "pageview", "u": "https://e.edu/", "sn": 1}] * 3,
                              {"X-Forwarded-For": ip, "User-Agent": "Mozilla/5.0 (Windows NT 10.0) Chrome/124.0"})
        assert status == 204
        collector.wait_for(lambda: collector.stats("demo")["totals"]["pv"] == 3)
        day = collector.stats("demo")["from"].replace("-", "")
    finally:
        collector.stop()
    doc = (ROOT / "docs" / "redis-keys.md").read_text()
    example = doc.split("```python", 1)[1].split("```", 1)[0]
    example = example.replace("redis://localhost:6379/0", redis_url).replace('"20261124"', f'"{day}"')
    out = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "PV 3 UV 1 visits 3 bounces 3" in out.stdout
    assert f"CN/{test_networks[0].province}/{test_networks[0].city} 3 UV 1" in out.stdout


def test_dockerfile_copies_what_exists_and_runs_serve_as_non_root():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), f"Dockerfile copies missing {path}"
    assert re.search(r"^USER collector$", dockerfile, re.M)
    assert dockerfile.strip().splitlines()[-1] == 'CMD ["collector", "serve"]'
    # the same install steps as serve.sh, which CI exercises
    serve = (ROOT / "serve.sh").read_text()
    assert "geo_data/fetch_dbip.sh" in dockerfile and "geo_data/fetch_dbip.sh" in serve
    assert "pip install" in dockerfile and "pip install" in serve
