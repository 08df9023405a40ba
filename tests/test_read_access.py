"""Who may read: the read API is closed on the network by default (issue 13 item 4).

Real Redis, the real app: a collector whose settings listen on 0.0.0.0 answers 401 to a
request without a credential; the api_token and admin tokens read every platform; a
platform's read token reads (and uploads the catalogue of) only its own platform.
"""

from __future__ import annotations

import logging

import orjson
import pytest

from collector.registry.application import parse_application
from collector.registry.model import TransitionError
from collector.registry.store import RegistryStore
from collector.store import keys
from collector.web.appkeys import REDIS
from collector.web.stats_routes import loopback_only

NETWORK = {"host": "0.0.0.0"}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def approved_platform(redis, platform_id: str) -> RegistryStore:
    store = RegistryStore(redis)
    application = parse_application({
        "id": platform_id, "name": f"平台 {platform_id}", "type": "resource", "org": "某教育局", "region": "330000",
        "domains": [f"www.{platform_id}.cn"], "contact": {"name": "张三", "email": "zs@example.cn"},
    })
    await store.apply(application, "test")
    await store.act(platform_id, "approve", "test")
    return store


@pytest.fixture
async def registry(collector_client):
    """A collector listening on the network, two approved platforms with read tokens, an admin token."""
    client = await collector_client(**NETWORK)
    redis = client.server.app[REDIS]
    for app in ("alpha", "beta"):
        await redis.sadd(keys.APPS, app)
    store = await approved_platform(redis, "alpha")
    await approved_platform(redis, "beta")
    tokens = {
        "alpha": (await store.issue_read_token("alpha", "test")).read_token,
        "beta": (await store.issue_read_token("beta", "test")).read_token,
        "admin": await store.create_admin_token("lead", "test"),
    }
    return client, store, tokens


def test_loopback_hosts():
    assert all(loopback_only(h) for h in ("127.0.0.1", "::1", "[::1]", "localhost", "LOCALHOST"))
    assert not any(loopback_only(h) for h in ("0.0.0.0", "::", "", "10.0.0.5", "127.0.0.2.example"))


async def test_closed_on_the_network_without_a_credential(collector_client, caplog):
    caplog.set_level(logging.WARNING)
    client = await collector_client(**NETWORK)
    assert "read API closed" in caplog.text  # the startup warning: nothing can read
    for path in ("/api/stats?app=alpha", "/api/apps", "/api/collector"):
        resp = await client.get(path)
        assert resp.status == 401, path
        assert resp.headers["WWW-Authenticate"] == "Bearer"
        assert "credential" in (await resp.json())["error"]
    assert (await client.put("/api/catalogue?app=alpha", data=b'{"total": 1}')).status == 401
    assert (await client.get("/api/stats?app=alpha", headers=bearer("guess"))).status == 403
    assert (await client.get("/healthz")).status == 200  # not the read API


async def test_open_on_loopback_unless_proxied_or_a_token_is_set(collector_client):
    client = await collector_client(host="127.0.0.1")
    assert (await client.get("/api/apps")).status == 200
    assert (await client.get("/api/stats?app=alpha")).status == 200
    # Through a reverse proxy on the same host the request is not this machine's user's.
    assert (await client.get("/api/apps", headers={"X-Forwarded-For": "203.0.113.9"})).status == 401
    closed = await collector_client(host="localhost", api_token="s3cret")
    assert (await closed.get("/api/apps")).status == 401


async def test_api_token_reads_everything(collector_client):
    client = await collector_client(api_token="s3cret", **NETWORK)
    assert (await client.get("/api/stats?app=alpha", headers=bearer("s3cret"))).status == 200
    assert (await client.get("/api/collector", headers=bearer("s3cret"))).status == 200
    assert (await client.get("/api/stats?app=alpha", headers=bearer("s3cret!"))).status == 403


async def test_admin_token_reads_every_platform(registry):
    client, _, tokens = registry
    admin = bearer(tokens["admin"])
    assert (await (await client.get("/api/apps", headers=admin)).json())["apps"] == ["alpha", "beta"]
    for app in ("alpha", "beta"):
        assert (await client.get(f"/api/stats?app={app}", headers=admin)).status == 200
    assert (await client.put("/api/catalogue?app=beta", data=b'{"total": 3}', headers=admin)).status == 200
    assert (await client.get("/api/collector", headers=admin)).status == 200


async def test_platform_read_token_reads_only_its_own(registry):
    client, store, tokens = registry
    alpha = bearer(tokens["alpha"])
    assert (await (await client.get("/api/apps", headers=alpha)).json())["apps"] == ["alpha"]
    resp = await client.get("/api/stats?app=alpha&breakdown=page", headers=alpha)
    assert resp.status == 200 and (await resp.json())["app"] == "alpha"
    resp = await client.get("/api/stats?app=beta", headers=alpha)
    assert resp.status == 403 and "alpha" in (await resp.json())["error"]
    assert (await client.get("/api/collector", headers=alpha)).status == 403  # the process, not a platform
    # The catalogue: its own, never another's.
    assert (await client.put("/api/catalogue?app=alpha", data=b'{"total": 3}', headers=alpha)).status == 200
    assert (await client.put("/api/catalogue?app=beta", data=b'{"total": 3}', headers=alpha)).status == 403
    assert await client.server.app[REDIS].hget(keys.catalogue("beta"), "total") is None


async def test_a_reissued_or_revoked_read_token_stops_working(registry):
    client, store, tokens = registry
    new = (await store.issue_read_token("alpha", "test")).read_token
    assert new.startswith("ebr_") and new != tokens["alpha"]
    assert (await client.get("/api/stats?app=alpha", headers=bearer(tokens["alpha"]))).status == 403
    assert (await client.get("/api/stats?app=alpha", headers=bearer(new))).status == 200
    await store.act("alpha", "revoke", "test")
    assert (await client.get("/api/stats?app=alpha", headers=bearer(new))).status == 403
    record = await store.get("alpha")
    assert new not in orjson.dumps(record.as_dict()).decode() and "read_token_sha256" not in record.public_dict()


async def test_read_token_only_for_a_keyed_platform(registry):
    _, store, _ = registry
    await store.apply(parse_application({
        "id": "gamma", "name": "平台 gamma", "type": "resource", "org": "某教育局", "region": "330000",
        "domains": ["www.gamma.cn"], "contact": {"name": "张三", "email": "zs@example.cn"},
    }), "test")
    with pytest.raises(TransitionError):
        await store.issue_read_token("gamma", "test")  # still only applied


async def test_admin_api_issues_a_read_token(registry):
    client, _, tokens = registry
    resp = await client.post("/api/admin/platforms/beta/read-token", headers=bearer(tokens["admin"]))
    body = await resp.json()
    assert resp.status == 200 and body["issued_read_token"].startswith("ebr_")
    assert "read_token_sha256" not in body
    assert (await client.get("/api/stats?app=beta", headers=bearer(body["issued_read_token"]))).status == 200
    assert (await client.get("/api/stats?app=beta", headers=bearer(tokens["beta"]))).status == 403  # replaced
