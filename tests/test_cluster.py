"""Collectors on a real Redis Cluster (3 masters + 3 replicas, tests/redis_cluster.py).

Three collector processes share the cluster under load from referees (tests/faults.py)
that count every acknowledged event; the apps are chosen so that their keys live on
different masters. Then slots move under load (`redis-cli --cluster reshard`), and a
master is killed under load: every acknowledged hit must be counted exactly once, and
each collector's backlog must drain by itself.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import httputil as http
import pytest
import redis
from conftest import _LAUNCHED, FakeClock, launch_collector
from faults import UA, Referee
from redis.crc import key_slot
from redis_cluster import Cluster
from test_registry_model import application

from collector.features.facts import Session
from collector.registry.application import parse_application
from collector.registry.health_store import HealthStore
from collector.registry.store import RegistryStore
from collector.store import keys, redis_client
from collector.store.buckets import Calendar
from collector.store.cluster_send import ClusterSender
from collector.store.flush_script import APPLY_FLUSH_LUA
from collector.store.flusher import encode_calls
from collector.store.rollup import SlotWrites

pytestmark = pytest.mark.slow

TIMEZONE = "Asia/Shanghai"  # the collector's default: its day tags are this local day


def today() -> str:
    return datetime.now(ZoneInfo(TIMEZONE)).strftime("%Y%m%d")


def day_tag(app: str) -> str:
    return keys.slot_tag(app, "day", today())


def slot_of_app(app: str) -> int:
    return key_slot(day_tag(app).encode())


def apps_on_distinct_masters(cluster: Cluster, prefix: str) -> list[str]:
    """One app per master: today's keys of each live on a different master."""
    chosen: dict[int, str] = {}
    for i in range(1000):
        app = f"{prefix}{i}"
        chosen.setdefault(cluster.master_of_slot(slot_of_app(app)).port, app)
        if len(chosen) == len(cluster.masters()):
            return list(chosen.values())
    raise AssertionError("no app names spread over the masters")


@pytest.fixture
def cluster(redis_cluster: Cluster) -> Cluster:
    """The session's cluster, healthy; healed after the test. Not emptied: the module's
    collectors keep state of their own in it (the day's visitor salt), so each test
    counts under app names of its own."""
    redis_cluster.wait_healthy()
    yield redis_cluster
    redis_cluster.heal()


@pytest.fixture(scope="module")
def three_collectors(redis_cluster, test_geo_db, tmp_path_factory):
    """Three collector processes on the cluster, shared by the module's load tests
    (starting three processes per test would cost more than the tests themselves)."""
    base = tmp_path_factory.mktemp("cluster-collectors")
    started = []
    for i in range(3):
        args = ["--redis-url", redis_cluster.url, "--geo-db", ",".join(test_geo_db), "--data-dir", str(base / f"data-{i}"),
                "--flush-interval", "0.2", "--trusted-proxies", "127.0.0.1/32"]
        started.append(launch_collector(base / f"collector-{i}.log", args))
        _LAUNCHED.remove(started[-1])  # stopped here at the module's end, not after each test
    yield started
    for collector in started:
        collector.stop()


def backlog(collector) -> int:
    return http.get_json(collector.base_url + "/api/collector")[1]["pending_flushes"]


def flush_stats(collector) -> dict:
    return http.get_json(collector.base_url + "/api/collector")[1]


def settle(collectors, referees, timeout: float = 60.0) -> None:
    """Wait until every collector's backlog is empty and every acknowledged event is in."""
    reader = collectors[0]

    def done() -> bool:
        return all(backlog(c) == 0 for c in collectors) and all(
            reader.stats(r.app)["totals"]["pv"] >= r.tally.acked for r in referees
        )

    reader.wait_for(done, timeout, interval=0.3)
    time.sleep(0.5)  # anything counted twice would land by now


def assert_exact(collector, referee) -> None:
    totals = collector.stats(referee.app)["totals"]
    tally = referee.tally
    assert tally.acked > 0 and tally.in_doubt == 0, tally
    assert totals["pv"] == tally.acked, (referee.app, totals["pv"], tally.acked)
    # UV: HyperLogLog register collisions may read one or two low, never high.
    assert len(tally.visitors) - 2 <= totals["uv"] <= len(tally.visitors), (totals["uv"], len(tally.visitors))


def load(collectors, apps: list[str]) -> list[Referee]:
    ports = [c.port for c in collectors]
    return [Referee(ports, app=app, threads=len(ports), batch=5).start() for app in apps]


def stop(referees: list[Referee]) -> None:
    for referee in referees:
        referee.stop()


