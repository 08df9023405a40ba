"""Hostile input at /c: every field of the protocol with every JSON type, by POST and
by GET, through both HTTP layers, and a Hypothesis fuzz. Only 204, 400 or 413 may come
back, never a 5xx, and the valid events sent beside bad ones are counted exactly."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qsl, quote, urlencode

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.hit.protocol import (
    EVENT_TYPES,
    INT_FIELDS,
    INTERACTIONS,
    MEDIA_ACTIONS,
    STRING_FIELDS,
    decode_query,
)
from collector.web.appkeys import FLUSHER, INGEST

UA = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"}
ALLOWED = {204, 400, 413}
CONTROL_APP = "control"
CONTROL = {"k": CONTROL_APP, "t": "pageview", "u": "https://control.edu/page"}

FIELDS = [*STRING_FIELDS, *INT_FIELDS, "p", "img", "zz_unknown", ""]
# Every JSON type, as JSON text: orjson cannot even write some of them (1e400, 2**80).
JSON_VALUES = [
    '"x"', '""', '"' + "x" * 3000 + '"', '"\\u0000{}"', '"\\ud83d"',
    "0", "10", "-1", "1.5", "-0.0", "99999999999999999999999", "1e400", "-1e400", "1e-400",
    "true", "false", "null",
    "[]", '[1,"a"]', "[[[1]]]", "{}", '{"a":1}', '{"a":{"b":[1,{"c":null}]}}',
]
# Each event type, and media and interaction with each action: the smallest valid event.
MEDIA_BASE = {"rid": "r1", "ms": "m1", "pos": 1, "ws": 1, "wt": 5, "dur": 100}
CONTEXTS: dict[str, dict] = {
    "alone": {},
    "pageview": {"k": "fz", "t": "pageview", "u": "https://fz.edu/"},
    "engagement": {"k": "fz", "t": "engagement", "et": 1000},
    "click": {"k": "fz", "t": "click", "n": "buy"},
    "exposure": {"k": "fz", "t": "exposure", "n": "slide", "tr": "banner", "pos": 1},
    "custom": {"k": "fz", "t": "custom", "n": "x"},
    **{f"media {a}": {"k": "fz", "t": "media", "n": a, **MEDIA_BASE, "pb": 50} for a in MEDIA_ACTIONS},
    **{f"interaction {a}": {"k": "fz", "t": "interaction", "n": a, "rid": "r1", "score": 3} for a in INTERACTIONS},
}
assert {c.partition(" ")[0] for c in CONTEXTS} == EVENT_TYPES | {"alone"}


def with_field(base: dict, name: str, raw_json: str) -> bytes:
    """`base` with field `name` set to the JSON text `raw_json`."""
    rest = orjson.dumps({k: v for k, v in base.items() if k != name})
    return rest[:-1] + (b"," if len(rest) > 2 else b"") + orjson.dumps(name) + b":" + raw_json.encode() + b"}"


async def flush(client):
    assert await client.server.app[FLUSHER].flush()


async def control_pv(client) -> int:
    resp = await client.get("/api/stats", params={"app": CONTROL_APP})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["totals"]["pv"]


async def send_all(requests, limit: int = 8):
    """Runs the request coroutines a few at a time (keep-alive connections are reused)."""
    gate = asyncio.Semaphore(limit)

    async def one(make):
        async with gate:
            return await make()

    return await asyncio.gather(*(one(make) for make in requests))


async def test_every_field_with_every_json_type_by_post(collector_client):
    """Each batch holds one field's every JSON type in one event context, then a control
    page view: the answer is 204 or 400, and the control is counted."""
    client = await collector_client()

    async def post(context: str, name: str):
        body = b"[" + b",".join(with_field(CONTEXTS[context], name, raw) for raw in JSON_VALUES)
        body += b"," + orjson.dumps(CONTROL) + b"]"
        resp = await client.post("/c", data=body, headers=UA)
        text = await resp.text()
        assert resp.status in ALLOWED, (context, name, resp.status, text)
        if resp.status == 400:
            answer = orjson.loads(text)
            assert answer["accepted"] >= 1, (context, name, text)
            assert all(error["event"] != len(JSON_VALUES) for error in answer["errors"]), (context, name, text)

    pairs = [(context, name) for context in CONTEXTS for name in FIELDS]
    await send_all([lambda c=c, n=n: post(c, n) for c, n in pairs])
    await flush(client)
    assert await control_pv(client) == len(pairs)


# In a query string every value is text: each JSON value as its text, and some plain text.
TEXT_VALUES = [v.strip('"') if v.startswith('"') else v for v in JSON_VALUES] + [
    "abc", " 12 ", "1_000", "+5", "١٢", "0x10", "%", "%ZZ", "%FF", "%ED%A0%80", "a&b=c", "😀",
]


async def test_every_field_with_every_text_by_get(collector_client):
    """Each field with each text in each event context, as an image pixel and as a plain
    GET; then control page views by GET are counted exactly."""
    client = await collector_client()

    async def get(context: str, name: str, text: str, img: bool):
        event = {k: str(v) for k, v in CONTEXTS[context].items() if k != name}
        query = urlencode({**({"img": "1"} if img else {}), **event}) + "&" + quote(name) + "=" + quote(text, safe="%")
        resp = await client.get("/c?" + query, headers=UA)
        assert resp.status in ALLOWED | {200}, (context, name, text, resp.status, await resp.text())
        await resp.read()

    cases = [(context, name, text) for context in ("alone", "pageview", "media progress", "interaction rate", "exposure")
             for name in FIELDS for text in TEXT_VALUES]
    cases += [(context, name, text) for context in CONTEXTS for name in FIELDS for text in ("[1]", "{}", "1e400", "")]
    await send_all([lambda c=c, n=n, t=t, i=i: get(c, n, t, i % 2 == 0) for i, (c, n, t) in enumerate(cases)])
    controls = 25
    for _ in range(controls):
        resp = await client.get("/c", params={"img": "1", **CONTROL}, headers=UA)
        assert resp.status == 200
    await flush(client)
    assert await control_pv(client) == controls


# ---- fuzz -------------------------------------------------------------------------------

NAMES = st.sampled_from(FIELDS) | st.text(max_size=8)
WORDS = st.sampled_from(sorted(EVENT_TYPES) + list(MEDIA_ACTIONS) + list(INTERACTIONS) + ["fz", "https://e.edu/"])
SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20) | WORDS | st.sampled_from([0, 1, 10, 25, 50, 100, 3])
)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NAMES, inner, max_size=4), max_leaves=8)
EVENTS = st.dictionaries(NAMES, JSON, max_size=10) | JSON
QUERY_TEXT = st.lists(st.sampled_from([*"%+=&;#abkt019FfEeD ", "%3D", "%26", "%2B", "%E4%B8%AD", "%FF", "é"]), max_size=20).map("".join)


def json_text(value) -> bytes:
    """The stdlib writes what orjson refuses (integers over 64 bits); an infinity is
    written as 1e400, which is JSON and parses as infinity."""
    return json.dumps(value).replace("Infinity", "1e400").encode()


@pytest.mark.parametrize("http_layer", ["aiohttp routes"])  # Ingest is called directly: one app is enough
async def test_fuzz_never_5xx_and_control_is_exact(collector_client):
    client = await collector_client()
    ingest = client.server.app[INGEST]
    sent = []

    def answer_is_fine(answer, control_included: bool = False) -> None:
        assert answer.status in ALLOWED | {200}, (answer.status, answer.body[:500])
        if control_included and answer.status == 400:
            assert orjson.loads(answer.body)["accepted"] >= 1, answer.body[:500]

    @settings(max_examples=1000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(events=st.lists(EVENTS, max_size=5))
    def post(events):
        body = b"[" + b",".join([json_text(e) for e in events] + [orjson.dumps(CONTROL)]) + b"]"
        answer_is_fine(ingest.hit_body(body, "127.0.0.1", None, UA["User-Agent"], None), control_included=True)
        sent.append(1)

    values = JSON.map(lambda v: v if isinstance(v, str) else json_text(v).decode()) | QUERY_TEXT

    @settings(max_examples=1000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(pairs=st.lists(st.tuples(NAMES | QUERY_TEXT, values)), raw=QUERY_TEXT)
    def get(pairs, raw):
        query = "&".join(quote(n) + "=" + quote(v) for n, v in pairs) + "&" + raw
        answer_is_fine(ingest.hit_query(decode_query(query), "127.0.0.1", None, UA["User-Agent"], None))

    post()
    get()
    await flush(client)
    assert await control_pv(client) == len(sent)


@settings(max_examples=3000, deadline=None, database=None)
@given(st.lists(st.sampled_from([
    *"%+=&;#aZ09fFeE/ ?中", "%3D", "%26", "%2B", "%3B", "%23", "%25", "%FF", "%C3", "%A9", "%ED%A0%80", "%E4%B8%AD", "%F0%9F%98%80",
]), max_size=30).map("".join))
def test_decode_query_is_parse_qsl(raw):
    """GET parameters decode exactly as `parse_qsl(keep_blank_values=True, errors="replace")`,
    last value winning (a literal '#' ends the query, as it does in a URL). The alphabet
    cannot spell ti or cs, the fields decode_query may leave encoded."""
    expected = dict(parse_qsl(raw.partition("#")[0], keep_blank_values=True, errors="replace"))
    decoded = decode_query(raw)
    assert decoded == expected


# ---- one decoding for GET and POST --------------------------------------------------------


async def test_same_page_view_by_get_and_by_post_is_one_page_of_one_app(collector_client):
    """The beacon's image fallback (URLSearchParams: '+' for spaces, reserved characters
    escaped) and its POST file a page view under the same app, page and referrer."""
    client = await collector_client()
    event = {"k": "a&b=c;d+e", "t": "pageview", "u": "https://x.edu/course?id=7&tab=2&q=a+b c#x",
             "r": "https://www.baidu.com/s?wd=高等数学;x=1", "ti": "第三章 & 练习 = 1+1", "pc": "p=1&2"}
    resp = await client.post("/c", data=orjson.dumps([event]), headers=UA)
    assert resp.status == 204, await resp.text()
    resp = await client.get("/c?img=1&" + urlencode(event), headers=UA)  # quote_plus, as URLSearchParams
    assert resp.status == 200
    resp = await client.get("/c?" + urlencode(event, quote_via=quote), headers=UA)  # %20 for spaces
    assert resp.status == 204, await resp.text()
    await flush(client)
    resp = await client.get("/api/stats", params={"app": event["k"], "breakdown": "page,page_code,referrer"})
    result = await resp.json()
    assert result["totals"]["pv"] == 3
    assert result["breakdowns"]["page"] == [{"value": "https://x.edu/course?id=7&tab=2&q=a+b c", "pv": 3, **_uv(result, "page")}]
    assert [row["value"] for row in result["breakdowns"]["page_code"]] == ["p=1&2"]
    assert [row["value"] for row in result["breakdowns"]["referrer"]] == ["www.baidu.com"]
    resp = await client.get("/api/apps")
    assert (await resp.json())["apps"] == [event["k"]]


def _uv(result: dict, breakdown: str) -> dict:
    """The row's fields besides value and pv (uv and the like), whatever they are."""
    return {k: v for k, v in result["breakdowns"][breakdown][0].items() if k not in ("value", "pv")}


