"""Platform health (§8.4): the state machine on a synthetic timeline in a real Redis, the
daily validation, the anomaly detector on a synthetic 14-day series, the signed webhook
against a local receiver, and the lease across two collector processes."""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta

import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from conftest import FakeClock
from test_registry_model import application

from collector.registry import webhook_sign
from collector.registry.anomaly import CRITICAL, DROP, SPIKE, baseline, detect, same_kind_history
from collector.registry.application import parse_application
from collector.registry.health import DEGRADED, HEALTHY, PENDING, RECEIVING, SILENT, Thresholds, validate
from collector.registry.health_job import HealthJob, HealthSettings
from collector.registry.health_store import DELIVERY_DELIVERED, DELIVERY_PENDING, HealthStore
from collector.registry.model import Platform, Scope
from collector.registry.store import RegistryStore
from collector.store import keys
from collector.store.buckets import Calendar
from collector.store.lease import Lease

CAL = Calendar("Asia/Shanghai")
# Monday 2026-11-30 10:15 in Shanghai.
MONDAY_1015 = datetime(2026, 11, 30, 10, 15, tzinfo=CAL.tz).timestamp()


@pytest.fixture
async def client(redis_url):
    c = aioredis.from_url(redis_url)
    yield c
    await c.aclose()


async def approved_platform(client, clock, **scope) -> str:
    registry = RegistryStore(client, clock)
    await registry.apply(parse_application(application(scope={"events": ["pageview", "engagement"], **scope})), "test")
    await registry.act("zjer", "approve", "test")
    return "zjer"


async def count(client, pid: str, at: float, granularities=("minute", "hour", "day"), **fields: int) -> None:
    """What the rollups would hold after hits at `at`: the counters of its buckets."""
    for g in granularities:
        key = keys.counters(pid, g, CAL.bucket_at(g, CAL.local(at)).id)
        for name, n in fields.items():
            await client.hincrby(key, name.replace("__", ":"), n)


def make_job(client, clock, **changes) -> HealthJob:
    settings = HealthSettings(interval=60, thresholds=Thresholds(silent_minutes=30, reject_percent=5.0),
                              sensitivity=4.0, baseline_days=14)
    send = changes.pop("send", None)
    for name, value in changes.items():
        settings = HealthSettings(**{**settings.__dict__, name: value})
    lease = Lease(client, keys.HEALTH_LEASE, 180)
    return HealthJob(RegistryStore(client, clock), HealthStore(client, CAL), lease, settings, clock, send)


# ---- health: a synthetic timeline ---------------------------------------------------------


async def test_health_moves_through_its_states_with_a_history(client):
    clock = FakeClock(MONDAY_1015)
    pid = await approved_platform(client, clock)
    job = make_job(client, clock)
    store = job.store

    await job.run_round()
    assert (await store.get(pid)).state == PENDING  # approved, no hit yet

    # Its usual Monday-to-Sunday traffic at 10:00 and 11:00, on the previous week.
    for day in range(1, 8):
        for hour in (0, 1):
            await count(client, pid, MONDAY_1015 - day * 86400 + hour * 3600, ("hour",), pv=500, engagements=400)
    await count(client, pid, clock(), pv=5)
    await job.run_round()
    record = await store.get(pid)
    assert record.state == RECEIVING and record.first_hit_at == clock()

    for _ in range(7):  # an hour and more of steady traffic, minute after minute
        clock.advance(600)
        await count(client, pid, clock(), pv=80, engagements=60)
        await job.run_round()
    assert (await store.get(pid)).state == HEALTHY

    # Rejections over 5 % of the events of the last two hours.
    await count(client, pid, clock(), rejected__invalid_value__u=200)
    clock.advance(60)
    await job.run_round()
    record = await store.get(pid)
    assert record.state == DEGRADED and [r.code for r in record.reasons] == ["rejections"]

    # Then the tag breaks: nothing for 30 minutes in an hour that usually has ~500 events.
    clock.advance(31 * 60)
    await job.run_round()
    record = await store.get(pid)
    assert record.state == SILENT and record.reasons[0].code == "silent"

    history = await store.history(pid)
    assert [(t["before"], t["after"]) for t in reversed(history)] == [
        ("", PENDING), (PENDING, RECEIVING), (RECEIVING, HEALTHY), (HEALTHY, DEGRADED), (DEGRADED, SILENT),
    ]
    assert history[0]["reasons"][0] == "silent"

    # Turning degraded, then silent, are alerts at once (listed with the anomalies, for the webhook).
    alerts = await store.anomalies()
    assert [(a["metric"], a["kind"], a["severity"]) for a in alerts] == [
        ("health", SILENT, CRITICAL), ("health", DEGRADED, "warning")]
    assert alerts[0]["id"] == f"{pid}:2026113011:health:silent" and "30 分钟没有命中" in alerts[0]["note"]
    assert alerts[0]["expected"] == record.reasons[0].figure and alerts[0]["delivery"]["state"] == "none"