def test_three_collectors_under_load_count_exactly(cluster, three_collectors):
    apps = apps_on_distinct_masters(cluster, "load")
    referees = load(three_collectors, apps)
    time.sleep(4)
    stop(referees)
    settle(three_collectors, referees)
    for referee in referees:
        assert_exact(three_collectors[1], referee)
    # The writes really are spread: each app's counters live on its own master.
    masters = {cluster.master_of_slot(slot_of_app(app)).port for app in apps}
    assert len(masters) == 3
    for app in apps:
        node = cluster.master_of_slot(slot_of_app(app)).client()
        assert node.exists(keys.counters(app, "day", today()))


def reshard(cluster: Cluster, source: int, target: int, slots: int) -> None:
    topology = cluster.topology()
    cluster.redis_cli(
        "--cluster", "reshard", cluster.node_at(source).address,
        "--cluster-from", topology[source]["id"], "--cluster-to", topology[target]["id"],
        "--cluster-slots", str(slots), "--cluster-yes", "--cluster-pipeline", "10",
    )


def app_at_start_of_range(cluster: Cluster, within: int) -> tuple[str, int]:
    """An app whose day slot is among the first `within` slots of its master's lowest
    range (reshard moves a master's slots from its lowest up), and that master."""
    firsts = {}
    for port, info in cluster.topology().items():
        ranges = [spec for spec in info["slots"] if not spec.startswith("[")]
        if info["master"] and ranges:
            firsts[port] = min(int(spec.split("-")[0]) for spec in ranges)
    for i in range(50000):
        app = f"mig{i}"
        slot = slot_of_app(app)
        for port, first in firsts.items():
            if first <= slot < first + within and cluster.master_of_slot(slot).port == port:
                return app, port
    raise AssertionError("no app name near the start of a master's slots")


def test_slots_moving_back_and_forth_under_load_count_exactly(cluster, three_collectors):
    moved = 48
    app, home = app_at_start_of_range(cluster, moved)
    other = next(m.port for m in cluster.masters() if m.port != home)
    referees = load(three_collectors, [app])
    time.sleep(1.5)
    # Back and forth while hits flow: each reshard moves the app's slot with its keys.
    reshard(cluster, home, other, moved)
    assert cluster.master_of_slot(slot_of_app(app)).port == other
    time.sleep(0.5)
    reshard(cluster, other, home, moved)
    time.sleep(0.5)
    reshard(cluster, home, other, moved)
    time.sleep(1)
    stop(referees)
    settle(three_collectors, referees)
    assert_exact(three_collectors[2], referees[0])
    assert cluster.master_of_slot(slot_of_app(app)).port == other


def test_master_killed_under_load_loses_nothing_counts_nothing_twice(cluster, three_collectors):
    apps = apps_on_distinct_masters(cluster, "kill")
    victim = apps[0]
    referees = load(three_collectors, apps)
    time.sleep(2)
    killed, promoted = cluster.kill_master_of(day_tag(victim))
    assert cluster.master_of_slot(slot_of_app(victim)).port == promoted.port
    time.sleep(1)  # hits keep coming on the promoted replica
    stop(referees)
    settle(three_collectors, referees)  # the backlogs drain by themselves: no restart, no command
    for referee in referees:
        assert_exact(three_collectors[0], referee)
    # Flushes failed while the master was gone, and were retried.
    assert sum(flush_stats(c)["flush_retries"] for c in three_collectors) > 0
    assert not killed.alive()


def test_read_api_counts_visitors_over_days_of_different_slots(cluster, collector_factory, tmp_path):
    """A week's UV is a union of HLLs of seven day tags, so of several slots: counted on
    copies in one slot (store/hll_union.py), where one PFCOUNT would be refused (CROSSSLOT)."""
    collector = collector_factory(redis_url=cluster.url, data_dir=tmp_path / "data")
    client = cluster.client()
    app, days = "week" + uuid.uuid4().hex[:8], ["20260601", "20260602", "20260603"]
    assert len({key_slot(keys.slot_tag(app, "day", d).encode()) for d in days}) == 3
    for n, day in enumerate(days):
        # Visitors 0-9 every day, and 10 new ones per day from the second day on.
        members = [f"v{i}" for i in range(10)] + [f"new{n}-{i}" for i in range(10 if n else 0)]
        client.pfadd(keys.visitors(app, "day", day), *members)
        client.hset(keys.counters(app, "day", day), "pv", 5)
    with pytest.raises(redis.exceptions.RedisClusterException):
        client.pfcount(*[keys.visitors(app, "day", d) for d in days])
    body = collector.stats(app, granularity="day", **{"from": "2026-06-01", "to": "2026-06-03"})
    assert body["totals"]["pv"] == 15
    assert body["totals"]["uv"] == 30
    assert [entry["uv"] for entry in body["series"]] == [10, 20, 20]
    assert not list(client.scan_iter("eb:{hll:*"))  # the scratch copies are gone


