"""A part's commands are packed call by call (issue 17, RSS during POST runs).

Building a part's commands once held every script call's argument list of the part
(~18 MB for a 59,000-entry part of the bench's POST-10 traffic, against 3 MB once packed)
until all were packed: the worker's peak RSS during POST runs rose by as much while a
large batch was applied (bench/RESULTS.md, session 9). Each call is now packed as soon as
encode_calls completes it and its arguments dropped: the commands are the very same
bytes, and building them takes little more memory than the bytes themselves.
"""

from __future__ import annotations

import gc
import tracemalloc

import orjson
import redis.asyncio as aioredis
from conftest import FakeClock
from test_flush_fanout import START, TTLS, VIDEO
from test_ingest import DESKTOP, IPHONE

from collector.enrich.device import DeviceClassifier
from collector.enrich.geo import GeoResolver
from collector.hit.ingest import Ingest
from collector.hit.visitors import VisitorHasher
from collector.settings import Settings
from collector.store import redis_client
from collector.store.aggregate import Aggregator, Snapshot
from collector.store.buckets import Calendar
from collector.store.flusher import FlushBatch, Flusher, encode_calls
from collector.store.rollup import RollupBuilder

SHA = "0" * 40


def large_part(calendar: Calendar, geo_db: list[str], visitors: int = 3000) -> Snapshot:
    """One app, two minutes, many visitors on many pages: a part of tens of thousands of entries."""
    settings = Settings(trusted_proxies=("127.0.0.1/32",), registry="open", geo_db=tuple(geo_db), rate_client=0,
                        rate_address=0, rate_app=0, uv_guard_per_minute=0)
    clock = FakeClock(START)
    aggregator = Aggregator()
    ingest = Ingest(settings, aggregator, GeoResolver(geo_db), DeviceClassifier(), VisitorHasher(), calendar, clock)
    for minute in range(2):
        for v in range(visitors):
            ip, ua = f"100.{64 + v % 3}.{v // 250 % 250}.{v % 250}", (DESKTOP, IPHONE)[v % 2]
            hit = {"k": "big", "t": "pageview", "u": f"https://e.edu/c/{v % 700}", "vid": f"fp{v}", "uid": f"user{v}"}
            ingest.hit_query(hit, "127.0.0.1", ip, ua, None)
            # A media session each: the flush encodes each one's progress for the script.
            media = {"k": "big", "t": "media", "n": "progress", "ms": f"m{minute}-{v}", "ws": 30, "wt": 30_000, "pos": 30,
                     "pb": 25, **VIDEO}
            ingest.hit_body(orjson.dumps([media]), "127.0.0.1", ip, ua, None)
        clock.advance(60)
    return aggregator.drain()


def _peak(work) -> int:
    """Bytes traced at the height of `work()` above those traced before it."""
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    work()
    return tracemalloc.get_traced_memory()[1] - before


def test_a_part_is_packed_call_by_call_into_the_same_bytes(test_geo_db):
    calendar = Calendar("Asia/Shanghai")
    part = large_part(calendar, test_geo_db)
    assert part.cells > 20_000 and len(part.sessions) > 5000
    # Never connected: building a part's commands does no I/O.
    flusher = Flusher(aioredis.Redis(), Aggregator(), RollupBuilder(calendar, TTLS), 1.0, writer="w")
    batch = FlushBatch("w", 7, None)

    builder = RollupBuilder(calendar, TTLS)
    tracemalloc.start()
    try:
        # The fold and fan-out of the part (RollupBuilder.build) alone, then the whole build.
        build_peak = _peak(lambda: builder.build(part))
        packed: list = []
        packing_peak = _peak(lambda: packed.extend(flusher._packed(part, batch, SHA, set())))
    finally:
        tracemalloc.stop()

    # The very same commands, in the same order, as packing every call encode_calls lists.
    expected = [
        redis_client.pack("EVALSHA", SHA, len(script_keys), *script_keys, *args)
        for writes in RollupBuilder(calendar, TTLS).build(part)
        for script_keys, args in encode_calls(writes, "w", 7)
    ]
    assert packed == expected
    size = sum(map(len, packed))
    # Beyond the fold's own peak, holding every call's arguments (each media session's
    # progress encoded, for both slots) until all were packed took ~9 times the packed
    # bytes; call by call, one slot's sorted sessions and the bytes: ~4 times.
    assert packing_peak - build_peak < 6 * size, (build_peak, packing_peak, size)


def test_encode_calls_hands_each_call_to_its_sink_as_it_would_list_it(test_geo_db):
    calendar = Calendar("Asia/Shanghai")
    builder = RollupBuilder(calendar, TTLS)
    for writes in builder.build(large_part(calendar, test_geo_db, visitors=600)):
        handed: list = []
        assert encode_calls(writes, "w", 3, sink=handed.append) == []
        assert handed == encode_calls(writes, "w", 3)
