"""Views across platforms (docs/groups-and-reports.md): groups from the registry, their
figures in /api/stats?group=, who may read them, and the HyperLogLog union on both paths
(in place, and copied into one slot as on Redis Cluster). Real Redis, the real app."""

from __future__ import annotations

import asyncio
import json

import pytest
from test_registry_model import application

from collector.registry.groups import BadGroup, parse_group_id
from collector.registry.store import RegistryStore
from collector.store import keys
from collector.store.hll_union import count_unions
from collector.web.appkeys import REDIS

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.{n}.0 Safari/537.36"
# Registered platforms: two in Zhejiang (prefectures 3301, 3302), one in Beijing, one test platform.
PLATFORMS = (("zja", "330100", "浙江省教育厅"), ("zjb", "330203", "宁波市教育局"), ("bja", "110000", "北京市教委"))



@pytest.fixture
def http_layer() -> str:
    """One HTTP layer is enough here: the hit path itself is tested on both elsewhere."""
    return "fast path"


async def register(redis, platform_id: str, region: str, org: str, environment: str = "production") -> str:
    store = RegistryStore(redis)
    await store.apply(_platform(platform_id, region, org, environment), "test")
    issued = await store.act(platform_id, "approve", "test")
    return issued.app_key or ""


def _platform(platform_id: str, region: str, org: str, environment: str):
    from collector.registry.application import parse_application

    return parse_application(application(id=platform_id, region=region, org=org, environment=environment,
                                         domains=[f"{platform_id}.example.cn"]))


async def send_pageviews(client, app: str, visitors: range, ip_base: str = "100.64") -> None:
    """One page view per visitor (IP + User-Agent), `registry=open`: counted under `app`."""
    async def one(n: int) -> None:
        headers = {"X-Forwarded-For": f"{ip_base}.{n // 250}.{n % 250 + 1}", "User-Agent": BROWSER.format(n=n)}
        answer = await client.get(f"/c?k={app}&t=pageview&sn=1&u=https://{app}.example.cn/p", headers=headers)
        assert answer.status == 204, await answer.text()

    for start in range(visitors.start, visitors.stop, 50):
        await asyncio.gather(*(one(n) for n in range(start, min(start + 50, visitors.stop))))


async def stats(client, query: str, token: str | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = await client.get("/api/stats?" + query, headers=headers)
    return answer.status, json.loads(await answer.read())


async def wait_for_pv(client, query: str, pv: int) -> dict:
    for _ in range(200):  # the flush runs every 50 ms
        status, body = await stats(client, query)
        if status == 200 and body["totals"]["pv"] == pv:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"{query}: pv {body['totals']['pv']} != {pv}")


@pytest.fixture
async def registered(collector_client):
    client = await collector_client()
    redis = client.server.app[REDIS]
    for platform_id, region, org in PLATFORMS:
        await register(redis, platform_id, region, org)
    await register(redis, "zjtest", "330100", "浙江省教育厅", environment="test")
    return client


