"""Issue 17: what a collector worker holds after N distinct visitors, structure by structure.

    python -m bench.visitors_rss [--visitors 1000000] [--tracemalloc] [--limits-off]
    python -m bench.visitors_rss --server [--visitors 1000000] [--workdir DIR --keep]

In process (the default): the hit fast path (`HitConnection.data_received`, as
bench/hit_cpu.py drives it) with the collector's default settings (rate limits and UV
guard on; registry open, the bench's app keys being no platforms), fed the GET pixels of
the `--full` bench's memory run: every one from a new IP and a new User-Agent
(bench/runner.py `_generate_unique_part`). The aggregator is drained every
`--drain-every` hits, as the flusher drains it each second (the drained batch is
dropped here: Redis is not involved). Prints RSS (VmHWM, anonymous, mapped files) before
the first hit and at the end, and each per-visitor table's entries; with
`--tracemalloc`, the Python heap by line that allocated it (slower: use fewer visitors).

`--server`: the bench's own memory run (runner.Bench.rss_run: a real `collector x1`, wrk,
the bench's redis-server), with the collector's default limits: its clients are all
distinct, so the limits refuse nothing, but their tables fill as in production.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

CHUNK = 5_000  # requests generated and handed over at a time
REPORT_EVERY = 100_000


def status_mb() -> dict[str, float]:
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[name] = int(rest.split()[0]) / 1024
    return out


def _shown(mb: dict[str, float]) -> str:
    return (f"RSS {mb['VmRSS']:.0f} MB (peak {mb['VmHWM']:.0f}) = anon {mb['RssAnon']:.0f} + "
            f"files {mb['RssFile']:.0f}")


def _connection(limits: bool):
    """A HitConnection over a fresh Ingest with the default settings, and the Ingest."""
    from collector import allocator
    from collector.enrich.device import DeviceClassifier
    from collector.enrich.geo import GeoResolver
    from collector.hit.ingest import Ingest
    from collector.hit.visitors import VisitorHasher
    from collector.settings import Settings
    from collector.store.aggregate import Aggregator
    from collector.store.buckets import Calendar

    from .stages import fast_path_connection

    off = {"rate_client": 0, "rate_address": 0, "rate_app": 0, "uv_guard_per_minute": 0} if not limits else {}
    settings = Settings(trusted_proxies=("127.0.0.1/32",), registry="open", **off)
    allocator.limit_arenas(settings.malloc_arena_max)  # as a worker does at its start
    allocator.fix_mmap_threshold(settings.malloc_mmap_threshold)
    calendar = Calendar(settings.timezone)
    hasher = VisitorHasher()
    for kind in ("day", "month"):
        hasher.set_salt(calendar.bucket_at(kind, calendar.local(time.time())).id, os.urandom(32))
    geo_db = [str(Path.cwd() / "geo_data" / f"dbip-city-ipv{v}.mmdb") for v in (4, 6)]
    ingest = Ingest(settings, Aggregator(), GeoResolver(geo_db, settings.geo_cache_size),
                    DeviceClassifier(settings.ua_cache_size), hasher, calendar, time.time)
    return fast_path_connection(ingest), ingest


def tables(ingest) -> dict[str, int]:
    """Entries of each per-visitor table of one worker."""
    out = {
        "device cache (ua_cache_size)": ingest.devices.cache_info().currsize,
        "geo cache (geo_cache_size)": ingest.geo.cache_info().currsize,
        "VisitTracker": len(ingest.visits),
        "RecentIds": len(ingest.recent_ids),
        "client IP verdicts": len(ingest.ips._kind),
    }
    geo = ingest.geo
    for name in ("_v4_networks", "_v6_networks"):
        cache = getattr(geo, name, None)
        if cache is not None:
            out[f"geo {name.strip('_')}"] = cache._size
    limits = ingest.limits
    for name in ("client", "address", "app"):
        buckets = getattr(limits, name)
        if buckets is not None:
            out[f"rate limit per {name}"] = len(buckets)
    if ingest.uv_guard is not None:
        out["UV guard identities"] = len(ingest.uv_guard)
    return out


def _produce(queue, visitors: int) -> None:
    """In a child process (the generator's own memory — a million IPs it has drawn — stays
    out of the measured one): the requests' HTTP bytes, CHUNK at a time, then None."""
    from . import runner, traffic
    from .ippool import load_pool

    pop = traffic.Population(load_pool(), 1000, seed=100)
    now_ms = int(time.time() * 1000)
    for start in range(0, visitors, CHUNK):
        requests = traffic.unique(pop, min(CHUNK, visitors - start), now_ms, serial_start=runner.UNIQUE_SERIAL + start)
        queue.put([traffic.http_bytes(r) for r in requests])
    queue.put(None)


