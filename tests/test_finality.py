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
from test_ingest import headers, pv

from collector.store import keys
from collector.store.finality import Finality, closed_entries
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


def near_a_minute_end(lead: float) -> float:
    """A clock offset that puts the collector `lead` seconds before a minute ends."""
    now = time.time()
    return (math.floor(now / 60) + 1) * 60 - lead - now


@pytest.mark.parametrize("http_layer", ["fast path"])
async def test_the_example_consumer_gets_each_closed_minute_with_its_final_count(collector_client, redis_url, ards):
    """Hits in the last seconds of a minute, and one sent after the minute ended with its
    client time inside it (within client_ts_window): the example job (docs/examples)
    receives the minute once the watermarks passed it, and reads every one of them."""
    offset = near_a_minute_end(lead=2.0)
    client = await collector_client(
        clock=lambda: time.time() + offset, client_ts_window=2, finality_interval=0.1, flush_interval=0.1,
    )
    app = client.server.app
    job = await asyncio.create_subprocess_exec(
        sys.executable, str(CONSUMER), "--redis", redis_url, "--group", "test-job", "--granularity", "minute",
        "--max", "1", "--timeout", "30", stdout=asyncio.subprocess.PIPE,
    )
    minute_end = (math.floor((time.time() + offset) / 60) + 1) * 60
    for _ in range(5):
        assert (await client.post("/c", data=orjson.dumps(pv("fin")), headers=headers())).status == 204
    await asyncio.sleep(max(minute_end + 0.5 - (time.time() + offset), 0))
    late = pv("fin", ts=int((minute_end - 0.3) * 1000))  # arrives after the minute, counts in it
    assert (await client.post("/c", data=orjson.dumps([late, pv("fin")]), headers=headers())).status == 204
    out, _ = await asyncio.wait_for(job.communicate(), 40)
    received = [json.loads(line) for line in out.decode().splitlines()]
    assert len(received) == 1, received
    assert received[0]["app"] == "fin" and received[0]["granularity"] == "minute"
    assert received[0]["counters"].get("pv") == 6, received
    assert time.time() + offset >= minute_end + 2  # not before the window passed
    assert app[FINALITY] is not None and app[FINALITY].announced >= 1
    assert app[FLUSHER].watermark() >= minute_end
