"""Rollups across minute/hour/day/month boundaries with an injected clock, and the flush."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
from conftest import FakeClock

from collector.store.buckets import Calendar
from collector.store.flusher import CALL_ARGS, encode_calls
from collector.store.rollup import SlotWrites
from collector.web.appkeys import FLUSHER

SHANGHAI = ZoneInfo("Asia/Shanghai")
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).timestamp()


async def hit(client, ip: str, n: int = 1):
    events = [{"k": "app1", "t": "pageview", "u": "https://e.edu/"}] * n
    resp = await client.post("/c", data=orjson.dumps(events), headers={"User-Agent": UA, "X-Forwarded-For": ip})
    assert resp.status == 204


async def series(client, granularity, start, end):
    resp = await client.get("/api/stats", params={"app": "app1", "granularity": granularity, "from": start, "to": end})
    body = await resp.json()
    return {row["bucket"]: (row["pv"], row["uv"]) for row in body["series"] if row["pv"]}, body["totals"]


async def test_hits_land_in_the_right_minute_hour_day_and_month(collector_client):
    # Fixed dates lie in the future: Redis applies absolute expiries by its own clock.
    clock = FakeClock(at("2027-01-31T23:59:30"))
    client = await collector_client(clock=clock)
    await hit(client, "100.64.0.1", 2)  # Jan 31, 23:59
    clock.advance(45)  # 00:00:15 on Feb 1: new minute, hour, day and month
    await hit(client, "100.64.0.1", 3)
    await hit(client, "100.64.0.2", 1)
    clock.advance(3600)  # 01:00:15 on Feb 1
    await hit(client, "100.64.0.3", 4)
    await client.server.app[FLUSHER].flush()

    minutes, _ = await series(client, "minute", "2027-01-31T23:58", "2027-02-01T01:01")
    assert minutes == {"2027-01-31T23:59": (2, 1), "2027-02-01T00:00": (4, 2), "2027-02-01T01:00": (4, 1)}
    hours, _ = await series(client, "hour", "2027-01-31T23:00", "2027-02-01T01:00")
    assert hours == {"2027-01-31T23:00": (2, 1), "2027-02-01T00:00": (4, 2), "2027-02-01T01:00": (4, 1)}
    days, totals = await series(client, "day", "2027-01-31", "2027-02-01")
    assert days == {"2027-01-31": (2, 1), "2027-02-01": (8, 3)}
    # The union of the two days' HLLs. Day keys are salted per day, so the visitor who came
    # on both days counts once per day (4, not 3); a month's own HLL counts it once.
    assert totals["pv"] == 10 and totals["uv"] == 4
    months, _ = await series(client, "month", "2027-01", "2027-02")
    assert months == {"2027-01": (2, 1), "2027-02": (8, 3)}


async def test_month_uv_is_its_own_hyperloglog_not_a_sum_of_days(collector_client, rds):
    clock = FakeClock(at("2027-03-01T10:00:00"))
    client = await collector_client(clock=clock)
    for _day in range(10):  # the same 5 visitors come back on 10 days
        for v in range(5):
            await hit(client, f"100.64.3.{v}")
        clock.advance(86400)
    await client.server.app[FLUSHER].flush()
    days, _ = await series(client, "day", "2027-03-01", "2027-03-10")
    # A HyperLogLog of a few elements counts empty registers: two visitors sharing one of
    # its 16,384 (random salts: rarely) count once. It never counts more than there were.
    assert len(days) == 10 and all(4 <= uv <= 5 for _, uv in days.values())
    months, totals = await series(client, "month", "2027-03", "2027-03")
    assert months["2027-03"][0] == 50 and 4 <= months["2027-03"][1] <= 5  # not 50: the month's own HyperLogLog
    # the month's UV is read from its own key
    month_key = next(k for k in rds.scan_iter("eb:{app1|202703}:month:202703:u"))
    assert rds.pfcount(month_key) == months["2027-03"][1]


async def test_minute_and_hour_keys_expire_day_and_month_keys_stay(collector_client, rds):
    clock = FakeClock(at("2027-05-05T12:00:00"))
    client = await collector_client(clock=clock, ttl_minute=3600, ttl_hour=7200)
    await hit(client, "100.64.4.1")
    await client.server.app[FLUSHER].flush()
    ttls = {k.decode().split(":")[2]: rds.ttl(k) for k in rds.scan_iter("eb:{app1*:c")}
    # absolute expiry: the end of the bucket plus the TTL, measured from the real clock here
    assert ttls["day"] == -1 and ttls["month"] == -1
    assert ttls["minute"] != -1 and ttls["hour"] != -1


async def test_replaying_a_flush_changes_nothing(collector_client, rds):
    client = await collector_client()
    flusher = client.server.app[FLUSHER]
    await hit(client, "100.64.5.1", 7)
    flusher.seal()
    batch = flusher.pending[0]
    await flusher._apply(batch)
    # The answer "was lost": the same batch is sent again, and again.
    await flusher._apply(batch)
    await flusher._apply(batch)
    flusher.pending.clear()
    resp = await client.get("/api/stats", params={"app": "app1"})
    assert (await resp.json())["totals"]["pv"] == 7
    # a later flush from the same writer still applies
    await hit(client, "100.64.5.1", 2)
    await flusher.flush()
    resp = await client.get("/api/stats", params={"app": "app1"})
    assert (await resp.json())["totals"]["pv"] == 9


def sent_writes(calls) -> tuple[dict[str, dict], list[tuple[str, object]]]:
    """What a slot's script calls write, read back from their arguments as apply_flush.lua
    reads them: hash key -> field -> increment, and every (HLL key, element) sent."""
    fields: dict[str, dict] = {}
    members: list[tuple[str, object]] = []
    for _, args in calls:
        a = 2
        while a < len(args):
            assert args[a] == "b"
            n = args[a + 1]
            prefixes = [args[a + 2 + 2 * j] for j in range(n)]
            a += 2 + 2 * n
            groups = args[a]
            a += 1
            for _ in range(groups):
                kind, suffix, k = args[a : a + 3]
                a += 3
                for prefix in prefixes:
                    key = prefix + ":" + suffix
                    if kind == "h":
                        for j in range(k):
                            fields.setdefault(key, {})[args[a + 2 * j]] = args[a + 2 * j + 1]
                    else:
                        members += [(key, m) for m in args[a : a + k]]
                a += 2 * k if kind == "h" else k
    return fields, members


def test_large_slot_writes_split_into_ordered_calls():
    writes = SlotWrites("{a|20260101}")
    prefixes = (("eb:{a|20260101}:minute:202601010000", 100), ("eb:{a|20260101}:day:20260101", 0))
    elements = {f"v{i}".encode() for i in range(int(CALL_ARGS * 2.5))}
    increments = {f"f{i}": i + 1 for i in range(100)}
    writes.add(prefixes, {"h1": increments}, {"k1": elements})
    calls = encode_calls(writes, "w", seq=3)
    assert len(calls) >= 3
    sequences = [args[0] for _, args in calls]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    assert all(len(args) <= CALL_ARGS + 50 for _, args in calls)
    assert calls == encode_calls(writes, "w", seq=3)  # the same calls every time (a retry skips what landed)
    # every HLL member and every hash field is sent exactly once, for each bucket
    fields, members = sent_writes(calls)
    for prefix, _ in prefixes:
        assert fields[prefix + ":h1"] == increments
        sent = [m for key, m in members if key == prefix + ":k1"]
        assert len(sent) == len(elements) and set(sent) == elements


def test_calendar_buckets_follow_the_local_day():
    cal = Calendar("Asia/Shanghai")
    minute = int(at("2026-06-30T23:59:59") // 60)
    m, h, d, mo = cal.buckets_of_minute(minute)
    assert (m.id, h.id, d.id, mo.id) == ("202606302359", "2026063023", "20260630", "202606")
    assert mo.end == at("2026-07-01T00:00:00") and d.end == mo.end
    assert [b.label for b in cal.span("month", datetime(2026, 11, 3, tzinfo=SHANGHAI), datetime(2027, 1, 1, tzinfo=SHANGHAI))] == [
        "2026-11", "2026-12", "2027-01"
    ]