def in_process(visitors: int, limits: bool, drain_every: int, trace: bool) -> None:
    import multiprocessing

    context = multiprocessing.get_context("fork")
    queue = context.Queue(8)
    producer = context.Process(target=_produce, args=(queue, visitors), daemon=True)
    producer.start()
    connection, ingest = _connection(limits)
    gc.collect()
    print(f"before the first hit: {_shown(status_mb())}", flush=True)
    if trace:
        import tracemalloc

        tracemalloc.start(1)
    fed = 0
    cpu = 0.0
    while (raw := queue.get()) is not None:
        started = time.process_time()
        for data in raw:
            connection.data_received(data)
            fed += 1
            if fed % drain_every == 0:
                ingest.aggregator.drain()
            if fed % REPORT_EVERY == 0:
                print(f"  {fed:>9,} visitors: {_shown(status_mb())}", flush=True)
        cpu += time.process_time() - started
    producer.join()
    print(f"after {fed:,} distinct visitors ({cpu / max(fed, 1) * 1e6:.0f} µs CPU each): {_shown(status_mb())}")
    for name, entries in tables(ingest).items():
        print(f"  {name:32} {entries:>9,} entries")
    if trace:
        _traced()


def _traced() -> None:
    """The collector's share of the Python heap by the line that allocated it."""
    import tracemalloc

    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, "*/collector/*")])
    stats = snapshot.statistics("lineno")
    print(f"Python heap allocated by collector/ since the first hit: {sum(s.size for s in stats) / 2**20:.1f} MB; "
          "the largest by line:")
    for s in stats[:20]:
        frame = s.traceback[0]
        print(f"  {s.size / 2**20:7.1f} MB {s.count:>9,} blocks  {frame.filename.rsplit('/collector/', 1)[-1]}:{frame.lineno}")


def server_run(visitors: int, workdir: Path, keep: bool) -> None:
    from . import runner, servers

    mode = runner.MODES["full"]
    bench = runner.Bench(mode, workdir, lambda msg: print(msg, file=sys.stderr, flush=True))
    bench.redis = servers.RedisServer(bench.dir)
    try:
        out = bench.rss_run(visitors, keep)
    finally:
        bench.redis.stop()
    series = ", ".join(f"{t:.0f}→{mb:.0f}" for t, mb in out["series"][::max(1, len(out["series"]) // 12)])
    print(f"{out['visitors']:,} visitors at {out['rps']:,.0f} req/s: peak RSS {out['peak_rss_mb']:.0f} MB; "
          f"at the end {out['rss_mb']:.0f} MB = anon {out['rss_anon_mb']:.0f} + files {out['rss_file_mb']:.0f}; "
          f"counted {out['counted_events']}; RSS over time (s→MB): {series}")
    print(f"flush parts built: {out['flush_parts']}")
    print(f"command: {bench.commands.get('collector x1', '')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.visitors_rss", description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=1_000_000)
    parser.add_argument("--server", action="store_true", help="the bench's memory run against a real collector")
    parser.add_argument("--limits-off", action="store_true", help="in process: rate limits and UV guard off")
    parser.add_argument("--drain-every", type=int, default=5000, help="hits between drains of the aggregator")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--workdir", type=Path, default=Path(__file__).resolve().parent / "out",
                        help="--server: the request file, the collector's data (git-ignored)")
    parser.add_argument("--keep", action="store_true",
                        help="--server: keep the request file (rss-N.requests in --workdir) and reuse it next time")
    args = parser.parse_args(argv)
    os.chdir(Path(__file__).resolve().parent.parent)
    if args.server:
        server_run(args.visitors, args.workdir.resolve(), args.keep)
    else:
        in_process(args.visitors, not args.limits_off, args.drain_every, args.tracemalloc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
