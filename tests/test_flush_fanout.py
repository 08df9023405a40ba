"""The flush sends a minute's deltas once per slot and the script writes them under each
bucket (apply_flush.lua 'b' items): Redis must end up holding exactly what the old
encoding stored — every bucket key written on its own, with the minutes of a batch
added up per key in Python.

A realistic snapshot (several apps; minutes across an hour, a day and a month boundary;
page views from many visitors; deep events with media sessions, interactions and users;
rejected events and bots) is flushed by the real Flusher into one fresh redis-server,
and through a reference of the old encoding into another; then every key is compared:
type, contents, HyperLogLog count and bytes, expiry.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
import pytest
import redis
from conftest import FakeClock, start_redis
from test_ingest import DESKTOP, GOOGLEBOT, IPHONE

from collector.enrich.device import DeviceClassifier
from collector.enrich.geo import GeoResolver
from collector.hit.ingest import Ingest
from collector.hit.record import named_cell
from collector.hit.visitors import VisitorHasher
from collector.settings import Settings
from collector.store import keys
from collector.store.aggregate import Aggregator, Snapshot
from collector.store.buckets import Calendar
from collector.store.flush_script import APPLY_FLUSH_LUA
from collector.store.flusher import CALL_ARGS, FlushBatch, Flusher, encode_calls
from collector.store.packed_snapshot import pack, unpack
from collector.store.rollup import RollupBuilder, SlotWrites

TTLS = {"minute": 172800, "hour": 7776000, "day": 0, "month": 0}  # the settings' defaults
# Fixed dates lie in the future: Redis applies absolute expiries by its own clock.
START = datetime(2027, 1, 31, 23, 57, 10, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
APPS = ("app1", "app2", "app3")
VIDEO = {"rid": "v1", "rt": "video", "subj": "math", "stage": "junior", "src": "zjer", "dur": 100}


def a_copy(snap: Snapshot) -> Snapshot:
    """A snapshot equal to `snap`, to flush: a flush empties what it applied (Snapshot.shed),
    and these tests read `snap` again after it."""
    return unpack(pack(snap))


def realistic_snapshot(calendar: Calendar, geo_db: list[str]) -> Snapshot:
    """Four minutes, 23:57 to 00:00: each app's traffic every minute."""
    settings = Settings(trusted_proxies=("127.0.0.1/32",), registry="open", geo_db=tuple(geo_db))
    clock = FakeClock(START)
    hasher = VisitorHasher()
    for bucket_id in ("20270131", "202701", "20270201", "202702"):
        hasher.set_salt(bucket_id, os.urandom(32))
    aggregator = Aggregator()
    ingest = Ingest(settings, aggregator, GeoResolver(geo_db), DeviceClassifier(), hasher, calendar, clock)
    for minute in range(4):
        for i, app in enumerate(APPS):
            for v in range(40 + 20 * i):  # visitors: some come back every minute, some are new
                ip, ua = f"100.64.{v % 7}.{(v * 13 + minute * 5) % 250}", (DESKTOP, IPHONE)[v % 2]
                page = {"k": app, "t": "pageview", "u": f"https://e.edu/c/{v % 9}", "vid": f"fp{v % 11}"}
                if v % 3 == 0:
                    page["uid"] = f"user{v}"
                ingest.hit_query(page, "127.0.0.1", ip, ua, None)
            session = f"s{minute}{app}"
            deep = [
                {"k": app, "t": "media", "n": "play", "ms": session, "ws": 0, "wt": 0, "pos": 0, **VIDEO},
                {"k": app, "t": "media", "n": "progress", "ms": session, "ws": 30 * (i + 1), "wt": 30_000, "pos": 30, "pb": 25, **VIDEO},
                {"k": app, "t": "interaction", "n": "like", "rid": "v1", "rt": "video", "subj": "math"},
                {"k": app, "t": "pageview"},  # no url: rejected
                {"k": app, "t": "nonsense", "u": "https://e.edu/"},
            ]
            ingest.hit_body(orjson.dumps(deep), "127.0.0.1", f"100.64.9.{i}", IPHONE, None)
            ingest.hit_query({"k": app, "t": "pageview", "u": "https://e.edu/"}, "127.0.0.1", "100.64.8.1", GOOGLEBOT, None)
        clock.advance(60)
    snap = aggregator.drain()
    assert snap.rejected and snap.deep_incs and snap.deep_members and snap.sessions and snap.first_party
    return snap


