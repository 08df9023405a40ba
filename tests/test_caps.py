"""Cost ceilings (issue 13): every stored dimension is capped per app and day for the whole
deployment, long values are stored bounded, rejected events make no keys of their app,
and secrets in page URLs never reach the store — through the real HTTP layers, with two
collectors (two workers' worth of caps and flushers) sharing one real Redis."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from collector.features.facts import EventScope
from collector.hit.caps import OTHER, CardinalityCaps, bounded
from collector.hit.url_secrets import DEFAULT_SECRET_PARAMS, SecretStripper
from collector.store import keys
from collector.store.buckets import Calendar
from collector.web.appkeys import FLUSHER

DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
SITE = "https://www.example.edu"


def pv(app="capped", url=SITE + "/course/1", **extra):
    return {"k": app, "t": "pageview", "u": url, **extra}


def media(app="capped", rid="r1", ms="s1", **extra):
    return {"k": app, "t": "media", "n": "play", "rid": rid, "ms": ms, "ws": 5, "wt": 5000, "pos": 0, **extra}


async def send(client, events, ua=DESKTOP):
    for start in range(0, len(events), 50):
        resp = await client.post("/c", data=orjson.dumps(events[start : start + 50]), headers={"User-Agent": ua})
        assert resp.status == 204, await resp.text()


async def flush(*clients):
    for client in clients:
        assert await client.server.app[FLUSHER].flush()


def today() -> str:
    return Calendar("Asia/Shanghai").buckets_of_minute(int(time.time() // 60))[2].id


def day_hash(rds, suffix: str, app: str = "capped") -> dict[str, int]:
    raw = rds.hgetall(keys.bucket_key(app, "day", today(), suffix))
    return {k.decode(): int(v) for k, v in raw.items()}


def metric_values(rds, dim: str, metric: str) -> dict[str, int]:
    prefix = metric + ":"
    return {k[len(prefix) :]: n for k, n in day_hash(rds, keys.metrics_suffix(dim)).items() if k.startswith(prefix)}


# ---- the whole deployment's caps ------------------------------------------------------------

CAP = 5
SMALL_CAPS = dict(
    cap_pages=CAP, cap_page_codes=CAP, cap_referrers=CAP, cap_bots=CAP, cap_resources=CAP, cap_click_targets=CAP,
    cap_components=CAP, cap_labels=CAP, cap_media_sessions=CAP,
)
# 60 % of a cap's worth of distinct values per collector: each alone stays under the cap,
# the two together go over it.
SHARE = 3


def distinct_events(worker: int) -> list[dict]:
    """SHARE distinct values of every capped kind, each sent twice, from one collector."""
    events: list[dict] = []
    for i in range(worker * SHARE, (worker + 1) * SHARE):
        events += [
            pv(url=f"{SITE}/page/{i}", pc=f"code-{i}", r=f"https://ref{i}.example.com/"),
            {"k": "capped", "t": "click", "n": f"target-{i}"},
            {"k": "capped", "t": "click", "n": "x", "tr": f"component-{i}", "pos": 1},
            media(rid=f"res-{i}", ms=f"session-{i}", subj=f"subject-{i}"),
        ]
    return events * 2


def bot_events(worker: int) -> list[tuple[dict, str]]:
    return [(pv(), f"Mozilla/5.0 (compatible; Crawler{i}Bot/1.0; +https://crawler{i}.example.com/bot)")
            for i in range(worker * SHARE, (worker + 1) * SHARE)]


@pytest.mark.parametrize("http_layer", ["fast path"], indirect=True)
async def test_caps_hold_for_the_deployment_across_collectors_and_restarts(collector_client, rds, http_layer):
    first, second = await collector_client(**SMALL_CAPS), await collector_client(**SMALL_CAPS)
    for worker, client in enumerate((first, second)):
        await send(client, distinct_events(worker))
        for event, ua in bot_events(worker):
            await send(client, [event], ua=ua)
    await flush(first, second)

    sent = 2 * 2 * SHARE  # two collectors, each value twice
    stored = {
        "page": day_hash(rds, "d:page"), "page_code": day_hash(rds, "d:page_code"),
        "referrer": day_hash(rds, "d:referrer"), "bot": day_hash(rds, "d:bot"),
        "target": metric_values(rds, "target", "clicks"), "component": metric_values(rds, "track", "clicks"),
        "resource": metric_values(rds, "resource", "watch_ms"), "label": metric_values(rds, "subject", "watch_ms"),
    }
    for kind, counts in stored.items():
        values = set(counts) - {OTHER}
        assert len(values) <= CAP, (kind, sorted(counts))
        assert OTHER in counts, (kind, sorted(counts))  # the excess is counted, under (other)
    assert sum(stored["page"].values()) == sent  # every page view counted exactly once
    assert sum(stored["page_code"].values()) == sent
    assert sum(stored["target"].values()) == 2 * sent  # (a track click is a click on target "x" too)
    assert sum(stored["resource"].values()) == sent * 5000
    assert sum(stored["bot"].values()) == 2 * SHARE
    sessions = {k.decode() for k in rds.hkeys(keys.sessions(keys.slot_tag("capped", "day", today())))}
    assert len(sessions - {OTHER}) <= CAP and OTHER in sessions

    # A restarted worker (fresh caps in memory) admits nothing more: the sets are in Redis.
    third = await collector_client(**SMALL_CAPS)
    await send(third, [pv(url=f"{SITE}/after-restart/{i}") for i in range(3)] + [pv(url=f"{SITE}/page/0")])
    await flush(third)
    after = day_hash(rds, "d:page")
    assert set(after) - {OTHER} == set(stored["page"]) - {OTHER}
    assert after[OTHER] == stored["page"][OTHER] + 3 and sum(after.values()) == sent + 4


@pytest.mark.parametrize("http_layer", ["fast path"], indirect=True)
async def test_long_pages_are_stored_bounded_and_stay_distinct(collector_client, rds, http_layer):
    client = await collector_client(value_max_chars=100)
    long = SITE + "/search?q=" + "x" * 1500
    await send(client, [pv(url=long + "a"), pv(url=long + "b"), pv(url=long + "a")])
    await flush(client)
    pages = day_hash(rds, "d:page")
    assert sorted(pages.values()) == [1, 2]
    assert all(len(page) <= 100 for page in pages)


@pytest.mark.parametrize("http_layer", ["fast path"], indirect=True)
async def test_rejected_events_create_no_keys_of_their_app(collector_client, rds, http_layer):
    client = await collector_client()
    for i in range(5):
        resp = await client.get("/c", params={"k": f"madeup{i}", "t": "bogus", "u": SITE + "/"}, headers={"User-Agent": DESKTOP})
        assert resp.status == 400
    await flush(client)
    assert [k for k in rds.scan_iter(match="*madeup*")] == []
    assert rds.sismember(keys.APPS, "madeup0") == 0
    unknown = day_hash(rds, keys.COUNTERS, app="(unknown)")
    assert unknown["rejected:invalid_value:t"] == 5


# ---- secrets in URLs -------------------------------------------------------------------------

SECRET_URL = SITE + "/course/7?token=abc&ticket=ST-123&x=1"


async def test_secrets_in_page_urls_are_stripped_for_every_transport(collector_client, rds, tmp_path):
    client = await collector_client()
    h = {"User-Agent": DESKTOP}
    assert (await client.get("/c", params=pv(app="sec", url=SECRET_URL), headers=h)).status == 204  # GET pixel
    assert (await client.get("/c", params={**pv(app="sec", url=SECRET_URL), "img": "1"}, headers=h)).status == 200
    assert (await client.post("/c", data=orjson.dumps(pv(app="sec", url=SECRET_URL)), headers=h)).status == 204
    batch = [
        pv(app="sec", url=SECRET_URL),
        pv(app="sec", url=SITE + "/course/7;jsessionid=0123ABC?x=1&PassWord=hunter2"),
        pv(app="sec", url=SITE + "/#/course/7?access_token=tok&x=1"),  # a routed fragment
        pv(app="sec", url=SITE + "/course/7?x=1#access_token=tok&state=s"),  # OAuth implicit flow
    ]
    assert (await client.post("/c", data=orjson.dumps(batch), headers=h)).status == 204
    await flush(client)
    pages = day_hash(rds, "d:page", app="sec")
    assert pages == {SITE + "/course/7?x=1": 6, SITE + "/#/course/7?x=1": 1}
    # Nowhere in Redis, nor in the journal on disk.
    for secret in (b"abc", b"ST-123", b"0123ABC", b"hunter2", b"tok"):
        for key in rds.scan_iter(match="*sec|*"):
            kind = rds.type(key)
            if kind == b"hash":
                assert not any(secret in field for field in rds.hkeys(key)), (secret, key)
        for path in Path(tmp_path).rglob("*"):
            if path.is_file():
                assert secret not in path.read_bytes(), (secret, path)


@pytest.mark.parametrize(
    "url, stripped",
    [
        ("https://a.edu/p?token=abc&ticket=ST-123&x=1", "https://a.edu/p?x=1"),
        ("https://a.edu/p?x=1&TOKEN=abc", "https://a.edu/p?x=1"),
        ("https://a.edu/p?%74oken=abc&x=1", "https://a.edu/p?x=1"),  # an escaped name
        ("https://a.edu/p;jsessionid=AB12?x=1", "https://a.edu/p?x=1"),
        ("https://a.edu/p;jsessionid=AB12", "https://a.edu/p"),
        ("https://a.edu/p?sid=9", "https://a.edu/p"),
        ("https://a.edu/#/c?access_token=t&id=3", "https://a.edu/#/c?id=3"),
        ("https://a.edu/p#access_token=t&state=s", "https://a.edu/p#state=s"),
        ("https://a.edu/p#password=x", "https://a.edu/p"),
        # ordinary parameters of education platforms stay
        ("https://a.edu/p?id=3&code=MATH101&key=%E6%95%B0%E5%AD%A6&tokens=2", "https://a.edu/p?id=3&code=MATH101&key=%E6%95%B0%E5%AD%A6&tokens=2"),
        ("https://a.edu/p?x=token=1", "https://a.edu/p?x=token=1"),
        ("https://a.edu/p", "https://a.edu/p"),
    ],
)
def test_secret_stripper(url, stripped):
    assert SecretStripper(DEFAULT_SECRET_PARAMS).strip(url) == stripped


def test_an_empty_secret_list_strips_nothing():
    assert SecretStripper(()).strip(SECRET_URL) == SECRET_URL


URL_PIECES = [
    "?", "&", ";", "#", "/", "=", "==", "%", " ", "\x00", "a", "id", "tic", "tokens", "ticketx", "https://e.edu",
    "token", "TOKEN", "ToKeN", "sid", "SID", "Sid", "ticket", "x-amz-signature", "X-Amz-Signature", "phpsessid",
    "sessionid", "session_id", "jsessionid", "ſid", "K", "\u212aey", "ı", "İd", "tİcket", "中", "é", "学", "\ud800",
    "b", "x", "y", "key", "KEY",
]


def random_url(rng) -> str:
    return "".join(rng.choice(URL_PIECES) for _ in range(rng.randrange(0, 14)))


def secret_test_disagrees(stripper: SecretStripper, maybe) -> str | None:
    """The first of 60,000 random URLs (and longer ones past the longest name's reach) on
    which `maybe` answers otherwise than the regex SecretStripper.maybe_secret stands for."""
    import random

    pattern = stripper._maybe
    assert pattern is not None
    rng = random.Random(17)
    found = 0
    for n in range(60000):
        url = random_url(rng) if n % 50 else "https://e.edu/" + "a" * rng.randrange(30) + random_url(rng) * 3
        answer = maybe(url)
        if answer != (pattern.search(url) is not None):
            return url
        found += answer
    assert found > 300 or set(stripper.names) != set(DEFAULT_SECRET_PARAMS)  # the default list's "yes" drawn often
    return None


@pytest.mark.parametrize("names", [
    DEFAULT_SECRET_PARAMS, ("token",), ("ſid", "key"), ("a/b", "token"), ("x=y",), ("İd",), ("K",)],
    ids=["default", "one", "non-ascii", "separator", "equals", "dotted", "kelvin"])
def test_the_secret_test_answers_as_its_regex(names):
    """SecretStripper.maybe_secret (session 17: the name before each '=') against the
    regex it stands for, on the hostile pieces (Unicode case folds: ſ/s, K/k, ı/i; names
    with separators or '='; '=' runs) in random URLs."""
    stripper = SecretStripper(names)
    assert secret_test_disagrees(stripper, stripper.maybe_secret) is None


def test_the_secret_test_comparison_can_fail():
    """A test by lower() alone is caught: to the regex, ſ is an s (ſid is sid)."""
    stripper = SecretStripper(("sid",))
    assert stripper.maybe_secret("/?ſid=1")

    def by_lower(url: str) -> bool:
        return any(f"{sep}sid=" in url.lower() for sep in "?&;#/")

    assert secret_test_disagrees(stripper, by_lower) is not None


def test_worker_caps_bound_values_and_learn_the_deployments_refusals():
    caps = CardinalityCaps({"page": 2}, value_max_chars=64)
    assert [caps.admit("page", "a", "d", v) for v in ("p1", "p2", "p3")] == ["p1", "p2", OTHER]
    caps.learn("page", "a", "d", {"p2"})  # another worker took the deployment's place
    assert caps.admit("page", "a", "d", "p2") == OTHER
    assert caps.admit("page", "a", "d", "p4") == "p4"  # its place here is free for a value the deployment may hold
    assert bounded("z" * 500, 64) != bounded("z" * 499 + "y", 64) and len(bounded("z" * 500, 64)) == 64


def test_equal_values_admitted_share_the_string_first_held():
    """Each hit parses its own copy of its page's URL; the caps answer a held value with the
    string they hold, so the snapshot's cells of one page share one (bench/RESULTS.md,
    session 29). A value refused, or over the cap, is not held and is answered as it came."""
    caps = CardinalityCaps({"page": 2}, value_max_chars=64)
    first = "".join(["https://school.example/", "course/1"])
    again = "".join(["https://school.example/", "course/1"])
    assert again is not first
    assert caps.admit("page", "a", "d", first) is first and caps.admit("page", "a", "d", again) is first
    assert caps.admit("page", "b", "d", again) is again  # another app: its own day's values
    caps.admit("page", "a", "d", "p2")
    caps.learn("page", "a", "d", {first})
    assert caps.admit("page", "a", "d", again) == OTHER


def test_a_day_dropped_by_another_kind_is_not_admitted_into_from_a_scopes_memory():
    """A scope's memo of its app's day's values (features/facts.py EventScope, session 19)
    goes when the caps drop a day: here a third day, seen by pages, drops d1, so the targets
    of d1 start afresh — a remembered d1 set, full at its cap of 1, would send "z" to
    (other). Fails without the generation's move in _new_day (tried). And learn's refusals
    reach the remembered set."""
    caps = CardinalityCaps({"target": 1, "page": 9}, value_max_chars=64)
    scope = EventScope(caps, "a", "d1", b"v", b"m")
    assert scope.admit("target", "t1") == "t1"
    assert scope.admit("target", "t2") == OTHER  # the cap of d1's targets
    caps.admit("page", "a", "d2", "p")
    caps.admit("page", "a", "d3", "p")  # keeps d2 and d3: d1 dropped
    assert scope.admit("target", "z") == "z"
    caps.learn("target", "a", "d1", {"z"})
    assert scope.admit("target", "z") == OTHER
    assert EventScope(caps, "b", "d1", b"v", b"m").admit("target", "z") == "z"  # another app: its own set


# ---- a real process's memory ------------------------------------------------------------------


@pytest.mark.slow
def test_a_flood_of_distinct_values_leaves_memory_and_redis_bounded(collector_factory, rds):
    """Rounds of distinct resource ids, media sessions and pages from loopback (issue 13's
    probe, smaller): the session hashes stop at the cap, and the process stops growing
    once its caps are full (flush threads' arenas capped, heap trimmed after big flushes)."""
    from bench.caps_memory import APP, rss_kb, send_round, settle

    cap = 2_000
    running = collector_factory(cap_media_sessions=cap, cap_pages=cap, cap_resources=cap)
    rss_mb = []
    for r in range(3):
        for kind in ("media", "page"):
            assert send_round(running.port, kind, r * 8_000, 8_000, conns=2) == {204: 8_000}
        settle(running.port, timeout=60)
        rss_mb.append(rss_kb(running.proc.pid) / 1024)
    tags = [keys.slot_tag(APP, "day", today()), keys.slot_tag(APP, "month", today()[:6])]
    sessions = sum(rds.hlen(keys.sessions(tag)) for tag in tags)
    assert sessions <= 2 * (cap + 1)  # the day's and the month's record, (other) included
    assert rds.hlen(keys.bucket_key(APP, "day", today(), "d:page")) == cap + 1
    # Full caps from the first round on: later rounds add (almost) nothing to the process.
    assert rss_mb[2] - rss_mb[0] < 40, rss_mb


# ---- decisions are final: a replay writes the same counts ----------------------------------


async def test_a_batch_decided_again_is_rewritten_the_same_way(redis_url):
    """A journal replay after a crash (a fresh process: nothing remembered) asks Redis again
    about the same batch: the answers, hence the writes, must be the very same — or the
    per-slot sequence markers would skip calls whose content changed."""
    import redis.asyncio as aioredis

    from collector.hit.record import Cell
    from collector.store.aggregate import Aggregator
    from collector.store.capping import DeploymentCaps

    calendar = Calendar("Asia/Shanghai")
    minute = int(time.time() // 60)
    aggregator = Aggregator()
    for i in range(8):
        aggregator.count(_page_hit("replayed", minute, f"{SITE}/{i}"))
    snap = aggregator.drain()
    client = aioredis.from_url(redis_url)
    try:
        decisions = []
        for _ in range(3):  # the first run, then two "restarted" ones
            caps = DeploymentCaps({"page": 5}, calendar)
            wanted, present = caps.undecided(snap)
            refused = await caps.decide(client, wanted, present, timeout=5)
            decisions.append(sorted(refused[("replayed", today(), "page")]))
            rewritten = caps.rewritten(snap, refused)
            pages = {Cell._make(key).page: sums[0] for key, sums in rewritten.cube.items()}
            assert len(pages) == 6 and pages[OTHER] == 3 and sum(pages.values()) == 8
        assert decisions[0] == decisions[1] == decisions[2] and len(decisions[0]) == 3
    finally:
        await client.aclose()


def _page_hit(app: str, minute: int, page: str):
    from collector.enrich.device import Device
    from collector.enrich.geo import UNKNOWN_REGION
    from collector.hit.record import new_hit

    return new_hit(app=app, minute=minute, etype="pageview", device=Device("pc", "Chrome", "Windows"),
                   region=UNKNOWN_REGION, visitor=b"v", month_visitor=b"m", page=page, referrer="(direct)")


@pytest.mark.parametrize("http_layer", ["fast path"], indirect=True)
async def test_re_sent_events_are_capped_like_first_sends(collector_client, rds, http_layer):
    """Re-sent events (re=1) are counted apart, after their ids are checked (store/dedupe.py):
    their values meet the deployment's caps too. One collector fills the cap with first
    sends; another, whose own filter still has room, gets re-sends of new pages."""
    first, second = await collector_client(cap_pages=3), await collector_client(cap_pages=3)
    now_ms = int(time.time() * 1000)
    await send(first, [pv(url=f"{SITE}/first/{i}") for i in range(3)])
    await flush(first)
    await send(second, [pv(url=f"{SITE}/resent/{i}", id=f"resent-{i}", ts=now_ms, re=1) for i in range(3)])
    await flush(second)
    pages = day_hash(rds, "d:page")
    assert pages == {**{f"{SITE}/first/{i}": 1 for i in range(3)}, OTHER: 3}
