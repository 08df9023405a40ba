"""/c end to end in-process: the real app, real Redis, the real flusher, the read API."""

from __future__ import annotations

import orjson
import pytest

from collector.hit.remarks import RecentIds
from collector.web.appkeys import FLUSHER, INGEST

DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def pv(app="app1", url="https://www.example.edu/course/1", **extra):
    return {"k": app, "t": "pageview", "u": url, **extra}


async def flush(client):
    assert await client.server.app[FLUSHER].flush()


async def stats(client, app="app1", **params):
    resp = await client.get("/api/stats", params={"app": app, **params})
    assert resp.status == 200, await resp.text()
    return await resp.json()


def headers(ua=DESKTOP, ip=None):
    out = {"User-Agent": ua}
    if ip:
        out["X-Forwarded-For"] = ip
    return out


# ---- answers ----------------------------------------------------------------------------


async def test_pixel_get_answers_204_and_gif_on_request(collector_client):
    client = await collector_client()
    resp = await client.get("/c", params=pv(), headers=headers())
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    resp = await client.get("/c", params={**pv(), "img": "1"}, headers=headers())
    assert resp.status == 200 and resp.content_type == "image/gif"
    assert (await resp.read()).startswith(b"GIF89a")
    await flush(client)
    assert (await stats(client))["totals"]["pv"] == 2


async def test_post_accepts_text_plain_and_json(collector_client):
    client = await collector_client()
    for content_type in ("text/plain;charset=UTF-8", "application/json", None):
        h = headers()
        if content_type:
            h["Content-Type"] = content_type
        resp = await client.post("/c", data=orjson.dumps([pv(), pv()]), headers=h)
        assert resp.status == 204
    resp = await client.post("/c", data=orjson.dumps(pv()), headers=headers())  # a single object
    assert resp.status == 204
    await flush(client)
    assert (await stats(client))["totals"]["pv"] == 7


async def test_preflight_is_answered(collector_client):
    client = await collector_client()
    resp = await client.options("/c", headers={"Origin": "https://a.edu", "Access-Control-Request-Method": "POST"})
    assert resp.status == 204
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]


async def test_partial_batch_counts_the_valid_events_and_names_each_problem(collector_client):
    client = await collector_client()
    batch = [pv(), {"k": "app1", "t": "pageview", "u": 7}, pv(), {"k": "app1", "t": "teleport"}, "junk", pv(sw=-5)]
    resp = await client.post("/c", data=orjson.dumps(batch), headers=headers())
    assert resp.status == 400
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    body = await resp.json()
    assert body["accepted"] == 2 and body["rejected"] == 4
    assert [(e["event"], e["field"], e["reason"]) for e in body["errors"]] == [
        (1, "u", "wrong_type"),
        (3, "t", "invalid_value"),
        (4, None, "not_an_object"),
        (5, "sw", "out_of_range"),
    ]
    await flush(client)
    app_stats = (await stats(client))["totals"]
    assert app_stats["pv"] == 2
    assert app_stats["rejected"] == {"wrong_type:u": 1, "invalid_value:t": 1, "out_of_range:sw": 1}
    # the non-object had no app key to count it under
    assert (await stats(client, app="(unknown)"))["totals"]["rejected"] == {"not_an_object": 1}


@pytest.mark.parametrize(
    "body, reason",
    [(b"{not json", "malformed_json"), (b"", "empty_batch"), (b"[]", "empty_batch"), (b"\xff\xfe", "malformed_json")],
)
async def test_unreadable_bodies_are_400_and_counted(collector_client, body, reason):
    client = await collector_client()
    resp = await client.post("/c", data=body, headers=headers())
    assert resp.status == 400
    assert (await resp.json())["errors"][0]["reason"] == reason
    await flush(client)
    assert (await stats(client, app="(unknown)"))["totals"]["rejected"] == {reason: 1}