def old_encoding(builder: RollupBuilder, snap: Snapshot) -> tuple[dict, dict, dict]:
    """The old fan-out: every bucket key on its own, the minutes of the batch added up per
    key. Key -> field -> increment, key -> HLL elements, key -> expire-at."""
    hashes: dict[str, dict[str, int]] = {}
    hlls: dict[str, set] = {}
    expire_at: dict[str, int] = {}
    for (app, minute), d in builder._fold(snap).items():
        for bucket in builder.calendar.buckets_of_minute(minute):
            prefix = keys.bucket_prefix(app, bucket.granularity, bucket.id)
            for suffix, increments in d.fields.items():
                fields = hashes.setdefault(prefix + ":" + suffix, {})
                for name, amount in increments.items():
                    fields[name] = fields.get(name, 0) + amount
                expire_at[prefix + ":" + suffix] = builder._expire_at(bucket)
            for suffix, elements in (d.month_members if bucket.granularity == "month" else d.day_members).items():
                hlls.setdefault(prefix + ":" + suffix, set()).update(elements)
                expire_at[prefix + ":" + suffix] = builder._expire_at(bucket)
    return hashes, hlls, expire_at


def apply_old_encoding(client: redis.Redis, builder: RollupBuilder, snap: Snapshot) -> None:
    hashes, hlls, expire_at = old_encoding(builder, snap)
    pipe = client.pipeline(transaction=False)
    for key in sorted(hashes):
        for name, amount in sorted(hashes[key].items()):
            pipe.hincrby(key, name, amount)
    for key in sorted(hlls):
        members = sorted(hlls[key])
        for start in range(0, len(members), 1000):
            pipe.pfadd(key, *members[start : start + 1000])
    for key, at in expire_at.items():
        if at:
            pipe.expireat(key, at)
    pipe.sadd(keys.APPS, *sorted(snap.apps()))
    pipe.execute()
    # Media sessions were encoded the same way before: through the script, alone here.
    sha = client.script_load(APPLY_FLUSH_LUA)
    for writes in builder.build(snap):
        alone = SlotWrites(writes.tag, sessions=writes.sessions, sessions_expire_at=writes.sessions_expire_at)
        for script_keys, args in encode_calls(alone, "reference", 1):
            client.evalsha(sha, len(script_keys), *script_keys, *args)


def contents(client: redis.Redis) -> dict[bytes, tuple]:
    """Every key but the writers' sequence markers: type, contents, and when it expires
    (epoch seconds by Redis' clock; -1: never). The test's redis-server may predate
    EXPIRETIME: its TIME plus the TTL, to the second.

    A set of first sends' ids is named by the minute its flush ran in (dedupe.record_slice),
    so two flushes compared can straddle a minute: its slice reads as SLICE here. Two of one
    app and day in one store would be a fault of the flush, and fail the test."""
    out: dict[bytes, tuple] = {}

    def now_ms() -> int:
        seconds, micros = client.time()
        return seconds * 1000 + micros // 1000

    for key in sorted(client.scan_iter(count=1000)):
        if b":seq:" in key:
            continue
        kind = client.type(key)
        if kind == b"hash":
            value: object = client.hgetall(key)
        elif kind == b"set":
            value = client.smembers(key)
        elif kind == b"zset":
            value = client.zrange(key, 0, -1, withscores=True)
        else:
            # PFCOUNT first: it caches the count in the HLL's header, on both sides alike.
            value = (client.pfcount(key), client.get(key))
        ttl = client.pttl(key)
        named = re.sub(rb":ids:\d+$", b":ids:SLICE", key)
        assert named not in out, f"two sets of first sends' ids for one app and day: {key!r}"
        out[named] = (kind, value, -1 if ttl < 0 else round((now_ms() + ttl) / 1000))
    return out


def same_contents(a: dict[bytes, tuple], b: dict[bytes, tuple]) -> bool:
    """`contents` of two stores equal, an expiry set relative to the flush (EXPIRE, as the
    re-send ids' sets have) allowed one second apart: two flushes of a test can straddle
    a second on a slow machine."""
    return a.keys() == b.keys() and all(
        a[k][:2] == b[k][:2] and abs(a[k][2] - b[k][2]) <= (1 if b":ids:" in k else 0) for k in a
    )


@pytest.fixture
def two_redis(tmp_path):
    servers = [start_redis(tmp_path / name) for name in ("new", "old")]
    yield servers
    for server in servers:
        server.proc.terminate()
        server.proc.wait(10)


async def test_the_new_encoding_stores_exactly_what_the_old_one_did(two_redis, test_geo_db):
    new, old = two_redis
    calendar = Calendar("Asia/Shanghai")
    builder = RollupBuilder(calendar, TTLS)
    snap = realistic_snapshot(calendar, test_geo_db)

    client = redis.asyncio.Redis.from_url(new.url)
    flusher = Flusher(client, Aggregator(), builder, 1.0, writer="new")
    flusher.pending.append(FlushBatch("new", 1, None, snap=a_copy(snap), events=snap.events))
    assert await flusher.flush()
    await client.aclose()
    apply_old_encoding(old.client(), RollupBuilder(calendar, TTLS), snap)

    stored, expected = contents(new.client()), contents(old.client())
    assert stored.keys() == expected.keys()
    for key in expected:
        assert stored[key] == expected[key], key
    # What the comparison covered: every granularity, both salts, the sessions' hash.
    kinds = {key.split(b":")[2] for key in stored if key.count(b":") > 3}
    assert {b"minute", b"hour", b"day", b"month"} <= kinds
    assert any(key.endswith(b":sessions") for key in stored)
    assert len(stored) > 500


