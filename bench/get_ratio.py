"""Issue 17: the GET ratio (collector x1 ÷ bare aiohttp) read from adjacent short runs.

    python -m bench.get_ratio [--pairs 8] [--seconds 3] [--requests 40000]

The full bench measures the ceiling and the collector minutes apart. On a host whose
speed drifts, their ratio follows the drift: in session 16's full run the CPU speed
check read 38.5 ms before the ceiling's runs and 46.7 ms before the collector's, and the
same bare server took 56 µs a request there and 90 µs twenty minutes later. Here both
servers run at once, each pinned to CPU 0 and idle while the other is loaded, and wrk
(on CPU 1, with the collector's redis-server) loads them in turn for `--seconds` each:
ceiling, collector, ceiling, collector, …, ceiling. Each collector run is divided by the
mean of the two ceiling runs beside it; the median of those ratios is the figure, and
every run is printed. The requests are the full bench's realistic GET file (traffic.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from . import runner, servers, wrk

CONNECTIONS = 64


def ratios(ceiling_rps: list[float], collector_rps: list[float]) -> list[float]:
    """Each collector run over the mean of the ceiling runs before and after it."""
    if len(ceiling_rps) != len(collector_rps) + 1:
        raise ValueError("a ceiling run on each side of every collector run")
    return [rps / ((ceiling_rps[i] + ceiling_rps[i + 1]) / 2) for i, rps in enumerate(collector_rps)]


def measure(pairs: int, seconds: float, requests: int, workdir: Path, log=print) -> dict:
    """Run the alternating loads; the req/s of every run and the ratios."""
    runner.generate_requests(workdir, [("get", requests)], population=requests // 2)
    script = wrk.write_script(workdir / "get.lua", workdir / "get.requests")
    redis = servers.RedisServer(workdir)
    ceiling = servers.ceiling(servers.free_port(), 1, "0", workdir / "ceiling.log")
    collector = servers.collector(servers.free_port(), 1, redis.url, "0", workdir / "collector.log", workdir / "data")
    rps: dict[str, list[float]] = {"ceiling": [], "collector": []}
    try:
        for server in (ceiling, collector):
            server.start()
            wrk.run(server.url + "/c", script, 1, connections=CONNECTIONS)  # warm-up: imports, caches, a first flush
        order = [("ceiling", ceiling)] + [run for _ in range(pairs) for run in (("collector", collector), ("ceiling", ceiling))]
        for name, server in order:
            result = wrk.run(server.url + "/c", script, seconds, connections=CONNECTIONS)
            if result.errors:
                raise RuntimeError(f"{name}: {result.errors} wrk errors")
            rps[name].append(result.rps)
            log(f"{name:10s} {result.rps:9,.0f} req/s")
    finally:
        for server in (collector, ceiling):
            server.stop()
        redis.stop()
    found = ratios(rps["ceiling"], rps["collector"])
    return {**rps, "ratios": found, "median": statistics.median(found)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8, help="collector runs (each between two ceiling runs)")
    parser.add_argument("--seconds", type=float, default=3, help="seconds of wrk per run")
    parser.add_argument("--requests", type=int, default=40000, help="distinct GET requests in the file")
    args = parser.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args.pairs, args.seconds, args.requests, Path(tmp))
    print(f"{started}: collector x1 ÷ ceiling x1, GET, {args.pairs} runs of {args.seconds:g} s between ceiling runs")
    print("  ratios: " + " ".join(f"{r:.3f}" for r in result["ratios"]))
    print(f"  median {result['median']:.3f} (range {min(result['ratios']):.3f}–{max(result['ratios']):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