async def test_body_over_16kb_is_413(collector_client):
    client = await collector_client()
    big = orjson.dumps([pv(url="https://e.edu/" + "x" * 2000)] * 8)
    assert len(big) > 16384
    resp = await client.post("/c", data=big, headers=headers())
    assert resp.status == 413
    assert (await resp.json())["errors"][0]["reason"] == "body_too_large"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    await flush(client)
    assert (await stats(client, app="(unknown)"))["totals"]["rejected"] == {"body_too_large": 1}


async def test_batch_over_the_cap_keeps_the_first_events(collector_client):
    client = await collector_client(max_batch_events=5)
    resp = await client.post("/c", data=orjson.dumps([pv()] * 8), headers=headers())
    assert resp.status == 400
    body = await resp.json()
    assert body["accepted"] == 5 and body["rejected"] == 3
    assert {e["reason"] for e in body["errors"]} == {"batch_too_large"}
    await flush(client)
    totals = (await stats(client))["totals"]
    assert totals["pv"] == 5 and totals["rejected"] == {"batch_too_large": 3}


async def test_garbage_never_gets_a_5xx(collector_client):
    client = await collector_client()
    bodies = [b"null", b"1", b'"x"', b"[null]", b"[[]]", b'{"k": {"a": 1}}',
              b'[{"k": "a", "t": "pageview", "u": "https://e/", "p": {"a": NaN}}]',
              b'{"k": "a", "t": "pageview", "u": "https://e/", "ts": 1e400}', b"\x00" * 100, "🙂".encode() * 10,
              b'{"k": "a", "t": "engagement", "et": 99999999999999999999999}', b'[' * 5000]
    for body in bodies:
        resp = await client.post("/c", data=body, headers=headers())
        assert resp.status < 500, (body, resp.status, await resp.text())
    for query in ({"k": "a"}, {"t": "pageview"}, {"k": "a", "t": "pageview", "u": "https://e/", "sw": "NaN"},
                  {"k": "a", "t": "pageview", "u": "https://e/", "p": "[1"}, {"k": "a" * 1000}):
        resp = await client.get("/c", params=query, headers=headers())
        assert resp.status < 500, (query, resp.status)
    await flush(client)


# ---- counting ---------------------------------------------------------------------------


async def test_n_hits_give_exactly_n_page_views(collector_client):
    client = await collector_client()
    sent = 0
    for i in range(40):
        resp = await client.post("/c", data=orjson.dumps([pv(url=f"https://e.edu/p{i % 7}")] * 25), headers=headers(ip=f"100.64.0.{i}"))
        assert resp.status == 204
        sent += 25
    for _ in range(137):
        resp = await client.get("/c", params=pv(), headers=headers(ua=IPHONE))
        assert resp.status == 204
        sent += 1
    await flush(client)
    result = await stats(client, breakdown="page,device")
    assert result["totals"]["pv"] == sent == 1137
    assert sum(row["pv"] for row in result["breakdowns"]["page"]) == sent
    assert {row["value"]: row["pv"] for row in result["breakdowns"]["device"]} == {"pc": 1000, "mobile": 137}


async def test_bots_are_counted_aside(collector_client):
    client = await collector_client()
    for _ in range(3):
        await client.get("/c", params=pv(), headers=headers(ua=GOOGLEBOT))
    await client.get("/c", params=pv(), headers=headers(ua="HeadlessChrome/120.0 Mozilla/5.0"))
    await client.get("/c", params=pv(), headers=headers())
    await flush(client)
    result = await stats(client, breakdown="bot,device")
    totals = result["totals"]
    assert totals["pv"] == 1 and totals["uv"] == 1 and totals["visits"] == 1
    assert totals["bot_pv"] == 4
    assert {row["value"] for row in result["breakdowns"]["device"]} == {"pc"}
    assert sum(row["pv"] for row in result["breakdowns"]["bot"]) == 4


