"""Issue 17: where a saturated collector's CPU goes, per thread and per process.

    python -m bench.thread_cpu [--seconds 8] [--rounds 2] [--ceiling] [--base TREE] \\
        [--variant NAME:VAR=VALUE,...] [--gc] [--probe] [--perf DIR | --pyspy DIR]

Runs like bench.half_rate_ab at `--rps 100000` (collector x1 on CPU 0, wrk and a fresh
redis-server on CPU 1, bench/out/get.requests, 64 connections), and reads
/proc/PID/task/TID/stat of every process of the server's tree before and after the
measured seconds: each thread's user and system CPU, and its context switches, per
answered request. The loop thread is the one whose TID is the PID; the others are the
default executor's threads (flusher, journal fsync, metrics snapshots: asyncio.to_thread)
and the flush build child (collector/store/build_worker.py). `--ceiling` measures the
bare aiohttp server (bench/ceiling.py) the same way, in the same rounds. `--perf DIR`
records `perf record -g` of the server's loop thread during the measured seconds
(perf.data per server and round in DIR). `--gc` loads a sitecustomize into the server that
times every garbage collection (gc.callbacks) and reports collections and their time
per request over the measured seconds; `--probe` one that measures the loop thread's CPU
inside the fast path's `data_received` per answered hit. `--base TREE`
runs another checkout's collector (a worktree of main) in the same rounds, `--variant` this
tree's under other settings; every run also reports the flusher's parts built apart / in
the thread and its early seals. `--flush-stages` loads bench/flush_probe_site.py: the worker's
CPU per request inside each of the flusher's steps (split, caps' questions, packing, builds in
the thread, unpacking, shedding, the parts pickled for the build process, the journal's
writes), the loop's and the flusher's threads apart (read from a file written about twice a
second, so its window is the measured one within ~0.5 s). `--perf-threads` makes `--perf`
record every thread of the worker.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from collector.store.build_worker import THREAD_BUILD_REASONS

from . import gc_log, procstat, servers, wrk
from .half_rate_ab import parse_variant

HERE = Path(__file__).resolve().parent
CONNECTIONS = 64
RPS = 100_000  # far above what one process answers: saturation

# `--probe`: the loop thread's CPU inside the fast path's data_received (every request it
# reads: head, Ingest, journal, answers) and the requests answered (the hits' answer
# counts), cumulative, written about once a second. HitConnection is compiled: the loop
# still looks its data_received up on the class (so the patch below is seen), but
# data_received calls _request in C, so the hit alone is not timed apart any more.
PROBE_SITECUSTOMIZE = '''
import os, time
from collector.web import hit_server
_cpu = [0.0]  # CPU inside data_received
_out = open(os.environ["THREAD_CPU_PROBE_LOG"] + f".{os.getpid()}", "a")
_next = [time.monotonic() + 1.0]
_data_received = hit_server.HitConnection.data_received
def data_received(self, data):
    start = time.thread_time()
    _data_received(self, data)
    _cpu[0] += time.thread_time() - start
    now = time.monotonic()
    if now >= _next[0]:
        _next[0] = now + 1.0
        answered = sum(self.server.stats.hits.by_status.values())
        _out.write("%r %d %r\\n" % (time.time(), answered, _cpu[0]))
        _out.flush()
hit_server.HitConnection.data_received = data_received
'''

@dataclass
class ThreadTimes:
    name: str
    user: int  # clock ticks
    system: int
    voluntary: int  # context switches
    involuntary: int


def thread_times(pid: int, tid: int) -> ThreadTimes:
    with open(f"/proc/{pid}/task/{tid}/stat") as fh:
        data = fh.read()
    name = data[data.index("(") + 1 : data.rindex(")")]
    fields = data[data.rindex(")") + 2 :].split()
    switches = {}
    with open(f"/proc/{pid}/task/{tid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key.endswith("ctxt_switches"):
                switches[key] = int(value)
    return ThreadTimes(name, int(fields[11]), int(fields[12]), switches.get("voluntary_ctxt_switches", 0),
                       switches.get("nonvoluntary_ctxt_switches", 0))


def snapshot(pids: list[int]) -> dict[tuple[int, int], ThreadTimes]:
    out = {}
    for pid in pids:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in tids:
            try:
                out[(pid, tid)] = thread_times(pid, tid)
            except OSError:
                pass
    return out


@dataclass
class Accounting:
    requests: int
    rps: float
    seconds: float
    errors: int  # wrk's: connect, read, write, timeouts and answers ≥ 400
    # role -> (user µs/req, system µs/req, voluntary switches/req, involuntary/req)
    roles: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)
    gc: dict[str, float] = field(default_factory=dict)
    flush: dict[str, float] = field(default_factory=dict)  # the flusher's counters over the measured seconds


FLUSH_FIGURES = ("flushes", "early_seals", "events_flushed", "flush_parts_built_apart", "flush_parts_built_in_thread", *(
    f"flush_parts_built_in_thread_{reason}" for reason in THREAD_BUILD_REASONS))


def flush_figures(url: str) -> dict[str, float]:
    """The collector's flush counters (/api/collector); {} for the ceiling."""
    figures = servers.collector_figures(url)
    if not figures:
        return {}
    return {name: figures.get(name, 0) for name in FLUSH_FIGURES}


