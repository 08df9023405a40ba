"""Issue 17: what a flush built by the build process (store/build_worker.py) still costs
the collector's own process, against the build in its thread that it replaces.

    python -m bench.build_worker_cost [--rounds 5] [--apps 20] [--batch 5000] [--batches 4]

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
import pickle
import time

from bench import procstat
from bench.flush_cpu import TTLS, _batches


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(_main(argv))


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
