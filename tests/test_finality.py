"""Finality (store/finality.py): a bucket is announced on the stream once, after every
live writer's watermark passed its end plus client_ts_window, and what a job then reads
of it is its final count."""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time

import orjson
import pytest
import redis.asyncio as aioredis
from conftest import ROOT
from test_flush_bounds import a_hit
from test_ingest import headers, pv

from collector.store import keys, redis_client
from collector.store.aggregate import Aggregator
from collector.store.buckets import Calendar
from collector.store.finality import Finality, closed_entries
from collector.store.flusher import FIRST_SEQ, Flusher
from collector.store.journal import Journal, encode_hit
from collector.store.rollup import RollupBuilder
from collector.web.appkeys import FINALITY, FLUSHER

CONSUMER = ROOT / "docs" / "examples" / "finality_consumer.py"


@pytest.fixture
async def ards(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


async def touch(r: aioredis.Redis, app: str, gran: str, bucket: str, end: int) -> None:
    await r.zadd(keys.finality_touched(gran), {keys.touched_member(app, bucket): end})


async def closed(r: aioredis.Redis) -> list[dict[str, str]]:
    return closed_entries(await r.xrange(keys.FINALITY_STREAM))


async def test_a_bucket_waits_for_the_slowest_live_writer_then_is_announced_once(ards):
    a, b = Finality(ards, "writer-a", 30), Finality(ards, "writer-b", 30)
    end = 1_800_000_000
    await touch(ards, "app1", "minute", "202701150800", end)
    await a.heartbeat(end + 100, end + 100)
    await b.heartbeat(end + 5, end + 5)  # has not passed end + window (10 s)
    assert await a.announce(window=10, maxlen=100) == (0, end + 5 - 10)
    assert await closed(ards) == []
    await b.heartbeat(end + 10, end + 10)
    assert (await a.announce(window=10, maxlen=100))[0] == 1
    # A second announcer, or a second round, finds nothing left to announce.
    assert (await b.announce(window=10, maxlen=100))[0] == 0
    assert await closed(ards) == [{"app": "app1", "granularity": "minute", "bucket": "202701150800"}]


async def test_a_dead_writer_holds_finality_back_only_until_its_liveness_ends(ards):
    live, dead = Finality(ards, "live", 30), Finality(ards, "dead", 0.3)
    end = 1_800_000_000
    await touch(ards, "app1", "hour", "2027011508", end)
    await dead.heartbeat(0, 0)  # e.g. replaying an old journal, then killed
    await live.heartbeat(end + 60, end + 60)
    assert (await live.announce(window=0, maxlen=100))[0] == 0
    await asyncio.sleep(0.4)
    assert (await live.announce(window=0, maxlen=100))[0] == 1
    assert await ards.hkeys(keys.FINALITY_WATERMARKS) == [b"live"]


async def test_a_bucket_written_after_its_announcement_is_announced_again_as_late(ards):
    writer = Finality(ards, "w", 30)
    end = 1_800_000_000
    await writer.heartbeat(end + 60, end + 60)
    await touch(ards, "app1", "day", "20270115", end)
    await writer.announce(window=0, maxlen=100)
    await touch(ards, "app1", "day", "20270115", end)  # a writer gone too long replayed its journal
    await touch(ards, "app2", "day", "20270116", end + 86400)  # the next day, in time: not late
    await writer.heartbeat(end + 86400, end + 86400)
    await writer.announce(window=0, maxlen=100)
    assert await closed(ards) == [
        {"app": "app1", "granularity": "day", "bucket": "20270115"},
        {"app": "app1", "granularity": "day", "bucket": "20270115", "late": "1"},
        {"app": "app2", "granularity": "day", "bucket": "20270116"},
    ]


async def test_no_live_writer_means_nothing_is_final(ards):
    await touch(ards, "app1", "minute", "202701150800", 1_000)
    assert await Finality(ards, "w", 30).announce(window=0, maxlen=100) == (0, -1)


@pytest.mark.parametrize("http_layer", ["fast path"])
async def test_the_example_consumer_gets_each_closed_minute_with_its_final_count(collector_client, redis_url, ards):
    """Hits in the last seconds of a minute, and one sent after the minute ended with its
    client time inside it (within client_ts_window): the example job (docs/examples)
    receives the minute once the watermarks passed it, and reads every one of them."""
    offset = [0.0]  # the collector's clock runs this far ahead: set once it has started
    client = await collector_client(
        clock=lambda: time.time() + offset[0], client_ts_window=5, finality_interval=0.1, flush_interval=0.1,
    )
    app = client.server.app
    job = await asyncio.create_subprocess_exec(
        sys.executable, str(CONSUMER), "--redis", redis_url, "--group", "test-job", "--granularity", "minute",
        "--max", "1", "--timeout", "60", stdout=asyncio.subprocess.PIPE,
    )
    now = time.time()
    minute_end = (math.floor(now / 60) + 2) * 60
    offset[0] = minute_end - 2 - now  # the collector's time is now 2 s before a minute ends

    def at(seconds: float) -> int:  # a client timestamp `seconds` after the minute's end
        return int((minute_end + seconds) * 1000)

    # Client times inside the minute, so they count in it even on a slow machine.
    for _ in range(5):
        hit = pv("fin", ts=at(-1.5))
        assert (await client.post("/c", data=orjson.dumps(hit), headers=headers())).status == 204
    await asyncio.sleep(max(minute_end + 0.5 - (time.time() + offset[0]), 0))
    late = pv("fin", ts=at(-0.3))  # arrives after the minute ended, counts in it
    assert (await client.post("/c", data=orjson.dumps([late, pv("fin")]), headers=headers())).status == 204
    out, _ = await asyncio.wait_for(job.communicate(), 70)
    received = [json.loads(line) for line in out.decode().splitlines()]
    assert len(received) == 1, received
    assert received[0]["app"] == "fin" and received[0]["granularity"] == "minute"
    assert received[0]["counters"].get("pv") == 6, received
    assert time.time() + offset[0] >= minute_end + 5  # not before the window passed
    assert app[FINALITY] is not None and app[FINALITY].announced >= 1
    assert app[FLUSHER].watermark() >= minute_end


async def test_a_writer_replaying_an_old_journal_holds_its_watermark_back_until_replayed(tmp_path, redis_url):
    earlier = Journal(tmp_path)
    earlier.open()
    earlier.begin("earlier-run", FIRST_SEQ)
    earlier.append(encode_hit(a_hit("old", 1)))  # acknowledged, then the process died
    earlier.close()
    journal = Journal(tmp_path)
    leftovers = journal.open()
    journal.begin("this-run", FIRST_SEQ)
    client = redis_client.connect(redis_url)
    rollups = RollupBuilder(Calendar("Asia/Shanghai"), {"minute": 0, "hour": 0, "day": 0, "month": 0})
    flusher = Flusher(client, Aggregator(), rollups, 1.0, journal, writer="this-run")
    try:
        flusher.recover(leftovers)
        # Its events may be of any age: nothing is final while they are not in Redis.
        assert flusher.watermark() == 0 and flusher.firsts_watermark() == 0
        assert await flusher.flush()
        assert flusher.watermark() > time.time() - 60
    finally:
        journal.close()
        await client.aclose()
