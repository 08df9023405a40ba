"""The deep tag, collector side, in-process: real app, real Redis, real flusher and read API.

Media completion, interactions, click tracks, users, the cardinality caps and the
validation of deep-tag fields. (The browser suite drives the same through Chromium.)
"""

from __future__ import annotations

import orjson
import pytest
from test_ingest import IPHONE, flush, headers, pv, stats

from collector.web.appkeys import FLUSHER, INGEST

VIDEO = {"rid": "v1", "rt": "video", "subj": "math", "stage": "junior", "src": "zjer", "dur": 100}


def media(n, ms="s1", ws=0, wt=0, pos=0, **extra):
    return {"k": "app1", "t": "media", "n": n, "ms": ms, "ws": ws, "wt": wt, "pos": pos, **VIDEO, **extra}


def interaction(n, rid="v1", **extra):
    return {"k": "app1", "t": "interaction", "n": n, "rid": rid, "rt": "video", "subj": "math", **extra}


async def post(client, events, ua_ip=None, status=204):
    resp = await client.post("/c", data=orjson.dumps(events), headers=headers(*(ua_ip or ())))
    assert resp.status == status, await resp.text()
    return resp


def row(rows, value):
    (found,) = [r for r in rows if r["value"] == value]
    return found


async def test_a_session_played_to_the_end_over_several_flushes_completes_once(collector_client):
    client = await collector_client()
    await post(client, [media("play"), media("progress", ws=25, wt=25_000, pos=25, pb=25)])
    await flush(client)
    await post(client, [media("ping", ws=60, wt=35_000, pos=60)])
    await flush(client)
    await post(client, [media("ended", ws=100, wt=40_000, pos=100), media("play", ws=100, pos=0)])  # replayed: not a new view
    await flush(client)
    m = (await stats(client))["totals"]["media"]
    assert m["views"] == 1 and m["viewers"] == 1
    assert m["watched_s"] == 100 and m["watch_ms"] == 100_000
    assert m["completion"] == {
        "sessions": 1, "avg": 1.0, "completed": 1, "completed_rate": 1.0,
        "histogram": {"0-25": 0, "25-50": 0, "50-75": 0, "75-90": 0, "90-100": 1},
    }
    assert m["progress"]["25"] == 1


async def test_seeking_to_the_end_is_not_completion(collector_client):
    client = await collector_client()
    await post(client, [media("play", ms="a"), media("seek", ms="a", ws=3, wt=3000, pos=99),
                        media("ended", ms="a", ws=4, wt=1000, pos=100)])
    await flush(client)
    m = (await stats(client))["totals"]["media"]
    assert m["completion"]["avg"] == 0.04 and m["completion"]["completed"] == 0
    assert m["completion"]["histogram"]["0-25"] == 1


async def test_completion_histogram_average_and_the_completed_setting(collector_client):
    client = await collector_client(completed_percent=80)
    for i, ws in enumerate((10, 30, 60, 80, 85, 100)):
        await post(client, [media("play", ms=f"s{i}"), media("pause", ms=f"s{i}", ws=ws, pos=ws)])
    await flush(client)
    c = (await stats(client))["totals"]["media"]["completion"]
    assert c["histogram"] == {"0-25": 1, "25-50": 1, "50-75": 1, "75-90": 2, "90-100": 1}
    assert c["completed"] == 3, "80 % counts as completed with completed_percent=80"
    assert c["avg"] == round((0.1 + 0.3 + 0.6 + 0.8 + 0.85 + 1.0) / 6, 4)


async def test_a_session_split_across_two_workers_counts_once(collector_client, make_settings):
    one = await collector_client()
    two = await collector_client()
    await post(one, [media("play"), media("ping", ws=30, pos=30)])
    await post(two, [media("ping", ws=50, pos=50)])
    await flush(two)
    await flush(one)  # the older progress arrives last: changes nothing
    m = (await stats(one))["totals"]["media"]
    assert (m["views"], m["watched_s"], m["completion"]["sessions"]) == (1, 50, 1)
    assert m["completion"]["avg"] == 0.5


async def test_duration_learned_late_moves_the_session_into_completion(collector_client):
    client = await collector_client()
    no_dur = {k: v for k, v in media("play", ms="live").items() if k != "dur"}
    await post(client, [no_dur])
    await flush(client)
    assert (await stats(client))["totals"]["media"]["completion"]["sessions"] == 0
    await post(client, [media("ping", ms="live", ws=50, pos=50)])
    await flush(client)
    c = (await stats(client))["totals"]["media"]["completion"]
    assert (c["sessions"], c["avg"]) == (1, 0.5)


async def test_month_buckets_count_sessions_like_days(collector_client):
    client = await collector_client()
    await post(client, [media("play"), media("ended", ws=100, pos=100)])
    await flush(client)
    await post(client, [media("ended", ws=100, pos=100)])
    await flush(client)
    month = (await stats(client, granularity="month"))["totals"]["media"]
    assert (month["views"], month["watched_s"], month["completion"]["completed"]) == (1, 100, 1)


