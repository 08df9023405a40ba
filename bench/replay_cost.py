"""Issue 17: what rebuilding a batch from its journal segment costs, against taking its events.

    python -m bench.replay_cost [--requests 400] [--shape post50|get]

Realistic requests (bench/traffic.py) go through the fast path (`HitConnection.data_received`,
journal on, caches warm: bench/hit_cpu.py's connection), then their segment is replayed
into a fresh Aggregator (`journal.replay`, what Flusher._parts does for a batch that
waited on disk). CPU time (process_time) per event of each, best of 3; and the segment's
bytes per event and the flag records it holds (rejects of counted events: a client clock
out of its window, an id seen again — the request file's timestamps and repeats).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time


def measure(shape: str, requests: int) -> dict:
    from collector.store.aggregate import Aggregator
    from collector.store.journal import Journal, replay

    from .hit_cpu import _connection, _requests

    raw = _requests(shape, requests * (50 if shape == "post50" else 1))
    connection, aggregator = _connection(journal=True)
    journal = next(o for o in gc.get_objects() if isinstance(o, Journal))  # the connection's own
    for data in raw:  # fill the caches
        connection.data_received(data)
    journal.seal("bench", 2)
    aggregator.drain()
    take = float("inf")
    for seq in range(3, 6):
        gc.collect()
        started = time.process_time()
        for data in raw:
            connection.data_received(data)
        take = min(take, time.process_time() - started)
        snap = aggregator.drain()
        segment = journal.seal("bench", seq)
    rebuild = float("inf")
    for _ in range(3):
        gc.collect()
        started = time.process_time()
        replay(segment.path, Aggregator())
        rebuild = min(rebuild, time.process_time() - started)
    events = snap.events
    return {"events": events, "take_us_per_event": round(take / events * 1e6, 2),
            "replay_us_per_event": round(rebuild / events * 1e6, 2),
            "segment_bytes_per_event": round(segment.path.stat().st_size / events), "flag_records": sum(snap.rejected.values())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CPU per event of replaying a journal segment, against taking the events")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--shape", choices=("get", "post50"), default="post50")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.shape, args.requests)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
