"""Issue 17: instructions per hit (or per POST event) in-process, this tree against another checkout.

    python -m bench.instructions [--base /tmp/old] [--shapes get,post50,unique] [--hits 1000]

Timings on a shared 2-core machine swing by ±30 % from round to round, which hides a change
worth 2–5 % (sessions 14–15). The count of instructions a hit executes does not swing: this
runs bench.hit_cpu's fast-path driver (`HitConnection.data_received`, the journal on, the
registry open) under valgrind's cachegrind, which counts every instruction the process
executes, and takes the difference between a run of 3 measured passes and a run of 1 —
start-up, imports and the warm-up pass cancel out:

    instructions per hit = (I(warm-up + 3 passes) − I(warm-up + 1 pass)) / (2 × hits per pass)

Both trees are given the very same requests (built once here, pickled; each pass new event
ids and timestamps as in bench.hit_cpu), PYTHONHASHSEED=0, the aggregator drained and the
garbage collected before each pass, address randomization off: two runs of one tree agree to a
few instructions a hit.
Instructions are not time (a cache miss costs more than an add; system calls are the
kernel's), so a change that moves them is then timed where it can show (bench.hit_cpu).
Needs `valgrind` (Debian package); under it a run takes ~1–2 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import hit_cpu

SHAPES = hit_cpu.SHAPES
MEASURED_PASSES = (1, 3)  # the two runs whose difference is counted
HITS_PER_REQUEST = {"get": 1, "unique": 1, "post50": 50}
_I_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def passes_of(shape: str, hits: int) -> list[list[bytes]]:
    """The warm-up pass then max(MEASURED_PASSES) measured passes of `shape`'s requests.

    get/post50: the realistic requests, then replays with new ids and fresh timestamps (as
    bench.hit_cpu times them). unique: every pass other never-seen visitors."""
    from . import traffic

    rounds = max(MEASURED_PASSES)
    if shape == "unique":
        return hit_cpu._unique_passes(hits, rounds + 1)
    raw, generated_ms = hit_cpu._requests(shape, hits)
    return [raw] + [traffic.replay_pass(raw, n, generated_ms) for n in range(2, rounds + 2)]


def drive(passes: list[list[bytes]], measured: int) -> tuple[int, dict[str, int]]:
    """Feed the warm-up and `measured` passes through a fresh fast path; the events counted
    and the rejections by reason (a pass that was rejected would count the wrong path)."""
    import gc

    connection, aggregator = hit_cpu._connection(journal=True)
    for requests in passes[: measured + 1]:
        aggregator.drain()
        gc.collect()
        for data in requests:
            connection.data_received(data)
    return aggregator.totals()  # kept across drains: every pass's


def instruction_count(cachegrind_output: str) -> int:
    """The total of instructions executed ("I refs") in cachegrind's summary."""
    found = _I_REFS.search(cachegrind_output)
    if not found:
        raise ValueError("no 'I refs' line in valgrind's output: " + cachegrind_output[-500:])
    return int(found.group(1).replace(",", ""))


# Where the kernel puts the heap and the libraries changes with each run (ASLR), and code that
# hashes addresses (store/_lines.c keeps tuples by a hash of theirs) then takes another number
# of steps: two runs of one tree differed by ~250 instructions a POST-50 event (session 26).
# Without randomization the layout, and so the count, repeats.
NO_ADDRESS_RANDOMIZATION = ["setarch", platform.machine(), "--addr-no-randomize"] if shutil.which("setarch") else []


def _counted_run(tree: Path, requests_file: Path, measured: int, per_pass: int) -> int:
    run_dir = hit_cpu._run_dir(tree)
    out = subprocess.run(
        [*NO_ADDRESS_RANDOMIZATION, "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         sys.executable, "-m", "bench.instructions", "--child", str(requests_file), "--measured", str(measured)],
        cwd=run_dir, env={**os.environ, "PYTHONPATH": run_dir, "PYTHONHASHSEED": "0"},
        check=True, capture_output=True, text=True,
    )
    events, reasons = json.loads(out.stdout)
    if events != (measured + 1) * per_pass or reasons:  # else another path than a valid hit's was counted
        raise RuntimeError(f"{tree}: {events} events counted of {(measured + 1) * per_pass}, rejected {reasons}")
    return instruction_count(out.stderr)


def per_hit(tree: Path, requests_file: Path, hits_per_pass: int) -> float:
    low, high = (_counted_run(tree, requests_file, n, hits_per_pass) for n in MEASURED_PASSES)
    return (high - low) / ((MEASURED_PASSES[1] - MEASURED_PASSES[0]) * hits_per_pass)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="instructions per hit in-process (cachegrind), against another checkout")
    parser.add_argument("--base", type=Path, help="another checkout to compare with (e.g. a worktree of main)")
    parser.add_argument("--hits", type=int, default=1000, help="GET hits (POST: this many events) per pass")
    parser.add_argument("--shapes", default="get,post50", help=f"comma-separated, of {', '.join(SHAPES)}")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--measured", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        events, reasons = drive(pickle.loads(args.child.read_bytes()), args.measured)
        print(json.dumps([events, reasons]))
        return 0
    shapes = [s for s in args.shapes.split(",") if s]
    if not set(shapes) <= set(SHAPES):
        parser.error(f"--shapes: of {', '.join(SHAPES)}")
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (apt-get install valgrind)")
    trees = {"this tree": hit_cpu.ROOT} | ({"base": args.base.resolve()} if args.base else {})
    with tempfile.TemporaryDirectory() as tmp:
        for shape in shapes:
            passes = passes_of(shape, args.hits)
            requests_file = Path(tmp) / f"{shape}.pickle"
            requests_file.write_bytes(pickle.dumps(passes))
            per_pass = sum(len(p) for p in passes[1:]) // (len(passes) - 1) * HITS_PER_REQUEST[shape]
            started = time.monotonic()
            figures = {name: per_hit(tree, requests_file, per_pass) for name, tree in trees.items()}
            unit = "per event, POST of 50" if shape == "post50" else f"per {shape} GET hit"
            print(f"instructions {unit:22s} " + "  ".join(f"{name}: {v:,.0f}" for name, v in figures.items())
                  + (f"  ({figures['this tree'] / figures['base'] - 1:+.2%})" if "base" in figures else "")
                  + f"   [{per_pass} a pass, {time.monotonic() - started:.0f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