async def test_region_and_device_breakdowns(collector_client, test_networks):
    client = await collector_client()
    hangzhou = next(n for n in test_networks if n[3] == "330100")
    ip = hangzhou[0].split("/")[0].rsplit(".", 1)[0] + ".7"
    await client.get("/c", params=pv(), headers=headers(ua=IPHONE, ip=ip))
    await flush(client)
    result = await stats(client, breakdown="region,device")
    city = result["breakdowns"]["region"]["city"]
    assert [(r["value"], r["province_name"], r["city_name"], r["pv"], r["uv"]) for r in city] == [
        ("CN/330000/330100", "浙江省", "杭州市", 1, 1)
    ]
    assert result["breakdowns"]["device"] == [{"value": "mobile", "pv": 1, "uv": 1}]


async def test_a_batch_classifies_each_events_screen(collector_client):
    """A batch classifies its device once per screen (sw, sh, tp), not once for all of it:
    the same desktop-mode Safari is an iPad with 5 touch points, a Mac with none."""
    client = await collector_client()
    mac_safari = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                  "Version/17.4 Safari/605.1.15")
    batch = [pv(tp=5), pv(tp=0), pv(tp=5), pv()]
    resp = await client.post("/c", data=orjson.dumps(batch), headers=headers(ua=mac_safari))
    assert resp.status == 204
    await flush(client)
    devices = {row["value"]: row["pv"] for row in (await stats(client, breakdown="device"))["breakdowns"]["device"]}
    assert devices == {"tablet": 2, "pc": 2}


def test_hits_made_in_c_are_hits():
    """ingest._hit takes Hit's fields in Hit's order, with Hit's defaults."""
    from collector.enrich.device import Device
    from collector.enrich.geo import UNKNOWN_REGION
    from collector.features.deep import DeepFacts
    from collector.hit.ingest import _hit
    from collector.hit.record import Hit

    required = {"app": "a", "minute": 7, "etype": "click", "device": Device("pc", "Chrome", "Windows"),
                "region": UNKNOWN_REGION, "visitor": b"v", "month_visitor": b"m"}
    assert set(Hit._fields) - set(Hit._field_defaults) == set(required)
    assert type(_hit(**required)) is Hit and _hit(**required) == Hit(**required)
    distinct = {"page": "p", "page_code": "pc", "referrer": "r", "visit_flag": 9, "engaged_ms": 10, "scroll": 11,
                "first_party_id": "f", "deep": DeepFacts([("c", "x", 1)], []), "lang": "zh", "event_id": "e",
                "resent": 12}
    assert set(distinct) == set(Hit._field_defaults)
    assert _hit(**required, **distinct) == Hit(**required, **distinct)


def test_the_c_tuple_of_makes_what_tuple_new_makes():
    """hit/_tuple_new.c's tuple_of (ingest._hit's, when built) gives tuple.__new__'s object for
    a NamedTuple and its items passed after it, tracked by the garbage collector alike, as
    ingest's Python stand-in _tuple_of does, and refuses (TypeError) what it was not made for
    rather than making something else."""
    import gc

    from collector.hit.ingest import _tuple_of
    from collector.hit.record import Hit
    from collector.native import c_module

    module = c_module("collector.hit._tuple_new")
    if module is None:
        pytest.skip("the C modules were not built")
    items = ("a", 7, "click", None, None, b"v", b"m", "", "", "", 0, 0, -1, "", [1], "", "", 0)
    for make in (module.tuple_of, _tuple_of):
        made = make(Hit, *items)
        assert type(made) is Hit and made == tuple.__new__(Hit, items) and made.deep is items[14]
        assert gc.is_tracked(made) == gc.is_tracked(tuple.__new__(Hit, items))
        assert make(Hit) == () and type(make(Hit)) is Hit

    class WithDict(tuple):
        pass

    for args in [(int, *items), (WithDict, *items), ("Hit", *items), (), (list, 1)]:
        with pytest.raises(TypeError):
            module.tuple_of(*args)


async def test_untrusted_forwarded_for_is_ignored(collector_client, test_networks):
    client = await collector_client(trusted_proxies=())
    ip = test_networks[0][0].split("/")[0]
    await client.get("/c", params=pv(), headers=headers(ip=ip))
    await flush(client)
    country = (await stats(client, breakdown="region"))["breakdowns"]["region"]["country"]
    assert [r["value"] for r in country] == ["(unknown)"]