def role(pid: int, tid: int, main_pid: int, cmdline: str) -> str:
    if "build_worker" in cmdline:
        return "build child"
    if pid == main_pid:
        return "loop thread" if tid == pid else "other threads (executor)"
    return "other process"


@dataclass
class Options:
    seconds: float
    perf_dir: Path | None = None
    pyspy_dir: Path | None = None
    gc: bool = False
    probe: bool = False
    flush_stages: bool = False  # the worker's CPU inside each of the flusher's steps (bench/flush_probe_site.py)
    perf_threads: bool = False  # perf of every thread of the worker (the flusher's too), not the loop's alone


def start_server(
    kind: str, work: Path, redis: servers.RedisServer, env: dict[str, str], options: Options, tree: Path | None = None,
) -> servers.ServerProc:
    """The server, with `env` (collector settings) and the sitecustomize of the probes asked for."""
    env = dict(env)
    site = [code for wanted, code in ((options.gc, gc_log.SITECUSTOMIZE), (options.probe and kind != "ceiling", PROBE_SITECUSTOMIZE),
                                      (options.flush_stages and kind != "ceiling", (HERE / "flush_probe_site.py").read_text()))
            if wanted]
    if site:
        env |= {**gc_log.environment(work, "\n".join(site)), "THREAD_CPU_PROBE_LOG": str(work / "probe"),
                "STAGE_PROBE_LOG": str(work / "stages")}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # the server inherits the environment
    try:
        if kind == "ceiling":
            server = servers.ceiling(servers.free_port(), 1, "0", work / "server.log")
        else:
            server = servers.collector(servers.free_port(), 1, redis.url, "0", work / "server.log", work / "data")
            if tree is not None:
                server.cwd = tree
        server.start()
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
    return server