async def test_group_uv_is_a_distinct_count_across_platforms_not_a_sum(registered):
    client = registered
    # 300 people visit both Zhejiang platforms, 100 more only zjb, 50 only the Beijing one.
    await send_pageviews(client, "zja", range(300))
    await send_pageviews(client, "zjb", range(400))
    await send_pageviews(client, "bja", range(1000, 1050))
    await wait_for_pv(client, "app=zja", 300)
    await wait_for_pv(client, "app=zjb", 400)
    await wait_for_pv(client, "app=bja", 50)

    zj = await wait_for_pv(client, "group=province:33&breakdown=device,region", 700)
    assert zj["app"] == "province:33"
    assert zj["group"] == {"id": "province:33", "kind": "province", "name": "浙江省", "platforms": ["zja", "zjb"]}
    uv = zj["totals"]["uv"]
    assert abs(uv - 400) <= 400 * 0.02, uv  # a union: 400 people, never 300 + 400
    assert abs(zj["series"][0]["uv"] - 400) <= 8
    assert sum(r["pv"] for r in zj["breakdowns"]["device"]) == 700
    assert abs(zj["breakdowns"]["device"][0]["uv"] - 400) <= 8  # the device UV is a union too
    assert abs(sum(r["uv"] for r in zj["breakdowns"]["region"]["city"]) - 400) <= 8
    assert zj["attribution"]["license"] == "CC BY 4.0"

    everyone = await wait_for_pv(client, "group=all", 750)
    assert everyone["group"]["platforms"] == ["bja", "zja", "zjb"]  # no test platform in `all`
    assert abs(everyone["totals"]["uv"] - 450) <= 9
    assert (await wait_for_pv(client, "group=prefecture:3302", 400))["group"]["name"] == "宁波市"
    assert (await wait_for_pv(client, "group=org:北京市教委", 50))["group"]["platforms"] == ["bja"]
    nobody = await wait_for_pv(client, "group=province:44&breakdown=region,device,resource", 0)  # no platform there
    assert nobody["group"]["platforms"] == [] and nobody["totals"]["uv"] == 0 and nobody["breakdowns"]["device"] == []


async def test_copied_unions_equal_pfcount_in_place(redis_server):
    """The Redis Cluster path (copies in one slot) gives Redis's own answer, and leaves nothing."""
    import redis.asyncio as aioredis

    redis = aioredis.Redis.from_url(f"redis://127.0.0.1:{redis_server.port}")
    hlls = [keys.visitors(app, "day", "20261001") for app in ("ua", "ub", "uc")]
    for i, key in enumerate(hlls):
        await redis.pfadd(key, *[f"v{n}" for n in range(i * 500, i * 500 + 3000)])  # overlapping: dense HLLs
    unions = [hlls, hlls[:2], [hlls[2]], ["eb:{nothing|20261001}:day:20261001:u"], []]
    in_place = await count_unions(redis, [u for u in unions if u], copy=False)
    copied = await count_unions(redis, [u for u in unions if u], copy=True)
    assert copied == in_place and in_place[-1] == 0 and abs(in_place[0] - 4000) < 4000 * 0.03
    assert not await redis.keys("eb:{hll:*")
    await redis.aclose()


def _cluster_port() -> int:
    """A free port whose cluster bus port (the port + 10000, fixed in Redis 6) is free too."""
    import random
    import socket

    while True:
        port = random.randrange(20000, 50000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue


@pytest.fixture(scope="module")
def small_cluster(tmp_path_factory):
    """Three redis-server masters in cluster mode (no replicas): the slots a group spans."""
    import shutil
    import subprocess
    import time

    from collector.embedded_redis import find_redis_server

    if not shutil.which("redis-cli"):
        pytest.skip("redis-cli builds the cluster")
    ports, procs = [_cluster_port() for _ in range(3)], []
    for port in ports:
        folder = tmp_path_factory.mktemp(f"cluster{port}")
        procs.append(subprocess.Popen([find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                                       "--save", "", "--appendonly", "no", "--cluster-enabled", "yes",
                                       "--cluster-config-file", "nodes.conf", "--logfile", str(folder / "redis.log")],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
    try:
        for port in ports:
            for _ in range(100):
                if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).stdout.strip() == "PONG":
                    break
                time.sleep(0.05)
        subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-replicas", "0",
                        "--cluster-yes"], check=True, capture_output=True, text=True, timeout=60)
        for _ in range(200):
            info = subprocess.run(["redis-cli", "-p", str(ports[0]), "cluster", "info"], capture_output=True, text=True).stdout
            if "cluster_state:ok" in info:
                break
            time.sleep(0.05)
        yield ports[0]
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


