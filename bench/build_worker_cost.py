"""Issue 17: what a flush built by the build process (store/build_worker.py) still costs
the collector's own process, against the build in its thread that it replaces.

    python -m bench.build_worker_cost [--rounds 5] [--apps 20] [--batch 5000] [--batches 4]
    python -m bench.build_worker_cost --queued [--base /tmp/old] [--rounds 5] [--batch 50000] [--batches 2] [--shape post50]

Realistic batches as bench/flush_cpu.py makes them (`--batch` events of one simulated
second each: a worker's flush at about half of the GET peak), split into parts as the
flusher splits them; then, rounds interleaved, best of the rounds, CPU time of the
calling thread (thread_time: waiting in poll() is not counted):

- thread: `Flusher._built` on every part (caps rewrite, fold, encode, pack), as the
  flusher's thread does it without the build process;
- loop side: `BuildWorker.packed` on every part, in an event loop: pickling the part's
  chunks, writing them, reading and unpickling the packed commands — what the
  collector's process still spends (holding the GIL) when the child builds; and the
  child's own CPU (/proc).

Also the longest single stretch the GIL is held in one call on the loop side (one
pickle.dumps of a part's chunk, one pickle.loads of an answer message; garbage
collection off, as it may fall inside any call; CPU time, as the machine may be busy), and a check that
both ways give the same commands (as multisets: sets may iterate otherwise in the child).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

from bench import procstat
from bench.flush_cpu import TTLS, _batches


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--queued" in argv:
        return queued_main(argv)
    return asyncio.run(_main(argv))


def queued_main(argv: list[str]) -> int:
    """`--queued [--base TREE] [--rounds 5] [--shape post50]`: what a batch that waited
    packed (packed_snapshot.py, every batch sealed behind another) costs the collector's
    process when the build process builds its parts — `Flusher._commands` on each packed
    part, as the flusher calls it while it keeps up; process CPU time, which counts the
    flusher's threads too (not the child's; its CPU is shown apart). With `--base`, that
    checkout runs the same (this file with its packages first on the path), interleaved."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--queued", action="store_true")
    parser.add_argument("--base", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=50000)
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--shape", choices=("mixed", "post50"), default="post50")
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(asyncio.run(_queued_child(args))))
        return 0
    root = Path(__file__).resolve().parent.parent
    trees = {"this tree": root} | ({"base": args.base.resolve()} if args.base else {})
    command = [sys.executable, str(Path(__file__).resolve()), "--queued", "--child", "--apps", str(args.apps),
               "--batch", str(args.batch), "--batches", str(args.batches), "--shape", args.shape]
    best: dict[str, dict] = {}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            out = subprocess.run(command, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, check=True,
                                 capture_output=True, text=True)
            got = json.loads(out.stdout)
            if name not in best or got["us_per_event"] < best[name]["us_per_event"]:
                best[name] = got
    print(json.dumps(best, indent=2))
    return 0


async def _queued_child(args: argparse.Namespace) -> dict:
    import redis.asyncio as aioredis

    import collector
    from collector.store.aggregate import Aggregator
    from collector.store.buckets import Calendar
    from collector.store.flush_script import APPLY_FLUSH_LUA
    from collector.store.flusher import FlushBatch, Flusher
    from collector.store.rollup import RollupBuilder

    snaps, _ = _batches(args.apps, args.batch, args.batches, args.shape)
    events = sum(s.events for s in snaps)
    sha = hashlib.sha1(APPLY_FLUSH_LUA.encode()).hexdigest()
    # Never connected: _commands does no I/O. The default settings' id and touched records.
    flusher = Flusher(aioredis.Redis(), Aggregator(), RollupBuilder(Calendar("Asia/Shanghai"), TTLS), 10.0, writer="bench",
                      dedupe_window=3600, record_touched=("minute", "hour", "day", "month"), build_process=True,
                      clock=lambda: 1_900_000_000.0)
    worker = flusher.build_worker
    assert worker is not None and await worker.wait_until_ready(60) and worker.pid is not None
    queued = [(seq, flusher._packed_parts(snap).parts) for seq, snap in enumerate(snaps, 1)]
    best, child_best, digest = float("inf"), float("inf"), ""
    for _ in range(3):
        gc.collect()
        child0 = procstat.cpu_seconds(worker.pid)
        started = time.process_time()
        commands = []
        for seq, parts in queued:
            batch = FlushBatch("bench", seq, None)
            for part in parts:
                built, _, builder = await flusher._commands(batch, part, sha, set(), {})
                assert builder == worker.pid, "the build process did not answer"
                commands += built
        best = min(best, time.process_time() - started)
        child_best = min(child_best, procstat.cpu_seconds(worker.pid) - child0)
        digest = hashlib.sha1(b"".join(sorted(c for c in commands if isinstance(c, bytes)))).hexdigest()
    await worker.close()
    return {"tree": str(Path(collector.__file__).parent.parent), "events": events, "parts": sum(len(p) for _, p in queued),
            "us_per_event": best / events * 1e6, "child_us_per_event": child_best / events * 1e6,
            "commands_digest": digest}


