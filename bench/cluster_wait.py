"""What WAIT costs a flush on a Redis Cluster: one round trip, with and without it.

    .venv/bin/python -m bench.cluster_wait [--round-trips 300] [--slots 30] [--fields 50]

Starts a local cluster (3 masters + 3 replicas, Debian's redis-server: tests/redis_cluster.py),
then times `ClusterSender.send` (collector/store/cluster_send.py) on round trips of
`--slots` flush script calls (one per app-day slot, spread over the masters, each with
`--fields` hash increments and 20 HLL members), alternating `redis_wait_replicas` 1 and 0.
Prints the median and 95th percentile per round trip in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from redis_cluster import start_cluster  # noqa: E402

from collector.store import keys, redis_client  # noqa: E402
from collector.store.cluster_send import ClusterSender  # noqa: E402
from collector.store.flush_script import APPLY_FLUSH_LUA  # noqa: E402
from collector.store.flusher import encode_calls  # noqa: E402
from collector.store.rollup import SlotWrites  # noqa: E402


def round_trip(sha: str, slots: int, fields: int, seq: int) -> list[tuple]:
    commands = []
    for s in range(slots):
        writes = SlotWrites(keys.slot_tag(f"app{s}", "day", "20260601"))
        day = ((keys.bucket_prefix(f"app{s}", "day", "20260601"), 0),)
        writes.add(day, {keys.COUNTERS: {f"f{i}": 1 for i in range(fields)}}, {keys.VISITORS: {f"v{seq}-{i}" for i in range(20)}})
        for script_keys, args in encode_calls(writes, "bench", seq):
            commands.append(("EVALSHA", sha, len(script_keys), *script_keys, *args))
    return commands


async def measure(url: str, rounds: int, slots: int, fields: int) -> dict[int, list[float]]:
    client = redis_client.connect(url, socket_timeout=5)
    sha = await client.script_load(APPLY_FLUSH_LUA)
    senders = {1: ClusterSender(client, 1), 0: ClusterSender(client, 0)}  # type: ignore[arg-type]
    times: dict[int, list[float]] = {1: [], 0: []}
    for seq in range(1, rounds + 1):
        for replicas in ((1, 0) if seq % 2 else (0, 1)):  # both orders, alternately
            commands = round_trip(sha, slots, fields, seq * 2 + replicas)
            started = time.perf_counter()
            await senders[replicas].send(commands, 5.0)
            if seq > 10:  # after a warm-up
                times[replicas].append((time.perf_counter() - started) * 1000)
    await client.aclose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--round-trips", type=int, default=300)
    parser.add_argument("--slots", type=int, default=30)
    parser.add_argument("--fields", type=int, default=50)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = start_cluster(Path(tmp))
        try:
            times = asyncio.run(measure(cluster.url, options.round_trips, options.slots, options.fields))
        finally:
            cluster.stop()
    print(f"| redis_wait_replicas | round trips | median ms | p95 ms |  ({options.slots} slots x {options.fields} fields)")
    print("|---|---|---|---|")
    for replicas in (0, 1):
        t = sorted(times[replicas])
        print(f"| {replicas} | {len(t)} | {statistics.median(t):.2f} | {t[int(len(t) * 0.95)]:.2f} |")


if __name__ == "__main__":
    main()