async def test_a_quiet_hour_of_a_small_platform_is_not_silence(client):
    clock = FakeClock(MONDAY_1015)
    pid = await approved_platform(client, clock)
    for day in range(1, 8):  # about 6 events at this hour: 3 expected in 30 minutes
        await count(client, pid, MONDAY_1015 - day * 86400, ("hour",), pv=6)
    await count(client, pid, clock() - 7200, pv=3)
    job = make_job(client, clock)
    await job.run_round()
    assert (await job.store.get(pid)).state != SILENT


async def test_declared_but_missing_events_and_page_codes_degrade(client):
    clock = FakeClock(MONDAY_1015)
    pid = await approved_platform(client, clock, page_codes=True)
    job = make_job(client, clock)
    await count(client, pid, clock(), pv=100)
    await job.run_round()  # first hit now
    clock.advance(86400 + 60)
    await count(client, pid, clock(), pv=100)
    await client.hset(keys.dimension(pid, "hour", CAL.bucket_at("hour", CAL.local(clock())).id, "page_code"), "home", 50)
    await job.run_round()
    record = await job.store.get(pid)
    assert record.state == DEGRADED
    assert {r.code for r in record.reasons} == {"missing_events", "missing_page_codes"}
    assert "engagement" in record.reasons[0].en


async def test_foreign_origin_hits_degrade(client):
    clock = FakeClock(MONDAY_1015)
    pid = await approved_platform(client, clock)
    await count(client, pid, clock(), pv=100, flagged__foreign_origin=30)
    job = make_job(client, clock)
    await job.run_round()
    assert [r.code for r in (await job.store.get(pid)).reasons] == ["foreign_origin"]


async def test_suspended_platforms_leave_the_health_records(client):
    clock = FakeClock(MONDAY_1015)
    pid = await approved_platform(client, clock)
    job = make_job(client, clock)
    await job.run_round()
    assert await job.store.get(pid)
    await job.registry.act(pid, "revoke", "test")
    await job.run_round()
    assert await job.store.get(pid) is None and await job.store.history(pid)


# ---- scientific validation ----------------------------------------------------------------