# ---- HEAD and error bodies --------------------------------------------------------------------


async def test_head_counts_no_page_view(collector_client):
    client = await collector_client()
    for _ in range(3):
        resp = await client.head("/c", params=CONTROL, headers=UA)
        assert resp.status == 405
        assert {m.strip() for m in resp.headers["Allow"].split(",")} == {"GET", "POST", "OPTIONS"}
    resp = await client.get("/c", params=CONTROL, headers=UA)
    assert resp.status == 204
    await flush(client)
    assert await control_pv(client) == 1


async def test_errors_name_no_internal_host_and_are_logged_once(collector_client, caplog):
    from conftest import free_port

    port = free_port()  # nothing listens there: Redis is away
    client = await collector_client(redis_url=f"redis://127.0.0.1:{port}/0")
    caplog.clear()
    for path in ("/api/stats?app=a", "/api/apps", "/api/stats?app=a", "/readyz"):
        resp = await client.get(path)
        text = await resp.text()
        assert "127.0.0.1" not in text and str(port) not in text, (path, text)
    resp = await client.put("/api/catalogue?app=a", data=b'{"total": 10}')
    assert resp.status == 503
    text = await resp.text()
    assert "127.0.0.1" not in text and str(port) not in text, text
    details = [r for r in caplog.records if str(port) in r.getMessage() and r.name == "collector.web.stats_routes"]
    assert len(details) == 1, [r.getMessage() for r in caplog.records]
