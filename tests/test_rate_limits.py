"""Rate limits (hit/ratelimit.py) and the UV inflation guard (hit/uvguard.py), over real
HTTP against the collector and real Redis.

conftest turns both off for every other test; here each test turns on what it tests,
mostly with small limits on a frozen clock (FakeClock: tokens refill only when the test
says), so that nothing depends on how fast the machine is. Many client addresses come
through X-Forwarded-For from loopback, a trusted proxy.
"""

from __future__ import annotations

import time

import httputil as http
import orjson
import pytest
from conftest import FakeClock

from collector.hit.ratelimit import TokenBuckets
from collector.hit.uvguard import UvGuard
from collector.settings import Settings
from collector.web.appkeys import FLUSHER

DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
# Mid-minute, so that a test's hits all fall in one minute.
NOW = (int(time.time()) // 60) * 60 + 20.0
OFF = {"rate_client": 0.0, "rate_address": 0.0, "rate_app": 0.0, "uv_guard_per_minute": 0}


def pv(app="app1", **extra):
    return {"k": app, "t": "pageview", "u": "https://www.example.edu/course/1", **extra}


def sender(ip, ua=DESKTOP):
    return {"User-Agent": ua, "X-Forwarded-For": ip}


async def hit(client, ip, ua=DESKTOP, **event):
    resp = await client.get("/c", params=pv(**event), headers=sender(ip, ua))
    await resp.read()
    return resp


async def post(client, events, ip, ua=DESKTOP):
    resp = await client.post("/c", data=orjson.dumps(events), headers=sender(ip, ua))
    await resp.read()
    return resp


async def totals(client, app="app1"):
    assert await client.server.app[FLUSHER].flush()
    resp = await client.get("/api/stats", params={"app": app})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["totals"]


async def collector_counters(client):
    resp = await client.get("/api/collector")
    assert resp.status == 200
    return await resp.json()


# ---- rate limits ------------------------------------------------------------------------


async def test_a_flooding_client_is_refused_429_while_another_is_counted_exactly(collector_client):
    clock = FakeClock(NOW)
    client = await collector_client(clock=clock, **{**OFF, "rate_client": 5.0, "rate_client_burst": 20})
    statuses = []
    for i in range(200):
        statuses.append((await hit(client, "203.0.113.9", DESKTOP + " flooder")).status)
        if i % 10 == 0:  # a pupil elsewhere, at the same time: 20 page views, all counted
            assert (await hit(client, "198.51.100.7")).status == 204
    assert statuses.count(204) == 20 and statuses.count(429) == 180
    assert (await totals(client))["pv"] == 20 + 20
    assert (await totals(client, "(unknown)"))["rejected"] == {"rate_limited_client": 180}
    assert (await collector_counters(client))["rate_limited"] == {"rate_limited_client": 180}


async def test_a_429_says_when_to_come_back_and_then_counts_again(collector_client):
    clock = FakeClock(NOW)
    client = await collector_client(clock=clock, **{**OFF, "rate_client": 0.5, "rate_client_burst": 1})
    assert (await hit(client, "203.0.113.9")).status == 204
    refused = await hit(client, "203.0.113.9")
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "2"
    assert (await refused.json())["error"] == "rate_limited_client"
    image = await client.get("/c", params={**pv(), "img": "1"}, headers=sender("203.0.113.9"))
    assert image.status == 429, "an image beacon gets no GIF: its onerror keeps the event for later"
    clock.advance(2)
    assert (await hit(client, "203.0.113.9")).status == 204
    assert (await totals(client))["pv"] == 2


async def test_a_batch_counts_whole_even_past_the_burst_then_waits(collector_client):
    """A request goes ahead while its client has a token, and is never cut in half."""
    clock = FakeClock(NOW)
    client = await collector_client(clock=clock, **{**OFF, "rate_client": 10.0, "rate_client_burst": 20})
    assert (await post(client, [pv()] * 50, "203.0.113.9")).status == 204
    refused = await post(client, [pv()] * 50, "203.0.113.9")
    assert refused.status == 429 and refused.headers["Retry-After"] == "5"  # 30 tokens owed, 10 a second
    clock.advance(3.2)  # a token again: the next batch goes ahead
    assert (await post(client, [pv()] * 50, "203.0.113.9")).status == 204
    assert (await totals(client))["pv"] == 100


async def test_varying_the_user_agent_meets_the_address_limit(collector_client):
    clock = FakeClock(NOW)
    client = await collector_client(clock=clock, **{**OFF, "rate_client": 5.0, "rate_client_burst": 10,
                                                    "rate_address": 50.0, "rate_address_burst": 100})
    statuses = [(await hit(client, "203.0.113.9", f"{DESKTOP} v/{i}")).status for i in range(150)]
    assert statuses.count(204) == 100 and statuses.count(429) == 50
    assert (await hit(client, "198.51.100.7")).status == 204, "another address is not limited"
    assert (await totals(client))["pv"] == 101
    assert (await totals(client, "(unknown)"))["rejected"] == {"rate_limited_address": 50}


async def test_a_school_behind_one_address_is_not_limited_by_the_defaults(collector_client):
    """The shipped defaults: 300 pupils on one school address, three page views each in
    a few seconds — and a lab of 40 identical machines (one User-Agent) as busy."""
    defaults = Settings()
    limits = {name: getattr(defaults, name) for name in (
        "rate_client", "rate_client_burst", "rate_address", "rate_address_burst", "rate_app", "rate_app_burst")}
    assert all(limits.values()), "the defaults limit"
    clock = FakeClock(NOW)
    client = await collector_client(clock=clock, **limits)
    for _ in range(3):
        for pupil in range(300):
            assert (await hit(client, "202.120.1.1", f"{DESKTOP} pupil/{pupil}")).status == 204
        assert (await post(client, [pv()] * 40, "202.120.1.1")).status == 204  # the lab
        clock.advance(2)
    assert (await totals(client))["pv"] == 3 * (300 + 40)
    assert (await collector_counters(client))["rate_limited"] == {}


async def test_an_app_over_its_rate_is_refused_whole_and_counted_under_it(collector_client):
    clock = FakeClock(NOW)
    client = await collector_client(clock=clock, **{**OFF, "rate_app": 10.0, "rate_app_burst": 30})
    # From many addresses: only the app's limit applies.
    statuses = [(await hit(client, f"10.0.{i // 200}.{i % 200 + 1}")).status for i in range(40)]
    assert statuses.count(204) == 30 and statuses.count(429) == 10
    assert (await hit(client, "10.9.9.9", app="app2")).status == 204, "another app is not limited"
    refused = await post(client, [pv()] * 5, "10.9.9.10")
    assert refused.status == 429 and (await refused.json())["error"] == "rate_limited_app"
    out = await totals(client)
    assert out["pv"] == 30 and out["rejected"] == {"rate_limited_app": 15}
    assert (await collector_counters(client))["rate_limited"] == {"rate_limited_app": 15}


def test_the_shipped_defaults_refuse_a_flood_from_one_client_in_a_real_process(collector_factory):
    """`collector serve` with its default limits (conftest turns them off: here they are
    given back): one client sending 100-event batches as fast as it can is refused."""
    defaults = Settings()
    collector = collector_factory(rate_client=defaults.rate_client, rate_client_burst=defaults.rate_client_burst,
                                  rate_address=defaults.rate_address, rate_app=defaults.rate_app)
    batch = orjson.dumps([pv(app="flood")] * 100)
    started = time.monotonic()
    statuses = [http.request("POST", collector.base_url + "/c", batch, {"User-Agent": DESKTOP})[0]
                for _ in range(60)]
    elapsed = time.monotonic() - started
    accepted = statuses.count(204)
    # The burst's 10 batches, one more on the last tokens, then one per 100 tokens refilled.
    most = 11 + int(elapsed * defaults.rate_client / 100) + 1
    assert statuses.count(429) == 60 - accepted and 10 <= accepted <= most, (statuses, elapsed)
    status, body = http.get_json(collector.base_url + "/api/collector")
    assert body["rate_limited"]["rate_limited_client"] == 60 - accepted
    collector.wait_for(lambda: collector.stats("flood")["totals"]["pv"] == accepted * 100)


def test_token_buckets_spend_a_batch_into_debt():
    clock = FakeClock(0.0)
    buckets = TokenBuckets(rate_per_second=10, burst=20, clock=clock)
    assert buckets.take("a", cost=50) == 0  # a token was there: the whole batch goes
    assert buckets.take("a") == pytest.approx(3.1)  # 30 owed, then one to take
    clock.advance(3.1)
    assert buckets.take("a") == 0


def test_token_buckets_stay_bounded_and_keep_a_flooder_s_debt_through_a_sweep():
    clock = FakeClock(0.0)
    buckets = TokenBuckets(rate_per_second=1, burst=5, clock=clock, max_clients=100)
    assert buckets.take("flooder", cost=50) == 0
    for i in range(99):
        buckets.take(f"pupil-{i}")
    clock.advance(2)  # the pupils' buckets are full again; the flooder still owes 43
    buckets.take("newcomer")  # the table is full: the sweep forgets the full buckets only
    assert len(buckets) == 2 and buckets.take("flooder") > 40
    for i in range(200):  # all busy at once: forgotten wholesale, memory stays bounded
        buckets.take(f"spray-{i}", cost=5)
    assert len(buckets) <= 100


def test_token_buckets_forget_full_buckets_long_before_their_bound():
    """A million distinct visitors, a page view each: their buckets are full again within
    1 / rate seconds, so the table keeps about a sweep's worth of them, not its bound's."""
    clock = FakeClock(0.0)
    buckets = TokenBuckets(rate_per_second=50, burst=1000, clock=clock, max_clients=50_000)
    assert buckets.take("flooder", cost=5000) == 0  # owes 4,000 tokens: 80 s of refill
    for i in range(20_000):  # 1,000 new clients a second, for 20 s
        buckets.take(f"visitor-{i}")
        clock.advance(0.001)
    assert len(buckets) <= 2048
    assert buckets.take("flooder") > 50  # every sweep kept its debt


# ---- the UV guard -----------------------------------------------------------------------


def hll_count_of(counted: int, distinct: int) -> bool:
    """Whether a HyperLogLog count fits `distinct` elements. At a few dozen, Redis counts
    empty registers (linear counting): two elements sharing one of its 16,384 registers
    count once (for 46 elements that happens in ~6 % of runs, the salts being random),
    and nothing makes it count more."""
    return distinct - 2 <= counted <= distinct


@pytest.mark.parametrize("vary", ["ua", "vid", "uid"])
async def test_one_address_cannot_inflate_uv_beyond_the_guard(collector_client, vary):
    threshold = 25
    client = await collector_client(clock=FakeClock(NOW), **{**OFF, "uv_guard_per_minute": threshold})
    for i in range(120):
        ua = f"{DESKTOP} x/{i}" if vary == "ua" else DESKTOP
        extra = {vary: f"id-{i}"} if vary != "ua" else {}
        assert (await hit(client, "203.0.113.9", ua, **extra)).status == 204
    for i in range(20):  # another address, at the same time: 20 real people, all counted
        assert (await hit(client, "198.51.100.7", f"{DESKTOP} y/{i}", vid=f"v-{i}", uid=f"u-{i}")).status == 204
    out = await totals(client)
    assert out["pv"] == 140, "suspect hits still count as page views"
    kind = {"ua": "visitor", "vid": "vid", "uid": "uid"}[vary]
    assert out["flagged"] == {f"suspect_{kind}": 120 - threshold}
    if vary == "ua":
        assert hll_count_of(out["uv"], threshold + 1 + 20)  # the rest count as one suspect visitor
    elif vary == "vid":
        assert hll_count_of(out["uv_first_party"], threshold + 20) and hll_count_of(out["uv"], 1 + 20)
    else:
        assert hll_count_of(out["users"]["logged_in"], threshold + 20)
        assert out["users"]["pv_logged_in"] == threshold + 20
    assert (await collector_counters(client))["uv_suspect"] == {kind: 120 - threshold, "unjudged": 0}


async def test_the_guard_forgets_an_address_the_next_minute(collector_client):
    clock = FakeClock(NOW)
    client = await collector_client(clock=clock, **{**OFF, "uv_guard_per_minute": 5})
    for i in range(8):
        await hit(client, "203.0.113.9", vid=f"a-{i}")
    clock.advance(60)
    for i in range(8):
        await hit(client, "203.0.113.9", vid=f"b-{i}")
    resp = await client.get("/api/collector")
    assert (await resp.json())["uv_suspect"]["vid"] == 3 + 3


def test_the_guard_keeps_its_memory_bounded():
    guard = UvGuard(threshold=10, max_identities=100)
    guard.at(1)
    verdicts = [guard.admits("vid", f"10.0.0.{i % 50}", f"id-{i}") for i in range(1000)]
    assert len(guard) == 100 and guard.unjudged == 900 and all(verdicts)
    guard.at(2)
    assert len(guard) == 0


def test_a_visitor_of_the_last_minute_is_judged_again_in_a_new_one():
    """UvGuard.suspects answers a hit whose identities are the last hit's without judging
    them again; a new minute forgets that too, so the visitor takes its place among the
    minute's identities (here the one a threshold of 1 allows) before another's."""
    guard = UvGuard(threshold=1)
    visitor, other = b"visitor-key", b"other-key"
    guard.at(1)
    assert guard.suspects("10.0.0.1", visitor, "v1", None) == ()
    assert guard.suspects("10.0.0.1", visitor, "v1", None) == ()
    guard.at(2)
    assert guard.suspects("10.0.0.1", visitor, "v1", None) == ()
    assert guard.suspects("10.0.0.1", other, "v1", None) == ("visitor",)
    assert guard.suspects("10.0.0.1", visitor, "v2", None) == ("vid",)
    assert guard.suspects("10.0.0.2", visitor, "v1", None) == ()
