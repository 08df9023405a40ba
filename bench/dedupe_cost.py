"""What exactly-once on re-sends costs (store/dedupe.py): Redis memory per event id kept,
and flush time per event, with the dedupe on and off.

    .venv/bin/python -m bench.dedupe_cost [--events 100000] [--rounds 3]

A private redis-server; a Flusher (no journal, no finality) flushes `--events` page
views of one app, each with its own event id, 20 distinct pages and 1 000 visitors:
- first sends, dedupe off (no id kept) and on (one SET per id, TTL dedupe_window);
- re-sends (re=1), each checked by SET NX (no other writer to wait for).
Per event: flush wall time (the flusher and Redis on one machine) and the growth of
Redis' used_memory. Prints a Markdown table.

With `--old DIR` (a checkout of an earlier commit, e.g. `git worktree add /tmp/old main`),
also the record of first sends' ids alone, that checkout's store/dedupe.py against this
one's, in interleaved rounds, per first send of one app in one flush: the collector's
CPU to build and pack the commands (time.process_time), Redis' CPU (INFO cpu, main
thread) and memory, and Redis' CPU to free them (FLUSHALL, in place of their expiry);
and Redis' CPU per re-sent id checked, against the ids of 60 flushes a minute apart
(half the re-sends were recorded, half are new).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
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
from collector.store import dedupe as this_dedupe
from collector.store import redis_client
from collector.store.aggregate import Aggregator, Snapshot
from collector.store.buckets import Calendar
from collector.store.flusher import ROUND_TRIP_BYTES, ROUND_TRIP_COMMANDS, Flusher
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


CALENDAR = Calendar("Asia/Shanghai")
WINDOW = 3600
RESENDS = 2000  # re-sent ids checked, and first sends recorded a minute, for an hour


def load_dedupe(checkout: Path):  # -> the module
    """That checkout's store/dedupe.py, on this tree's other modules."""
    spec = importlib.util.spec_from_file_location("old_dedupe", checkout / "collector/store/dedupe.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def first_sends(n: int, minute: int, tag: str = "") -> Snapshot:
    aggregator = Aggregator()
    for hit in hits(n, minute, False, True):
        aggregator.count(hit._replace(event_id=hit.event_id + tag))
    return aggregator.drain()


def record_commands(module, snap: Snapshot, now: float) -> list[redis_client.Command]:
    if module is this_dedupe:
        return module.first_send_commands(snap, CALENDAR, WINDOW, now)
    return module.first_send_commands(snap, CALENDAR, WINDOW)  # (before the sets: no clock)


def packed_record(module, snap: Snapshot, now: float) -> tuple[list[bytes], float]:
    """The packed commands that record the snapshot's ids, and the CPU seconds they took."""
    started = time.process_time()
    packed = [redis_client.pack(*command) for command in record_commands(module, snap, now)]
    return packed, time.process_time() - started


async def redis_cost(r: aioredis.Redis, packed: list[bytes]) -> tuple[float, float]:
    """(Redis main-thread CPU seconds, bytes of used_memory) to apply `packed`."""
    cpu_before, memory_before = await redis_usage(r)
    for chunk in redis_client.chunks(packed, ROUND_TRIP_COMMANDS, ROUND_TRIP_BYTES):
        await redis_client.send_packed(r, chunk)
    cpu_after, memory_after = await redis_usage(r)
    return cpu_after - cpu_before, memory_after - memory_before


async def redis_usage(r: aioredis.Redis) -> tuple[float, float]:
    cpu, memory = await r.info("cpu"), await r.info("memory")
    return float(cpu["used_cpu_user_main_thread"]) + float(cpu["used_cpu_sys_main_thread"]), float(memory["used_memory"])


async def flush_cost_cpu(r: aioredis.Redis) -> float:
    """Redis CPU seconds to free what is recorded (FLUSHALL SYNC: a stand-in for the
    expiry of the keys, or of the set, which this bench does not wait for)."""
    cpu_before, _ = await redis_usage(r)
    await r.flushall(asynchronous=False)
    cpu_after, _ = await redis_usage(r)
    return cpu_after - cpu_before


async def check_cost(r: aioredis.Redis, module, resent: int) -> float:
    """Redis CPU seconds to check `resent` re-sent ids against 60 minutes of records."""
    await r.flushall()
    now = time.time()
    minute = int(now // 60)
    for back in range(60):  # a flush a minute for the last hour, `resent` ids each
        snap = first_sends(resent, minute, tag=f"-{back}")
        await redis_cost(r, packed_record(module, snap, now - back * 60)[0])
    recorded = [hit._replace(event_id=f"{hit.event_id}-{i % 60}") for i, hit in enumerate(hits(resent // 2, minute, True, True))]
    new = [hit._replace(event_id=hit.event_id + "-new") for hit in hits(resent - len(recorded), minute, True, True)]
    cpu_before, _ = await redis_usage(r)
    admitted = await module.admit(r, recorded + new, "bench:1", WINDOW, CALENDAR)
    cpu_after, _ = await redis_usage(r)
    assert len(admitted) == len(new), (len(admitted), len(new))
    return cpu_after - cpu_before


async def compare_record(events: int, rounds: int, old_checkout: Path) -> None:
    r = aioredis.Redis(port=PORT)
    modules = {"before (a key per id)": load_dedupe(old_checkout), "after (a set per minute)": this_dedupe}
    found: dict[str, list[tuple[float, float, float, float, float]]] = {name: [] for name in modules}
    snap = first_sends(events, int(time.time() // 60))
    for _ in range(rounds):
        for name, module in modules.items():
            await r.flushall()
            packed, collector_cpu = packed_record(module, snap, time.time())
            redis_cpu, memory = await redis_cost(r, packed)
            free_cpu = await flush_cost_cpu(r)
            found[name].append((collector_cpu, redis_cpu, memory, free_cpu, await check_cost(r, module, RESENDS)))
    await r.aclose()
    per = 1e6 / events
    print(f"\n| record of {events:,} first sends' ids (one app, one flush), best of {rounds} | "
          "collector CPU µs per event | Redis CPU µs per event | Redis MB per 10⁶ events "
          "| Redis CPU µs per event to free them | Redis CPU µs per re-send checked |")
    print("|---|---|---|---|---|---|")
    for name, rows in found.items():
        best = [min(row[column] for row in rows) for column in range(5)]
        print(f"| {name} | {best[0] / events * 1e6:.2f} | {best[1] / events * 1e6:.2f} | {best[2] * per / 1e6:.1f} "
              f"| {best[3] / events * 1e6:.2f} | {best[4] / RESENDS * 1e6:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--old", type=Path, help="a checkout whose store/dedupe.py to compare the record with")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="dedupe-cost-"))
    server = subprocess.Popen(
        [find_redis_server(), "--port", str(PORT), "--save", "", "--appendonly", "no", "--dir", str(data)],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)
        asyncio.run(run(args.events, args.rounds))
        if args.old:
            asyncio.run(compare_record(args.events, args.rounds, args.old))
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
