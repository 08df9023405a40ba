"""The registry enforced on the hit path (registry=enforce), on both HTTP layers, real Redis.

Platforms are registered through the real RegistryStore; the collector loads them before
its first hit and follows every change within its poll (about a second).
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from test_registry_model import application

from collector.registry.application import parse_application
from collector.registry.store import RegistryStore
from collector.store import redis_client

DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
BROWSER = {"User-Agent": DESKTOP, "Content-Type": "text/plain"}
PAGE = "https://www.zjer.cn/course/1"
STANDARD_PLACEHOLDER = "申请应用时颁发的 appKey"  # the standard's appendix A, verbatim


async def register(redis_url: str, pid: str, *actions: str, **fields) -> tuple[RegistryStore, str]:
    """A platform applied, approved (its app key is returned), then moved by `actions`."""
    store = RegistryStore(redis_client.connect(redis_url))
    await store.apply(parse_application(application(id=pid, **fields)), "test")
    key = (await store.act(pid, "approve", "test")).app_key
    for action in actions:
        await store.act(pid, action, "test")
    return store, key


def pageview(key: str, url: str = PAGE, **extra) -> dict:
    return {"k": key, "t": "pageview", "sn": 1, "u": url, **extra}


async def send(client, events, **headers):
    answer = await client.post("/c", data=json.dumps(events), headers={**BROWSER, **headers})
    body = await answer.read()
    return answer.status, json.loads(body) if body else None


async def stats(client, app: str) -> dict:
    answer = await client.get("/api/stats", params={"app": app})
    assert answer.status == 200
    return (await answer.json())["totals"]


async def eventually(check, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


def reasons(body: dict) -> list[str]:
    return [e["reason"] for e in body["errors"]]


async def test_a_registered_key_counts_under_the_platform_id_and_any_other_key_by_reason_in_one_place(
    collector_client, redis_url, rds
):
    _, active = await register(redis_url, "zjer", "activate")
    _, staging = await register(redis_url, "staging", "activate", environment="test")
    _, suspended = await register(redis_url, "paused", "activate", "suspend")
    _, revoked = await register(redis_url, "gone", "revoke")
    store = RegistryStore(redis_client.connect(redis_url))
    await store.apply(parse_application(application(id="waiting")), "test")
    client = await collector_client(registry="enforce")

    assert await send(client, [pageview(active)]) == (204, None)
    assert await send(client, [pageview(staging)]) == (204, None)
    status, body = await send(client, [pageview(STANDARD_PLACEHOLDER), pageview("x" * 64), pageview(suspended),
                                       pageview(revoked), pageview(active)])
    assert status == 400 and body["accepted"] == 1
    assert reasons(body) == ["unknown_app", "unknown_app", "suspended_app", "revoked_app"]
    assert body["errors"][0]["detail"] == "the app key belongs to no registered platform"
    # A GET too; and a bad event with an unknown key is counted in the same place.
    answer = await client.get("/c", params={"k": "random-key", "t": "pageview", "u": PAGE}, headers=BROWSER)
    assert answer.status == 400 and reasons(await answer.json()) == ["unknown_app"]
    assert (await send(client, [{"k": "another-random", "t": "nonsense"}]))[0] == 400

    assert await eventually(lambda: _when(stats(client, "zjer"), lambda t: t["pv"] == 2))
    totals = await eventually(lambda: _when(stats(client, "(unregistered)"), lambda t: sum(t["rejected"].values()) == 6))
    assert totals["rejected"] == {"unknown_app": 3, "suspended_app": 1, "revoked_app": 1, "invalid_value:t": 1}
    assert totals["pv"] == 0
    assert (await stats(client, "staging~test"))["pv"] == 1  # test traffic apart
    assert (await stats(client, "staging"))["pv"] == 0
    # No per-key state: no Redis key and no app named after a refused key.
    names = [k.decode() for k in rds.scan_iter("*")]
    assert not [n for n in names if "random" in n or "appKey" in n or active in n]
    assert {m.decode() for m in rds.smembers("eb:apps")} == {"zjer", "staging~test", "(unregistered)"}
    # /api/apps: the registered platforms that may have counts, not the keys seen.
    assert (await (await client.get("/api/apps")).json())["apps"] == ["gone", "paused", "staging~test", "zjer"]


async def _when(reading, condition):
    found = await reading
    return found if condition(found) else None


@pytest.mark.parametrize("policy", ["reject", "flag"])
async def test_the_page_must_be_on_the_platforms_domains(collector_client, redis_url, policy):
    _, key = await register(redis_url, "zjer", "activate", foreign_origin=policy)
    client = await collector_client(registry="enforce")
    at_home = [
        {},  # no Origin, no Referer (a server, or privacy settings): the page URL decides
        {"Origin": "https://www.zjer.cn"},
        {"Origin": "https://res.zjer.cn:8443"},
        {"Referer": "https://a.b.zjer.cn/page?q=1"},
        {"Origin": "null", "Referer": "https://www.zjer.cn/"},  # a sandboxed frame: the Referer decides
    ]
    for headers in at_home:
        assert await send(client, [pageview(key)], **headers) == (204, None), headers
    abroad = [
        ({"Origin": "https://evil.example.com"}, PAGE),
        ({"Origin": "https://evilzjer.cn"}, PAGE),
        ({"Referer": "https://zjer.cn.evil.com/"}, PAGE),
        ({"Origin": "https://www.zjer.cn"}, "https://copycat.example.com/course/1"),  # u off the domains
        ({}, "https://copycat.example.com/"),
    ]
    for headers, url in abroad:
        status, body = await send(client, [pageview(key, url)], **headers)
        if policy == "reject":
            assert status == 400 and reasons(body) == ["foreign_origin"], (headers, url)
        else:
            assert (status, body) == (204, None), (headers, url)
    # An event without `u` (engagement) from a foreign Origin is judged by the Origin.
    status, _ = await send(client, [{"k": key, "t": "engagement", "et": 1000}], Origin="https://evil.example.com")
    assert status == (400 if policy == "reject" else 204)

    expected_pv = len(at_home) + (0 if policy == "reject" else len(abroad))
    counted_as = "rejected" if policy == "reject" else "flagged"
    # Both figures, not the page views alone: the refusals may land in a later flush than
    # the page views (a full suite's load once read 1 of 6).
    totals = await eventually(lambda: _when(stats(client, "zjer"), lambda t: t["pv"] == expected_pv
                                            and sum(t[counted_as].values()) >= len(abroad) + 1))
    assert totals, await stats(client, "zjer")
    if policy == "reject":
        assert totals["rejected"] == {"foreign_origin": len(abroad) + 1} and totals["flagged"] == {}
    else:
        assert totals["flagged"] == {"foreign_origin": len(abroad) + 1} and totals["rejected"] == {}


async def test_changes_reach_the_hit_path_within_seconds_and_rotation_keeps_one_series(collector_client, redis_url):
    store, key = await register(redis_url, "zjer", "activate")
    client = await collector_client(registry="enforce")
    assert (await send(client, [pageview(key)]))[0] == 204

    new_key = (await store.rotate_key("zjer", "test", overlap=3600)).app_key
    assert await eventually(lambda: _accepted(client, new_key))
    assert (await send(client, [pageview(key)]))[0] == 204  # the old key, within its overlap
    totals = await eventually(lambda: _when(stats(client, "zjer"), lambda t: t["pv"] >= 3))
    assert totals["pv"] == 3  # one series across the rotation (the probes above sent one)

    await store.act("zjer", "suspend", "test")
    assert await eventually(lambda: _refused(client, new_key, "suspended_app"))
    assert await _refused(client, key, "suspended_app")
    await store.act("zjer", "resume", "test")
    assert await eventually(lambda: _accepted(client, new_key))
    await store.act("zjer", "revoke", "test")
    assert await eventually(lambda: _refused(client, new_key, "revoked_app"))


async def _accepted(client, key: str) -> bool:
    return (await send(client, [pageview(key)]))[0] == 204


async def _refused(client, key: str, reason: str) -> bool:
    status, body = await send(client, [pageview(key)])
    return status == 400 and reasons(body) == [reason]


async def test_the_first_verified_hit_activates_an_approved_platform_once(collector_client, redis_url):
    store, key = await register(redis_url, "zjer")
    client = await collector_client(registry="enforce")
    assert (await send(client, [pageview(key, "https://elsewhere.example.com/")]))[0] == 400  # not verified
    await asyncio.sleep(1.5)
    assert (await store.get("zjer")).state == "approved"
    for _ in range(5):
        assert (await send(client, [pageview(key)]))[0] == 204
    assert await eventually(lambda: _state_is(store, "zjer", "active"))
    activations = [e for e in await store.audit(50, "zjer") if e["action"] == "activate"]
    assert [(e["actor"], e["before"], e["after"]) for e in activations] == [("collector:first-hit", "approved", "active")]


async def _state_is(store: RegistryStore, pid: str, state: str) -> bool:
    return (await store.get(pid)).state == state


async def test_hits_wait_with_503_until_the_registry_is_loaded(collector_client):
    """Redis unreachable since the start: the registry is unknown, so nothing is refused
    (nor counted) — 503 tells the beacon to keep the events and retry."""
    client = await collector_client(registry="enforce", redis_url="redis://127.0.0.1:1/0")
    answer = await client.post("/c", data=json.dumps([pageview("any")]), headers=BROWSER)
    assert answer.status == 503 and answer.headers["Retry-After"] == "5"
    assert (await answer.json())["error"] == "registry_loading"


async def test_open_registry_counts_any_key_under_itself(collector_client):
    client = await collector_client(registry="open")
    assert await send(client, [pageview(STANDARD_PLACEHOLDER)]) == (204, None)
    assert await eventually(lambda: _when(stats(client, STANDARD_PLACEHOLDER), lambda t: t["pv"] == 1))


async def test_a_rotated_out_key_stops_after_its_overlap(collector_client, redis_url):
    store, old_key = await register(redis_url, "zjer", "activate")
    await store.rotate_key("zjer", "test", overlap=2)
    client = await collector_client(registry="enforce")
    assert await _accepted(client, old_key)  # within the overlap
    await asyncio.sleep(2.2)
    assert await _refused(client, old_key, "expired_app_key")
    await store.act("zjer", "suspend", "test")  # any later change drops it from the index
    await store.act("zjer", "resume", "test")
    assert await eventually(lambda: _refused(client, old_key, "unknown_app"))