async def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=4)
    args = parser.parse_args(argv)

    import redis.asyncio as aioredis

    from collector.store.aggregate import Aggregator
    from collector.store.buckets import Calendar
    from collector.store.build_worker import BuildJob, answer_chunks, part_messages
    from collector.store.flush_script import APPLY_FLUSH_LUA
    from collector.store.flusher import GROUP_CELLS, FlushBatch, Flusher
    from collector.store.rollup import RollupBuilder

    snaps, requests = _batches(args.apps, args.batch, args.batches)
    events = sum(s.events for s in snaps)
    parts = [(seq, snap.split_by_app(GROUP_CELLS)) for seq, snap in enumerate(snaps, 1)]
    sha = hashlib.sha1(APPLY_FLUSH_LUA.encode()).hexdigest()
    # The client is never connected: a build does no I/O.
    flusher = Flusher(aioredis.Redis(), Aggregator(), RollupBuilder(Calendar("Asia/Shanghai"), TTLS), 10.0,
                      writer="bench", build_process=True)
    worker = flusher.build_worker
    assert worker is not None and await worker.wait_until_ready(60)
    assert worker.pid is not None

    def in_thread() -> list[list[bytes]]:
        return [[bytes(c) for part in ps for c in flusher._built(part, FlushBatch("bench", seq, None), sha, set(), {})]
                for seq, ps in parts]

    async def by_child() -> list[list[bytes]]:
        out = []
        for seq, ps in parts:
            commands: list[bytes] = []
            for part in ps:
                built = await worker.packed(part, BuildJob("bench", seq, sha, set(), {}, time.time()))
                assert built is not None, "the build process did not answer"
                commands += built[0]
            out.append(commands)
        return out

    best = {"thread": float("inf"), "loop side": float("inf"), "child": float("inf")}
    for _ in range(args.rounds):
        gc.collect()
        started = time.thread_time()
        here = in_thread()
        best["thread"] = min(best["thread"], time.thread_time() - started)
        gc.collect()
        child0 = procstat.cpu_seconds(worker.pid)
        started = time.thread_time()
        apart = await by_child()
        best["loop side"] = min(best["loop side"], time.thread_time() - started)
        best["child"] = min(best["child"], procstat.cpu_seconds(worker.pid) - child0)
    same = all(sorted(a) == sorted(b) for a, b in zip(here, apart, strict=True))

    longest_dumps = longest_loads = 0.0
    gc.disable()  # a collection may fall inside any call: the stretches of pickle's own work
    for _, ps in parts:
        for part in ps:
            for message in part_messages(part):
                started = time.thread_time()
                pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
                longest_dumps = max(longest_dumps, time.thread_time() - started)
    for commands in here:
        for chunk in answer_chunks(commands):
            payload = pickle.dumps(("packed", chunk), pickle.HIGHEST_PROTOCOL)
            started = time.thread_time()
            pickle.loads(payload)
            longest_loads = max(longest_loads, time.thread_time() - started)
    gc.enable()
    child_rss_mb = procstat.status_kb(worker.pid)["VmRSS"] / 1024
    await worker.close()

    cells = sum(p.cells for _, ps in parts for p in ps)
    mb = sum(len(c) for cmds in here for c in cmds) / 1e6 / len(parts)
    print(f"{len(parts)} batches of {args.batch} events ({requests} requests, {cells // len(parts)} cells, "
          f"{sum(len(ps) for _, ps in parts) / len(parts):.1f} parts and {mb:.1f} MB of commands a batch); "
          f"best of {args.rounds} rounds, CPU ms per batch (µs per event)")
    for name, seconds in best.items():
        print(f"  {name:10s} {seconds / len(parts) * 1e3:7.2f} ms ({seconds / events * 1e6:.2f} µs)")
    print(f"  the build process' RSS after the rounds: {child_rss_mb:.0f} MB")
    print(f"  loop side / thread: {best['loop side'] / best['thread']:.1%}; same commands both ways: {same}")
    print(f"  longest single GIL stretch on the loop side: pickle.dumps of a part's chunk {longest_dumps * 1e3:.2f} ms, "
          f"pickle.loads of an answer {longest_loads * 1e3:.2f} ms")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
