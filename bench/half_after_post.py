"""Issue 17 "p99 at half rate": the half-rate GET run in a fresh collector against one that
has just taken the POST runs, as `python -m bench --full` runs it.

    python -m bench.half_after_post [--duration 8] [--rounds 2] [--rps 6500] [--gc [--census]] [--perf DIR] \\
        [--orders fresh,after-post] [--base TREE]

The full bench measures the half rate in the collector x1 process right after its GET,
POST-10 and POST-50 runs. This runs that sequence and, alternating with it, a fresh
collector that takes only the GET run (the half rate is half of its peak) and then the
half-rate run, through the bench's own runner (`runner.Bench.run_config`: the bench's
flags, CPU 0 for the server, wrk on CPU 1, its own redis-server). The request files are
the bench's (bench/out/*.requests: copy them from another checkout rather than regenerate
them). Each run prints the bench's row: rate, latency, CPU µs per event, RSS.

What it adds to the half-rate row, to tell the two orders apart (`diagnose`): the flusher's
state as the half-rate run starts (/api/collector: batches pending, events pending, the
oldest's age), each thread's CPU per request over the run (the loop thread, the executor's
threads, the flush build child: bench/thread_cpu.py), the flushes and their parts over the
run, Redis' CPU per request; `--gc` the worker's garbage collections over the run
(bench/gc_log.py; `--census`: what each full collection walks, by type, and the largest
containers), `--perf DIR` a `perf record -g` of the loop thread during it. `--rps` runs the
half-rate step at one rate in both orders; `--base TREE` runs every order asked with another
checkout's collector too (an A/B in the same rounds).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

from bench import gc_log, procstat, runner, servers, thread_cpu, wrk

OUT = Path(__file__).resolve().parent / "out"
SEQUENCES = (
    ("fresh", "fresh: GET, then half rate", ("get",)),
    ("after-post", "after the POST runs: GET, POST-10, POST-50, then half rate", ("get", "post10", "post50")),
)
# --census: before every full collection, the objects it will walk (the old generation,
# tracked, not frozen) by type, written at exit. Building the list costs the loop a few ms
# a full collection: a run with it tells what is walked, not how long the requests wait.
CENSUS = '''
import collections
_census = []
def _count_old(phase, info):
    if phase == "start" and info["generation"] == 2:
        old = gc.get_objects(2)
        sized = sorted(((len(o), type(o).__name__, repr(next(iter(o), None))[:60]) for o in old
                        if type(o) in (dict, set, list, frozenset, collections.OrderedDict, collections.deque)), reverse=True)
        young = gc.get_objects(0) + gc.get_objects(1)
        entries = sum(len(o) for o in old + young if type(o) in (dict, set, list, tuple))
        _census.append((time.time(), len(old), collections.Counter(type(o).__name__ for o in old).most_common(6), sized[:5],
                        len(young), entries))
        del old
gc.callbacks.insert(0, _count_old)
def _dump_census():
    with open(os.environ["BENCH_GC_LOG"] + f".census.{os.getpid()}", "w") as fh:
        json.dump(_census, fh)
atexit.register(_dump_census)
'''
FLUSH_STATE = ("pending_flushes", "pending_events", "backlog_age_s")


class DiagnosedBench(runner.Bench):
    """The bench's runner, its half-rate run measured from inside too (see the module's doc)."""

    def __init__(self, mode: runner.Mode, workdir: Path, gc: bool, perf_dir: Path | None, rps: float | None) -> None:
        super().__init__(mode, workdir)
        self.gc, self.perf_dir, self.label, self.rps = gc, perf_dir, "", rps
        self.last_server: servers.ServerProc | None = None  # its pid names its GC log
        self.tree: Path | None = None  # another checkout's collector (--base), else this tree's
        self.diagnosis: list[tuple[str, dict[str, float]]] = []

    def server(self, kind: str, workers: int = 1, limits: bool = False) -> servers.ServerProc:
        self.last_server = super().server(kind, workers, limits)
        if self.tree is not None:
            self.last_server.cwd = self.tree
        return self.last_server

    def extra_half(self, s: servers.ServerProc, rows: list[dict]) -> dict | None:
        """With --rps, the same rate for both orders: each process's own peak moves by ±15 %
        from run to run, and the latency and CPU per request move with the rate."""
        if self.rps:
            rows = [{**next(r for r in rows if r["shape"] == "get"), "rps": 2 * self.rps}]
        return super().extra_half(s, rows)

    def measure(self, s: servers.ServerProc, shape: str, **kw) -> dict:
        if not kw.get("delay_ms") or kw.get("duration"):  # not the half-rate run itself (a probe, a load run)
            return super().measure(s, shape, **kw)
        assert s.proc is not None
        main_pid = s.proc.pid
        pids = procstat.tree(main_pid)
        cmdlines = {p: servers._cmdline(p) for p in pids}
        state = servers.collector_figures(s.url)
        flush0 = thread_cpu.flush_figures(s.url)
        perf = self.profiler(main_pid)
        before, t0 = thread_cpu.snapshot(pids), time.time()
        row = super().measure(s, shape, **kw)
        after, t1 = thread_cpu.snapshot(pids), time.time()
        if perf is not None:
            perf.wait(30)
        flush1 = thread_cpu.flush_figures(s.url)
        found = {f"at start: {name}": float(state.get(name, -1)) for name in FLUSH_STATE}
        found |= {f"over the run: {n}": flush1.get(n, 0) - flush0.get(n, 0) for n in flush1}
        found |= thread_roles(before, after, main_pid, cmdlines, row["requests"])
        found["redis CPU µs/req"] = row["redis_cpu_us_per_event"] or 0.0
        found["p99 ms"], found["req/s"], found["CPU µs/req"] = row["p99_ms"], row["rps"], row["cpu_us_per_event"] or 0.0
        found["requests > 5 ms"] = row["over_5ms"]
        found["t0"], found["t1"] = t0, t1  # the GC log is read once the server has exited
        # For logs kept by a hook inside the server (an ad hoc sampler's), to cut out this run.
        print(f"half-rate run ({self.label}): pid {main_pid}, window {t0:.3f} to {t1:.3f} (time.time())", flush=True)
        self.diagnosis.append((self.label, found))
        return row

    def profiler(self, main_pid: int) -> subprocess.Popen | None:
        if self.perf_dir is None:
            return None
        self.perf_dir.mkdir(parents=True, exist_ok=True)
        seconds = str(int(max(self.mode.duration - 2, 1)))
        out = self.perf_dir / f"{self.label}-{len(self.diagnosis)}.perf.data"
        cmd = ["perf", "record", "-g", "-F", "999", "-t", str(main_pid), "-o", str(out), "--", "sleep", seconds]
        return subprocess.Popen(["taskset", "-c", "1", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def thread_roles(before: dict, after: dict, main_pid: int, cmdlines: dict[int, str], requests: int) -> dict[str, float]:
    """CPU µs per request (user + system) of each role: loop thread, executor threads, build child."""
    sums: dict[str, float] = {}
    for key, end in after.items():
        start = before.get(key, thread_cpu.ThreadTimes(end.name, 0, 0, 0, 0))
        name = thread_cpu.role(key[0], key[1], main_pid, cmdlines.get(key[0], ""))
        sums[name] = sums.get(name, 0.0) + (end.user - start.user) + (end.system - start.system)
    return {f"{name} µs/req": ticks * 1e6 / procstat.TICK / max(requests, 1) for name, ticks in sums.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of wrk per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--gc", action="store_true", help="time the worker's garbage collections (bench/gc_log.py)")
    parser.add_argument("--census", action="store_true", help="with --gc: what each full collection walks, by type (costs the loop)")
    parser.add_argument("--perf", type=Path, help="record perf of the loop thread during each half-rate run into this directory")
    parser.add_argument("--rps", type=float, help="the half-rate run at this rate in both orders (default: half of each process's peak)")
    parser.add_argument("--orders", default="fresh,after-post", help="which of the orders to run (comma-separated)")
    parser.add_argument("--base", type=Path, help="another checkout: each order run with its collector too (label '… base')")
    args = parser.parse_args()
    mode = runner.Mode("half-after-post", args.duration, 3, {}, 0, 0, 0, worst_cases=False, ceiling2=False, half_probes=3)
    bench = DiagnosedBench(mode, OUT / "half-after-post", args.gc, args.perf, args.rps)
    for name in ("get", "post10", "post50"):
        bench.files[name] = OUT / f"{name}.requests"
        bench.scripts[name] = wrk.write_script(bench.dir / f"{name}.lua", bench.files[name])
    bench.redis = runner.servers.RedisServer(bench.dir)
    if args.gc:
        # The collectors started below inherit it.
        os.environ.update(gc_log.environment(bench.dir, gc_log.SITECUSTOMIZE + (CENSUS if args.census else "")))
    gc_runs: list[tuple[str, int, float, float]] = []
    try:
        for round_no in range(1, args.rounds + 1):
            for (label, title, shapes), tree in runs(args.orders.split(","), args.base):
                print(f"## round {round_no}, {title}{' (base)' if tree else ''}", flush=True)
                bench.label, bench.tree = label + (" base" if tree else ""), tree
                n = len(bench.diagnosis)
                bench.run_config("collector", 1, shapes=shapes, extra=("half",))
                s = bench.last_server
                if len(bench.diagnosis) > n and s is not None and s.proc is not None:
                    found = bench.diagnosis[-1][1]
                    gc_runs.append((label, s.proc.pid, found["t0"], found["t1"]))
    finally:
        bench.close()
    report(bench.diagnosis, gc_runs if args.gc else [], bench.dir)
    for label, pid, _, _ in gc_runs:
        census = bench.dir / f"gc.census.{pid}"
        for moment, count, kinds, largest, young, entries in json.loads(census.read_text()) if census.exists() else []:
            print(f"{label:12s} pid {pid} full collection at {time.strftime('%H:%M:%S', time.gmtime(moment))}: {count} old objects,"
                  f" {young} young, {entries} entries in their dicts, sets, lists and tuples; {kinds}; the largest containers {largest}")


def runs(orders: list[str], base: Path | None) -> list[tuple[tuple[str, str, tuple[str, ...]], Path | None]]:
    """The runs of a round: each order asked, in this tree and then (--base) the other."""
    trees = [None, base.resolve()] if base else [None]
    return [(sequence, tree) for sequence in SEQUENCES if sequence[0] in orders for tree in trees]


def report(diagnosis: list[tuple[str, dict[str, float]]], gc_runs: list[tuple[str, int, float, float]], work: Path) -> None:
    """Every half-rate run's figures, one column a run, the fresh and after-POST runs alternating."""
    for (_, found), gc in zip(diagnosis, gc_runs or [None] * len(diagnosis), strict=False):
        if gc is not None:
            _, pid, t0, t1 = gc
            found |= gc_log.figures(gc_log.collections(work, pid, t0, t1), t1 - t0, int(found["req/s"] * (t1 - t0)))
    names = [name for name in diagnosis[0][1] if name not in ("t0", "t1")] if diagnosis else []
    for _, found in diagnosis[1:]:
        names += [name for name in found if name not in names and name not in ("t0", "t1")]
    print("\nthe half-rate run, measured from inside (one column a run)")
    print(f"{'':42s}" + "".join(f"{label:>12s}" for label, _ in diagnosis))
    for name in names:
        print(f"{name:42s}" + "".join(f"{found.get(name, float('nan')):12.2f}" for _, found in diagnosis))


if __name__ == "__main__":
    main()
