"""`collector platforms …` and `collector admin-token …` as real processes against a real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

SUBCOMMANDS = ("apply", "list", "show", "approve", "reject", "activate", "suspend", "resume", "revoke", "rotate-key", "kit", "audit",
               "health", "anomalies", "read-token")


def cli(*args: str, redis_url: str | None = None, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("COLLECTOR_")}
    full_env.update(env or {})
    if redis_url:
        full_env["COLLECTOR_REDIS_URL"] = redis_url
    return subprocess.run([sys.executable, "-m", "collector", *args], cwd=ROOT, env=full_env, input=stdin,
                          capture_output=True, text=True, timeout=60)


def ok(*args: str, **kw) -> subprocess.CompletedProcess:
    done = cli(*args, **kw)
    assert done.returncode == 0, done.stderr
    return done


APPLY = ("platforms", "apply", "--id", "zjer", "--name", "浙江教育资源网", "--type", "资源平台", "--org", "浙江省教育技术中心",
         "--region", "330000", "--domains", "www.zjer.cn,*.zjer.cn", "--contact-name", "张三",
         "--contact-email", "zs@zjer.cn", "--deep", "--events", "pageview,media", "--dimensions", "subject")


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command):
    done = ok("platforms", command, "--help")
    assert "usage: collector platforms " + command in done.stdout and "--json" in done.stdout


@pytest.mark.parametrize("command", [("platforms",), ("admin-token",), ("admin-token", "create"), ("admin-token", "list")])
def test_groups_and_token_commands_have_help(command):
    assert "usage: collector " + " ".join(command) in ok(*command, "--help").stdout


def test_life_cycle_through_the_cli(redis_url):
    assert "已登记申请" in ok(*APPLY, redis_url=redis_url).stdout
    listed = ok("platforms", "list", redis_url=redis_url).stdout
    assert "编号 id" in listed and "浙江教育资源网" in listed and "已申请 applied" in listed

    approved = json.loads(ok("platforms", "approve", "zjer", "--note", "核验通过", "--json", "--actor", "cli:lead",
                             redis_url=redis_url).stdout)
    key, kit_token = approved["issued_app_key"], approved["issued_kit_token"]
    assert approved["state"] == "approved" and len(key) == 32 and kit_token.startswith("ebk_")

    shown_once = ok("platforms", "kit", "zjer", "--new-token", redis_url=redis_url,
                    env={"COLLECTOR_PUBLIC_URL": "https://c.example.cn"})
    assert "kit token" in shown_once.stderr and "https://c.example.cn/beacon.full.js" in shown_once.stdout
    refused = cli("platforms", "resume", "zjer", redis_url=redis_url)
    assert refused.returncode == 1 and "cannot resume platform 'zjer': it is approved" in refused.stderr

    for action, state in (("activate", "运行中 active"), ("suspend", "已暂停 suspended"), ("resume", "运行中 active")):
        assert state in ok("platforms", action, "zjer", redis_url=redis_url).stdout

    rotated = json.loads(ok("platforms", "rotate-key", "zjer", "--overlap", "60", "--json", redis_url=redis_url).stdout)
    assert rotated["app_key"] != key and rotated["retired_keys"][0]["key"] == key

    shown = ok("platforms", "show", "zjer", redis_url=redis_url).stdout
    assert rotated["app_key"] in shown and key in shown and "核验通过" not in shown  # the note is the last change's

    kit = ok("platforms", "kit", "zjer", "--public-url", "https://c.example.cn", redis_url=redis_url).stdout
    assert kit.startswith("# 浙江教育资源网 — 接入开发文档") and rotated["app_key"] in kit and "data-eb-subj" in kit
    html = ok("platforms", "kit", "zjer", "--format", "html", "--public-url", "https://c.example.cn", redis_url=redis_url).stdout
    assert html.startswith("<!doctype html>") and "https://c.example.cn/beacon.full.js" in html

    assert "revoked" in ok("platforms", "revoke", "zjer", redis_url=redis_url).stdout
    assert cli("platforms", "resume", "zjer", redis_url=redis_url).returncode == 1

    audit = json.loads(ok("platforms", "audit", "zjer", "--json", redis_url=redis_url).stdout)
    assert [e["action"] for e in audit][::-1] == ["apply", "approve", "kit-token", "activate", "suspend", "resume", "rotate-key", "revoke"]
    assert audit[-2]["actor"] == "cli:lead" and audit[-2]["detail"] == {"note": "核验通过"}
    assert "操作 action" in ok("platforms", "audit", redis_url=redis_url).stdout


def test_apply_from_json_and_bad_applications(redis_url, tmp_path):
    payload = {"id": "svc", "name": "教育政务服务平台", "type": "service", "org": "省教育厅", "region": "330100",
               "domains": ["gov.example.cn"], "contact": {"name": "李四", "phone": "+86 571 0000 0000"}, "environment": "test"}
    ok("platforms", "apply", "--from-json", "-", redis_url=redis_url, stdin=json.dumps(payload))
    assert json.loads(ok("platforms", "show", "svc", "--json", redis_url=redis_url).stdout)["environment"] == "test"
    approved = ok("platforms", "approve", "svc", redis_url=redis_url, env={"COLLECTOR_PUBLIC_URL": "https://c.example.cn"}).stdout
    key = json.loads(ok("platforms", "show", "svc", "--json", redis_url=redis_url).stdout)["app_key"]
    assert f"appKey: {key}" in approved and f"['appKey', '{key}']" in approved and "https://c.example.cn/beacon.js" in approved
    bad = cli("platforms", "apply", "--from-json", "-", "--region", "990000", "--id", "Bad", redis_url=redis_url, stdin="{}")
    assert bad.returncode == 2
    assert "region: no province 990000" in bad.stderr and "id: must match" in bad.stderr and "name: required" in bad.stderr
    assert cli("platforms", "show", "nope", redis_url=redis_url).returncode == 1


def test_admin_token_is_printed_once_and_listed_by_name(redis_url, rds):
    created = json.loads(ok("admin-token", "create", "--name", "lead", "--json", redis_url=redis_url).stdout)
    assert created["token"].startswith("eba_")
    assert created["token"].encode() not in b"".join(rds.dump(k) or b"" for k in rds.keys("*"))
    listed = ok("admin-token", "list", redis_url=redis_url).stdout
    assert "lead" in listed and created["token"] not in listed


def test_without_redis_it_says_what_to_pass(tmp_path):
    done = cli("platforms", "list", "--data-dir", str(tmp_path / "nothing-running"))
    assert done.returncode == 1 and "--redis-url" in done.stderr


def test_read_token_through_the_cli(collector_factory, redis_url):
    """`platforms read-token ID` prints a token that reads that platform only, on a collector
    listening on every address (where the read API needs a credential)."""
    import httputil as http

    ok(*APPLY, redis_url=redis_url)
    assert cli("platforms", "read-token", "zjer", redis_url=redis_url).returncode == 1  # still only applied
    ok("platforms", "approve", "zjer", redis_url=redis_url)
    token = ok("platforms", "read-token", "zjer", redis_url=redis_url).stdout.splitlines()[-1]
    assert token.startswith("ebr_")
    again = json.loads(ok("platforms", "read-token", "zjer", "--json", redis_url=redis_url).stdout)["read_token"]
    collector = collector_factory(host="0.0.0.0")
    url = collector.base_url + "/api/stats"
    assert http.get_json(url, {"app": "zjer"})[0] == 401
    assert http.get_json(url, {"app": "zjer"}, {"Authorization": f"Bearer {token}"})[0] == 403  # reissued since
    assert http.get_json(url, {"app": "zjer"}, {"Authorization": f"Bearer {again}"})[0] == 200
    assert http.get_json(url, {"app": "other"}, {"Authorization": f"Bearer {again}"})[0] == 403
