"""Issue 17: CPU µs per whole hit in-process, this tree against another checkout, interleaved.

    python -m bench.hit_cpu [--base /tmp/old] [--rounds 5] [--hits 4000] [--profile get|post50|unique]
        [--shapes get,post50,unique]

Drives the fast path (`HitConnection.data_received`, a transport that only counts, the
journal on in a temporary directory) with the realistic GET hits and with POST batches of
50 events, warm (every cache already holds them), and takes the CPU time (process_time)
of the best round (every round's figure printed too). Each round is a new pass over the requests (new event ids, fresh
timestamps: valid hits, as in real traffic, not re-sends of the round before). With
`--base`, the other checkout (e.g. a `git worktree add` of main) runs the same rounds in
turn, each round in both trees before the next, so that a loaded machine's drift hits
both alike. `--profile` prints cProfile's top functions instead.

The `unique` shape is bench/out/unique.requests' traffic (traffic.unique): every GET hit
from a never-seen address and a never-seen User-Agent. Its warm-up and each round are
different visitors (one population, so no address or User-Agent comes twice): every timed
hit misses the device and geo caches and is a new visitor, as the first pass of the unique
file is. Not in the default `--shapes` (the table of issue 17 has get and post50 rows).
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHAPES = ("get", "post50", "unique")
DEFAULT_SHAPES = "get,post50"


def _connection(journal: bool):
    """A HitConnection over a fresh Ingest (as bench/stages.py builds it), registry open."""
    from collector.enrich.device import DeviceClassifier
    from collector.enrich.geo import GeoResolver
    from collector.hit.ingest import Ingest
    from collector.hit.visitors import VisitorHasher
    from collector.server import freeze_startup_heap
    from collector.settings import Settings
    from collector.store.aggregate import Aggregator
    from collector.store.buckets import Calendar

    from .stages import fast_path_connection

    geo_db = [str(Path.cwd() / "geo_data" / f"dbip-city-ipv{v}.mmdb") for v in (4, 6)]
    settings = Settings(trusted_proxies=("127.0.0.1/32",), registry="open")  # unregistered app keys
    calendar = Calendar(settings.timezone)
    hasher = VisitorHasher()
    for kind in ("day", "month"):
        hasher.set_salt(calendar.bucket_at(kind, calendar.local(time.time())).id, os.urandom(32))
    kwargs = {}
    if journal:
        from collector.store.journal import Journal

        j = Journal(Path(tempfile.mkdtemp()) / "j")
        j.open()
        j.begin("bench", 1)
        kwargs["journal"] = j
    aggregator = Aggregator()
    ingest = Ingest(settings, aggregator, GeoResolver(geo_db), DeviceClassifier(), hasher, calendar, time.time, **kwargs)
    connection = fast_path_connection(ingest)
    # As a worker does once started: the geo reader and the UA tables (~55,000 objects) are
    # kept out of every later collection. Unfrozen, each pass's gc.collect() walked them
    # all: ~40,000 of a POST-50 event's ~89,000 instructions were that (bench/RESULTS.md,
    # session 19), which no worker pays.
    freeze_startup_heap()
    return connection, aggregator


def _requests(shape: str, hits: int) -> tuple[list[bytes], int]:
    """The realistic requests of `shape`, and the moment (ms) their timestamps were set."""
    from . import traffic
    from .ippool import load_pool

    now_ms = int(time.time() * 1000)
    n = hits if shape == "get" else max(hits // 50, 20)
    pop = traffic.Population(load_pool(), 60000, seed=1)
    return [traffic.http_bytes(r) for r in traffic.realistic(pop, n, shape, now_ms)], now_ms


def _unique_passes(hits: int, passes: int) -> list[list[bytes]]:
    """`passes` lists of `hits` GET hits, every one from a never-seen address and User-Agent."""
    from . import traffic
    from .ippool import load_pool

    reqs = traffic.unique(traffic.Population(load_pool(), 1000, seed=9), hits * passes, int(time.time() * 1000),
                          serial_start=5_000_000)
    raw = [traffic.http_bytes(r) for r in reqs]
    return [raw[i * hits:(i + 1) * hits] for i in range(passes)]


def measured_unique(hits: int, rounds: int) -> float:
    """CPU µs per never-seen-visitor GET hit, best of `rounds` (each round new visitors)."""
    warm, *timed = _unique_passes(hits, rounds + 1)
    connection, aggregator = _connection(journal=True)
    for data in warm:  # caches filled with other visitors, as in a running collector
        connection.data_received(data)
    return _best_seconds(connection, aggregator, timed) / hits * 1e6


def _best_seconds(connection, aggregator, passes: Iterable[list[bytes]], clock=time.process_time) -> float:
    """The least CPU seconds (or `clock`'s) `connection` took over one of `passes` (each built
    before its clock starts), the aggregator drained and the garbage collected before each."""
    best = float("inf")
    for fresh in passes:
        aggregator.drain()
        gc.collect()
        start = clock()
        for data in fresh:
            connection.data_received(data)
        best = min(best, clock() - start)
    return best


def measured(shape: str, hits: int, rounds: int) -> tuple[float, int, dict[str, int]]:
    """CPU µs per hit (GET) or per event (POST of 50), best of `rounds`; the events counted
    and the rejections and flags by reason, warm-up and rounds together.

    Every round is a new pass over the requests (traffic.replay_pass: new event ids, fresh
    timestamps, built before the clock starts), as real traffic is: replaying the same ids
    made each measured hit a re-send, flagged repeated_id with a reject record journaled."""
    from . import traffic

    raw, generated_ms = _requests(shape, hits)
    connection, aggregator = _connection(journal=True)
    per = 1 if shape == "get" else 50
    for data in raw:  # fill the caches
        connection.data_received(data)
    passes = (traffic.replay_pass(raw, n, generated_ms) for n in range(2, rounds + 2))
    best = _best_seconds(connection, aggregator, passes)
    events, reasons = aggregator.totals()
    return best / (len(raw) * per) * 1e6, events, reasons


def measure(shape: str, hits: int, rounds: int) -> float:
    """CPU µs per hit (GET) or per event (POST of 50), best of `rounds`."""
    if shape == "unique":
        return measured_unique(hits, rounds)
    return measured(shape, hits, rounds)[0]


def profile(shape: str, hits: int) -> None:
    import cProfile
    import pstats

    from . import traffic

    connection, _ = _connection(journal=True)
    if shape == "unique":
        raw, fresh = _unique_passes(hits, 2)
    else:
        raw, generated_ms = _requests(shape, hits)
        fresh = traffic.replay_pass(raw, 2, generated_ms)
    for data in raw:
        connection.data_received(data)
    prof = cProfile.Profile()
    prof.enable()
    for data in fresh:
        connection.data_received(data)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(30)


def _one_round(tree: Path, shape: str, hits: int) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "bench.hit_cpu", "--child", shape, "--hits", str(hits)],
        cwd=_run_dir(tree), env={**os.environ, "PYTHONPATH": _run_dir(tree)}, check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def _run_dir(tree: Path) -> str:
    """A directory where `collector` (and geo_data) is `tree`'s and `bench` this tree's: both
    trees are measured by the same bench code (an older tree's may lack a shape, e.g. `unique`)."""
    if tree == ROOT:
        return str(tree)
    root = Path(tempfile.gettempdir()) / f"hit_cpu_{os.getpid()}_{abs(hash(str(tree)))}"
    if not root.exists():
        root.mkdir()
        atexit.register(shutil.rmtree, root, True)
    for name, target in (("collector", tree / "collector"), ("geo_data", tree / "geo_data"), ("bench", ROOT / "bench")):
        link = root / name
        if not link.exists():
            link.symlink_to(target, target_is_directory=True)
    return str(root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CPU µs per whole hit in-process, against another checkout")
    parser.add_argument("--base", type=Path, help="another checkout to compare with (e.g. a worktree of main)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per tree; the best counts")
    parser.add_argument("--hits", type=int, default=4000, help="GET hits (POST: this many events) per round")
    parser.add_argument("--profile", choices=SHAPES)
    parser.add_argument("--shapes", default=DEFAULT_SHAPES, help=f"comma-separated, of {', '.join(SHAPES)}")
    parser.add_argument("--child", choices=SHAPES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.profile, args.hits)
        return 0
    if args.child:
        print(json.dumps(measure(args.child, args.hits, 3)))
        return 0
    shapes = [s for s in args.shapes.split(",") if s]
    if not set(shapes) <= set(SHAPES):
        parser.error(f"--shapes: of {', '.join(SHAPES)}")
    trees = {"this tree": ROOT} | ({"base": args.base.resolve()} if args.base else {})
    rounds: dict[tuple[str, str], list[float]] = {(name, shape): [] for name in trees for shape in shapes}
    for _ in range(args.rounds):
        for shape in shapes:
            for name, tree in trees.items():
                rounds[name, shape].append(_one_round(tree, shape, args.hits))
    for shape in shapes:
        unit = {"get": "µs CPU per GET hit", "unique": "µs CPU per never-seen-visitor GET hit"}.get(
            shape, "µs CPU per event, POST of 50")
        print(f"{unit:32s} " + "  ".join(f"{name}: {min(rounds[name, shape]):.2f}" for name in trees))
        for name in trees:  # every round, in order: the pairs, not only the best
            print(f"    {name:10s} rounds: " + " ".join(f"{v:.2f}" for v in rounds[name, shape]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