async def test_visits_bounces_and_engagement(collector_client):
    client = await collector_client()
    # visitor A: a two-page visit with 12 s of engagement; B: a bounce with 3 s.
    a, b = headers(ip="100.64.1.1"), headers(ip="100.64.1.2")
    await client.post("/c", data=orjson.dumps([pv(sn=1), {"k": "app1", "t": "engagement", "et": 5000, "sd": 40}]), headers=a)
    await client.post("/c", data=orjson.dumps([pv(sn=2), {"k": "app1", "t": "engagement", "et": 7000, "sd": 80}]), headers=a)
    await client.post("/c", data=orjson.dumps([pv(sn=1), {"k": "app1", "t": "engagement", "et": 3000}]), headers=b)
    await flush(client)
    t = (await stats(client))["totals"]
    assert (t["pv"], t["uv"], t["visits"], t["bounces"], t["bounce_rate"]) == (3, 2, 2, 1, 0.5)
    assert t["engaged_ms"] == 15000 and t["avg_engaged_ms_per_visit"] == 7500.0
    assert t["avg_engaged_ms_per_pageview"] == 5000.0
    assert t["avg_scroll_depth"] == 60.0
    assert t["pv_per_100_visitors"] == 150.0 and t["pages_per_visitor"] == 1.5


async def test_pixels_without_session_ordinal_infer_visits(collector_client):
    client = await collector_client()
    for _ in range(3):
        await client.get("/c", params=pv(), headers=headers(ip="100.64.2.1"))
    await client.get("/c", params=pv(), headers=headers(ip="100.64.2.2"))
    await flush(client)
    t = (await stats(client))["totals"]
    assert (t["visits"], t["bounces"]) == (2, 1)


async def test_first_party_ids_are_their_own_uv(collector_client):
    client = await collector_client()
    for vid in ("v1", "v2", "v3", "v1"):
        await client.post("/c", data=orjson.dumps(pv(vid=vid)), headers=headers())
    await flush(client)
    t = (await stats(client))["totals"]
    assert t["uv"] == 1 and t["uv_first_party"] == 3


async def test_other_event_types_are_counted_by_type(collector_client):
    client = await collector_client()
    batch = [{"k": "app1", "t": "click", "n": "buy"}, {"k": "app1", "t": "click", "n": "more"},
             {"k": "app1", "t": "media", "n": "read", "rid": "r", "ms": "m", "ws": 0, "wt": 0}]
    assert (await client.post("/c", data=orjson.dumps(batch), headers=headers())).status == 204
    await flush(client)
    assert (await stats(client))["totals"]["events"] == {"click": 2, "media": 1}


