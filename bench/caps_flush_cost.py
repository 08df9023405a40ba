"""What the deployment-wide caps cost a flush: the same batches flushed with and without them.

    python -m bench.caps_flush_cost [--batches 10] [--events 20000] [--pages 2000] [--apps 20]

In process, against its own redis-server: an Ingest (registry=open) takes `--events` page
views and media events per batch (pages, resources and sessions drawn from `--pages`
values per app, over `--apps` apps), and a Flusher applies the batch — once with
DeploymentCaps, once without, alternating, each on a fresh Redis database. Reports the
median flush time of the first batch (every value new: one admission call per app and
day) and of the following ones (decisions remembered: no call unless new values come),
and the values sent to Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import tempfile
import time

import redis.asyncio as aioredis

from bench.flood import HOST, UA, free_port
from collector.embedded_redis import find_redis_server
from collector.enrich.device import DeviceClassifier
from collector.hit.ingest import Ingest
from collector.hit.visitors import VisitorHasher
from collector.settings import Settings
from collector.store.aggregate import Aggregator
from collector.store.buckets import Calendar
from collector.store.capping import DeploymentCaps
from collector.store.flusher import Flusher
from collector.store.rollup import RollupBuilder


def _events(rng: random.Random, n: int, apps: int, values: int) -> list[dict]:
    out = []
    for _ in range(n):
        app, v = f"app{rng.randrange(apps)}", rng.randrange(values)
        if rng.random() < 0.8:
            out.append({"k": app, "t": "pageview", "u": f"https://e.edu/course/{v}", "pc": f"c{v % 100}"})
        else:
            out.append({"k": app, "t": "media", "n": "play", "rid": f"r{v}", "ms": f"s{rng.randrange(10**9)}",
                        "ws": 5, "wt": 5000, "pos": 0})
    return out


async def _run(args: argparse.Namespace, port: int) -> dict:
    settings = Settings(registry="open", trusted_proxies=("127.0.0.1/32",))
    calendar = Calendar(settings.timezone)
    hasher = VisitorHasher()
    for granularity in ("day", "month"):
        hasher.set_salt(calendar.bucket_at(granularity, calendar.local(time.time())).id, os.urandom(32))
    devices = DeviceClassifier()
    times: dict[str, list[float]] = {"with caps": [], "without caps": []}
    first: dict[str, float] = {}
    asked = 0
    for db, label in enumerate(["with caps", "without caps"] * 2):
        redis = aioredis.Redis(host=HOST, port=port, db=db)
        aggregator = Aggregator()
        ingest = Ingest(settings, aggregator, None, devices, hasher, calendar, time.time)
        caps = DeploymentCaps(settings.cap_limits(), calendar, ingest.caps) if label == "with caps" else None
        flusher = Flusher(redis, aggregator, RollupBuilder(calendar, {}), 1.0, caps=caps)
        rng = random.Random(7)
        for batch in range(args.batches):
            for i in range(0, args.events, 50):
                ingest.hit_body(json.dumps(_events(rng, 50, args.apps, args.pages)).encode(), "127.0.0.1",
                                f"10.0.{i % 250}.{batch % 250}", UA, None)
            started = time.perf_counter()
            assert await flusher.flush()
            elapsed = (time.perf_counter() - started) * 1000
            if batch == 0:
                first[label] = min(first.get(label, elapsed), elapsed)
            else:
                times[label].append(elapsed)
        if caps is not None:
            asked = caps.asked
        await redis.aclose()
    return {
        "events_per_batch": args.events, "apps": args.apps, "values_per_app": args.pages,
        "first_flush_ms": {k: round(v, 1) for k, v in first.items()},
        "later_flush_ms_median": {k: round(statistics.median(v), 1) for k, v in times.items()},
        "values_asked_per_run": asked,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--pages", type=int, default=2_000)
    parser.add_argument("--apps", type=int, default=20)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen([find_redis_server(), "--port", str(port), "--bind", HOST, "--save", "",
                                   "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            print(json.dumps(asyncio.run(_run(args, port)), indent=2))
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
