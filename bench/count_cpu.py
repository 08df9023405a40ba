"""Issue 17: CPU µs per hit of `Aggregator.count` alone, this tree against another checkout.

    python -m bench.count_cpu [--base /tmp/old] [--rounds 5] [--repeat 5]

The hits are those of two passes over bench.hit_cpu's POST-50 requests (realistic batches,
deep-tag events included), made by the tree's own Ingest and captured before they are
counted (its `_commit` replaced, so the module runs from source: the captured Hits are the
same); then a fresh Aggregator counts all of them, `--repeat` times, and the best CPU time
(process_time) counts. The aggregator is a quarter of the event loop's work per POST event
(bench/RESULTS.md, session 10 and 11): a change to it that the whole loop's noise (±5 %
between rounds) hides shows here. With `--base`, the other checkout runs the same rounds
in turn, each round in both trees before the next.
"""

from __future__ import annotations

import argparse
import gc
import importlib.abc
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class _IngestFromSource(importlib.abc.MetaPathFinder):
    """collector.hit.ingest from its .py (its compiled class's methods cannot be replaced),
    every other module as installed."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "collector.hit.ingest":
            return None
        from collector.native import source_path

        return importlib.util.spec_from_file_location(fullname, source_path(fullname))


def _hits() -> list:
    sys.meta_path.insert(0, _IngestFromSource())
    import collector.hit.ingest as ingest_module

    from . import traffic
    from .hit_cpu import _connection, _requests

    captured: list = []

    def capture(self, tally) -> bool:
        captured.extend(tally.counts)
        return True

    ingest_module.Ingest._commit = capture
    raw, generated_ms = _requests("post50", 20000)
    connection, _ = _connection(journal=False)
    for n in (2, 3):
        for data in traffic.replay_pass(raw, n, generated_ms):
            connection.data_received(data)
    return captured


def measure(repeat: int) -> dict:
    import collector.native
    from collector.store.aggregate import Aggregator

    hits = _hits()
    best = float("inf")
    for _ in range(repeat):
        aggregator = Aggregator()
        gc.collect()
        count = aggregator.count
        started = time.process_time()
        for hit in hits:
            count(hit)
        best = min(best, time.process_time() - started)
    snap = aggregator.drain()
    return {"us_per_hit": best / len(hits) * 1e6, "hits": len(hits), "cells": len(snap.cube),
            "deep_incs": _entries(snap.deep_incs), "deep_members": _entries(snap.deep_members),
            "compiled": len(collector.native.compiled_modules())}


def _entries(collection: Any) -> int:
    """A deep collection's entries, flat (before session 20) or grouped by (app, minute)
    (and suffix, for the increments): this file also runs in older trees."""
    if isinstance(collection, dict) and collection and isinstance(next(iter(collection.values())), (dict, set)):
        return sum(_entries(inner) if isinstance(inner, dict) else len(inner) for inner in collection.values())
    return len(collection)


# The child runs this file as bench.count_cpu inside the other tree's bench package (a
# checkout older than this tool has none of its own).
_CHILD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("bench.count_cpu", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["bench.count_cpu"] = module
spec.loader.exec_module(module)
sys.exit(module.main(["--child", "--repeat", sys.argv[2]]))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CPU µs per hit of Aggregator.count, against another checkout")
    parser.add_argument("--base", type=Path, help="another checkout to compare with (e.g. a worktree of main)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5, help="counts of all the hits per round; the best counts")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.repeat)))
        return 0
    trees = {"this tree": ROOT} | ({"base": args.base.resolve()} if args.base else {})
    found: dict[str, list[float]] = {name: [] for name in trees}
    for round_no in range(args.rounds):
        for name, tree in trees.items():
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, str(Path(__file__).resolve()), str(args.repeat)],
                cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, check=True, capture_output=True, text=True,
            )
            result = json.loads(out.stdout)
            found[name].append(result["us_per_hit"])
            print(f"round {round_no + 1} {name}: {result['us_per_hit']:.3f} µs per hit ({result['hits']} hits, "
                  f"{result['compiled']} compiled modules)", flush=True)
    print("Aggregator.count, µs CPU per hit (best / median of rounds): " + "  ".join(
        f"{name}: {min(v):.3f} / {sorted(v)[len(v) // 2]:.3f}" for name, v in found.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
