"""collector/web/openapi.json describes every endpoint, and the collector's real answers fit it.

Every operation of the description is called on a real app (real Redis, both HTTP layers
for hits); each answer's status must be documented for its operation, its content type
listed, and a JSON body must validate against the schema given there.
"""

from __future__ import annotations

import asyncio
import json
from importlib import metadata, resources

import jsonschema
import pytest
from openapi_spec_validator import validate as validate_openapi

from collector.web.app import create_app

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
TOKEN = "tok"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
METHODS = ("get", "put", "post", "delete", "options", "patch")


@pytest.fixture(scope="module")
def spec() -> dict:
    return json.loads(resources.files("collector.web").joinpath("openapi.json").read_text())


def test_the_description_is_valid_openapi_3_1(spec):
    validate_openapi(spec)
    assert spec["openapi"].startswith("3.1")
    assert spec["info"]["version"] == metadata.version("edu-beacon-collector")


def test_every_route_is_described_and_every_description_is_a_route(spec, make_settings):
    app = create_app(make_settings())
    routes = {(r.method.lower(), r.resource.canonical) for r in app.router.routes() if r.method != "HEAD"}
    described = {(m, path) for path, ops in spec["paths"].items() for m in ops if m in METHODS}
    assert routes == described


class Checker:
    """Validates answers against the description and remembers which operations it saw."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.seen: set[tuple[str, str]] = set()

    async def check(self, response, path: str, method: str) -> bytes:
        body = await response.read()
        operation = self.spec["paths"][path][method]
        documented = operation["responses"].get(str(response.status))
        assert documented, f"{method.upper()} {path} answered {response.status}, not documented: {body[:200]!r}"
        if "$ref" in documented:  # a shared answer: #/components/responses/NAME
            documented = self.spec["components"]["responses"][documented["$ref"].rsplit("/", 1)[1]]
        content = documented.get("content")
        if not content:
            assert not body, f"{method.upper()} {path} {response.status} has an undocumented body"
        else:
            media = response.headers.get("Content-Type", "").split(";")[0]
            assert media in content, f"{method.upper()} {path} {response.status}: {media} not in {list(content)}"
            if media == "application/json":
                schema = {"components": self.spec["components"], **content[media]["schema"]}
                jsonschema.Draft202012Validator(schema).validate(json.loads(body))
        self.seen.add((method, path))
        return body


def deep_batch(k: str) -> list[dict]:
    media = {"k": k, "t": "media", "rid": "v1", "rt": "video", "subj": "math", "stage": "junior", "src": "zjer",
             "ms": "m1", "dur": 100, "wt": 1000}
    return [
        {"k": k, "t": "pageview", "u": "https://e.edu/course", "sn": 2, "uid": "42", "etr": "home", "epos": 1},
        {"k": k, "t": "engagement", "et": 5000, "sd": 60},
        {"k": k, "t": "click", "n": "course-card", "tr": "home", "pos": 1},
        {"k": k, "t": "exposure", "n": "course-card", "tr": "home", "pos": 1},
        {**media, "n": "play", "pos": 0, "ws": 0},
        {**media, "n": "progress", "pos": 95, "ws": 95, "pb": 90},
        {"k": k, "t": "interaction", "n": "rate", "rid": "v1", "rt": "video", "subj": "math", "score": 5},
        {"k": k, "t": "interaction", "n": "share", "rid": "v1", "ch": "wechat"},
        {"k": k, "t": "custom", "n": "signup"},
    ]


async def test_real_answers_of_every_endpoint_fit_the_description(spec, collector_client, test_networks):
    client = await collector_client(api_token=TOKEN)
    checker = Checker(spec)
    ip = {"X-Forwarded-For": test_networks[0].cidr.split("/")[0], "User-Agent": BROWSER}
    hit = "/c?k=demo&t=pageview&sn=1&u=https://e.edu/&r=https://www.baidu.com/"

    assert (await checker.check(await client.get(hit, headers=ip), "/c", "get")) == b""
    await checker.check(await client.get(hit + "&img=1", headers=ip), "/c", "get")
    await checker.check(await client.get("/c?k=demo&t=nonsense", headers=ip), "/c", "get")
    for body in (json.dumps(deep_batch("demo")), "[1, {}]", "x" * 20000):
        await checker.check(await client.post("/c", data=body, headers={**ip, "Content-Type": "text/plain"}), "/c", "post")
    await checker.check(await client.options("/c"), "/c", "options")

    catalogue = "/api/catalogue?app=demo"
    await checker.check(await client.put(catalogue, data=b'{"total": 10, "subject": {"math": 4}}', headers=AUTH), "/api/catalogue", "put")
    await checker.check(await client.put(catalogue, data=b'{"total": -1}', headers=AUTH), "/api/catalogue", "put")
    await checker.check(await client.put(catalogue, data=b"{}"), "/api/catalogue", "put")

    everything = "region,device,browser,os,lang,page,page_code,referrer,bot,resource,rtype,subject,stage,source,target,track,item,channel"
    for _ in range(100):  # the flush runs every 50 ms
        answer = await client.get(f"/api/stats?app=demo&breakdown={everything}", headers=AUTH)
        stats = json.loads(await checker.check(answer, "/api/stats", "get"))
        if stats["totals"]["media"]["views"] and stats["totals"]["pv"] == 3:
            break
        await asyncio.sleep(0.05)
    assert stats["breakdowns"]["resource"] and stats["breakdowns"]["region"]["city"] and stats["breakdowns"]["item"]
    for bad in ("/api/stats?app=demo&granularity=week", "/api/stats?granularity=day"):
        await checker.check(await client.get(bad, headers=AUTH), "/api/stats", "get")
    answer = await client.get("/api/stats?app=demo&granularity=hour&from=2026-01-01&to=2026-01-02", headers=AUTH)
    await checker.check(answer, "/api/stats", "get")
    await checker.check(await client.get("/api/stats?app=demo"), "/api/stats", "get")
    await checker.check(await client.get("/api/stats?app=demo", headers={"Authorization": "Bearer wrong"}), "/api/stats", "get")
    await checker.check(await client.get("/api/stats?app=demo&breakdown=page&limit=0", headers=AUTH), "/api/stats", "get")

    for path in ("/api/apps", "/api/collector", "/metrics"):
        await checker.check(await client.get(path, headers=AUTH), path, "get")
        await checker.check(await client.get(path), path, "get")
        await checker.check(await client.get(path, headers={"Authorization": "Bearer wrong"}), path, "get")
    for path in ("/api/openapi.json", "/healthz", "/readyz", "/demo", "/beacon.js", "/beacon.debug.js",
                 "/beacon.full.js", "/beacon.full.debug.js"):
        await checker.check(await client.get(path), path, "get")
    version = await frozen_version(client)
    await checker.check(await client.get(f"/beacon-{version}.js"), "/beacon-{version}.js", "get")
    await checker.check(await client.get(f"/beacon.full-{version}.js"), "/beacon.full-{version}.js", "get")
    etag = (await client.get("/beacon.js")).headers["ETag"]
    await checker.check(await client.get("/beacon.js", headers={"If-None-Match": etag}), "/beacon.js", "get")

    await check_dashboard(client, checker)
    await check_registry_and_health(client, checker)

    served = json.loads(await (await client.get("/api/openapi.json")).read())
    assert served == spec
    every_operation = {(m, p) for p, ops in spec["paths"].items() for m in ops if m in METHODS}
    assert checker.seen == every_operation, every_operation - checker.seen


async def check_dashboard(client, checker: Checker) -> None:
    """The dashboard's static files and /api/whoami (its sign-in asks it)."""
    await checker.check(await client.get("/dashboard", allow_redirects=False), "/dashboard", "get")
    files = "/dashboard/{file}"
    for path in ("/dashboard/", "/dashboard/dashboard.js", "/dashboard/dashboard.css", "/dashboard/map/china.json",
                 "/dashboard/map/33.json", "/dashboard/map/99.json"):  # the last: 404
        await checker.check(await client.get(path), files, "get")
    etag = (await client.get("/dashboard/")).headers["ETag"]
    await checker.check(await client.get("/dashboard/", headers={"If-None-Match": etag}), files, "get")
    for headers in (AUTH, {}, {"Authorization": "Bearer wrong"}):
        await checker.check(await client.get("/api/whoami", headers=headers), "/api/whoami", "get")


