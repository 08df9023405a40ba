"""Issue 17: the GET ratio (collector x1 ÷ bare aiohttp) read from adjacent short runs.

    python -m bench.get_ratio [--shape get|unique] [--pairs 8] [--seconds 5] [--requests N]

The full bench measures the ceiling and the collector minutes apart. On a host whose
speed drifts, their ratio follows the drift: in session 16's full run the CPU speed
check read 38.5 ms before the ceiling's runs and 46.7 ms before the collector's, and the
same bare server took 56 µs a request there and 90 µs twenty minutes later. Here both
servers run at once, each pinned to CPU 0 and idle while the other is loaded, and wrk
(on CPU 1, with the collector's redis-server) loads them in turn for `--seconds` each:
ceiling, collector, ceiling, collector, …, ceiling. After each collector run the next
waits until the collector has written everything it holds (its flush would otherwise run
on CPU 0 inside the ceiling's window, as the first version of this tool let it).

Two ratios per collector run, each against the mean of the two ceiling runs beside it:
- CPU: the ceiling's CPU µs a request over the collector's, the collector's counted
  over its run *and* the flush of its tail (all its processes) — the figure of record,
  as the full bench's ratio is a CPU-bound server's throughput;
- req/s: wrk's rates (the tail's flush then falls outside the window: an upper bound).
The medians are printed with every run. The requests are made as the full bench's realistic GET
file is (traffic.py: its size and population).

`--shape unique`: every collector hit from a never-seen address and a never-seen User-Agent, as
the full bench's unique file (traffic.unique, its population). wrk starts its request file anew
each run, so one file would replay in run 2 the visitors run 1 sent (cache hits, known visitors):
here every collector run, and its warm-up, gets a slice of its own, all drawn from one population
(no address or User-Agent in two slices), and stops before the end of its slice (`stop_after`) —
a fast run ends early rather than wrap. `--requests` is then the size of each slice.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from . import procstat, runner, servers, traffic, wrk

CONNECTIONS = 64
FULL = runner.MODES["full"]  # the full bench's GET file: its distinct visitors, addresses and User-Agents
SHAPES = ("get", "unique")
UNIQUE_RATE = 10_000  # req/s a unique slice is sized for (the collector read ≤ 7,409 in full runs)


def ratios(ceiling: list[float], collector: list[float]) -> list[float]:
    """Each collector run's figure over the mean of the ceiling runs before and after it."""
    if len(ceiling) != len(collector) + 1:
        raise ValueError("a ceiling run on each side of every collector run")
    return [value / ((ceiling[i] + ceiling[i + 1]) / 2) for i, value in enumerate(collector)]


def _tree_cpu_s(server: servers.ServerProc) -> float:
    return sum(procstat.cpu_seconds(pid) for pid in procstat.tree(server.proc.pid))


def _settled(server: servers.ServerProc, limit: float = 30.0) -> None:
    """Wait until the collector holds no batch or event still to write (a ceiling holds none)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if servers.nothing_to_write(server):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{server.name}: still flushing after {limit:.0f} s")


def unique_slices(workdir: Path, slices: int, per_slice: int) -> list[Path]:
    """`slices` request files of `per_slice` unique GET hits each, made as the full bench's unique
    file (one population: no address or User-Agent twice, in a slice or across slices)."""
    from .ippool import load_pool

    population, now_ms = traffic.Population(load_pool(), 1000, seed=2), int(time.time() * 1000)
    paths = [workdir / f"unique-{n}.requests" for n in range(slices)]
    for n, path in enumerate(paths):  # the population's address draws never repeat; the User-Agent serials run on
        traffic.write_wrk_file(traffic.unique(population, per_slice, now_ms, serial_start=n * per_slice), path)
    return paths


def slice_limit(per_slice: int) -> int:
    """Requests a run may ask of a slice: wrk stops the run at this count, and each of its connections
    may ask one more request in the loop pass where it stops, so the slice never wraps."""
    if per_slice <= 2 * CONNECTIONS:
        raise ValueError(f"a slice of {per_slice} requests is too small for {CONNECTIONS} connections")
    return per_slice - CONNECTIONS


def _scripts(shape: str, pairs: int, requests: int, workdir: Path) -> tuple[Path, list[Path]]:
    """The ceiling's script, then the collector's: its warm-up's and one per run."""
    if shape == "get":
        runner.generate_requests(workdir, [("get", requests)], population=FULL.population)
        script = wrk.write_script(workdir / "get.lua", workdir / "get.requests")
        return script, [script] * (pairs + 1)
    ceiling_file, *collector_files = unique_slices(workdir, pairs + 2, requests)
    ceiling_script = wrk.write_script(workdir / "ceiling.lua", ceiling_file)  # the bare server may replay its slice
    return ceiling_script, [wrk.write_script(path.with_suffix(".lua"), path, stop_after=slice_limit(requests))
                            for path in collector_files]