def send_pageviews(collector, app: str, n: int) -> None:
    for i in range(n):
        ip = f"100.64.9.{i % 200 + 1}"
        body = [{"k": app, "t": "pageview", "u": "https://e.edu/x", "id": f"w-{i}-{time.time()}", "sn": 1}]
        status, _ = http.post(collector.base_url + "/c", body, {"User-Agent": UA, "X-Forwarded-For": ip})
        assert 200 <= status < 300, status


@pytest.mark.parametrize("wait_replicas", [1, 0])
def test_a_batch_is_done_only_once_a_replica_has_it(cluster, collector_factory, tmp_path, wait_replicas):
    """Redis replicates asynchronously: a master can answer a flush and die before its
    replica has the writes. With WAIT (redis_wait_replicas=1, the default) the batch stays
    in the journal until the replica confirmed; here the replica is stalled (SIGSTOP),
    so the batch waits, the master dies, the stalled replica takes over, and the flush
    is applied again there: exact. With 0 the batch is done once the master answered."""
    collector = collector_factory(redis_url=cluster.url, data_dir=tmp_path / "data", redis_wait_replicas=wait_replicas)
    app = apps_on_distinct_masters(cluster, f"wait{wait_replicas}-")[0]
    master = cluster.master_of_slot(slot_of_app(app))
    replica = cluster.replica_of(master)
    send_pageviews(collector, app, 20)
    collector.wait_for(lambda: collector.stats(app)["totals"]["pv"] == 20 and backlog(collector) == 0)
    replica.pause()  # it stops confirming (WAIT) what the master sends it
    send_pageviews(collector, app, 30)  # acknowledged: journaled by the collector
    on_master = lambda: int(master.client().hget(keys.counters(app, "day", today()), "pv") or 0)
    collector.wait_for(lambda: on_master() == 50)
    if not wait_replicas:
        collector.wait_for(lambda: backlog(collector) == 0)  # done as soon as the master answered
        replica.resume()
        return
    # The master applied the flush, but WAIT is not answered: the batch stays.
    collector.wait_for(lambda: flush_stats(collector)["flush_retries"] >= 2)
    assert backlog(collector) > 0
    master.kill()
    replica.resume()
    cluster.wait_promoted(replica)
    collector.wait_for(lambda: backlog(collector) == 0 and collector.stats(app)["totals"]["pv"] >= 50, timeout=30)
    time.sleep(0.5)
    assert collector.stats(app)["totals"]["pv"] == 50


async def test_registry_transactions_run_on_the_cluster(cluster):
    """The registry's changes are WATCH/MULTI/EXEC on keys of one tag ({registry}): a
    cluster runs them on that slot's master, and a lost race is retried as on one Redis."""
    client = redis_client.connect(cluster.url)
    registry = [keys.REGISTRY_PLATFORMS, keys.REGISTRY_APP_KEYS, keys.REGISTRY_PENDING, keys.REGISTRY_VERSION,
                keys.REGISTRY_AUDIT, keys.REGISTRY_ADMIN_TOKENS, keys.REGISTRY_READ_TOKENS]
    await client.delete(*registry)  # one slot: one DEL
    store = RegistryStore(client, FakeClock(1_800_000_000.0))
    other = RegistryStore(redis_client.connect(cluster.url), store.clock)
    try:
        await store.apply(parse_application(application()), "test")
        issued = await store.act("zjer", "approve", "admin:lead")
        assert await store.platform_id_for_key(issued.app_key) == "zjer"
        # Two stores (two collector processes) race on the version counter.
        results = await asyncio.gather(store.act("zjer", "activate", "a"), other.act("zjer", "activate", "b"), return_exceptions=True)
        assert sum(not isinstance(r, BaseException) for r in results) >= 1
        snapshot = await store.load_all()
        assert snapshot.platform_for_key(issued.app_key, store.clock()).state == "active"
        assert [entry["action"] for entry in await store.audit()][0] == "activate"
        token = await store.create_admin_token("ops", "test")
        assert await store.admin_token_name(token) == "ops"
        # The health job's reads (PFCOUNT in a pipeline) and its bookkeeping transaction.
        health = HealthStore(client, Calendar(TIMEZONE))
        await client.pfadd(keys.visitors("zjer", "day", today()), "a", "b")
        assert (await health.day_totals("zjer", today()))[1] == 2
        assert len(await health.hour_series("zjer", time.time(), 3)) == 4
        await health.note_run("holder-1", 1.0)
        assert (await health.job_state())["runs:holder-1"] == "1"
    finally:
        await client.aclose()
        await other.redis.aclose()


def script_calls(sha: str, writes: SlotWrites, seq: int) -> list[tuple]:
    return [("EVALSHA", sha, len(k), *k, *a) for k, a in encode_calls(writes, "guard-writer", seq)]