def profiler(main_pid: int, label: str, options: Options) -> subprocess.Popen | None:
    """perf or py-spy on CPU 1, started ~1 s into wrk's run and stopped before its end."""
    seconds = int(max(options.seconds - 2, 1))
    if options.perf_dir is not None:
        options.perf_dir.mkdir(parents=True, exist_ok=True)
        which = "-p" if options.perf_threads else "-t"  # the process's threads (report with --sort pid), or the loop's
        cmd = ["perf", "record", "-g", "-F", "999", which, str(main_pid), "-o", str(options.perf_dir / f"{label}.perf.data"),
               "--", "sleep", str(seconds)]
    elif options.pyspy_dir is not None:
        options.pyspy_dir.mkdir(parents=True, exist_ok=True)
        # Python stacks of every thread, not pausing the server (--nonblocking), idle excluded.
        cmd = [str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking", "--threads", "-r", "200", "-f", "raw",
               "-d", str(seconds), "-p", str(main_pid), "-o", str(options.pyspy_dir / f"{label}.txt")]
    else:
        return None
    return subprocess.Popen(["taskset", "-c", "1", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(kind: str, env: dict[str, str], label: str, options: Options, tree: Path | None = None) -> Accounting:
    work = Path(tempfile.mkdtemp(prefix="thread-cpu-", dir=HERE / "out"))
    redis = servers.RedisServer(work / "redis")
    server = start_server(kind, work, redis, env, options, tree)
    delay_script = wrk.write_script(HERE / "out" / "half-rate-ab.lua", HERE / "out" / "get.requests", CONNECTIONS / RPS * 1000)
    warm_script = wrk.write_script(HERE / "out" / "half-rate-warm.lua", HERE / "out" / "get.requests")
    try:
        wrk.run(server.url + "/c", warm_script, 2)
        time.sleep(1)
        assert server.proc is not None
        main_pid = server.proc.pid
        pids = procstat.tree(main_pid)
        cmdlines = {p: servers._cmdline(p) for p in pids}
        profiling = profiler(main_pid, label, options)
        flush0 = flush_figures(server.url)
        before, t0 = snapshot(pids), time.time()
        result = wrk.run(server.url + "/c", delay_script, options.seconds)
        after, t1 = snapshot(pids), time.time()
        flush1 = flush_figures(server.url)
        if profiling is not None:
            profiling.wait(30)
    finally:
        server.stop()
        redis.stop()
    acc = Accounting(result.requests, result.rps, result.duration_s, result.errors)
    acc.flush = {name: flush1[name] - flush0.get(name, 0) for name in flush1}
    sums: dict[str, list[float]] = {}
    for key, end in after.items():
        start = before.get(key, ThreadTimes(end.name, 0, 0, 0, 0))  # a thread started during the run
        name = role(key[0], key[1], main_pid, cmdlines.get(key[0], ""))
        row = sums.setdefault(name, [0.0, 0.0, 0.0, 0.0])
        row[0] += end.user - start.user
        row[1] += end.system - start.system
        row[2] += end.voluntary - start.voluntary
        row[3] += end.involuntary - start.involuntary
    per = 1e6 / procstat.TICK / max(result.requests, 1)
    for name, (u, s, v, i) in sums.items():
        acc.roles[name] = (u * per, s * per, v / max(result.requests, 1), i / max(result.requests, 1))
    if options.gc:
        acc.gc = gc_log.figures(gc_log.collections(work, main_pid, t0, t1), t1 - t0, result.requests)
    if options.probe:
        acc.gc |= probe_figures(work, main_pid, t0, t1)
    if options.flush_stages:
        acc.gc |= stage_figures(work, main_pid, t0, t1, result.requests)
    return acc


def stage_figures(work: Path, pid: int, t0: float, t1: float, requests: int) -> dict[str, float]:
    """µs of CPU per request inside each flusher step (bench/flush_probe_site.py), by thread:
    "loop:" the event loop's, "thread:" the flusher's (executor) threads."""
    path = work / f"stages.{pid}"
    if not path.exists():
        return {}
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    before = [entry for entry in lines if entry[0] <= t0]
    after = [entry for entry in lines if entry[0] <= t1]
    first, last = (before[-1][1] if before else {}), (after[-1][1] if after else {})
    return {(f"stage {name}" if name.startswith("parts") else f"stage {name} µs/req"):
            (value - first.get(name, 0.0)) * (1 if name.startswith("parts") else 1e6 / max(requests, 1))
            for name, value in sorted(last.items())}


def probe_figures(work: Path, pid: int, t0: float, t1: float) -> dict[str, float]:
    """µs of the loop thread's CPU per answered hit inside the fast path's data_received."""
    path = work / f"probe.{pid}"
    if not path.exists():
        return {}
    lines = [[float(x) for x in line.split()] for line in path.read_text().splitlines()]
    inside = [line for line in lines if t0 <= line[0] <= t1]
    if len(inside) < 2:
        return {}
    first, last = inside[0], inside[-1]
    requests = max(last[1] - first[1], 1)
    return {"probe: requests/s": requests / (last[0] - first[0]),
            "probe: data_received µs/req": (last[2] - first[2]) * 1e6 / requests}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ceiling", action="store_true", help="also the bare aiohttp server, interleaved")
    parser.add_argument("--perf", type=Path, help="record perf of the loop thread into this directory")
    parser.add_argument("--perf-threads", action="store_true",
                        help="--perf records every thread of the worker process (report with --sort pid), not the loop's alone")
    parser.add_argument("--flush-stages", action="store_true",
                        help="the worker's CPU per request inside each of the flusher's steps, loop and thread apart")
    parser.add_argument("--pyspy", type=Path, help="record py-spy (raw stacks, every thread) into this directory")
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME:VAR=VALUE[,VAR=VALUE...]: the collector under these settings too, interleaved")
    parser.add_argument("--base", type=Path, help="another checkout (e.g. a worktree of main): its collector too, interleaved")
    parser.add_argument("--gc", action="store_true", help="time the server's garbage collections")
    parser.add_argument("--probe", action="store_true", help="the loop's CPU inside the fast path's data_received")
    args = parser.parse_args(argv)
    if not (HERE / "out" / "get.requests").exists():
        print("bench/out/get.requests is missing: run `python -m bench --smoke` once first", file=sys.stderr)
        return 2
    variants: dict[str, dict[str, str]] = {"collector": {}} | dict(parse_variant(text) for text in args.variant)
    if args.base:
        variants["base"] = {}
    if args.ceiling:
        variants["ceiling"] = {}
    results: dict[str, list[Accounting]] = {k: [] for k in variants}
    options = Options(args.seconds, args.perf, args.pyspy, args.gc, args.probe, flush_stages=args.flush_stages,
                      perf_threads=args.perf_threads)
    for n in range(args.rounds):
        for name, env in variants.items():
            kind = "ceiling" if name == "ceiling" else "collector"
            tree = args.base.resolve() if name == "base" else None
            results[name].append(measure(kind, env, f"{name}-{n}", options, tree))
    for kind, runs in results.items():  # kind: the variant's name
        print(f"\n{kind}, GET saturated, {args.seconds:g} s, {args.rounds} rounds: "
              + ", ".join(f"{r.rps:,.0f} req/s" for r in runs) + "; wrk errors: " + ", ".join(str(r.errors) for r in runs))
        names = sorted({name for r in runs for name in r.roles}, key=lambda n: -runs[0].roles.get(n, (0, 0))[0])
        print(f"{'µs CPU per request (median)':28s} {'user':>7s} {'system':>7s} {'total':>7s} {'vol sw/req':>10s} {'invol/req':>9s}")
        total = [0.0, 0.0]
        for name in names:
            cols = [statistics.median(r.roles.get(name, (0, 0, 0, 0))[k] for r in runs) for k in range(4)]
            total[0] += cols[0]
            total[1] += cols[1]
            print(f"{name:28s} {cols[0]:7.1f} {cols[1]:7.1f} {cols[0] + cols[1]:7.1f} {cols[2]:10.3f} {cols[3]:9.3f}")
        print(f"{'all':28s} {total[0]:7.1f} {total[1]:7.1f} {sum(total):7.1f}")
        if runs[0].flush:
            for key in runs[0].flush:
                print(f"  {key}: " + ", ".join(f"{r.flush.get(key, 0):g}" for r in runs))
        if runs[0].gc:
            for key in runs[0].gc:
                print(f"  {key}: " + ", ".join(f"{r.gc.get(key, 0):.2f}" for r in runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