def test_validation_gives_each_check_a_figure_and_a_verdict():
    platform = Platform("zjer", "n", "resource", "o", "330000", ("a.cn",),
                        scope=Scope(events=("pageview", "engagement", "media"), deep=True))
    good = validate(platform, "20261129", {"pv": 1000, "engagements": 900, "views": 100, "progress10": 80,
                                           "progress25": 60, "completed": 20, "bot_pv": 50}, uv=300)
    assert good["verdict"] == "pass"
    checks = {c["code"]: c for c in good["checks"]}
    assert checks["uv_le_pv"]["figure"] == 0.3 and checks["engagement_per_pv"]["figure"] == 0.9
    assert checks["bot_share"]["figure"] == round(50 / 1050, 4)
    assert checks["client_clock"] == {**checks["client_clock"], "figure": 0.0, "verdict": "pass"}
    assert checks["repeated_ids"] == {**checks["repeated_ids"], "figure": 0.0, "verdict": "pass"}

    bad = validate(platform, "20261129", {"pv": 100, "engagements": 900, "views": 10, "progress10": 50,
                                          "progress25": 60, "bot_pv": 500}, uv=400)
    assert bad["verdict"] == "warn"
    assert {c["code"] for c in bad["checks"] if c["verdict"] == "warn"} == {
        "uv_le_pv", "engagement_per_pv", "media_progress", "bot_share"}


@pytest.mark.parametrize("code, flag, at_limit", [
    ("client_clock", "flagged:client_clock", 100),  # 5 % of 2000 events
    ("repeated_ids", "flagged:repeated_id", 20),  # 1 %
])
def test_flagged_events_are_judged_as_a_share_of_the_days_events(code, flag, at_limit):
    platform = Platform("zjer", "n", "resource", "o", "330000", ("a.cn",), scope=Scope(events=("pageview",)))
    day = {"pv": 1000, "engagements": 900, "bot_hits": 50, "ev:click": 50}  # 2000 events, bots' too

    def check(counters):
        found = validate(platform, "20261129", counters, uv=300)
        return {c["code"]: c for c in found["checks"]}[code], found["verdict"]

    assert check({**day, flag: at_limit}) == ({**check(day)[0], "figure": at_limit / 2000}, "pass")
    over, verdict = check({**day, flag: at_limit + 1})
    assert (over["figure"], over["verdict"], verdict) == (round((at_limit + 1) / 2000, 4), "warn", "warn")
    assert over["note"]
    few, _ = check({"pv": 19, flag: 19})  # every event flagged, but too few to judge
    assert (few["figure"], few["verdict"]) == (1.0, "pass")
    assert check({})[0]["figure"] is None


async def test_the_previous_day_is_validated_once_into_the_record(client):
    clock = FakeClock(MONDAY_1015)
    pid = await approved_platform(client, clock)
    yesterday = CAL.bucket_at("day", CAL.local(clock() - 86400)).id
    await client.hset(keys.counters(pid, "day", yesterday), mapping={"pv": 10, "engagements": 8})
    await client.pfadd(keys.visitors(pid, "day", yesterday), *[f"v{i}" for i in range(40)])
    await count(client, pid, clock(), pv=1)
    job = make_job(client, clock)
    await job.run_round()
    assert (await job.store.get(pid)).validation is None  # it was not sending yesterday
    await job.store.save(_first_hit(pid, clock() - 2 * 86400), None)
    await job.run_round()
    validation = (await job.store.get(pid)).validation
    assert validation["day"] == yesterday and validation["verdict"] == "warn"  # 40 visitors, 10 page views


# ---- anomalies ----------------------------------------------------------------------------


