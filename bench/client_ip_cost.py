"""What a never-seen client address costs ClientIPResolver (hit/clientip.py), this tree against
another checkout, interleaved.

    python -m bench.client_ip_cost [--base /tmp/base] [--rounds 5] [--n 20000]

The addresses are the unique file's (``traffic.unique``: the pool's real Chinese networks,
a quarter of the phones on IPv6), each the client of one X-Forwarded-For header from a
trusted proxy (127.0.0.1, as in the bench), walked by a fresh resolver so that its cache of
verdicts never hits. Each tree runs in its own process with its own (compiled) collector,
as bench.hit_cpu does; rounds alternate between the trees and the best counts (CPU time).
The answers (the client addresses) are compared by digest: a difference is an error.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .hit_cpu import ROOT, _run_dir


def _addresses(n: int) -> list[str]:
    from . import traffic
    from .ippool import load_pool

    reqs = traffic.unique(traffic.Population(load_pool(), 1000, seed=9), n, int(time.time() * 1000), serial_start=7_000_000)
    return list(dict.fromkeys(r.visitor.ip for r in reqs))


def _child(n: int, rounds: int) -> dict[str, float | str]:
    from collector.hit.clientip import ClientIPResolver

    addresses = _addresses(n)
    sets = {"all": addresses, "IPv6": [a for a in addresses if ":" in a]}
    out: dict[str, float | str] = {}
    for name, chosen in sets.items():
        best = float("inf")
        for _ in range(rounds):
            resolver = ClientIPResolver(["127.0.0.1/32"])
            gc.collect()
            start = time.process_time()
            for address in chosen:
                resolver.client_ip("127.0.0.1", address)
            best = min(best, time.process_time() - start)
        out[name] = best / len(chosen) * 1e6
        out[name + " n"] = len(chosen)
    resolver = ClientIPResolver(["127.0.0.1/32"])
    out["digest"] = hashlib.sha256("\n".join(resolver.client_ip("127.0.0.1", a) for a in addresses).encode()).hexdigest()
    return out


def _one_round(tree: Path, n: int) -> dict[str, float | str]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.client_ip_cost", "--child", "--n", str(n)],
        cwd=_run_dir(tree), env={**os.environ, "PYTHONPATH": _run_dir(tree)}, check=True, capture_output=True, text=True,
    )
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, help="another checkout to compare with")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per tree; the best counts")
    parser.add_argument("--n", type=int, default=20000, help="never-seen visitors (their distinct addresses)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.n, 3)))
        return 0
    trees = {"this tree": ROOT} | ({"base": args.base.resolve()} if args.base else {})
    best: dict[str, dict[str, float]] = {name: {"all": float("inf"), "IPv6": float("inf")} for name in trees}
    digests: dict[str, str] = {}
    counts: dict[str, float | str] = {}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            found = _one_round(tree, args.n)
            for kind in ("all", "IPv6"):
                best[name][kind] = min(best[name][kind], float(found[kind]))
            digests[name] = str(found["digest"])
            counts = found
    print(f"µs per never-seen client address (X-Forwarded-For from a trusted proxy), best of {args.rounds} rounds")
    for kind in ("all", "IPv6"):
        print(f"{kind:6s} ({int(counts[kind + ' n']):>6} addresses) " + "  ".join(f"{name}: {best[name][kind]:.3f}" for name in trees))
    print("answers " + ("equal" if len(set(digests.values())) == 1 else f"DIFFER: {digests}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
