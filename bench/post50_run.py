"""Issue 17: short POST-50 wrk runs against collector x1, this tree against another checkout.

    python -m bench.post50_run [--base /tmp/old] [--rounds 3] [--duration 8]

Each round starts a fresh collector x1 of each tree in turn (its own redis-server, the
bench's server flags: bench/servers.py), warms it with GET hits for 1 s, then replays a
file of 6,000 realistic 50-event POSTs (bench/traffic.py) with wrk for `--duration`
seconds, as `python -m bench` does, and reports: events/s answered, the collector's CPU
µs per event (run and catch-up), its peak RSS, the share of the answered events already
in Redis when wrk stopped (sampled every 0.5 s: the flush keeping up, or not), the
seconds until Redis held them all (catch-up, up to 20 s) and that share then. Other
processes' CPU during the run is shown: on a shared machine, compare CPU per event and
catch-up within one invocation, not events/s across hours; the bench's CPU speed check
(ms of a fixed Python loop, before and after the run) shows how fast the VM was. Also: the event loop thread's
CPU per event, the most events waiting for Redis at once (/api/collector, every 0.5 s),
and the events of batches left to the journal and rebuilt from it (past memory_max_cells).

The machine's budget per event is shown beside the collector's: Redis' CPU (its
process time, run and catch-up) with the script's and its largest commands' time
(INFO commandstats usec, the script's including the commands it runs), and wrk's CPU
(the load generator, on the other core with Redis): at 100,000 events/s each µs an event
is a tenth of a core.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
REQUESTS = 6000  # distinct 50-event POSTs in the request file (wrk wraps around it)


def one_run(duration: float, workdir: Path) -> dict:
    """One collector x1 of the tree this process imports, one wrk run: the figures."""
    from bench import runner, servers, wrk

    mode = runner.Mode("post50-run", duration, 1, {"post50": REQUESTS, "get": 2000}, 0, 40000, 0,
                       half_rate=False, worst_cases=False, ceiling2=False)
    bench = runner.Bench(mode, workdir, log=lambda *_: None)
    bench.prepare()
    server = bench.server("collector", 1)
    server.start()
    stored: list[tuple[float, int]] = []
    queued: list[int] = []  # the events waiting for Redis (/api/collector), at each sample
    busy: list[tuple[float, list[tuple[float, float]]]] = []  # each CPU's (busy, all) seconds, at each sample
    load_start: list[tuple[float, list[tuple[float, float]]]] = []  # the same when wrk starts
    stop = threading.Event()

    def load_starts(_until: float) -> None:  # bench.measure calls it just before wrk starts
        load_start.append((time.monotonic(), _cpu_seconds()))

    def sample(started: float) -> None:
        while not stop.is_set():
            busy.append((time.monotonic(), _cpu_seconds()))
            stored.append((time.monotonic() - started, runner.count_events(bench.redis)))
            queued.append(_backlog(server.url).get("pending_events", 0))
            stop.wait(0.5)

    # The VM's speed drifts with other tenants (2x within a day): runs compare at similar values.
    speed_before = runner.cpu_speed_ms()
    try:
        wrk.run(server.url + "/c", bench.scripts["get"], 1, connections=mode.connections)
        bench.settle(server, 0, 10)
        sampler = threading.Thread(target=sample, args=(time.monotonic(),), daemon=True)
        worker = server.workers()[0]
        loop_cpu = _main_thread_cpu(worker)
        sampler.start()
        commands, wrk_cpu = _redis_usec(bench), _children_cpu()
        row = bench.measure(server, "post50", settle_max=20, during=load_starts)
        loop_cpu = _main_thread_cpu(worker) - loop_cpu
        commands, wrk_cpu = _redis_usec(bench, since=commands), _children_cpu() - wrk_cpu
        # This harness's own questions (the sampler's KEYS and HGETALLs) are not the collector's.
        harness = sum(commands.pop(name, 0) for name in servers.HARNESS_COMMANDS)
        stop.set()
        sampler.join()
        backlog = _backlog(server.url)
    finally:
        server.stop()
        bench.cleanup(server)
        bench.close()
    # The sample nearest the end of the load (reset and wrk's start take a moment: the first at or after it).
    at_end = next((count for at, count in stored if at >= row["duration_s"]), stored[-1][1] if stored else 0)
    # Each CPU's seconds at the last sample within the load (samples every 0.5 s: of an 8 s load, 7.5–8 s).
    started, at_start = load_start[0]
    at_load_end = [cpus for at, cpus in busy if started < at <= started + row["duration_s"]]
    return {
        "cpu_speed_ms": [speed_before, runner.cpu_speed_ms()],  # the bench's speed check, before and after
        "events_per_s": round(row["eps"]), "cpu_us_per_event": round(row["cpu_us_per_event"], 1),
        "peak_rss_mb": round(row["peak_rss_mb"]), "stored_when_load_ended": round(at_end / row["events"], 3),
        "catch_up_s": round(row["settle_s"], 1), "stored": round((row["counted_events"] or 0) / row["events"], 4),
        "other_load_cores": round(row["foreign_cpu_cores"], 2),
        # The most events waiting for Redis at once, and those left to the journal and
        # rebuilt from it when due (past memory_max_cells; None: a tree that does not count them).
        "max_queued_events": max(queued, default=0), "events_rebuilt": backlog.get("events_rebuilt"),
        # Who built the flush's parts: the build process, or the flusher's thread (and why).
        "parts_apart": backlog.get("flush_parts_built_apart"),
        "parts_in_thread": {key.rpartition("_")[2]: n for key, n in backlog.items()
                            if key.startswith("flush_parts_built_in_thread_") and n},
        # The worker's event loop thread (hits, the loop, the flush's coroutines), run and catch-up.
        "loop_cpu_us_per_event": round(loop_cpu / max(row["events"], row["counted_events"] or 0) * 1e6, 1),
        # The rest of the machine's budget an event: Redis (the script's µs include its commands') and wrk.
        "redis_cpu_us_per_event": round(row["redis_cpu_us_per_event"] or 0, 1),
        "redis_usec_per_event": {name: round(usec / row["handled_events"], 2)
                                 for name, usec in sorted(commands.items(), key=lambda kv: -kv[1])[:5]},
        "redis_harness_usec_per_event": round(harness / row["handled_events"], 2),
        "wrk_cpu_us_per_event": round(wrk_cpu / row["handled_events"] * 1e6, 1),
        # Each CPU's busy share while the load ran (CPU 0: the collector; CPU 1: Redis, wrk and this harness).
        "cpu_busy_during_load": [round((b1 - b0) / ((t1 - t0) or 1), 2)
                                 for (b0, t0), (b1, t1) in zip(at_start, at_load_end[-1], strict=True)]
        if at_load_end else None,
    }


def _redis_usec(bench, since: dict[str, int] | None = None) -> dict[str, int]:
    """Redis' time in each command (INFO commandstats usec), less `since`'s."""
    stats = bench.redis.client.info("commandstats")
    usec = {name.removeprefix("cmdstat_"): int(v["usec"]) for name, v in stats.items()}
    return {name: n - (since or {}).get(name, 0) for name, n in usec.items()}


def _cpu_seconds() -> list[tuple[float, float]]:
    """Each CPU's busy and total seconds since boot (/proc/stat's cpuN lines)."""
    out = []
    for line in Path("/proc/stat").read_text().splitlines()[1:]:
        if not line.startswith("cpu"):
            break
        ticks = [int(x) for x in line.split()[1:9]]  # user nice system idle iowait irq softirq steal
        out.append(((sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS, sum(ticks) / CLOCK_TICKS))
    return out


def _children_cpu() -> float:
    """CPU seconds of this process's finished children: the wrk runs."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