async def check_registry_and_health(client, checker: Checker) -> None:
    """The registry's open form and admin API, the kit page, and platform health (§8.4)."""
    from test_registry_model import application

    from collector.registry.anomaly import baseline, detect
    from collector.registry.store import RegistryStore
    from collector.web.appkeys import REDIS
    from collector.web.platform_health import build_job

    token = await RegistryStore(client.server.app[REDIS]).create_admin_token("openapi", "test")
    admin = {"Authorization": f"Bearer {token}"}
    apply = "/api/platforms/apply"
    await checker.check(await client.post(apply, data=json.dumps(application())), apply, "post")
    for body in (json.dumps(application()), "{not json", "x" * 9000):  # taken, not JSON, too large
        await checker.check(await client.post(apply, data=body), apply, "post")
    listing = "/api/admin/platforms"
    for headers, query in ((admin, ""), (admin, "?state=nonsense"), ({}, ""), ({"Authorization": "Bearer nope"}, "")):
        await checker.check(await client.get(listing + query, headers=headers), listing, "get")
    for path in ("/api/admin/platforms/zjer", "/api/admin/platforms/nope"):
        await checker.check(await client.get(path, headers=admin), "/api/admin/platforms/{id}", "get")
    act = "/api/admin/platforms/{id}/{action}"
    approved = json.loads(await checker.check(await client.post("/api/admin/platforms/zjer/approve", headers=admin), act, "post"))
    await checker.check(await client.post("/api/admin/platforms/zjer/approve", headers=admin), act, "post")  # 409
    reader = json.loads(await checker.check(await client.post("/api/admin/platforms/zjer/read-token", headers=admin), act, "post"))
    own = {"Authorization": f"Bearer {reader['issued_read_token']}"}
    await checker.check(await client.get("/api/stats?app=zjer", headers=own), "/api/stats", "get")
    await checker.check(await client.get("/api/stats?app=demo", headers=own), "/api/stats", "get")  # 403
    await checker.check(await client.get("/api/apps", headers=own), "/api/apps", "get")
    for headers in (own, admin):
        await checker.check(await client.get("/api/whoami", headers=headers), "/api/whoami", "get")
    await checker.check(await client.put("/api/catalogue?app=demo", data=b"{}", headers=own), "/api/catalogue", "put")  # 403
    await checker.check(await client.post("/api/admin/platforms/zjer/fly", headers=admin), act, "post")  # 404
    await checker.check(await client.post("/api/admin/platforms/zjer/suspend", data="[]", headers=admin), act, "post")  # 400
    kit = "/api/admin/platforms/{id}/kit"
    for query in ("", "?format=md", "?format=html", "?format=pdf"):
        await checker.check(await client.get(f"/api/admin/platforms/zjer/kit{query}", headers=admin), kit, "get")
    page = "/kit/{id}"
    for url in (f"/kit/zjer?token={approved['issued_kit_token']}", "/kit/zjer", "/kit/zjer?token=wrong"):
        await checker.check(await client.get(url), page, "get")
    for query in ("?platform=zjer&limit=5", "?limit=0"):
        await checker.check(await client.get(f"/api/admin/audit{query}", headers=admin), "/api/admin/audit", "get")
    refused = "/api/admin/refused-keys"
    shown = json.loads(await checker.check(await client.get(refused, headers=admin), refused, "get"))
    assert shown["registry"] == "open" and shown["keys"] == []
    await checker.check(await client.get(refused), refused, "get")

    await check_groups_and_reports(client, checker, admin, own)

    job = build_job(client.server.app)
    await job.run_round()  # zjer: pending
    await job.store.add_anomaly(detect("zjer", "2026113009", "pv", 0, baseline([100, 110, 90]), 4.0, 1.0), deliver=True)
    health = json.loads(await checker.check(await client.get("/api/admin/health", headers=admin), "/api/admin/health", "get"))
    assert [r["state"] for r in health["platforms"]] == ["pending"]
    await checker.check(await client.get("/api/admin/health"), "/api/admin/health", "get")
    one = "/api/admin/platforms/{id}/health"
    for path in ("/api/admin/platforms/zjer/health", "/api/admin/platforms/nope/health", "/api/admin/platforms/zjer/health?limit=x"):
        await checker.check(await client.get(path, headers=admin), one, "get")
    for query in ("", "?platform=zjer&limit=3", "?limit=0"):
        await checker.check(await client.get(f"/api/admin/anomalies{query}", headers=admin), "/api/admin/anomalies", "get")


