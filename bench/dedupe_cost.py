"""What exactly-once on re-sends costs (store/dedupe.py): Redis memory per event id kept,
and flush time per event, with the dedupe on and off.

    .venv/bin/python -m bench.dedupe_cost [--events 100000] [--rounds 3]

A private redis-server; a Flusher (no journal, no finality) flushes `--events` page
views of one app, each with its own event id, 20 distinct pages and 1 000 visitors:
- first sends, dedupe off (no id kept) and on (one SET per id, TTL dedupe_window);
- re-sends (re=1), each checked by SET NX (no other writer to wait for).
Per event: flush wall time (the flusher and Redis on one machine) and the growth of
Redis' used_memory. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

from collector.embedded_redis import find_redis_server
from collector.enrich.device import Device
from collector.enrich.geo import Region
from collector.hit.record import Hit
from collector.store.aggregate import Aggregator
from collector.store.buckets import Calendar
from collector.store.flusher import Flusher
from collector.store.rollup import RollupBuilder

DEVICE = Device("pc", "Chrome", "Windows")
REGION = Region("CN", "330000", "330100", "中国", "浙江省", "杭州市")
PORT = 18170
TTLS = {"minute": 172800, "hour": 7776000, "day": 0, "month": 0}


def hits(n: int, minute: int, resent: bool, dedupe: bool) -> list[Hit]:
    # Ids as the beacon makes them: 8 base-36 random characters and the time in base 36.
    return [
        Hit(app="bench", minute=minute, etype="pageview", device=DEVICE, region=REGION,
            visitor=(i % 1000).to_bytes(8, "big"), month_visitor=(i % 1000).to_bytes(8, "big"),
            page=f"https://e.edu/p{i % 20}", referrer="(direct)",
            event_id=f"{i:08x}lq{minute:07x}" if dedupe else "", resent=int(resent))
        for i in range(n)
    ]


async def flush_cost(r: aioredis.Redis, n: int, resent: bool, dedupe: bool) -> tuple[float, float]:
    """(µs per event to flush, bytes of Redis memory per event)."""
    await r.flushall()
    aggregator = Aggregator()
    flusher = Flusher(r, aggregator, RollupBuilder(Calendar("Asia/Shanghai"), TTLS), 1.0,
                      dedupe_window=86400 if dedupe else 0)
    # Warm the script cache and the bucket keys, so only the events' own cost is measured.
    for hit in hits(10, int(time.time() // 60), False, False):
        aggregator.count(hit)
    await flusher.flush()
    before = int((await r.info("memory"))["used_memory"])
    for hit in hits(n, int(time.time() // 60), resent, dedupe):
        aggregator.count(hit)
    started = time.perf_counter()
    assert await flusher.flush()
    elapsed = time.perf_counter() - started
    after = int((await r.info("memory"))["used_memory"])
    return elapsed / n * 1e6, (after - before) / n


async def run(events: int, rounds: int) -> None:
    r = aioredis.Redis(port=PORT)
    cases = {"first sends, dedupe off": (False, False), "first sends, dedupe on": (False, True),
             "re-sends (re=1), dedupe on": (True, True)}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, (resent, dedupe) in cases.items():
            results[name].append(await flush_cost(r, events, resent, dedupe))
    await r.aclose()
    print(f"| {events:,} events, best of {rounds} | flush µs per event | Redis bytes per event |")
    print("|---|---|---|")
    for name, found in results.items():
        print(f"| {name} | {min(us for us, _ in found):.2f} | {min(b for _, b in found):.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="dedupe-cost-"))
    server = subprocess.Popen(
        [find_redis_server(), "--port", str(PORT), "--save", "", "--appendonly", "no", "--dir", str(data)],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)
        asyncio.run(run(args.events, args.rounds))
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
