"""Issue 17: what the re-send record costs per event, and what it holds.

    python -m bench.recent_ids_cost [--base TREE] [--rounds 7] [--ids 400000] [--pairs 3]

Times `RecentIds.seen` (hit/remarks.py, the default limit of 100,000) on --ids new ids
(a first send: lookup and insert, the POST event's case; past the turn, so both generations
are full most of the time) and on repeats of the newest 50,000 (a re-send), best of
--rounds, in a subprocess of this tree and (--base) of another checkout, interleaved
--pairs times. Each subprocess also reports the record's size when full by tracemalloc.
The ids are made before the clock starts; the loop's own cost (a loop over the same ids
calling a compiled no-op) is measured and subtracted. `sets` is this tree with
`compact=False` where that exists (the pure-Python fallback's structure, compiled).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

PROBE = """
import gc, sys, time, tracemalloc, inspect
from collector import native
from collector.hit.remarks import RecentIds, outside_window

rounds, count, variant = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
compact = {"compact": False} if variant == "sets" else {}
ids = [f"{i:08x}-{i * 2654435761 % 2**32:08x}" for i in range(count)]
repeats = ids[-50_000:]
for event_id in ids:
    hash(event_id)  # cached, as the request's parsed id's hash is by its first lookup

def best(fn):
    times = []
    for _ in range(rounds):
        recent = RecentIds(**compact)
        gc.collect()
        start = time.perf_counter()
        fn(recent)
        times.append(time.perf_counter() - start)
    return min(times)

def new_ids(recent):
    seen = recent.seen
    for event_id in ids:
        seen("zjer", event_id)

def again(recent):
    seen = recent.seen
    for event_id in ids:
        seen("zjer", event_id)
    start = time.perf_counter()
    for event_id in repeats:
        seen("zjer", event_id)
    again.elapsed = time.perf_counter() - start

def floor(recent):
    tick = outside_window  # a compiled call of the same shape, as a floor for the loop
    for event_id in ids:
        tick(1.0, 1.0, 1.0, 1.0)

new = best(new_ids)
loop = best(floor)
repeat_times = []
for _ in range(rounds):
    again(RecentIds(**compact))
    repeat_times.append(again.elapsed)
tracemalloc.start()
recent = RecentIds(**compact)
for event_id in ids[:150_000]:
    recent.seen("zjer", event_id)
held = tracemalloc.get_traced_memory()[0]
tracemalloc.stop()
print(new / count * 1e9, loop / count * 1e9, min(repeat_times) / len(repeats) * 1e9, held / 2**20, len(recent),
      int(native.in_use()))
"""


def measure(tree: Path, rounds: int, count: int, variant: str) -> list[float]:
    """[ns per new id, ns per loop turn, ns per repeat, MB held full, ids held, compiled]"""
    out = subprocess.run([sys.executable, "-c", PROBE, str(rounds), str(count), variant], cwd=tree, capture_output=True,
                         text=True, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, check=True)
    return [float(value) for value in out.stdout.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, help="another checkout, measured in the same run")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ids", type=int, default=400_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--sets", action="store_true", help="also this tree with RecentIds(compact=False)")
    args = parser.parse_args()
    runs = [("this tree", HERE, "default")]
    runs += [("sets", HERE, "sets")] if args.sets else []
    runs += [("base", args.base.resolve(), "default")] if args.base else []
    print("RecentIds.seen, ns per call (best of rounds; the loop's floor subtracted), and MB held at 100,000 ids")
    for _ in range(args.pairs):  # interleaved: the machine's drift hits both
        for name, tree, variant in runs:
            new, loop, repeat, held, ids, compiled = measure(tree, args.rounds, args.ids, variant)
            print(f"{name:10s} new id {new - loop:6.1f} ns (loop {loop:5.1f}), re-send {repeat - loop:6.1f} ns, "
                  f"{held:5.2f} MB for {ids:.0f} ids{'' if compiled else ' (PURE PYTHON)'}")


if __name__ == "__main__":
    main()