def synthetic_series(days: int = 21, seed: int = 7) -> dict[datetime, int]:
    """Hourly PV of a school platform: a daily curve, weekends at 40 %, noisy."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 2, tzinfo=CAL.tz)  # a Monday
    series = {}
    for h in range(days * 24):
        at = start + timedelta(hours=h)
        curve = 200 + 800 * max(0.0, 1 - abs(at.hour - 14) / 8)
        mean = curve * (0.4 if at.weekday() >= 5 else 1.0)
        series[at] = max(0, round(rng.gauss(mean, 0.05 * mean + mean ** 0.5)))
    return series


def anomalies_of(series: dict[datetime, int], sensitivity: float = 4.0, judged_days: int = 7):
    found = []
    times = sorted(series)
    for at in times[-judged_days * 24:]:
        history = [((at - timedelta(days=d)).date(), series[at - timedelta(days=d)]) for d in range(1, 15)]
        base = baseline(same_kind_history(at.date(), history))
        anomaly = detect("p", at.strftime("%Y%m%d%H"), "pv", series[at], base, sensitivity, 0.0)
        if anomaly:
            found.append(anomaly)
    return found


def test_the_detector_finds_an_injected_drop_and_spike_and_nothing_else():
    series = synthetic_series()  # (seeds 1-40 over 14 judged days: no false alert either)
    assert anomalies_of(series) == []  # an ordinary fortnight, weekends included: no alert

    drop_at = datetime(2026, 11, 20, 11, tzinfo=CAL.tz)  # a Friday morning: the tag broke
    spike_at = datetime(2026, 11, 21, 15, tzinfo=CAL.tz)  # a Saturday afternoon: a campaign
    series[drop_at] = 0
    series[spike_at] = series[spike_at] * 3
    found = anomalies_of(series)
    assert [(a.hour, a.kind) for a in found] == [("2026112011", DROP), ("2026112115", SPIKE)]
    drop = found[0]
    assert drop.value < drop.low < drop.expected < drop.high and drop.severity == CRITICAL


def test_a_weekend_dip_is_judged_against_weekends():
    series = synthetic_series()
    saturday_noon = datetime(2026, 11, 21, 12, tzinfo=CAL.tz)
    weekday_history = [((saturday_noon - timedelta(days=d)).date(), series[saturday_noon - timedelta(days=d)])
                       for d in range(1, 15)]
    base = baseline(same_kind_history(saturday_noon.date(), weekday_history))
    assert base.days == 4  # the four weekend days of the fortnight
    assert detect("p", "h", "pv", series[saturday_noon], base, 4.0, 0.0) is None
    # Judged against all days it is less than half the median, a drop at sensitivity 3.
    mixed = baseline([v for _, v in weekday_history])
    assert series[saturday_noon] < mixed.median / 2
    assert detect("p", "h", "pv", series[saturday_noon], mixed, 3.0, 0.0).kind == DROP
    assert detect("p", "h", "pv", series[saturday_noon], base, 3.0, 0.0) is None


def test_sensitivity_and_a_flat_history():
    base = baseline([100] * 10)  # MAD 0: the floor (√100 + 10 % = 20) keeps 150 ordinary
    assert base.spread == 20.0
    assert detect("p", "h", "pv", 150, base, 4.0, 0.0) is None
    assert detect("p", "h", "pv", 190, base, 4.0, 0.0).kind == SPIKE
    assert detect("p", "h", "pv", 190, base, 5.0, 0.0) is None  # less sensitive
    assert detect("p", "h", "pv", 0, base, 4.0, 0.0).severity == CRITICAL
    assert baseline([5, 6]) is None  # too few days for a baseline


async def test_the_job_records_an_hour_anomaly_once(client):
    clock = FakeClock(MONDAY_1015)
    pid = await approved_platform(client, clock)
    monday_09 = MONDAY_1015 - 4500
    for day in range(1, 15):  # two weeks of about 1000 PV and 300 visitors at 09:00
        at = monday_09 - day * 86400
        await count(client, pid, at, ("hour",), pv=1000 + 7 * (day % 3))
        await client.pfadd(keys.visitors(pid, "hour", CAL.bucket_at("hour", CAL.local(at)).id), *[f"v{day}-{i}" for i in range(300)])
    await count(client, pid, monday_09, ("hour",), pv=90)  # this morning's 09:00: a drop
    job = make_job(client, clock)
    await job.store.save(_first_hit(pid, monday_09 - 20 * 86400), None)  # sending for three weeks
    await job.run_round()
    await job.run_round()  # the same hour again: nothing new
    found = [a for a in await job.store.anomalies() if a["metric"] != "health"]  # (it is degraded too: no engagement)
    assert sorted((a["metric"], a["kind"], a["hour"]) for a in found) == [("pv", DROP, "2026113009"), ("uv", DROP, "2026113009")]
    pv = next(a for a in found if a["metric"] == "pv")
    assert pv["value"] == 90 and pv["low"] > 90 and pv["delivery"]["state"] == "none"  # no webhook set


def _first_hit(pid, at):
    from collector.registry.health import HealthRecord

    return HealthRecord(platform=pid, state=HEALTHY, since=at, checked_at=at, first_hit_at=at)


# ---- the webhook ----------------------------------------------------------------------------


async def test_the_webhook_is_signed_and_retried_until_delivered(client, aiohttp_server):
    received = []

    async def receiver(request: web.Request) -> web.Response:
        body = await request.read()
        received.append((dict(request.headers), body))
        if len(received) <= 2:
            return web.Response(status=503)  # down twice
        ok = webhook_sign.verify("s3cret", request.headers["X-EB-Timestamp"], request.headers["X-EB-Signature"],
                                 body, now=int(request.headers["X-EB-Timestamp"]))
        return web.Response(status=204 if ok else 401)

    server_app = web.Application()
    server_app.router.add_post("/hook", receiver)
    server = await aiohttp_server(server_app)

    from collector.web.platform_health import WebhookSender

    sender = WebhookSender()
    clock = FakeClock(MONDAY_1015)
    await approved_platform(client, clock)
    job = make_job(client, clock, webhook_url=str(server.make_url("/hook")), webhook_secret="s3cret",
                   backoff_base=30.0, send=sender)
    anomaly = detect("zjer", "2026113009", "pv", 0, baseline([1000, 1010, 990]), 4.0, clock())
    assert await job.store.add_anomaly(anomaly, deliver=True)
    assert not await job.store.add_anomaly(anomaly, deliver=True)  # once per platform, hour, metric

    try:
        assert await job.deliver_due(clock()) == 0
        state = (await job.store.anomalies())[0]["delivery"]
        assert state["state"] == DELIVERY_PENDING and state["attempts"] == 1 and state["next_at"] == clock() + 30
        assert await job.deliver_due(clock() + 29) == 0 and len(received) == 1  # not due yet
        clock.advance(30)
        assert await job.deliver_due(clock()) == 0
        assert (await job.store.anomalies())[0]["delivery"]["next_at"] == clock() + 60  # backoff doubles
        clock.advance(60)
        assert await job.deliver_due(clock()) == 1
    finally:
        await sender.close()
    state = (await job.store.anomalies())[0]["delivery"]
    assert state["state"] == DELIVERY_DELIVERED and state["attempts"] == 3 and len(received) == 3
    headers, body = received[-1]
    assert orjson.loads(body)["anomaly"]["kind"] == DROP and orjson.loads(body)["event"] == "anomaly"
    assert headers["X-EB-Signature"] == webhook_sign.signature("s3cret", int(headers["X-EB-Timestamp"]), body)
    assert not webhook_sign.verify("wrong", headers["X-EB-Timestamp"], headers["X-EB-Signature"], body, clock())
    assert not webhook_sign.verify("s3cret", headers["X-EB-Timestamp"], headers["X-EB-Signature"], body + b" ", clock())
    assert await job.deliver_due(clock() + 10_000) == 0 and len(received) == 3  # delivered: never again


def test_signature_freshness():
    body = b'{"a":1}'
    sig = webhook_sign.signature("k", 1000, body)
    assert webhook_sign.verify("k", "1000", sig, body, now=1200)
    assert not webhook_sign.verify("k", "1000", sig, body, now=1000 + 301)  # too old: a replay
    assert not webhook_sign.verify("k", "abc", sig, body, now=1000)
    assert [webhook_sign.backoff(n, 10) for n in (1, 2, 3)] == [10, 20, 40] and webhook_sign.backoff(30) == 3600


# ---- the lease ----------------------------------------------------------------------------


async def test_the_lease_has_one_holder_until_released(client):
    a, b = Lease(client, keys.HEALTH_LEASE, 5), Lease(client, keys.HEALTH_LEASE, 5)
    assert await a.hold() and not await b.hold()
    assert await a.hold()  # renewed
    assert not await b.release() and await a.holder() == a.token  # b cannot release a's lease
    assert await a.release() and await b.hold()


async def test_an_abandoned_lease_expires(client):
    a, b = Lease(client, keys.HEALTH_LEASE, 0.2), Lease(client, keys.HEALTH_LEASE, 0.2)
    assert await a.hold() and not await b.hold()
    time.sleep(0.3)
    assert await b.hold() and not await a.hold()


def test_two_collectors_run_the_job_once(collector_factory, rds, tmp_path):
    collectors = [collector_factory(health_interval="0.3", data_dir=tmp_path / f"d{i}") for i in range(2)]

    def runs() -> dict[str, int]:
        return {k.decode()[5:]: int(v) for k, v in rds.hgetall(keys.HEALTH_JOB).items() if k.startswith(b"runs:")}

    collectors[0].wait_for(lambda: sum(runs().values()) >= 8, timeout=20)
    assert len(runs()) == 1, runs()  # both loop; one process did every round
    token = next(iter(runs()))
    holder = next(c for c in collectors if f"lease {token}" in c.log())
    other = collectors[1 - collectors.index(holder)]
    assert f"lease {token}" not in other.log()
    holder.stop()  # releases the lease: the other takes over at its next round
    other.wait_for(lambda: len(runs()) == 2, timeout=10)


# ---- the CLI ------------------------------------------------------------------------------


async def test_the_cli_shows_health_history_validation_and_anomalies(client, redis_url):
    from test_registry_cli import ok

    clock = FakeClock(MONDAY_1015)
    pid = await approved_platform(client, clock, page_codes=True)
    job = make_job(client, clock)
    await job.run_round()
    await count(client, pid, clock(), pv=5)
    clock.advance(60)
    await job.run_round()
    clock.advance(86400)  # a day later, still no engagement events: degraded, and yesterday validated
    await count(client, pid, clock(), pv=5)
    await job.run_round()
    await job.store.add_anomaly(detect(pid, "2026113009", "pv", 0, baseline([1000, 990, 1010]), 4.0, clock()), deliver=False)

    listing = ok("platforms", "health", redis_url=redis_url).stdout
    assert "zjer" in listing and "异常 degraded" in listing and "declared event types not seen in 24 hours: engagement" in listing
    shown = ok("platforms", "health", pid, redis_url=redis_url).stdout
    assert "科学校验 validation" in shown and "uv_le_pv" in shown and "pending" in shown and "receiving" in shown
    record = orjson.loads(ok("platforms", "health", pid, "--json", redis_url=redis_url).stdout)
    assert record["health"]["state"] == DEGRADED
    assert [t["after"] for t in record["history"]] == [DEGRADED, RECEIVING, PENDING]
    anomalies = ok("platforms", "anomalies", redis_url=redis_url).stdout
    assert "drop critical" in anomalies and "2026113009" in anomalies
    assert orjson.loads(ok("platforms", "anomalies", "--platform", "other", "--json", redis_url=redis_url).stdout) == []


def test_the_documented_verifier_accepts_our_signature():
    """docs/platforms.md's receiver code, run as written, against what the sender signs."""
    from conftest import ROOT

    doc = (ROOT / "docs" / "platforms.md").read_text()
    code = next(block for block in doc.split("```python\n")[1:] if "def verify(" in block).split("```", 1)[0]
    namespace: dict = {}
    exec(code, namespace)
    body = b'{"event":"anomaly"}'
    headers = webhook_sign.signed_headers("s3cret", int(time.time()), body)
    stamp, sig = headers["X-EB-Timestamp"], headers["X-EB-Signature"]
    assert namespace["verify"]("s3cret", stamp, sig, body)
    assert not namespace["verify"]("other", stamp, sig, body)
    assert not namespace["verify"]("s3cret", str(int(stamp) - 3600), webhook_sign.signature("s3cret", int(stamp) - 3600, body), body)