async def test_reading_time_and_views_per_resource_by_dimension(collector_client):
    client = await collector_client()
    book = {"rid": "b1", "rt": "textbook", "subj": "math", "stage": "junior"}
    await post(client, [
        {"k": "app1", "t": "media", "n": "read", "ms": "r1", "ws": 30, "wt": 30_000, **book},
        media("play", ms="x1"), media("play", ms="x2"),  # v1 viewed twice
        media("play", ms="x3", rid="v2"),
    ])
    await flush(client)
    out = await stats(client, breakdown="resource,rtype,subject")
    assert out["totals"]["media"]["read_ms"] == 30_000
    assert out["totals"]["media"]["resources_viewed"] == 3
    b = out["breakdowns"]
    assert [(r["value"], r["views"]) for r in b["resource"]] == [("v1", 2), ("b1", 1), ("v2", 1)]
    math = row(b["subject"], "math")
    assert (math["views"], math["resources_viewed"], math["avg_views_per_resource"]) == (4, 3, round(4 / 3, 4))
    assert row(b["rtype"], "video")["avg_views_per_resource"] == 1.5
    assert row(b["rtype"], "textbook")["read_ms"] == 30_000


async def test_a_catalogue_supplies_the_true_resource_counts(collector_client):
    client = await collector_client()
    await post(client, [media("play", ms="x1"), media("play", ms="x2")])
    await flush(client)
    body = {"total": 10, "subject": {"math": 4}}
    resp = await client.put("/api/catalogue", params={"app": "app1"}, data=orjson.dumps(body))
    assert resp.status == 200, await resp.text()
    out = await stats(client, breakdown="subject")
    assert out["totals"]["media"]["avg_views_per_resource"] == 0.2
    math = row(out["breakdowns"]["subject"], "math")
    assert (math["catalogue_resources"], math["avg_views_per_resource"]) == (4, 0.5)
    bad = await client.put("/api/catalogue", params={"app": "app1"}, data=b'{"colour": {"red": 1}}')
    assert bad.status == 400 and "unknown dimension" in (await bad.json())["error"]


async def test_ratings_likes_shares_and_favorites(collector_client):
    client = await collector_client()
    await post(client, [
        interaction("rate", score=5), interaction("rate", score=4), interaction("rate", score=3),
        interaction("like"), interaction("unlike"),
        interaction("favorite"), interaction("favorite", rid="v2"), interaction("unfavorite"),
        interaction("share", ch="wechat"), interaction("share", ch="wechat"), interaction("share", ch="qq"),
        interaction("comment"),
    ])
    await flush(client)
    out = await stats(client, breakdown="resource,channel")
    i = out["totals"]["interactions"]
    assert (i["ratings"], i["rating_sum"], i["rating_avg"]) == (3, 12, 4.0)
    assert (i["likes_net"], i["favorites_net"], i["shares"], i["comments"]) == (0, 1, 3, 1)
    v1 = row(out["breakdowns"]["resource"], "v1")
    assert (v1["rating_avg"], v1["likes_net"], v1["favorites_net"]) == (4.0, 0, 0)
    assert row(out["breakdowns"]["resource"], "v2")["favorites_net"] == 1
    assert [(r["value"], r["shares"]) for r in out["breakdowns"]["channel"]] == [("wechat", 2), ("qq", 1)]


async def test_click_tracks_exposures_clicks_ctr_and_entries(collector_client):
    client = await collector_client()
    exposure = lambda pos, n: {"k": "app1", "t": "exposure", "tr": "banner", "pos": pos, "n": n}  # noqa: E731
    await post(client, [
        exposure(1, "a"), exposure(2, "b"), exposure(3, "c"), exposure(1, "a"),
        {"k": "app1", "t": "click", "n": "slide-a", "tr": "banner", "pos": 1},
        {"k": "app1", "t": "click", "n": "signup"}, {"k": "app1", "t": "click", "n": "signup"},
        pv(etr="banner", epos=1), pv(),
    ])
    await flush(client)
    out = await stats(client, breakdown="track,item,target")
    assert out["totals"]["tracks"] == {"exposures": 4, "clicks": 1, "ctr": 0.25, "entries": 1}
    assert out["totals"]["clicks"] == 3
    b = out["breakdowns"]
    assert row(b["track"], "banner") == {"value": "banner", "exposures": 4, "clicks": 1, "entries": 1, "ctr": 0.25}
    assert row(b["item"], "banner#1") == {"value": "banner#1", "exposures": 2, "clicks": 1, "entries": 1, "ctr": 0.5}
    assert row(b["item"], "banner#3")["ctr"] == 0.0
    assert [(r["value"], r["clicks"]) for r in b["target"]] == [("signup", 2), ("slide-a", 1)]


async def test_appendix_a_exposures_without_a_track_count_per_target(collector_client):
    """aplus.record(name, 'EXP') and (name, 'CLK') carry no track: CTR per target name."""
    client = await collector_client()
    await post(client, [{"k": "app1", "t": "exposure", "n": "course_card"}] * 4 + [{"k": "app1", "t": "click", "n": "course_card"}])
    await flush(client)
    out = await stats(client, breakdown="target")
    assert out["breakdowns"]["target"] == [{"value": "course_card", "clicks": 1, "exposures": 4, "ctr": 0.25}]
    assert out["totals"]["events"] == {"exposure": 4, "click": 1}
    assert out["totals"]["tracks"]["exposures"] == 0, "not a track's exposures"