def measure(pairs: int, seconds: float, requests: int, workdir: Path, log=print, shape: str = "get") -> dict:
    """Run the alternating loads; the req/s of every run and the ratios."""
    ceiling_script, collector_scripts = _scripts(shape, pairs, requests, workdir)
    scripts = {"ceiling": iter([ceiling_script] * (pairs + 2)), "collector": iter(collector_scripts)}
    redis = servers.RedisServer(workdir)
    ceiling = servers.ceiling(servers.free_port(), 1, "0", workdir / "ceiling.log")
    collector = servers.collector(servers.free_port(), 1, redis.url, "0", workdir / "collector.log", workdir / "data")
    rps: dict[str, list[float]] = {"ceiling": [], "collector": []}
    sent: dict[str, list[int]] = {"ceiling": [], "collector": []}  # requests answered in each run
    cpu_us: dict[str, list[float]] = {"ceiling": [], "collector": []}  # CPU µs a request
    try:
        for name, server in (("ceiling", ceiling), ("collector", collector)):
            server.start()
            # warm-up: imports, caches (unique: filled with other visitors), a first flush
            wrk.run(server.url + "/c", next(scripts[name]), 1, connections=CONNECTIONS)
            _settled(server)
        order = [("ceiling", ceiling)] + [run for _ in range(pairs) for run in (("collector", collector), ("ceiling", ceiling))]
        for name, server in order:
            before = _tree_cpu_s(server)
            result = wrk.run(server.url + "/c", next(scripts[name]), seconds, connections=CONNECTIONS)
            _settled(server)
            if result.errors:
                raise RuntimeError(f"{name}: {result.errors} wrk errors")
            if shape == "unique" and name == "collector" and result.requests >= slice_limit(requests):
                log(f"  (the slice ran out after {result.duration_s:.1f} s: a shorter run, still never-seen visitors)")
            rps[name].append(result.rps)
            sent[name].append(result.requests)
            cpu_us[name].append((_tree_cpu_s(server) - before) / result.requests * 1e6)
            log(f"{name:10s} {result.rps:9,.0f} req/s {cpu_us[name][-1]:7.1f} µs CPU a request")
    finally:
        for server in (collector, ceiling):
            server.stop()
        redis.stop()
    by_cpu = [1 / r for r in ratios(cpu_us["ceiling"], cpu_us["collector"])]
    by_rps = ratios(rps["ceiling"], rps["collector"])
    return {"rps": rps, "cpu_us": cpu_us, "requests": sent, "cpu_ratios": by_cpu, "rps_ratios": by_rps,
            "cpu_median": statistics.median(by_cpu), "rps_median": statistics.median(by_rps)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=SHAPES, default="get",
                        help="get: the realistic GET file; unique: every collector hit a never-seen visitor")
    parser.add_argument("--pairs", type=int, default=8, help="collector runs (each between two ceiling runs)")
    parser.add_argument("--seconds", type=float, default=5, help="seconds of wrk per run")
    parser.add_argument("--requests", type=int, help=f"get: distinct requests in the file ({FULL.n_requests['get']}); "
                        f"unique: requests in each run's slice (seconds × {UNIQUE_RATE:,})")
    args = parser.parse_args(argv)
    requests = args.requests or (FULL.n_requests["get"] if args.shape == "get" else int(args.seconds * UNIQUE_RATE))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args.pairs, args.seconds, requests, Path(tmp), shape=args.shape)
    what = "GET" if args.shape == "get" else f"unique GET ({requests:,} never-seen visitors a run)"
    print(f"{started}: collector x1 ÷ ceiling x1, {what}, {args.pairs} runs of {args.seconds:g} s between ceiling runs")
    for kind in ("cpu", "rps"):
        found = result[f"{kind}_ratios"]
        print(f"  by {kind:3s}: median {result[f'{kind}_median']:.3f}  (" + " ".join(f"{r:.3f}" for r in found) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
