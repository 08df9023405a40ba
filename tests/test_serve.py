"""`collector serve` and `collector inspect` as real processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httputil as http
import pytest
from conftest import ROOT, free_port, launch_collector

pytestmark = pytest.mark.slow

UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"


def pageviews(n: int, app: str = "app1") -> list[dict]:
    return [{"k": app, "t": "pageview", "u": f"https://e.edu/{i % 5}", "sn": 1} for i in range(n)]


def send(base_url: str, n: int, app: str = "app1", ip: str = "100.64.0.1") -> None:
    status, body = http.post(base_url + "/c", pageviews(n, app), {"User-Agent": UA, "X-Forwarded-For": ip})
    assert status == 204, body


def test_embedded_redis_starts_persists_and_stops_with_serve(tmp_path, test_geo_db):
    data_dir = tmp_path / "data"
    args = ["--data-dir", str(data_dir), "--geo-db", ",".join(test_geo_db), "--flush-interval", "0.2"]
    first = launch_collector(tmp_path / "first.log", args)
    assert "embedded redis-server" in first.log()
    assert "collector listening on http://127.0.0.1:" in first.log()
    socket_path = data_dir / "redis" / "redis.sock"
    assert socket_path.exists()
    redis_pid = int(first.log().split("started (pid ", 1)[1].split(")", 1)[0])
    send(first.base_url, 12)
    first.stop_cleanly()
    # the embedded server went away with the collector, and its AOF stayed on disk
    time.sleep(0.2)
    assert subprocess.run(["kill", "-0", str(redis_pid)], capture_output=True).returncode != 0
    assert (data_dir / "redis" / "appendonlydir").exists() or (data_dir / "redis" / "appendonly.aof").exists()

    second = launch_collector(tmp_path / "second.log", args)
    send(second.base_url, 3)
    second.wait_for(lambda: second.stats("app1")["totals"]["pv"] == 15)
    second.stop_cleanly()


def test_sigterm_flushes_what_is_pending(collector_factory):
    # A flush interval far longer than the test: only the shutdown flush can write.
    collector = collector_factory(flush_interval=600)
    for _ in range(5):
        send(collector.base_url, 20)
    assert collector.stats("app1")["totals"]["pv"] == 0
    started = time.monotonic()
    collector.stop_cleanly(signal.SIGTERM)
    assert time.monotonic() - started < 10

    reader = collector_factory()
    assert reader.stats("app1")["totals"]["pv"] == 100


def test_two_workers_share_the_port_and_add_up_exactly(redis_url, test_geo_db, tmp_path):
    port = free_port()
    args = ["--redis-url", redis_url, "--geo-db", ",".join(test_geo_db), "--workers", "2",
            "--flush-interval", "0.2", "--trusted-proxies", "127.0.0.1/32"]
    collector = launch_collector(tmp_path / "workers.log", args, port=port)

    def listening() -> set[str]:
        return {line.split("[")[1].split("]")[0] for line in collector.log().splitlines() if "listening on" in line}

    try:
        # launch_collector returns once one worker answers; on a loaded machine the other
        # may still be starting (CI, 2026-12-02: every hit reached the first one first).
        collector.wait_for(lambda: len(listening()) == 2)  # both workers bound the one port
        # many short connections so the kernel spreads them over both workers
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: send(collector.base_url, 10, ip=f"100.64.7.{i % 250}"), range(200)))
        collector.wait_for(lambda: collector.stats("app1")["totals"]["pv"] == 2000)
    finally:
        collector.stop_cleanly()
    assert collector.log().count("stopped") >= 2


def test_bad_settings_name_the_variable(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "collector", "serve", "--port", "1"],
        env={"COLLECTOR_FLUSH_INTERVAL": "soon", "PATH": "/usr/bin:/bin"},
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "COLLECTOR_FLUSH_INTERVAL" in result.stderr


def inspect(*args, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "collector", "inspect", *args],
        cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_inspect_prints_region_and_device(test_geo_db, test_networks):
    hangzhou = next(n for n in test_networks if n[3] == "330100")
    ip = hangzhou[0].split("/")[0]
    out = json.loads(inspect("--ip", ip, "--ua", UA, "--geo-db", test_geo_db[0]))
    assert out["region"]["province_name"] == "浙江省" and out["region"]["city"] == "330100"
    assert (out["device_class"], out["bot"]) == ("pc", False)


def test_inspect_jsonl_checks_a_database_in_bulk(test_geo_db, test_networks):
    lines = [json.dumps({"ip": n[0].split("/")[0], "ua": UA}) for n in test_networks[:5]]
    lines.append("not json")
    out = [json.loads(line) for line in inspect("--jsonl", "--geo-db", test_geo_db[0], stdin="\n".join(lines)).splitlines()]
    assert len(out) == 6
    assert [o["region"]["country"] for o in out[:5]] == [n[1] for n in test_networks[:5]]
    assert "error" in out[5]


def test_embedded_redis_dies_with_a_killed_collector(tmp_path, test_geo_db):
    args = ["--data-dir", str(tmp_path / "data"), "--geo-db", ",".join(test_geo_db)]
    first = launch_collector(tmp_path / "first.log", args)
    redis_pid = int(first.log().split("started (pid ", 1)[1].split(")", 1)[0])
    first.stop(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while subprocess.run(["kill", "-0", str(redis_pid)], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "embedded redis-server outlived its collector"
        time.sleep(0.1)
    # and a restart on the same data dir works
    second = launch_collector(tmp_path / "second.log", args)
    second.stop_cleanly()