def test_a_slot_too_large_for_one_call_is_written_whole(two_redis):
    """Long suffixes continue in the next call, whose 'b' item names the prefixes again."""
    new, old = two_redis
    app, day = "big", "20270131"
    buckets = (("minute", day + "2359", 1_900_000_000), ("hour", day + "23", 1_900_003_600), ("day", day, 0))
    prefixes = tuple((keys.bucket_prefix(app, g, b), at) for g, b, at in buckets)
    fields = {keys.COUNTERS: {"pv": 3}, keys.dimension_suffix("city"): {f"c{i}": i + 1 for i in range(CALL_ARGS)}}
    members = {keys.VISITORS: {f"v{i}".encode() for i in range(CALL_ARGS * 3 // 2)}, keys.FIRST_PARTY: {"fp1", "fp2"}}
    writes = SlotWrites(keys.slot_tag(app, "day", day))
    writes.add(prefixes, fields, members)
    calls = encode_calls(writes, "w", 1)
    assert len(calls) >= 4 and all(len(args) <= CALL_ARGS + 2 for _, args in calls)

    client = new.client()
    sha = client.script_load(APPLY_FLUSH_LUA)
    for script_keys, args in calls:
        assert client.evalsha(sha, len(script_keys), *script_keys, *args) == 1
    reference = old.client().pipeline(transaction=False)
    for prefix, at in prefixes:
        for suffix, increments in fields.items():
            for name, amount in increments.items():
                reference.hincrby(prefix + ":" + suffix, name, amount)
        for suffix, elements in members.items():
            ordered = sorted(elements)
            for start in range(0, len(ordered), 1000):
                reference.pfadd(prefix + ":" + suffix, *ordered[start : start + 1000])
        for suffix in [*fields, *members]:
            if at:
                reference.expireat(prefix + ":" + suffix, at)
    reference.execute()
    stored, expected = contents(client), contents(old.client())
    assert len(expected) == 12 and stored == expected


async def test_a_batch_split_into_parts_stores_exactly_what_it_does_whole(two_redis, test_geo_db, monkeypatch):
    """Snapshot.split_by_app hands the fold each app's entries (joined when several apps
    share a part): Redis must hold the same whatever the parts, and the figures the
    snapshot counted."""
    from collector.store import flusher as flusher_module

    calendar = Calendar("Asia/Shanghai")
    snap = realistic_snapshot(calendar, test_geo_db)
    one_each = snap.split_by_app(1)
    assert len(one_each) == len(APPS) and snap.split_by_app(10**9) == [snap]
    two_smallest = one_each[-1].cells + one_each[-2].cells  # parts come largest app first
    assert len(snap.split_by_app(two_smallest)) == 2  # those two apps joined in a part
    for server, group_cells in zip(two_redis, (two_smallest, 10**9), strict=True):
        monkeypatch.setattr(flusher_module, "GROUP_CELLS", group_cells)
        client = redis.asyncio.Redis.from_url(server.url)
        flusher = Flusher(client, Aggregator(), RollupBuilder(calendar, TTLS), 1.0, writer="w")
        flusher.pending.append(FlushBatch("w", 1, None, snap=a_copy(snap), events=snap.events))
        assert await flusher.flush()
        await client.aclose()
    split, whole = (contents(server.client()) for server in two_redis)
    assert split == whole and len(whole) > 500
    # The figures themselves, from the snapshot's cells: page views and events per app and day.
    for app in APPS:
        expected: dict[str, int] = {}
        for key, sums in snap.cube.items():
            cell = named_cell(key)
            if cell.app == app and not cell.device.is_bot:
                name = "pv" if cell.etype == "pageview" else "engagements" if cell.etype == "engagement" else "ev:" + cell.etype
                expected[name] = expected.get(name, 0) + sums[0]
        stored: dict[str, int] = {}
        for key in (keys.bucket_prefix(app, "day", day) + ":" + keys.COUNTERS for day in ("20270131", "20270201")):
            for name, value in two_redis[0].client().hgetall(key).items():
                if name.decode() in expected:
                    stored[name.decode()] = stored.get(name.decode(), 0) + int(value)
        assert stored == expected and expected["pv"] > 100, app
