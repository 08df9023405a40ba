"""Issue 17: what CPython's garbage collector costs the hit path, this tree against another checkout.

    python -m bench.gc_cost [--base /tmp/old] [--hits 60000] [--passes 4]

Drives the fast path in process (bench/hit_cpu.py's HitConnection over a fresh Ingest,
journal on) with the realistic GET hits, `--passes` times over, and builds the rollup of
each 4,000 hits as a flush would (so its garbage is there too). A gc callback takes the
CPU time (thread_time) of every collection. Like the server, the tree's startup heap is
frozen first when it has `collector.server.freeze_startup_heap`. Printed per tree: the
collections of each generation, their total and largest CPU ms, and GC µs per hit.
Each tree runs in its own process (this file, `--child`, with that tree's collector and
bench.hit_cpu on its path), trees alternating, best of `--rounds`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLUSH_EVERY = 4000  # hits between two rollup builds (a second of traffic at ~4,000 hits/s)


def measure(hits: int, passes: int) -> dict:
    from bench import hit_cpu  # the measured tree's (its PYTHONPATH)
    from collector import server
    from collector.store.buckets import Calendar
    from collector.store.rollup import RollupBuilder

    connection, aggregator = hit_cpu._connection(journal=True)
    rollups = RollupBuilder(Calendar("Asia/Shanghai"), {})
    raw, _ = hit_cpu._requests("get", hits)  # (requests, the moment their timestamps were set)
    freeze = getattr(server, "freeze_startup_heap", None)
    if freeze is not None:
        freeze()
    pauses: list[tuple[int, float]] = []
    started: list[float] = [0.0]

    def timed(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.thread_time()
        else:
            pauses.append((info["generation"], time.thread_time() - started[0]))

    gc.callbacks.append(timed)
    for _ in range(passes):
        for n, data in enumerate(raw, 1):
            connection.data_received(data)
            if n % FLUSH_EVERY == 0:
                rollups.build(aggregator.drain())
    gc.callbacks.remove(timed)
    result: dict = {"frozen": freeze is not None, "gc_us_per_hit": sum(p for _, p in pauses) / (hits * passes) * 1e6}
    for generation in (0, 1, 2):
        mine = [p for g, p in pauses if g == generation]
        result[f"gen{generation}"] = [len(mine), sum(mine) * 1000, max(mine, default=0.0) * 1000]
    return result


def _child(tree: Path, hits: int, passes: int) -> dict:
    out = subprocess.run(
        # This file runs in the other tree: its collector and bench.hit_cpu are measured.
        [sys.executable, __file__, "--child", "--hits", str(hits), "--passes", str(passes)],
        cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="GC collections and their CPU per hit, against another checkout")
    parser.add_argument("--base", type=Path, help="another checkout to compare with (e.g. a worktree of main)")
    parser.add_argument("--hits", type=int, default=60000, help="distinct realistic GET hits")
    parser.add_argument("--passes", type=int, default=4, help="times the hits are replayed")
    parser.add_argument("--rounds", type=int, default=2, help="runs per tree; the one with least GC CPU counts")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.hits, args.passes)))
        return 0
    trees = {"this tree": ROOT} | ({"base": args.base.resolve()} if args.base else {})
    best: dict[str, dict] = {}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            result = _child(tree, args.hits, args.passes)
            if name not in best or result["gc_us_per_hit"] < best[name]["gc_us_per_hit"]:
                best[name] = result
    print(f"{args.hits * args.passes:,} realistic GET hits, a rollup build every {FLUSH_EVERY:,}; CPU ms (thread_time)")
    print("tree        frozen  gen0 n / total / max     gen1 n / total / max     gen2 n / total / max     GC µs/hit")
    for name, r in best.items():
        gens = "  ".join(f"{n:5d} / {total:6.1f} / {top:5.1f}" for n, total, top in (r["gen0"], r["gen1"], r["gen2"]))
        print(f"{name:10s}  {'yes' if r['frozen'] else 'no':6s}  {gens}     {r['gc_us_per_hit']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