def _main_thread_cpu(pid: int) -> float:
    """utime + stime of the process's main thread (its event loop), in seconds."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # fields 14 and 15 of proc(5)


def _backlog(url: str) -> dict:
    """The collector's /api/collector answer (open on loopback); {} if it did not answer."""
    try:
        with urllib.request.urlopen(url + "/api/collector", timeout=5) as answer:
            return json.loads(answer.read())
    except (OSError, ValueError):
        return {}


def _run_tree(tree: Path, duration: float) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--duration", str(duration)]
    out = subprocess.run(command, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="short POST-50 wrk runs against collector x1, against another checkout")
    parser.add_argument("--base", type=Path, help="another checkout to compare with (e.g. a worktree of main)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of wrk per run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(one_run(args.duration, Path.cwd() / "bench" / "out" / "post50-run")))
        return 0
    trees = {"this tree": ROOT} | ({"base": args.base.resolve()} if args.base else {})
    for round_ in range(1, args.rounds + 1):
        for name, tree in trees.items():
            print(json.dumps({"round": round_, "tree": name, **_run_tree(tree, args.duration)}), flush=True)
    return 0


if __name__ == "__main__":
    if __package__ in (None, ""):  # run as a file (another tree's child): its own directory is not a package
        sys.path[0] = os.getcwd()
    sys.exit(main())
