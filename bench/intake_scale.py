"""Issue 17: the POST-50 intake's CPU per event at scale, in process, against hit_cpu's warm best case.

    python -m bench.intake_scale [--requests 3000] [--rounds 3]

hit_cpu times 80 POST-50 requests, warm, the aggregator drained and the garbage
collected before each round. At saturation the worker takes thousands of distinct
requests while its aggregator holds up to batch_max_cells entries and the batches
queued for Redis are alive too. This drives `--requests` distinct POST-50 requests
(bench/traffic.py, the journal on) through the fast path once, without draining, and
reports CPU µs per event for: the run as it is (`scale`), the same with the garbage
collector off (`scale, gc off`: what the collections cost), and the first 80 requests
again as hit_cpu does (`warm 80`).
"""

from __future__ import annotations

import argparse
import gc
import time

from bench.hit_cpu import _connection


def _requests(n: int) -> list[bytes]:
    from bench import traffic
    from bench.ippool import load_pool

    now_ms = int(time.time() * 1000)
    pop = traffic.Population(load_pool(), 60000, seed=1)
    return [traffic.http_bytes(r) for r in traffic.realistic(pop, n, "post50", now_ms)]


def _run(raw: list[bytes], gc_on: bool) -> float:
    connection, aggregator = _connection(journal=True)
    gc.collect()
    if not gc_on:
        gc.disable()
    try:
        start = time.process_time()
        for data in raw:
            connection.data_received(data)
        took = time.process_time() - start
    finally:
        gc.enable()
    aggregator.drain()
    return took / (len(raw) * 50) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    raw = _requests(args.requests)
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, gc_on in (("scale", True), ("scale, gc off", False)):
            best[name] = min(best.get(name, float("inf")), _run(raw, gc_on))
    for name, value in best.items():
        print(f"{name:16s} {value:6.2f} µs CPU per event")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