def test_a_running_collector_reports_a_platform_receiving_its_hits(collector_factory, redis_url):
    """End to end: hits through /c with the registry enforced, the rollups, a health round,
    the admin API. The demo platform is a test platform: the hit path counts it under
    `demo~test` (Platform.series), and that is where the health job reads it."""
    import asyncio as aio

    import httputil as http

    async def setup() -> str:
        c = aioredis.from_url(redis_url)
        store = RegistryStore(c)
        await store.register_demo("test")
        token = await store.create_admin_token("ops", "test")
        await c.aclose()
        return token

    token = aio.run(setup())
    collector = collector_factory(health_interval="0.3", registry="enforce")
    admin = {"Authorization": f"Bearer {token}"}

    def demo_state() -> str | None:
        status, body = http.get_json(collector.base_url + "/api/admin/platforms/demo/health", headers=admin)
        assert status == 200, body
        return (body["health"] or {}).get("state")

    collector.wait_for(lambda: demo_state() == PENDING)
    status, _, _ = http.request("GET", collector.base_url + "/c?k=demo&t=pageview&sn=1&u=http://localhost/",
                                headers={"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0 Safari/537.36"})
    assert status == 204
    collector.wait_for(lambda: demo_state() == RECEIVING)
    status, body = http.get_json(collector.base_url + "/api/admin/health", headers=admin)
    assert [(r["platform"], r["state"]) for r in body["platforms"]] == [("demo", RECEIVING)] and body["last_run"]


