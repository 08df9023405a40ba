"""The browser language breakdown (`breakdown=lang`): page views and UV per primary
language subtag, by GET and by POST, through both HTTP layers, with its values bounded."""

from __future__ import annotations

from urllib.parse import urlencode

import orjson
import pytest
from test_ingest import DESKTOP, IPHONE, flush, headers, pv, stats
from yarl import URL

from collector.features.pages import language_of


@pytest.mark.parametrize("tag, value", [
    ("zh-CN", "zh"), ("zh-Hans-CN", "zh"), ("ZH-tw", "zh"), ("en_US", "en"), ("yue-HK", "yue"), ("ja", "ja"),
    ("x-klingon", "(other)"), ("i-enochian", "(other)"), ("english", "(other)"), ("123", "(other)"), ("q", "(other)"),
    ("", "(unknown)"), (None, "(unknown)"), ("zh CN", "(unknown)"), ("*", "(unknown)"), ("<script>", "(unknown)"),
    ("zh%2DCN", "(unknown)"), ("中文", "(unknown)"), ("zh--CN", "(unknown)"), ("abcdefghi", "(unknown)"),
])
def test_language_of_keeps_the_primary_subtag_and_bounds_the_rest(tag, value):
    assert language_of(tag) == value


def rows(answer: dict) -> dict[str, tuple[int, int]]:
    return {row["value"]: (row["pv"], row["uv"]) for row in answer["breakdowns"]["lang"]}


async def test_page_views_and_visitors_per_language_by_get_and_post(collector_client):
    client = await collector_client()
    a, b, c = headers(DESKTOP, "1.2.3.4"), headers(IPHONE, "5.6.7.8"), headers(DESKTOP, "9.9.9.9")
    # Visitor a: two Chinese page views (POST) and one English (GET pixel, as the beacon's
    # image fallback sends it); visitor b: one Chinese by GET; c: no lang, then a click.
    assert (await client.post("/c", data=orjson.dumps([pv(lang="zh-CN"), pv(lang="zh_TW")]), headers=a)).status == 204
    assert (await client.get("/c?" + urlencode(pv(lang="en-US")), headers=a)).status == 204
    assert (await client.get("/c?" + urlencode({**pv(lang="zh-Hans-CN"), "img": "1"}), headers=b)).status == 200
    assert (await client.post("/c", data=orjson.dumps([pv()]), headers=c)).status == 204
    # Other events carry no language: they join no language's UV, not even (unknown).
    click = {"k": "app1", "t": "click", "n": "buy"}
    assert (await client.post("/c", data=orjson.dumps([click]), headers=headers(IPHONE, "7.7.7.7"))).status == 204
    await flush(client)
    answer = await stats(client, breakdown="lang")
    assert rows(answer) == {"zh": (3, 2), "en": (1, 1), "(unknown)": (1, 1)}
    assert [row["value"] for row in answer["breakdowns"]["lang"]] == ["zh", "(unknown)", "en"]  # by PV, then value
    assert answer["totals"]["pv"] == 5 and answer["totals"]["uv"] == 4


async def test_the_language_values_are_bounded_whatever_clients_send(collector_client):
    client = await collector_client()
    junk = ["x-" + "a" * 8, "abcdefgh", "1234", "zh CN", "<b>", "%7A%68", "a" * 35]
    events = [pv(lang=tag) for tag in junk] + [pv(lang=f"{chr(97 + i)}{chr(97 + i)}-XX") for i in range(5)]
    assert (await client.post("/c", data=orjson.dumps(events), headers=headers(DESKTOP, "1.2.3.4"))).status == 204
    too_long = await client.post("/c", data=orjson.dumps([pv(lang="a" * 36)]), headers=headers())
    assert too_long.status == 400 and "too_long" in await too_long.text()
    wrong = await client.post("/c", data=orjson.dumps([pv(lang=7)]), headers=headers())
    assert wrong.status == 400
    await flush(client)
    found = rows(await stats(client, breakdown="lang"))
    assert found == {
        "(other)": (3, 1), "(unknown)": (4, 1), **{f"{chr(97 + i)}{chr(97 + i)}": (1, 1) for i in range(5)},
    }


async def test_an_unknown_breakdown_lists_lang_among_the_choices(collector_client):
    client = await collector_client()
    answer = await client.get("/api/stats", params={"app": "app1", "breakdown": "language"})
    assert answer.status == 400 and "lang" in (await answer.text())


async def test_a_percent_encoded_lang_by_get_counts_as_its_decoded_tag(collector_client):
    """lang is counted now, so decode_query decodes it like any counted field."""
    client = await collector_client()
    query = "k=app1&t=pageview&u=https%3A%2F%2Fwww.example.edu%2F&lang=zh%2DCN"
    url = URL(str(client.make_url("/c")) + "?" + query, encoded=True)  # sent as it is, %2D and all
    assert "%2D" in str(url)
    assert (await client.session.get(url, headers=headers())).status == 204
    await flush(client)
    assert rows(await stats(client, breakdown="lang")) == {"zh": (1, 1)}
