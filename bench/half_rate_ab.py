"""Issue 17: latency at a fixed GET rate, the collector under settings A and B, rounds alternating.

    python -m bench.half_rate_ab [--rps 3800] [--seconds 12] [--rounds 3] \\
        --variant unpaced:COLLECTOR_FLUSH_CPU_SHARE=1 --variant paced:COLLECTOR_FLUSH_CPU_SHARE=0.5
    python -m bench.half_rate_ab --rps 4400 --base /tmp/old   # this tree against another checkout
    python -m bench.half_rate_ab --rps 4200 --ceiling          # this tree against the bare server

What `python -m bench`'s half-rate run measures (collector x1 on CPU 0, wrk and a fresh
redis-server on CPU 1, the realistic GET requests of bench/out/get.requests, 64
connections each pausing before every request), for several settings of the same tree,
each round starting every variant afresh in turn so the machine's drift hits them alike.
Needs the request file a `python -m bench --smoke` (or --quick) run writes. Each variant:
NAME:VAR=VALUE[,VAR=VALUE...], environment settings of the collector; `--base TREE` adds
the collector of another checkout (run from it by this venv) as variant "base"; `--ceiling`
adds the bare server (bench/ceiling.py, the bench's ceiling x1) as variant "bare server", at
the same rate: what the machine, wrk and the kernel leave of the tail when the server does no
work (at its own half rate the full bench asks it for more requests a second). Besides wrk's
latencies: the collector's CPU per request (every process of its tree: workers, flush
build processes) and the other load on the machine during the run (busy cores not
ours: other users of a shared machine), both over the measured seconds. `--gc` times the
worker's every garbage collection (bench/gc_log.py) and prints, per variant over all its
rounds' measured seconds, each generation's collections a second and pauses.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import gc_log, procstat, servers, wrk
from .runner import machine_busy_s, own_cpu_s

HERE = Path(__file__).resolve().parent
CONNECTIONS = 64
BASE, BARE = "base", "bare server"  # the variants --base and --ceiling add


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    name, _, settings = text.partition(":")
    return name, dict(pair.split("=", 1) for pair in settings.split(",") if pair)


@dataclass
class Run:
    wrk: wrk.WrkResult
    cpu_us_per_request: float  # the collector's tree
    other_load: float  # busy cores not the collector's, redis', wrk's or this harness'
    built: str  # flush parts built by the build process / in the thread (/api/collector)
    collections: list[list[float]]  # the worker's garbage collections in the measured seconds (--gc)


def one_run(
    env: dict[str, str], delay_script: Path, warm_script: Path, seconds: float, tree: Path | None = None, gc: bool = False,
    bare: bool = False,
) -> Run:
    work = Path(tempfile.mkdtemp(prefix="half-rate-", dir=HERE / "out"))
    redis = servers.RedisServer(work / "redis")
    if gc:
        env = gc_log.environment(work) | env
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # the collector's settings (ServerProc inherits the environment)
    try:
        if bare:
            server = servers.ceiling(servers.free_port(), 1, "0", work / "ceiling.log")
        else:
            server = servers.collector(servers.free_port(), 1, redis.url, "0", work / "collector.log", work / "data")
        if tree is not None:  # another checkout's collector (--base)
            server.cwd = tree
        server.start()
    finally:
        for name, value in saved.items():
            os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)
    try:
        wrk.run(server.url + "/c", warm_script, 2)  # caches warm, as in the bench
        time.sleep(1)
        pids = procstat.tree(server.proc.pid) if server.proc else []
        cpu0, redis0, busy0, own0 = procstat.sample(pids).cpu_s, redis.cpu_seconds(), machine_busy_s(), own_cpu_s()
        t0 = time.time()
        result = wrk.run(server.url + "/c", delay_script, seconds)
        t1 = time.time()
        cpu = procstat.sample(pids).cpu_s - cpu0
        others = (machine_busy_s() - busy0) - cpu - (redis.cpu_seconds() - redis0) - (own_cpu_s() - own0)
        built = "-" if bare else parts_built(server.url)
        run = Run(result, cpu / max(result.requests, 1) * 1e6, max(others, 0.0) / result.duration_s, built, [])
    finally:
        server.stop()  # the worker writes its collections as it exits
        redis.stop()
    if gc and server.proc is not None:
        run.collections = gc_log.collections(work, server.proc.pid, t0, t1)
    return run


def parts_built(url: str) -> str:
    """"apart/thread": the flush parts the build process and the thread built (loopback reads it)."""
    figures = servers.collector_figures(url)
    if not figures:
        return "?"
    return f"{figures.get('flush_parts_built_apart', '?')}/{figures.get('flush_parts_built_in_thread', '?')}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", action="append", default=[], help="NAME:VAR=VALUE[,VAR=VALUE...]")
    parser.add_argument("--base", type=Path, help="another checkout (a worktree of main): its collector as variant 'base'")
    parser.add_argument("--ceiling", action="store_true", help=f"add the bare server as variant '{BARE}'")
    parser.add_argument("--rps", type=float, default=3800.0, help="target GET requests a second")
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gc", action="store_true", help="time the worker's garbage collections (bench/gc_log.py)")
    args = parser.parse_args(argv)
    requests = HERE / "out" / "get.requests"
    if not requests.exists():
        print(f"{requests} is missing: run `python -m bench --smoke` once first", file=sys.stderr)
        return 2
    variants = [parse_variant(text) for text in args.variant] or [("this tree", {})]
    if args.base:
        variants.append((BASE, {}))
    if args.ceiling:
        variants.append((BARE, {}))
    delay_script = wrk.write_script(HERE / "out" / "half-rate-ab.lua", requests, CONNECTIONS / args.rps * 1000)
    warm_script = wrk.write_script(HERE / "out" / "half-rate-warm.lua", requests)
    results: dict[str, list[Run]] = {name: [] for name, _ in variants}
    for _ in range(args.rounds):
        for name, env in variants:
            tree = args.base.resolve() if name == BASE else None
            results[name].append(one_run(env, delay_script, warm_script, args.seconds, tree, args.gc and name != BARE, name == BARE))
    print(f"GET at {args.rps:,.0f} req/s asked, {args.seconds:g} s per run, {args.rounds} rounds; median of the rounds")
    print(f"{'variant':14s} {'req/s':>8s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s} {'p99.9 ms':>9s} {'max ms':>7s}"
          f" {'CPU µs/req':>10s} {'other load':>10s}   p99 of each round (other load, parts built apart/in thread)")
    for name, runs in results.items():
        med = {k: statistics.median(getattr(r.wrk, k) for r in runs)
               for k in ("rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "lat_max_ms")}
        cpu = statistics.median(r.cpu_us_per_request for r in runs)
        load = statistics.median(r.other_load for r in runs)
        each = " ".join(f"{r.wrk.p99_ms:.2f} ({r.other_load:.2f}, {r.built})" for r in runs)
        figures = (f"{med['rps']:8,.0f} {med['p50_ms']:8.2f} {med['p90_ms']:8.2f} {med['p99_ms']:8.2f} {med['p999_ms']:9.2f}"
                   f" {med['lat_max_ms']:7.1f} {cpu:10.1f} {load:10.2f}")
        print(f"{name:14s} {figures}   {each}")
    if args.gc:
        print_collections(results, args.seconds)
    return 0


def print_collections(results: dict[str, list[Run]], seconds: float) -> None:
    """Each variant's garbage collections, all its rounds' measured seconds together."""
    print("garbage collections in the worker (all rounds): per s, CPU µs/req, pause ms median / p90 / max, pauses > 2 / > 4 ms")
    for name, runs in results.items():
        if name == BARE:  # not a collector: no log of its collections
            continue
        log = [entry for run in runs for entry in run.collections]
        found = gc_log.figures(log, seconds * len(runs), sum(run.wrk.requests for run in runs))
        for gen in (0, 1, 2):
            f = {key.removeprefix(f"gc gen{gen} "): value for key, value in found.items() if key.startswith(f"gc gen{gen} ")}
            print(f"{name:14s} gen{gen} {f['/s']:6.2f}/s {f['µs/req']:6.2f} µs/req  {f['pause ms median']:6.2f} /"
                  f" {f['pause ms p90']:6.2f} / {f['pause ms max']:6.2f} ms  {f['pauses > 2 ms']:4.0f} / {f['pauses > 4 ms']:4.0f}")


if __name__ == "__main__":
    sys.exit(main())
