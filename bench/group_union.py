"""What a group's UV costs: `python -m bench.group_union [--platforms 20] [--days 31] [--visitors 20000]`

A dedicated redis-server holds, for `--platforms` platforms and `--days` days, the day
HyperLogLog of each (`--visitors` distinct visitors a day per platform, half of them
shared by every platform: dense HLLs of 12 KB), and each platform's month HLL. Then the
union that /api/stats?group= and the report count is timed both ways
(collector/store/hll_union.py):

- in place: one PFCOUNT of every key (what a standalone Redis allows);
- copied: GET every HLL, SET it into one hash tag, PFCOUNT there, DEL (what Redis
  Cluster needs, since the keys are in many slots).

For each: the union over the days (a report's period by day), over the month keys (a
calendar month), and the bytes the copy moved. The counts of both ways must be equal.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

from bench.servers import RedisServer
from collector.store import keys
from collector.store.hll_union import count_unions

ADD_CHUNK = 5000


async def fill(redis: aioredis.Redis, platforms: int, days: int, visitors: int) -> tuple[list[str], list[str]]:
    day_keys, month_keys = [], []
    for p in range(platforms):
        app = f"p{p}"
        month_key = keys.visitors(app, "month", "202610")
        month_keys.append(month_key)
        for d in range(days):
            key = keys.visitors(app, "day", f"202610{d + 1:02d}")
            day_keys.append(key)
            # half the visitors shared by every platform that day, half its own
            members = [f"d{d}-v{v}" for v in range(visitors // 2)] + [f"d{d}-p{p}-v{v}" for v in range(visitors // 2)]
            for start in range(0, len(members), ADD_CHUNK):
                chunk = members[start : start + ADD_CHUNK]
                await redis.pfadd(key, *chunk)
                await redis.pfadd(month_key, *chunk)
    return day_keys, month_keys


async def timed(redis: aioredis.Redis, union: list[str], copy: bool, rounds: int) -> tuple[int, float]:
    times, count = [], 0
    for _ in range(rounds):
        started = time.perf_counter()
        count = (await count_unions(redis, [union], copy=copy))[0]
        times.append(time.perf_counter() - started)
    return count, statistics.median(times)


async def measure(url: str, args: argparse.Namespace) -> None:
    redis = aioredis.Redis.from_url(url)
    day_keys, month_keys = await fill(redis, args.platforms, args.days, args.visitors)
    sizes = [await redis.strlen(k) for k in day_keys]
    print(f"{args.platforms} platforms x {args.days} days, {args.visitors} visitors a day each; "
          f"day HLLs {sum(sizes) / len(sizes) / 1024:.1f} KB on average")
    for name, union in (("days", day_keys), ("months", month_keys)):
        moved = sum([await redis.strlen(k) for k in union])
        in_place, t_in = await timed(redis, union, False, args.rounds)
        copied, t_copy = await timed(redis, union, True, args.rounds)
        assert in_place == copied, (in_place, copied)
        print(f"  union of {len(union):5d} {name:6s} keys: UV {in_place}; in place {t_in * 1000:8.1f} ms; "
              f"copied {t_copy * 1000:8.1f} ms ({moved / 2**20:.1f} MB moved twice)")
    await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platforms", type=int, default=20)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--visitors", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp), cpus=None)
        try:
            asyncio.run(measure(server.url, args))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