async def test_100k_distinct_visitors_give_uv_within_one_percent(collector_client, rds):
    # HyperLogLog's standard error is 0.81 %: with a random salt, "within 1 %" would fail
    # about one run in five. Fixed salts (the keeper only sets salts that are missing)
    # make the hashed visitors, and so the estimate, the same on every run.
    import time as _time

    from collector.store.buckets import Calendar

    _, _, day, month = Calendar("Asia/Shanghai").buckets_of_minute(int(_time.time() // 60))
    rds.set(f"eb:salt:{day.id}", b"fixed test salt for days", ex=3600)
    rds.set(f"eb:salt:{month.id}", b"fixed test salt for months", ex=3600)
    client = await collector_client()
    ingest = client.server.app[INGEST]
    now = ingest.clock()
    from collector.enrich.geo import UNKNOWN_REGION
    from collector.hit.ingest import Tally

    # Straight into the per-event path (the HTTP layer is covered above): 10^5 distinct
    # (IP, UA) pairs, each with two page views, journaled and counted.
    n = 100_000
    for i in range(n):
        ip = f"100.{64 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"
        event = pv(vid=f"v{i}")
        assert ingest._commit(Tally(counts=[ingest._enrich(event, event["k"], ip, DESKTOP, None, UNKNOWN_REGION, now)] * 2))
    await flush(client)
    t = (await stats(client))["totals"]
    assert t["pv"] == 2 * n
    assert abs(t["uv"] - n) / n < 0.01, t["uv"]
    month_uv = (await stats(client, granularity="month"))["totals"]["uv"]
    assert abs(month_uv - n) / n < 0.01, month_uv
    assert abs(t["uv_first_party"] - n) / n < 0.01, t["uv_first_party"]


async def test_raw_ip_and_user_agent_are_never_stored(collector_client, rds):
    client = await collector_client()
    ua = "Mozilla/5.0 (X11; Linux x86_64) UniqueMarkerBrowser/9.9"
    await client.get("/c", params=pv(), headers=headers(ua=ua, ip="100.77.88.99"))
    await flush(client)
    for key in rds.scan_iter(count=1000):
        dump = key + (rds.dump(key) or b"")
        assert b"100.77.88.99" not in dump and b"UniqueMarker" not in dump, key


async def test_salts_are_shared_and_deleted_48h_after_their_period(collector_client, rds):
    client = await collector_client()
    salts = {k.decode().rsplit(":", 1)[1]: rds.ttl(k) for k in rds.scan_iter("eb:salt:*")}
    days = {p: ttl for p, ttl in salts.items() if len(p) == 8}
    months = {p: ttl for p, ttl in salts.items() if len(p) == 6}
    assert len(days) == 3 and 1 <= len(months) <= 2  # yesterday, today, tomorrow and their months
    assert all(0 < ttl <= 72 * 3600 for ttl in days.values())  # tomorrow's: 48 h after it starts
    assert sorted(days.values())[1] <= 48 * 3600  # today's
    # tomorrow's month may begin tomorrow: it ends at most 1 + 31 days from now, then 48 h
    assert all(0 < ttl <= (1 + 31 + 2) * 86400 for ttl in months.values())
    # a second instance on the same Redis uses the same salts: same visitor, UV 1
    other = await collector_client()
    await client.get("/c", params=pv(), headers=headers(ip="100.64.9.9"))
    await other.get("/c", params=pv(), headers=headers(ip="100.64.9.9"))
    await flush(client)
    await flush(other)
    assert (await stats(client))["totals"]["uv"] == 1
    assert (await stats(client, granularity="month"))["totals"]["uv"] == 1


# ---- read API and health ----------------------------------------------------------------


async def test_stats_rejects_bad_queries(collector_client):
    client = await collector_client()
    for params, needle in (
        ({}, "app or group is required"),
        ({"app": "a", "granularity": "week"}, "granularity"),
        ({"app": "a", "from": "yesterday"}, "from/to"),
        ({"app": "a", "from": "2026-02-02", "to": "2026-02-01"}, "before"),
        ({"app": "a", "granularity": "minute", "from": "2026-01-01", "to": "2026-03-01"}, "more than"),
        ({"app": "a", "breakdown": "planet"}, "unknown breakdown"),
    ):
        resp = await client.get("/api/stats", params=params)
        assert resp.status == 400
        assert needle in (await resp.json())["error"]


async def test_api_token_guards_the_read_api(collector_client):
    client = await collector_client(api_token="s3cret")
    assert (await client.get("/api/stats", params={"app": "a"})).status == 401
    resp = await client.get("/api/stats", params={"app": "a"}, headers={"Authorization": "Bearer s3cret"})
    assert resp.status == 200
    assert (await client.get("/c", params=pv())).status == 204  # hits need no token


async def test_apps_are_listed(collector_client):
    client = await collector_client()
    await client.get("/c", params=pv(app="alpha"), headers=headers())
    await client.get("/c", params=pv(app="beta"), headers=headers())
    await flush(client)
    assert (await (await client.get("/api/apps")).json())["apps"] == ["alpha", "beta"]


async def test_health_and_readiness(collector_client, redis_server):
    client = await collector_client()
    assert (await client.get("/healthz")).status == 200
    resp = await client.get("/readyz")
    assert resp.status == 200 and (await resp.json())["redis"] == "ok"
    # Redis away: with the journal the collector stays ready (it stores hits durably and
    # catches up later); without it, it is not ready.
    journaled = await collector_client(redis_url="redis://127.0.0.1:1/0")
    resp = await journaled.get("/readyz")
    assert resp.status == 200 and "unreachable" in (await resp.json())["redis"]
    assert (await journaled.get("/c", params=pv(), headers=headers())).status == 204
    assert (await (await journaled.get("/api/collector")).json())["journal_bytes"] > 0
    bare = await collector_client(redis_url="redis://127.0.0.1:1/0", journal=False)
    resp = await bare.get("/readyz")
    assert resp.status == 503 and "unreachable" in (await resp.json())["redis"]


async def test_lone_surrogates_do_not_cost_the_batch(collector_client):
    client = await collector_client()
    body = b'[{"k": "app1", "t": "pageview", "u": "https://e.edu/a", "ti": "cut emoji \\ud83d"}, ' \
           b'{"k": "app1", "t": "pageview", "u": "https://e.edu/b"}]'
    resp = await client.post("/c", data=body, headers=headers())
    assert resp.status == 204, await resp.text()
    await flush(client)
    assert (await stats(client))["totals"]["pv"] == 2


async def test_hash_routes_are_pages_but_anchors_are_not(collector_client):
    client = await collector_client()
    for url in ("https://e.edu/#/course/1", "https://e.edu/#!/course/2", "https://e.edu/a#top", "https://e.edu/a"):
        await client.get("/c", params=pv(url=url), headers=headers())
    await flush(client)
    pages = {r["value"]: r["pv"] for r in (await stats(client, breakdown="page"))["breakdowns"]["page"]}
    assert pages == {"https://e.edu/#/course/1": 1, "https://e.edu/#!/course/2": 1, "https://e.edu/a": 2}


# ---- remarks for the daily validation (hit/remarks.py) ------------------------------------


async def test_a_client_clock_off_the_window_is_flagged_and_still_counted(collector_client):
    now = 1_795_000_000.0  # fixed, so that the past and future timestamps are exact
    client = await collector_client(clock=lambda: now, client_ts_window=3600)
    events = [
        pv(ts=int((now - 3601) * 1000)),  # further back than the window
        pv(ts=int((now + 61) * 1000)),  # further ahead than FUTURE_TOLERANCE
        pv(ts=int((now - 3599) * 1000)),  # inside: chooses its bucket, no remark
        pv(ts=int((now + 59) * 1000)),
        pv(),  # no client timestamp: nothing to judge
    ]
    resp = await client.post("/c", data=orjson.dumps(events), headers=headers())
    assert resp.status == 204
    await flush(client)
    totals = (await stats(client))["totals"]
    assert totals["pv"] == 5
    assert totals["flagged"] == {"client_clock": 2}


async def test_a_repeated_event_id_is_flagged_and_still_counted(collector_client):
    client = await collector_client()
    first = [pv(id="e1"), pv(id="e2"), pv("app2", id="e1")]  # ids are per app
    again = [pv(id="e1"), pv(id="e1")]  # a resend, and the same id twice in a batch
    for batch in (first, again):
        resp = await client.post("/c", data=orjson.dumps(batch), headers=headers())
        assert resp.status == 204
    await flush(client)
    app1 = (await stats(client))["totals"]
    assert app1["pv"] == 4 and app1["flagged"] == {"repeated_id": 2}
    app2 = (await stats(client, app="app2"))["totals"]
    assert app2["pv"] == 1 and app2["flagged"] == {}


async def test_the_remembered_ids_are_bounded(collector_client):
    client = await collector_client()
    ingest = client.server.app[INGEST]
    ingest.recent_ids = RecentIds(limit=10)
    ids = [f"id{i}" for i in range(100)]
    for start in range(0, len(ids), 20):
        resp = await client.post("/c", data=orjson.dumps([pv(id=i) for i in ids[start:start + 20]]), headers=headers())
        assert resp.status == 204
    assert len(ingest.recent_ids) <= 10
    # The newest are remembered, the oldest forgotten: a resend of each, one flag.
    resp = await client.post("/c", data=orjson.dumps([pv(id=ids[0]), pv(id=ids[-1])]), headers=headers())
    assert resp.status == 204
    await flush(client)
    totals = (await stats(client))["totals"]
    assert totals["pv"] == 102 and totals["flagged"] == {"repeated_id": 1}


def test_recent_ids_keep_the_newest_half_to_all_of_their_limit():
    recent = RecentIds(limit=1000)
    for i in range(10_000):
        assert not recent.seen("a", f"id{i}")
        assert 1 <= len(recent) <= 1000
    assert all(recent.seen("a", f"id{i}") for i in range(9_500, 10_000))
    assert not any(recent.seen("a", f"id{i}") for i in range(0, 8_000, 7))


async def test_the_keys_of_a_minute_hold_one_int_object(collector_client):
    """Every hit of a minute carries one int object for it, and the aggregator's keys keep
    that object (hit/ingest.py _minute_object): their lookups compare it by identity. An int
    past 256 is otherwise a new object each time it is made, and compiled code makes one
    each time it puts an int-typed value into a tuple."""
    client = await collector_client()
    ingest = client.server.app[INGEST]
    for request in range(3):
        events = [pv(url=f"https://www.example.edu/course/{i}", vid=f"v{request}", id=f"e{request}-{i}", uid="u1")
                  for i in range(4)]
        events.append({"k": "app1", "t": "click", "n": "more", "id": f"c{request}", "vid": f"v{request}"})
        resp = await client.post("/c", data=orjson.dumps(events), headers=headers())
        assert resp.status == 204, await resp.text()
    snap = ingest.aggregator.drain()
    entries = [*snap.cube, *snap.visitors, *snap.first_party, *snap.event_ids, *snap.deep_incs, *snap.deep_members]
    assert snap.cube and snap.visitors and snap.first_party and snap.event_ids and snap.deep_incs
    by_minute: dict[int, set[int]] = {}
    for entry in entries:
        by_minute.setdefault(entry[1], set()).add(id(entry[1]))
    assert all(len(objects) == 1 for objects in by_minute.values()), by_minute


def test_a_requests_events_are_summed_per_app_key_in_order():
    from collector.hit.ingest import _events_per_key

    events = [{"k": "a"}, {"k": "a"}, {"k": "b"}, {"k": 1}, "not an event", {"t": "click"}, {"k": "a"}, {"k": "b"}]
    assert list(_events_per_key(events)) == [("a", 3), ("b", 2)]
    assert list(_events_per_key([{"k": "a"}])) == [("a", 1)] and list(_events_per_key([{"k": 2}])) == []


async def test_a_requests_visitor_keys_are_hashed_once_a_day(collector_client):
    """A request's events in several minutes of a day get the very same visitor keys (one
    hash, the same bytes objects: Ingest._visitor_keys keeps them by day and month); an
    event of another day gets that day's, as without the request's memo."""
    from collector.hit.ingest import VisitorMemo

    client = await collector_client()
    ingest = client.server.app[INGEST]
    calendar = ingest.calendar
    minute = calendar.buckets_of_minute(29_000_000)[2].start // 60 + 600  # 10:00 of a local day
    memo = VisitorMemo()
    first = ingest._visitor_keys(minute, "10.0.0.1", DESKTOP, memo)
    again = ingest._visitor_keys(minute + 1, "10.0.0.1", DESKTOP, memo)
    assert again == first and again[0] is first[0] and again[1] is first[1]
    assert ingest._visitor_keys(minute + 1, "10.0.0.2", DESKTOP, memo) != first
    next_day = ingest._visitor_keys(minute + 24 * 60, "10.0.0.1", DESKTOP, memo)
    assert next_day == ingest._visitor_keys(minute + 24 * 60, "10.0.0.1", DESKTOP, None)
    assert next_day[2] != first[2] and next_day[:2] != first[:2]
    assert first == ingest._visitor_keys(minute, "10.0.0.1", DESKTOP, None)
