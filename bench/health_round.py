"""The cost of one platform-health round: `python -m bench.health_round [PLATFORMS]`.

N approved platforms, each with two weeks of hourly PV at the current and previous hour,
in a real Redis; one round (health, validation, the hour's anomalies), then a second (no
hour to judge). The round runs every `health_interval` (60 s) on one process per deployment.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import redis.asyncio as aioredis

from bench.servers import RedisServer
from collector.registry.health import Thresholds
from collector.registry.health_job import HealthJob, HealthSettings
from collector.registry.health_store import HealthStore
from collector.registry.model import Platform
from collector.registry.store import RegistryStore
from collector.store import keys
from collector.store.buckets import Calendar
from collector.store.lease import Lease

CALENDAR = Calendar("Asia/Shanghai")
NOW = datetime(2026, 11, 30, 10, 15, tzinfo=CALENDAR.tz).timestamp()  # a Monday morning


async def fill(client: aioredis.Redis, registry: RegistryStore, platforms: int) -> None:
    for i in range(platforms):
        pid = f"p{i}"
        await registry.apply(Platform(pid, pid, "resource", "bench", "330000", ("bench.example.cn",)), "bench")
        await registry.act(pid, "approve", "bench")
        pipe = client.pipeline(transaction=False)
        for day in range(15):
            for hour in (0, -1):
                at = NOW - day * 86400 + hour * 3600
                pipe.hincrby(keys.counters(pid, "hour", CALENDAR.bucket_at("hour", CALENDAR.local(at)).id), "pv", 500)
        await pipe.execute()


async def measure(url: str, platforms: int) -> None:
    client = aioredis.from_url(url)
    clock = [NOW]
    registry = RegistryStore(client, lambda: clock[0])
    await fill(client, registry, platforms)
    settings = HealthSettings(interval=60, thresholds=Thresholds(), sensitivity=4.0, baseline_days=14)
    job = HealthJob(registry, HealthStore(client, CALENDAR), Lease(client, keys.HEALTH_LEASE, 180), settings, lambda: clock[0])
    for label in ("first round (judges the hour)", "next round"):
        start = time.perf_counter()
        await job.run_round()
        print(f"{label}: {platforms} platforms in {time.perf_counter() - start:.3f} s")
        clock[0] += 60
    await client.aclose()


def main() -> None:
    platforms = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    server = RedisServer(Path(tempfile.mkdtemp()), cpus=None)
    try:
        asyncio.run(measure(server.url, platforms))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