async def test_logged_in_users_and_the_pv_split(collector_client):
    client = await collector_client()
    await post(client, [pv(uid="42"), pv(uid="42"), pv(uid="7"), pv()])
    await post(client, [pv(uid=42)], (IPHONE, "10.1.2.3"))  # the same user elsewhere, on a phone
    await flush(client)
    users = (await stats(client))["totals"]["users"]
    assert users == {"logged_in": 2, "pv_logged_in": 4, "pv_anonymous": 1}


async def test_caps_send_the_excess_to_other_and_count_everything(collector_client):
    client = await collector_client(cap_resources=50, cap_click_targets=5)
    await post(client, [media("play", ms=f"m{i}", rid=f"r{i}") for i in range(80)])
    await post(client, [media("play", ms=f"n{i}", rid=f"r{i}") for i in range(80, 100)])
    await post(client, [{"k": "app1", "t": "click", "n": f"t{i}"} for i in range(20)])
    await flush(client)
    out = await stats(client, breakdown="resource,target", limit=1000)
    resources = out["breakdowns"]["resource"]
    assert len(resources) == 51 and row(resources, "(other)")["views"] == 50
    assert sum(r["views"] for r in resources) == 100 == out["totals"]["media"]["views"]
    # Distinct resources are HyperLogLogs (bounded): they count every id, capped or not.
    assert 98 <= out["totals"]["media"]["resources_viewed"] <= 102
    assert 98 <= row((await stats(client, breakdown="subject"))["breakdowns"]["subject"], "math")["resources_viewed"] <= 102
    top = await stats(client, breakdown="resource", limit=10)
    assert len(top["breakdowns"]["resource"]) == 10 and top["breakdown_rows"] == {"resource": 51}
    assert row(out["breakdowns"]["target"], "(other)")["clicks"] == 15
    metrics = await client.get("/api/collector")
    assert (await metrics.json())["capped_events"]["resource"] == 50


async def test_the_journal_replays_deep_events_exactly(collector_client):
    """Counted from the journal (as after a crash), deep facts give the same figures."""
    from collector.store.aggregate import Aggregator
    from collector.store.journal import replay

    # No flush during the test: a flush seals the batch and opens the next segment, so the
    # active segment and the live batch read below would hold none of these events (the
    # tests' 50 ms flushes did that on a slow machine).
    client = await collector_client(flush_interval=3600)
    ingest = client.server.app[INGEST]
    await post(client, [media("play"), media("ended", ws=100, pos=100), interaction("rate", score=4), pv(uid="1", etr="nav", epos=2)])
    segment = ingest.journal._active.path
    scratch = Aggregator()
    assert replay(segment, scratch) == 4
    live, replayed = client.server.app[FLUSHER].aggregator.current(), scratch.current()
    assert replayed.deep_incs == live.deep_incs and replayed.deep_members == live.deep_members
    assert {k: (m, s.as_json()) for k, (m, s) in replayed.sessions.items()} == {
        k: (m, s.as_json()) for k, (m, s) in live.sessions.items()
    }


@pytest.mark.parametrize(
    "event, field, reason",
    [
        (interaction("rate", score=9), "score", "out_of_range"),
        (interaction("rate"), "score", "missing_field"),
        (interaction("applaud"), "n", "invalid_value"),
        (media("play", dur=-5), "dur", "out_of_range"),
        (media("play", pos=120), "pos", "out_of_range"),
        (media("ping", ws=150), "ws", "out_of_range"),
        (media("rewind"), "n", "invalid_value"),
        (media("progress", pb=33), "pb", "invalid_value"),
        (media("progress"), "pb", "missing_field"),
        ({**media("play"), "ms": None}, "ms", "wrong_type"),
        ({"k": "app1", "t": "exposure", "n": "a", "tr": "banner"}, "pos", "missing_field"),
        (pv(etr="nav"), "epos", "missing_field"),
        ({"k": "app1", "t": "click", "n": "x", "tr": "nav"}, "pos", "missing_field"),
    ],
)
async def test_bad_deep_input_is_rejected_with_a_reason_and_counted(collector_client, event, field, reason):
    client = await collector_client()
    resp = await post(client, [event, pv()], status=400)
    body = await resp.json()
    assert body["accepted"] == 1 and {(e["field"], e["reason"]) for e in body["errors"]} == {(field, reason)}
    await flush(client)
    totals = (await stats(client))["totals"]
    assert totals["pv"] == 1 and totals["rejected"] == {f"{reason}:{field}": 1}


async def test_image_beacons_carry_deep_fields_as_text(collector_client):
    client = await collector_client()
    params = {k: str(v) for k, v in media("ended", ws=100, pos=100).items()}
    resp = await client.get("/c", params={**params, "img": "1"}, headers=headers())
    assert resp.status == 200
    await flush(client)
    assert (await stats(client))["totals"]["media"]["watched_s"] == 100
