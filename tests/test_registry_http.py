"""The registry over HTTP, against real collector processes and a real Redis."""

from __future__ import annotations

import json

import httputil as http
import pytest
from conftest import ROOT, launch_collector
from test_registry_cli import cli, ok
from test_registry_model import application

pytestmark = pytest.mark.slow

ADMIN_ROUTES = (("GET", "/api/admin/platforms"), ("GET", "/api/admin/platforms/zjer"),
                ("POST", "/api/admin/platforms/zjer/approve"), ("GET", "/api/admin/platforms/zjer/kit"),
                ("GET", "/api/admin/audit"), ("GET", "/api/admin/health"), ("GET", "/api/admin/platforms/zjer/health"),
                ("GET", "/api/admin/anomalies"))


def call(collector, method: str, path: str, payload=None, token: str | None = None, ip: str = "100.64.0.1", raw: bytes | None = None):
    headers = {"X-Forwarded-For": ip, "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = raw if raw is not None else (json.dumps(payload).encode() if payload is not None else None)
    status, answer_headers, answer = http.request(method, collector.base_url + path, body, headers)
    try:
        parsed = json.loads(answer) if answer else None
    except ValueError:
        parsed = answer.decode()
    return status, answer_headers, parsed


def admin_token(redis_url: str, name: str = "lead") -> str:
    return json.loads(ok("admin-token", "create", "--name", name, "--json", redis_url=redis_url).stdout)["token"]


def test_admin_api_is_never_open(collector_factory, redis_url):
    collector = collector_factory()
    for method, path in ADMIN_ROUTES:  # no admin token exists yet: still closed
        assert call(collector, method, path)[0] == 401
        assert call(collector, method, path, token="guess")[0] == 403
    admin_token(redis_url)
    for method, path in ADMIN_ROUTES:
        status, headers, body = call(collector, method, path)
        assert status == 401 and headers["WWW-Authenticate"] == "Bearer" and "admin token required" in body["error"]
        assert call(collector, method, path, token="eba_wrong")[0] == 403


def test_life_cycle_through_the_admin_api(collector_factory, redis_url):
    collector = collector_factory(public_url="https://collector.example.edu.cn")
    token = admin_token(redis_url)
    status, _, body = call(collector, "POST", "/api/platforms/apply", application(), ip="100.64.0.7")
    assert status == 201 and body["state"] == "applied"
    status, _, listed = call(collector, "GET", "/api/admin/platforms?state=applied", token=token)
    assert [p["id"] for p in listed["platforms"]] == ["zjer"] and "kit_token_sha256" not in listed["platforms"][0]

    status, _, approved = call(collector, "POST", "/api/admin/platforms/zjer/approve", {"note": "核验通过"}, token=token)
    assert status == 200 and approved["state"] == "approved" and approved["issued_kit_token"].startswith("ebk_")
    key = approved["issued_app_key"]
    assert approved["kit"]["app_key"] == key and "https://collector.example.edu.cn/beacon.js" in approved["kit"]["snippets"][0]["code"]
    status, _, refused = call(collector, "POST", "/api/admin/platforms/zjer/resume", token=token)
    assert status == 409 and "cannot resume" in refused["error"]
    assert call(collector, "POST", "/api/admin/platforms/zjer/fly", token=token)[0] == 404
    assert call(collector, "POST", "/api/admin/platforms/nope/approve", token=token)[0] == 404
    assert call(collector, "POST", "/api/admin/platforms/zjer/suspend", raw=b"{not json", token=token)[0] == 400

    for action, state in (("activate", "active"), ("suspend", "suspended"), ("resume", "active")):
        assert call(collector, "POST", f"/api/admin/platforms/zjer/{action}", token=token)[2]["state"] == state
    status, _, rotated = call(collector, "POST", "/api/admin/platforms/zjer/rotate-key", {"overlap": 3600}, token=token)
    assert status == 200 and rotated["issued_app_key"] != key and rotated["retired_keys"][0]["key"] == key
    assert call(collector, "POST", "/api/admin/platforms/zjer/rotate-key", {"overlap": -1}, token=token)[0] == 400

    status, _, kit = call(collector, "GET", "/api/admin/platforms/zjer/kit", token=token)
    assert status == 200 and kit["app_key"] == rotated["issued_app_key"] and kit["host"] == "collector.example.edu.cn"
    assert call(collector, "POST", "/api/admin/platforms/zjer/revoke", token=token)[2]["state"] == "revoked"

    status, _, audit = call(collector, "GET", "/api/admin/audit?platform=zjer", token=token)
    entries = audit["entries"][::-1]
    assert [e["action"] for e in entries] == ["apply", "approve", "activate", "suspend", "resume", "rotate-key", "revoke"]
    assert entries[0]["actor"] == "apply:100.64.0.7" and entries[1]["actor"] == "admin:lead"
    assert entries[1]["detail"] == {"note": "核验通过"}
    # the CLI reads the same log
    assert "rotate-key" in ok("platforms", "audit", "zjer", redis_url=redis_url).stdout


def test_applications_are_checked_field_by_field(collector_factory):
    collector = collector_factory(apply_per_hour=100)
    status, _, body = call(collector, "POST", "/api/platforms/apply", application(id="Bad", region="990000", domains=["*.cn"], x=1))
    assert status == 400 and {p["field"] for p in body["problems"]} == {"id", "region", "domains", "x"}
    assert call(collector, "POST", "/api/platforms/apply", raw=b"{nope")[0] == 400
    assert call(collector, "POST", "/api/platforms/apply", raw=b"[]")[0] == 400
    assert call(collector, "POST", "/api/platforms/apply", application(name="x" * 9000))[0] == 413
    assert call(collector, "POST", "/api/platforms/apply", application())[0] == 201
    assert call(collector, "POST", "/api/platforms/apply", application())[0] == 409
    # Chunked bodies (no Content-Length): read whole, and bounded all the same.
    data = json.dumps(application(id="chunked")).encode()
    url, headers = collector.base_url + "/api/platforms/apply", {"Content-Type": "application/json"}
    assert http.request("POST", url, iter([data[:7], data[7:]]), headers)[0] == 201
    assert http.request("POST", url, iter([b" " * 5000, b" " * 5000]), headers)[0] == 413


def test_applications_are_rate_limited_per_client_ip(collector_factory):
    collector = collector_factory(apply_per_hour=2)
    assert call(collector, "POST", "/api/platforms/apply", application(id="a1"), ip="100.64.0.1")[0] == 201
    assert call(collector, "POST", "/api/platforms/apply", {"bad": 1}, ip="100.64.0.1")[0] == 400  # costs a token too
    status, headers, body = call(collector, "POST", "/api/platforms/apply", application(id="a2"), ip="100.64.0.1")
    assert status == 429 and 1700 <= int(headers["Retry-After"]) <= 1800 and "too many" in body["error"]
    assert call(collector, "POST", "/api/platforms/apply", application(id="a2"), ip="100.64.0.2")[0] == 201


def test_pending_applications_are_capped(collector_factory, redis_url):
    collector = collector_factory(max_pending_applications=2)
    token = admin_token(redis_url)
    for i in range(2):
        assert call(collector, "POST", "/api/platforms/apply", application(id=f"p{i}"), ip=f"100.64.1.{i}")[0] == 201
    status, headers, body = call(collector, "POST", "/api/platforms/apply", application(id="p2"), ip="100.64.1.9")
    assert status == 429 and headers["Retry-After"] == "3600" and "waiting for review" in body["error"]
    assert call(collector, "POST", "/api/admin/platforms/p0/reject", token=token)[0] == 200
    assert call(collector, "POST", "/api/platforms/apply", application(id="p2"), ip="100.64.1.9")[0] == 201


def test_kit_page_for_its_owner_or_an_admin(collector_factory, redis_url):
    collector = collector_factory(public_url="https://collector.example.edu.cn")
    token = admin_token(redis_url)
    call(collector, "POST", "/api/platforms/apply", application(scope={"deep": True, "events": ["pageview", "click"]}))
    approved = call(collector, "POST", "/api/admin/platforms/zjer/approve", token=token)[2]
    kit_token, key = approved["issued_kit_token"], approved["issued_app_key"]

    status, headers, page = call(collector, "GET", f"/kit/zjer?token={kit_token}")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and headers["Cache-Control"] == "no-store"
    assert page.index("接入开发文档") < page.index("Integration kit") and key in page
    assert "https://collector.example.edu.cn/beacon.full.js" in page and "data-eb-click" in page
    manifest = json.loads((ROOT / "beacon_js" / "dist" / "manifest.json").read_text())
    assert manifest["full"]["sri"] in page
    status, headers, md = call(collector, "GET", "/kit/zjer?format=md", token=kit_token)
    assert status == 200 and md.startswith("# 浙江教育资源网") and headers["Content-Type"].startswith("text/markdown")
    assert call(collector, "GET", "/kit/zjer", token=token)[0] == 200  # an admin may read any kit
    assert call(collector, "GET", "/kit/zjer")[0] == 401
    assert call(collector, "GET", "/kit/zjer?token=ebk_wrong")[0] == 403
    assert call(collector, "GET", f"/kit/other?token={kit_token}")[0] == 403  # says nothing of whether it exists
    assert call(collector, "GET", "/kit/other", token=token)[0] == 404

    # A new kit token retires the old one at once.
    reissued = call(collector, "POST", "/api/admin/platforms/zjer/kit-token", token=token)[2]["issued_kit_token"]
    assert call(collector, "GET", f"/kit/zjer?token={kit_token}")[0] == 403
    assert call(collector, "GET", f"/kit/zjer?token={reissued}")[0] == 200


def test_first_embedded_start_registers_the_demo_platform(tmp_path, test_geo_db):
    data_dir = tmp_path / "data"
    args = ["--data-dir", str(data_dir), "--geo-db", ",".join(test_geo_db), "--flush-interval", "0.2"]
    first = launch_collector(tmp_path / "first.log", args, env={"COLLECTOR_REGISTRY": "enforce"})
    first.wait_for(lambda: "registered the demo platform" in first.log())
    assert "eb_queue.push({action: 'set', arguments: ['appKey', 'demo']});" in first.log()
    # The CLI finds the running collector's embedded Redis through the data dir.
    listed = json.loads(ok("platforms", "list", "--json", "--data-dir", str(data_dir)).stdout)
    assert [(p["id"], p["app_key"], p["state"], p["environment"]) for p in listed] == [("demo", "demo", "active", "test")]
    # The README's "Try it" keeps working.
    status, _ = http.post(first.base_url + "/c", [{"k": "demo", "t": "pageview", "u": "https://www.zjer.cn/", "sn": 1}],
                          {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0.0.0 Safari/537.36"})
    assert status == 204
    first.wait_for(lambda: first.stats("demo~test")["totals"]["pv"] == 1)  # a test platform: counted apart
    assert first.stats("demo~test")["totals"]["flagged"] == {"foreign_origin": 1}  # its pages are on localhost
    status, answer = http.post(first.base_url + "/c", [{"k": "not-registered", "t": "pageview", "u": "http://localhost/"}])
    assert status == 400 and answer["errors"][0]["reason"] == "unknown_app"
    first.stop_cleanly()

    second = launch_collector(tmp_path / "second.log", args)
    assert "registered the demo platform" not in second.log()
    second.stop_cleanly()
    assert cli("platforms", "list", "--data-dir", str(data_dir)).returncode == 1  # nothing running any more