async def test_on_redis_cluster_the_union_is_copied_into_one_slot(small_cluster):
    """PFCOUNT across slots is refused on a real Redis Cluster; the copy counts the union."""
    from redis.asyncio.cluster import RedisCluster
    from redis.exceptions import RedisClusterException

    cluster = RedisCluster(host="127.0.0.1", port=small_cluster)
    try:
        hlls = [keys.visitors(app, "day", day) for app in ("ca", "cb") for day in ("20261001", "20261002")]
        for i, key in enumerate(hlls):
            await cluster.pfadd(key, *[f"v{n}" for n in range(i * 100, i * 100 + 1000)])
        with pytest.raises(RedisClusterException, match="same key slot"):  # the client refuses before Redis would
            await cluster.pfcount(*hlls)
        counted = await count_unions(cluster, [hlls, hlls[:1]])
        assert abs(counted[0] - 1300) <= 13 and abs(counted[1] - 1000) <= 10
        assert not [k async for k in cluster.scan_iter("eb:{hll:*")]

        # The whole read of a group, as /api/stats?group= does it, across slots.
        from collector.api.stats import StatsReader
        from collector.store.buckets import Calendar

        calendar = Calendar("Asia/Shanghai")
        for app in ("ca", "cb"):
            for day in ("20261001", "20261002"):
                await cluster.hset(keys.counters(app, "day", day), mapping={"pv": 10})
                await cluster.hset(keys.dimension(app, "day", day, "device"), mapping={"mobile": 10})
                await cluster.pfadd(keys.dimension_visitors(app, "day", day, "device", "mobile"), "x", "y", app)
        buckets = calendar.span("day", calendar.parse_instant("2026-10-01"), calendar.parse_instant("2026-10-02"))
        answer = await StatsReader(cluster, calendar, lambda: 0.0).read(["ca", "cb"], "day", buckets, ["device"], label="set:c")
        assert answer["totals"]["pv"] == 40 and answer["totals"]["uv"] == counted[0] and answer["app"] == "set:c"
        assert answer["breakdowns"]["device"] == [{"value": "mobile", "pv": 40, "uv": 4}]  # x, y, ca, cb
    finally:
        await cluster.aclose()


async def test_a_platform_credential_reads_no_group_holding_others(registered):
    client = registered
    redis = client.server.app[REDIS]
    store = RegistryStore(redis)
    token = (await store.issue_read_token("zja", "test")).read_token
    admin = await store.create_admin_token("lead", "test")
    await send_pageviews(client, "zja", range(5))
    await wait_for_pv(client, "app=zja", 5)

    for group in ("province:33", "all", "prefecture:3302", "set:east"):
        if group == "set:east":
            answer = await client.put("/api/admin/groups/east", data=json.dumps({"title": "东部", "platforms": ["zja", "zjb"]}),
                                      headers={"Authorization": f"Bearer {admin}"})
            assert answer.status == 200
        status, body = await stats(client, "group=" + group, token)
        assert status == 403 and "holds other platforms" in body["error"], (group, body)
    # zja is alone in its prefecture and its organisation (the test platform counts apart):
    # those groups are its own figures, so it may read them.
    status, body = await stats(client, "group=prefecture:3301", token)
    assert status == 200 and body["group"]["platforms"] == ["zja"] and body["totals"]["pv"] == 5
    listed = json.loads(await (await client.get("/api/groups", headers={"Authorization": f"Bearer {token}"})).read())
    assert [g["id"] for g in listed["groups"]] == ["org:浙江省教育厅", "prefecture:3301"]

    listed = json.loads(await (await client.get("/api/groups", headers={"Authorization": f"Bearer {admin}"})).read())
    assert [g["id"] for g in listed["groups"]] == [
        "all", "org:北京市教委", "org:宁波市教育局", "org:浙江省教育厅", "prefecture:3301", "prefecture:3302",
        "province:11", "province:33", "set:east"]


@pytest.mark.parametrize("query, reason", [
    ("group=province:3", "is not one of"), ("group=set:nope", "no set 'nope'"), ("group=all&app=zja", "not both"),
    ("group=" + "x" * 5000, "is not one of"), ("group=prefecture:33%0a01", "is not one of"),
])
async def test_bad_groups_are_400_with_the_reason(registered, query, reason):
    status, body = await stats(registered, query)
    assert status == 400 and reason in body["error"]