def media_progress(tag: str, prefix: str, watched: int, counters_prefix: str) -> SlotWrites:
    """A media session's progress (filed under `prefix` at its first flush) and a page view."""
    writes = SlotWrites(tag)
    writes.sessions.append((((prefix, 0),), Session("s1", watched, 100, 1, (("", ""),))))
    writes.add(((counters_prefix, 0),), {keys.COUNTERS: {"pv": 1}}, {})
    return writes


async def test_a_flush_call_waits_out_its_slot_migration(cluster):
    """Mid-migration, a flush call must run nowhere, not half on the source.

    The media part of the script writes keys it does not declare: a session's progress
    goes to the buckets of its first flush. Here those have already moved to the target
    while the call's declared keys are all still on the source: without the guard key
    (keys.migration_guard) the source would run the call, advance the marker, and fail
    at the moved key, and the retry would skip the rest for good."""
    client = redis_client.connect(cluster.url)
    sender = ClusterSender(client, 1)  # type: ignore[arg-type]
    sha = await client.script_load(APPLY_FLUSH_LUA)
    app, day = "guard" + uuid.uuid4().hex[:8], "20260601"
    tag = keys.slot_tag(app, "day", day)
    first = keys.bucket_prefix(app, "minute", day + "0000")  # the session's first minute
    later_prefix = keys.bucket_prefix(app, "minute", day + "0001")  # a page view's bucket
    later = keys.counters(app, "minute", day + "0001")
    await sender.send(script_calls(sha, media_progress(tag, first, 10, later_prefix), 1), 5)
    moved_key = first + ":" + keys.COUNTERS
    assert await client.hget(moved_key, "watched_s") == b"10"

    slot = key_slot(tag.encode())
    source = cluster.master_of_slot(slot)
    target = next(m for m in cluster.masters() if m.port != source.port)
    ids = {port: info["id"] for port, info in cluster.topology().items()}
    target.client().execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source.port])
    source.client().execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target.port])
    source.client().execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", moved_key)

    progress = script_calls(sha, media_progress(tag, first, 50, later_prefix), 2)
    with pytest.raises(redis.exceptions.RedisError):
        await sender.send(progress, 5)
    assert source.client().hget(later, "pv") == b"1"  # nothing of the call ran

    # The migration ends (what redis-cli --cluster reshard does for a slot).
    while moving := source.client().execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
        source.client().execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *moving)
    for node in cluster.masters():
        node.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target.port])
    for _ in range(20):  # a MOVED first (the slot map is refreshed), then applied
        try:
            await sender.send(progress, 5)
            break
        except redis.exceptions.RedisError:
            await asyncio.sleep(0.2)
    assert target.client().hget(moved_key, "watched_s") == b"50"
    assert target.client().hget(later, "pv") == b"2"
    await client.aclose()


def test_collector_killed_while_a_master_is_down_replays_its_journal(cluster, collector_factory, tmp_path):
    """The backlog a collector builds while a master is down survives the collector's
    own death: the next start replays its journal (same writer, same sequence numbers)
    on the promoted replica, and what had landed before is skipped by the markers."""
    data = tmp_path / "replay"
    collector = collector_factory(redis_url=cluster.url, data_dir=data)
    app = apps_on_distinct_masters(cluster, "replay")[0]
    master = cluster.master_of_slot(slot_of_app(app))
    replica = cluster.replica_of(master)
    referee = Referee([collector.port], app=app, threads=2).start()
    time.sleep(1)
    master.kill()
    collector.wait_for(lambda: backlog(collector) > 1)  # flushes fail: the backlog grows
    collector.stop(signal.SIGKILL)
    tally = referee.stop()
    cluster.wait_promoted(replica)
    again = collector_factory(redis_url=cluster.url, data_dir=data)
    again.wait_for(lambda: backlog(again) == 0 and again.stats(app)["totals"]["pv"] >= tally.acked, timeout=30)
    time.sleep(0.5)
    pv = again.stats(app)["totals"]["pv"]
    # Requests cut by the kill may or may not have been journaled: at most those extra.
    assert tally.acked <= pv <= tally.acked + tally.in_doubt, (pv, tally)
    assert flush_stats(again)["batches_recovered"] > 0


def test_heal_gives_a_master_back_a_slot_it_lost_from_its_own_view(cluster):
    """The harness's own repair (redis_cluster.Cluster.heal): a master whose own view lost a
    slot the others say it owns (a promotion that lagged a reshard, seen in session 25) is
    not healthy, and heal() makes it serve the slot again rather than time out."""
    master = cluster.masters()[0]
    own = next(info for info in cluster.topology_seen_by(master).values() if info["myself"])
    slot = int(own["slots"][0].split("-")[0])
    master.client().execute_command("CLUSTER", "DELSLOTS", slot)  # its own view only
    time.sleep(0.5)
    assert not cluster.healthy()
    cluster.heal()
    assert cluster.healthy()
    assert cluster.master_of_slot(slot).port == master.port
