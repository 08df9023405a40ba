"""What a never-seen client IP costs GeoResolver, before and after a change, in one run.

    python -m bench.geo_cost                 # this tree against `main`
    python -m bench.geo_cost --base HEAD~3   # ... against another git ref

Two IP sets, every address looked up once by a fresh resolver over the real DB-IP
databases (geo_data/), so the per-address cache never hits: the bench traffic's
never-seen visitors (``traffic.unique``: addresses of the pool's real Chinese networks,
a quarter of the phones on IPv6, as ``bench.stages`` "cold" uses) and uniformly random
public IPv4 addresses (nearly every one in a network not seen before: the worst case
for a cache by network). The baseline is the ref's ``collector/enrich/geo.py``, loaded as
a separate module; both run interleaved, in rounds, and the best round counts (noise
only ever adds time), timed in process CPU time. Answers are compared too: a difference
is an error.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib.util
import ipaddress
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def load_base(ref: str) -> ModuleType:
    """`collector.enrich.geo` as of `ref`, imported as the module `geo_base`."""
    text = subprocess.run(
        ["git", "show", f"{ref}:collector/enrich/geo.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="geo_base_")) / "geo_base.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("geo_base", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["geo_base"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def traffic_ips(n: int) -> list[str]:
    from . import traffic
    from .ippool import load_pool

    pop = traffic.Population(load_pool(), 1000, seed=9)
    reqs = traffic.unique(pop, n, int(time.time() * 1000), serial_start=7_000_000)
    return list(dict.fromkeys(r.visitor.ip for r in reqs))


def random_public_ips(n: int) -> list[str]:
    rng = random.Random(11)
    out: list[str] = []
    while len(out) < n:
        addr = ipaddress.IPv4Address(rng.getrandbits(32))
        if addr.is_global:
            out.append(str(addr))
    return out


def per_ip_us(module: ModuleType, paths: list[str], ips: list[str]) -> float:
    resolver = module.GeoResolver(paths)
    gc.collect()
    start = time.process_time()  # CPU time: other processes of a shared machine cost nothing
    for ip in ips:
        resolver.lookup(ip)
    elapsed = time.process_time() - start
    resolver.close()
    return elapsed / len(ips) * 1e6


def differences(base: ModuleType, current: ModuleType, paths: list[str], ips: list[str]) -> int:
    old, new = base.GeoResolver(paths), current.GeoResolver(paths)
    return sum(_fields(old.lookup(ip)) != _fields(new.lookup(ip)) for ip in ips)


def _fields(region: object) -> tuple:
    """A Region's values, whichever tree made it (a NamedTuple now, a dataclass before)."""
    return tuple(region) if isinstance(region, tuple) else dataclasses.astuple(region)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="main", help="git ref of the baseline (default: main)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=20000, help="IPs per set")
    args = ap.parse_args(argv)

    import collector.enrich.geo as current

    from . import ippool

    paths = [str(p) for p in ippool.GEO_DBS]
    base = load_base(args.base)
    sets = {"traffic (never-seen)": traffic_ips(args.n), "random public IPv4": random_public_ips(args.n)}
    print(f"µs per never-seen IP, best of {args.rounds} rounds (base = {args.base})")
    print(f"{'IP set':<24}{'n':>7}{'base':>10}{'this tree':>12}{'answers differ':>16}")
    for name, ips in sets.items():
        best = {"base": float("inf"), "this": float("inf")}
        for _ in range(args.rounds):
            best["base"] = min(best["base"], per_ip_us(base, paths, ips))
            best["this"] = min(best["this"], per_ip_us(current, paths, ips))
        diff = differences(base, current, paths, ips)
        print(f"{name:<24}{len(ips):>7}{best['base']:>10.2f}{best['this']:>12.2f}{diff:>16}")


if __name__ == "__main__":
    main()