def test_every_health_key_shares_one_cluster_slot():
    from redis.crc import key_slot

    names = [keys.HEALTH_RECORDS, keys.health_history("zjer"), keys.HEALTH_ANOMALIES, keys.HEALTH_ANOMALY_TIMES,
             keys.HEALTH_OUTBOX, keys.HEALTH_JOB, keys.HEALTH_LEASE]
    assert len({key_slot(name.encode()) for name in names}) == 1


async def test_a_redis_outage_pauses_the_rounds_with_one_log_line(caplog):
    from conftest import free_port

    from collector.web.platform_health import quiet_outages

    gone = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    tick = quiet_outages(make_job(gone, FakeClock(MONDAY_1015)))
    try:
        assert [await tick() for _ in range(3)] == [60, 60, 60]
    finally:
        await gone.aclose()
    warnings = [r for r in caplog.records if "rounds paused" in r.getMessage()]
    assert len(warnings) == 1 and not any(r.exc_info for r in caplog.records)


async def test_the_days_flags_reach_the_validation_record(client):
    """Flag counters as the hit path writes them (tests/test_ingest.py), read by the job."""
    clock = FakeClock(MONDAY_1015)
    pid = await approved_platform(client, clock)
    yesterday = CAL.bucket_at("day", CAL.local(clock() - 86400)).id
    await client.hset(keys.counters(pid, "day", yesterday), mapping={
        "pv": 150, "engagements": 50, "flagged:client_clock": 30, "flagged:repeated_id": 1})
    await client.pfadd(keys.visitors(pid, "day", yesterday), *[f"v{i}" for i in range(40)])
    await count(client, pid, clock(), pv=1)
    job = make_job(client, clock)
    await job.store.save(_first_hit(pid, clock() - 2 * 86400), None)
    await job.run_round()
    validation = (await job.store.get(pid)).validation
    checks = {c["code"]: (c["figure"], c["verdict"]) for c in validation["checks"]}
    assert checks["client_clock"] == (0.15, "warn") and checks["repeated_ids"] == (0.005, "pass")
    assert validation["verdict"] == "warn"
