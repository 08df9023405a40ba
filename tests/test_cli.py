"""The command line: every subcommand's --help, --version, and `collector stats` against a
real collector process."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from importlib import metadata

import httputil as http
import pytest
from conftest import ROOT, launch_collector

from collector.cli import build_parser, main

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"


def subcommands() -> list[str]:
    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(sub.choices)


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "collector", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=env)


def test_the_parser_has_the_documented_subcommands():
    assert subcommands() == ["admin-token", "groups", "inspect", "platforms", "report", "serve", "stats"]


@pytest.mark.parametrize("command", subcommands())
def test_every_subcommand_help_works(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert f"usage: collector {command}" in capsys.readouterr().out


def test_top_level_help_names_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert all(command in out for command in subcommands()) and "--version" in out


def test_serve_help_in_a_real_process_shows_every_setting():
    done = run_cli("serve", "--help")
    assert done.returncode == 0, done.stderr
    assert "--completed-percent" in done.stdout and "this %" in done.stdout


def test_version_comes_from_the_package_metadata():
    done = run_cli("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"collector {metadata.version('edu-beacon-collector')}"


def test_stats_takes_an_app_or_a_group_not_both(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["stats", "--app", "demo", "--group", "province:33"])
    assert exited.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_stats_says_when_no_collector_answers(capsys):
    from conftest import free_port

    assert main(["stats", "--app", "demo", "--url", f"http://127.0.0.1:{free_port()}"]) == 1
    assert "cannot reach the collector" in capsys.readouterr().err


@pytest.mark.slow
def test_stats_prints_the_read_api_as_tables_csv_and_json(tmp_path, redis_url, test_geo_db, test_networks):
    hangzhou, ningbo = test_networks[0], test_networks[1]
    collector = launch_collector(tmp_path / "c.log", ["--redis-url", redis_url, "--geo-db", test_geo_db[0],
                                                      "--flush-interval", "0.1", "--data-dir", str(tmp_path / "d"),
                                                      "--api-token", "s3cret"])
    auth = {"Authorization": "Bearer s3cret"}
    try:
        for network, pages in ((hangzhou, 2), (ningbo, 1)):
            events = [{"k": "demo", "t": "pageview", "u": f"https://e.edu/{n}", "sn": n + 1} for n in range(pages)]
            status, _ = http.post(collector.base_url + "/c", events,
                                  {"X-Forwarded-For": network.cidr.split("/")[0], "User-Agent": BROWSER})
            assert status == 204
        collector.wait_for(lambda: http.get_json(collector.base_url + "/api/stats", {"app": "demo"}, auth)[1]["totals"]["pv"] == 3)
        env = {"COLLECTOR_API_TOKEN": "s3cret", "PATH": "/usr/bin:/bin"}
        url = ["--url", collector.base_url]
        table = run_cli("stats", "--app", "demo", "--by", "prefecture", *url, env=env)
        csv = run_cli("stats", "--app", "demo", "--by", "province", "--format", "csv", *url, env=env)
        raw = run_cli("stats", "--app", "demo", "--by", "device", "--format", "json", *url, env=env)
        series = run_cli("stats", "--app", "demo", *url, env=env)
        refused = run_cli("stats", "--app", "demo", *url, "--token", "wrong", env=env)
        _, api = http.get_json(collector.base_url + "/api/stats", {"app": "demo", "breakdown": "device"}, auth)
    finally:
        collector.stop()
    assert table.returncode == 0, table.stderr
    assert "PV 3  UV 2  访问 visits 2  跳出率 bounce 50.0%" in table.stdout
    assert f"浙江省 {hangzhou.city_name}  CN/330000/{hangzhou.city}          2          1       66.7%" in table.stdout
    assert f"浙江省 {ningbo.city_name}  CN/330000/{ningbo.city}          1          1       33.3%" in table.stdout
    assert csv.stdout.splitlines() == ["地区 region,代码 code,PV 浏览量,UV 访客数,占比 share", "浙江省,CN/330000,3,2,100.0%"]
    assert json.loads(raw.stdout) == api
    assert "合计 total" in series.stdout and "150.0" in series.stdout  # PV per 100 visitors
    assert refused.returncode == 1 and "403" in refused.stderr  # a wrong token: 403 (none: 401)