async def check_groups_and_reports(client, checker: Checker, admin: dict, own: dict) -> None:
    """Groups (/api/groups, /api/stats?group=, named sets) and the report in every format."""
    sets = "/api/admin/groups/{name}"
    await checker.check(await client.put("/api/admin/groups/east", data='{"title": "东部", "platforms": ["zjer", "demo"]}',
                                         headers=admin), sets, "put")
    for body, headers in (("{", admin), ("x" * 600_000, admin), ("{}", {}), ("{}", {"Authorization": "Bearer nope"})):
        await checker.check(await client.put("/api/admin/groups/east", data=body, headers=headers), sets, "put")
    groups = json.loads(await checker.check(await client.get("/api/groups", headers=admin), "/api/groups", "get"))
    assert "set:east" in [g["id"] for g in groups["groups"]]
    for headers in (own, {}, {"Authorization": "Bearer nope"}):
        await checker.check(await client.get("/api/groups", headers=headers), "/api/groups", "get")
    for query, headers in (("group=set:east&breakdown=region,device", admin), ("group=set:east", own), ("group=nope", admin)):
        await checker.check(await client.get("/api/stats?" + query, headers=headers), "/api/stats", "get")
    for query, headers in (("group=set:east&month=2026-10", admin), ("app=zjer&format=md", own), ("app=zjer&format=html", own),
                           ("app=zjer&format=csv", own), ("app=zjer&format=pdf", own), ("group=set:east", own),
                           ("app=zjer&month=13", own), ("app=zjer", {})):
        await checker.check(await client.get("/api/report?" + query, headers=headers), "/api/report", "get")
    for name, headers in (("east", admin), ("east", admin), ("east", {}), ("east", {"Authorization": "Bearer nope"})):
        await checker.check(await client.delete(f"/api/admin/groups/{name}", headers=headers), sets, "delete")


async def frozen_version(client) -> str:
    """The release version the collector serves, from the beacon it announces."""
    from collector.settings import resolve_path
    from collector.web.beacon_routes import beacon_info

    return beacon_info(resolve_path("beacon_js/dist"))["version"]
