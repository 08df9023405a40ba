"""deploy/ and the Dockerfile hold together: what they name exists, the journal lives on
a volume, the health check follows the port, the build context keeps what the image
copies, and the Grafana dashboard asks only for metrics the collector exposes.
(tests/test_topology.py runs the topology itself.)"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_the_data_directory_is_a_volume():
    data_dir = re.search(r"COLLECTOR_DATA_DIR=(\S+)", DOCKERFILE).group(1)
    assert re.search(rf'^VOLUME \["{re.escape(data_dir)}"\]$', DOCKERFILE, re.M)
    compose = (DEPLOY / "docker-compose.yml").read_text()
    volumes = re.findall(r"volumes: \[(collector-\d-data):" + re.escape(data_dir) + r"\]", compose)
    assert len(volumes) == len(set(volumes)) == 3  # one volume per replica: each locks its own journal


def test_the_health_check_asks_the_configured_port():
    check = next(line for line in DOCKERFILE.splitlines() if line.startswith("HEALTHCHECK"))
    assert "COLLECTOR_PORT" in check and "/healthz" in check and ":8080" not in check


def test_the_geo_database_release_is_pinned_by_a_build_argument():
    pinned = re.search(r"^ARG DBIP_VERSION=(\S+)$", DOCKERFILE, re.M)
    assert pinned and re.fullmatch(r"\d+\.\d+\.\d+", pinned.group(1))
    assert 'DBIP_VERSION="$DBIP_VERSION" bash geo_data/fetch_dbip.sh' in DOCKERFILE
    assert f'DBIP_VERSION: "{pinned.group(1)}"' in (DEPLOY / "docker-compose.yml").read_text()


def test_the_build_context_keeps_what_the_image_copies():
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    copied = [path for source in re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.M) for path in source.split()]
    assert copied
    for path in copied:
        for pattern in ignored:
            pattern = pattern.rstrip("/")
            assert not (fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern + "/*")
                        or path.startswith(pattern + "/")), f".dockerignore {pattern!r} drops {path}, which the image copies"
    assert ".git" in ignored and "data/" in ignored


def test_compose_files_name_files_that_exist():
    for name in ("docker-compose.yml", "docker-compose.cluster.yml"):
        text = (DEPLOY / name).read_text()
        for path in re.findall(r"- (\./[\w./-]+):", text):
            if not path.endswith("/token"):  # the operator writes the token (deploy/README.md)
                assert (DEPLOY / path).exists(), f"{name} mounts missing {path}"
    assert "context: .." in (DEPLOY / "docker-compose.yml").read_text()


def test_the_dashboard_asks_for_metrics_the_collector_exposes(exposed_metric_names):
    dashboard = json.loads((DEPLOY / "grafana" / "edu-beacon-collector.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    asked = {name for expr in exprs for name in re.findall(r"\bedubeacon_\w+", expr)}
    assert asked and asked <= exposed_metric_names, asked - exposed_metric_names


SERIES_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


async def _scrape_names(client) -> set[str]:
    """Every series name the answer declares, whether or not it has samples yet."""
    resp = await client.get("/metrics")
    assert resp.status == 200
    families = list(text_string_to_metric_families(await resp.text()))
    return {family.name + suffix for family in families for suffix in SERIES_SUFFIXES[family.type]}


@pytest.fixture
async def exposed_metric_names(collector_client):
    client = await collector_client()
    # one hit and one rejection, so the labelled families have samples
    await client.post("/c", json=[{"k": "a", "t": "pageview", "u": "https://e.edu/"}, {"k": "a", "t": "?"}])
    return await _scrape_names(client)
