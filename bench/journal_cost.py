"""What the journal costs: the collector with and without it, same load, one run.

    .venv/bin/python -m bench.journal_cost [--seconds 8] [--rounds 2]

Alternates `collector serve` (journal on, the default) and `--no-journal` against the
realistic GET and 10-event POST request files that `python -m bench` generated in
bench/out, each round in both orders, after a 4 s warm-up of the same requests, server on CPU 0,
wrk and Redis on CPU 1. Prints a
Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from collector.embedded_redis import find_redis_server

from .flood import UNLIMITED

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
TASKSET = ["taskset", "-c"]


def wrk(url: str, script: Path, seconds: int) -> float:
    out = subprocess.run(
        [*TASKSET, "1", "wrk", "-t1", "-c64", f"-d{seconds}s", "-s", str(script), url],
        cwd=OUT, capture_output=True, text=True, check=True,
    ).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def measure(journal: bool, redis_port: int, shape: str, seconds: int) -> float:
    data = Path(tempfile.mkdtemp(prefix="journal-cost-"))
    port = 18150
    args = [sys.executable, "-m", "collector", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--redis-url", f"redis://127.0.0.1:{redis_port}/0", "--trusted-proxies", "127.0.0.1/32",
            "--data-dir", str(data), "--journal" if journal else "--no-journal",
            "--registry", "open"]  # the bench's app keys are not registered platforms
    server = subprocess.Popen([*TASKSET, "0", *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, **UNLIMITED})  # it measures the journal, not the rate limits
    try:
        time.sleep(3)
        url = f"http://127.0.0.1:{port}/"
        wrk(url, OUT / f"{shape}.lua", 4)  # warm-up: UA, geo and bucket caches fill first
        return wrk(url, OUT / f"{shape}.lua", seconds)
    finally:
        server.terminate()
        server.wait(20)
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    redis_dir = Path(tempfile.mkdtemp(prefix="journal-cost-redis-"))
    redis_port = 18151
    redis = subprocess.Popen(
        [*TASKSET, "1", find_redis_server(), "--port", str(redis_port), "--save", "", "--dir", str(redis_dir)],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    results: dict[tuple[str, bool], list[float]] = {}
    try:
        for r in range(args.rounds):
            for shape in ("get", "post10"):
                for journal in ((True, False) if r % 2 == 0 else (False, True)):
                    results.setdefault((shape, journal), []).append(measure(journal, redis_port, shape, args.seconds))
    finally:
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(redis_dir, ignore_errors=True)
    print("| request shape | journal off req/s | journal on req/s | on / off |")
    print("|---|---|---|---|")
    for shape in ("get", "post10"):
        off = sum(results[(shape, False)]) / args.rounds
        on = sum(results[(shape, True)]) / args.rounds
        print(f"| {shape} | {off:,.0f} | {on:,.0f} | {on / off:.2f} |")


if __name__ == "__main__":
    main()
