"""docs/indicators.md stays true: every `/api/stats` field it names is in a real answer,
every Redis key (and hash field) it names is in a real Redis after real hits, and every
indicator of the standard's tables 3 and 4 has its row."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from conftest import ROOT
from test_openapi import BROWSER, deep_batch

from collector.store import keys

DOC = (ROOT / "docs" / "indicators.md").read_text()
FIELD_PATH = re.compile(r"`((?:totals|series\[\]|breakdowns)(?:\.[\w-]+(?:\[\])?)*|attribution)`")
# `P:c` fields `pv`, `visits` / `P:m:resource` field `ratings:RID` / `eb:catalogue:{APP}` field `total`
REDIS_REF = re.compile(r"`((?:P:|eb:catalogue:)[^`]+)`((?: fields?)(?:,? `[^`]+`)+)?")
PLACEHOLDER = re.compile(r"VALUE|RID")
# The standard's indicator names (tables 3 and 4), as the doc must spell them.
TABLE_3 = ("独立访客", "移动/PC 端设备数", "访客所在地区", "页面浏览次数", "百人浏览量", "点击次数", "点击轨迹")
TABLE_4 = ("资源总数", "各类型资源数", "各来源资源数", "各教育阶段资源数", "资源学科/专业分类", "注册用户数", "用户类型",
           "用户浏览时长", "资源观看完成度", "资源平均浏览量", "资源评价次数", "资源平均评分", "资源点赞次数",
           "资源转发次数", "资源收藏次数")


def test_every_indicator_of_tables_3_and_4_has_its_row():
    for number, name in [*enumerate(TABLE_3, 1), *enumerate(TABLE_4, 1)]:
        assert re.search(rf"^\| {number} \| {re.escape(name)}", DOC, re.M), f"no row for {number} {name}"
    for section in ("§7.1.2", "§7.1.3"):
        assert section in DOC


def field_exists(node, parts: list[str]) -> bool:
    if not parts:
        return True
    part, rest = parts[0], parts[1:]
    name, is_list = part.removesuffix("[]"), part.endswith("[]")
    if not isinstance(node, dict) or name not in node:
        return False
    value = node[name]
    if is_list:
        return bool(value) and all(field_exists(row, rest) for row in value)
    return field_exists(value, rest)


def every_breakdown_of_a_real_day():
    return "region,device,page,page_code,referrer,resource,rtype,subject,stage,source,target,track,item,channel"


async def filled_collector(collector_client, test_networks):
    """A real app on a real Redis with one day of every kind of event, and its /api/stats."""
    client = await collector_client()
    catalogue = {"total": 50, "rtype": {"video": 20}, "subject": {"math": 8}, "stage": {"junior": 30}, "source": {"zjer": 40}}
    assert (await client.put("/api/catalogue?app=demo", data=json.dumps(catalogue))).status == 200
    headers = {"X-Forwarded-For": test_networks[0].cidr.split("/")[0], "User-Agent": BROWSER}
    first = await client.get("/c?k=demo&t=pageview&sn=1&vid=visitor-1&pc=home&u=https://e.edu/&r=https://www.baidu.com/", headers=headers)
    assert first.status == 204
    more = [{"k": "demo", "t": "interaction", "n": action, "rid": "v1", "rt": "video", "subj": "math"}
            for action in ("like", "like", "unlike", "favorite", "unfavorite", "comment")]
    more.append({"k": "demo", "t": "media", "n": "read", "rid": "book1", "rt": "textbook", "ms": "r1", "ws": 30, "wt": 30000})
    batch = await client.post("/c", data=json.dumps(deep_batch("demo") + more), headers=headers)
    assert batch.status == 204, await batch.text()
    for _ in range(100):
        stats = await (await client.get(f"/api/stats?app=demo&breakdown={every_breakdown_of_a_real_day()}")).json()
        if stats["totals"]["pv"] == 2 and stats["totals"]["interactions"]["comments"] == 1:
            return stats
        await asyncio.sleep(0.05)
    raise AssertionError(f"the hits did not reach Redis: {stats['totals']}")


@pytest.mark.parametrize("http_layer", ["fast path"])
async def test_every_stats_field_named_is_in_a_real_answer(collector_client, test_networks, http_layer):
    stats = await filled_collector(collector_client, test_networks)
    named = sorted(set(FIELD_PATH.findall(DOC)))
    assert len(named) > 60, "the field pattern no longer finds the doc's fields"
    missing = [path for path in named if not field_exists(stats, path.split("."))]
    assert not missing, f"docs/indicators.md names fields that /api/stats does not answer: {missing}"


@pytest.mark.parametrize("http_layer", ["fast path"])
async def test_every_redis_key_named_is_in_a_real_redis(collector_client, test_networks, rds, http_layer):
    stats = await filled_collector(collector_client, test_networks)
    prefix = keys.bucket_prefix("demo", "day", stats["from"].replace("-", ""))
    references = REDIS_REF.findall(DOC)
    assert len(references) > 40, "the Redis pattern no longer finds the doc's keys"
    for key, fields in references:
        concrete = key.replace("P:", prefix + ":", 1).replace("{APP}", "{demo}")
        if PLACEHOLDER.search(concrete):
            pattern = PLACEHOLDER.sub("*", concrete)
            assert list(rds.scan_iter(match=pattern)), f"no key in Redis matches {key} ({pattern})"
            continue
        assert rds.exists(concrete), f"{key}: {concrete} is not in Redis"
        for field in re.findall(r"`([^`]+)`", fields):
            if PLACEHOLDER.search(field):
                head = PLACEHOLDER.split(field)[0]
                assert any(f.decode().startswith(head) for f in rds.hkeys(concrete)), f"{key} has no field {field}"
            else:
                assert rds.hexists(concrete, field), f"{key} has no field {field}"