async def test_a_read_covers_a_bounded_number_of_platform_buckets(registered):
    store = RegistryStore(registered.server.app[REDIS])
    await store.save_set("big", "", [f"p{n}" for n in range(700)], "test")
    status, body = await stats(registered, "group=set:big&from=2026-10-01&to=2026-10-31")
    assert status == 400 and "700 platforms over 31 buckets" in body["error"]
    assert (await stats(registered, "group=set:big&from=2026-10-01&to=2026-10-31&granularity=month"))[0] == 200


async def test_copies_past_their_budget_are_refused_and_removed(redis_server, monkeypatch):
    import redis.asyncio as aioredis

    from collector.store import hll_union

    redis = aioredis.Redis.from_url(f"redis://127.0.0.1:{redis_server.port}")
    hlls = [keys.visitors(f"big{n}", "day", "20261001") for n in range(4)]
    for key in hlls:
        await redis.pfadd(key, *[f"{key}{n}" for n in range(5000)])  # dense: 12 KB each
    monkeypatch.setattr(hll_union, "MAX_COPY_BYTES", 30_000)
    with pytest.raises(hll_union.UnionTooLarge):
        await count_unions(redis, [hlls], copy=True)
    assert not await redis.keys("eb:{hll:*")
    await redis.aclose()


async def test_named_sets_admin_api(registered):
    client = registered
    admin = await RegistryStore(client.server.app[REDIS]).create_admin_token("lead", "test")
    auth = {"Authorization": f"Bearer {admin}"}
    put = lambda body, name="east": client.put(f"/api/admin/groups/{name}", data=body, headers=auth)
    assert (await put(json.dumps({"platforms": ["zjb", "zja", "zja"]}))).status == 200
    status, body = await stats(client, "group=set:east")
    assert status == 200 and body["group"] == {"id": "set:east", "kind": "set", "name": "east", "platforms": ["zja", "zjb"]}
    for bad in ("{", "[]", json.dumps({"platforms": []}), json.dumps({"platforms": ["Bad Id"]}),
                json.dumps({"platforms": ["a"], "extra": 1}), json.dumps({"platforms": ["a"], "title": "\x00"})):
        assert (await put(bad)).status == 400, bad
    assert (await put(json.dumps({"platforms": ["a"]}), name="Bad_Name")).status == 400
    assert (await put(json.dumps({"platforms": ["a"]}), name="x")).status == 200
    assert (await client.put("/api/admin/groups/east", data="{}")).status == 401
    assert (await client.delete("/api/admin/groups/east", headers=auth)).status == 200
    assert (await client.delete("/api/admin/groups/east", headers=auth)).status == 404
    assert (await stats(client, "group=set:east"))[0] == 400


def test_group_id_syntax():
    assert parse_group_id("province:33") == ("province", "33")
    assert parse_group_id("org:浙江省教育厅") == ("org", "浙江省教育厅")
    for bad in ("province:330000", "prefecture:33", "set:A", "org:", "city:3301", "", "all:"):
        with pytest.raises(BadGroup):
            parse_group_id(bad)


async def test_collector_stats_group(registered, capsys):
    from collector.cli import main

    client = registered
    await send_pageviews(client, "zja", range(20))
    await send_pageviews(client, "zjb", range(30))
    await wait_for_pv(client, "group=province:33", 50)
    url = str(client.make_url("")).rstrip("/")
    assert await asyncio.to_thread(main, ["stats", "--group", "province:33", "--by", "city", "--url", url]) == 0
    out = capsys.readouterr().out
    uv = int(out.split("PV 50  UV ", 1)[1].split()[0])
    assert "浙江省 (province:33)" in out and abs(uv - 30) <= 1 and "杭州市" in out and "IP Geolocation by DB-IP" in out
    assert await asyncio.to_thread(main, ["stats", "--group", "set:nope", "--url", url]) == 1
    assert "no set 'nope'" in capsys.readouterr().err
