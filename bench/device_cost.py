"""What an uncached User-Agent costs DeviceClassifier, before and after a change, in one run.

    python -m bench.device_cost                 # this tree against `main`
    python -m bench.device_cost --base HEAD~3   # ... against another git ref

Two UA sets, every UA classified once by a fresh cache-less classifier (so every call is a
miss): the bench traffic's never-seen UAs (``traffic.unique``: the realistic mix of browsers,
each with a new version number, as ``bench.stages`` "cold" uses) and 5,000 UAs of the
labelled corpus (``bench.ua_corpus``: many rare devices and bots, longer on average).  The
baseline is the ref's ``collector/enrich/device.py`` (and its ``device_models.py`` if it has one),
loaded as a separate package; the two run interleaved, in rounds, and the best round counts
(noise only ever adds time), timed in process CPU time. Answers are compared too (each UA
with four sets of hints): a difference is an accuracy change.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
_BASE_FILES = ("__init__.py", "device.py", "device_models.py", "crawler_list.py", "hashed_cache.py")


def _git_show(ref: str, path: str) -> str | None:
    r = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=ROOT, capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else None


def load_base(ref: str) -> ModuleType:
    """`collector.enrich.device` as of `ref`, imported as the package `collector_base`."""
    pkg = Path(tempfile.mkdtemp(prefix="device_base_")) / "collector_base"
    pkg.mkdir()
    for name in _BASE_FILES:
        # collector/enrich/ since the layers; collector/ before. Its own imports of its
        # siblings point into the copy, so the baseline runs none of this tree's code.
        text = "" if name == "__init__.py" else _git_show(ref, f"collector/enrich/{name}") or _git_show(ref, f"collector/{name}")
        if text is not None:
            text = text.replace("from collector.enrich.", "from collector_base.").replace("from collector.", "from collector_base.")
            (pkg / name).write_text(text)
    sys.path.insert(0, str(pkg.parent))
    spec = importlib.util.spec_from_file_location("collector_base.device", pkg / "device.py")
    importlib.import_module("collector_base")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["collector_base.device"] = mod
    spec.loader.exec_module(mod)
    return mod


def traffic_uas(n: int) -> list[str]:
    from . import traffic
    from .ippool import load_pool

    reqs = traffic.unique(traffic.Population(load_pool(), 1000, seed=9), n, int(time.time() * 1000), serial_start=7_000_000)
    return list(dict.fromkeys(r.headers.get("User-Agent", "") for r in reqs))


def corpus_uas(n: int) -> list[str]:
    from .ua_corpus import load_corpus

    uas = sorted({e.ua for e in load_corpus()})
    random.Random(5).shuffle(uas)
    return uas[:n]


def per_ua_us(module: ModuleType, uas: list[str]) -> float:
    clf = module.DeviceClassifier(cache_size=0)
    gc.collect()
    # CPU time of this process, not wall time: the other processes of a shared machine
    # then cost nothing (cache effects aside).
    start = time.process_time()
    for ua in uas:
        clf.classify(ua)
    return (time.process_time() - start) / len(uas) * 1e6


def differences(base: ModuleType, current: ModuleType, uas: list[str]) -> int:
    """UAs whose Device differs between the two trees, with and without the hit's hints."""
    old, new = base.DeviceClassifier(cache_size=0), current.DeviceClassifier(cache_size=0)
    hints = [(None, 0, 0, 0), ("?1", 390, 844, 5), ("?0", 1920, 1080, 0), (None, 820, 1180, 5)]
    return sum(
        any(
            (a.device_class, a.browser, a.os) != (b.device_class, b.browser, b.os)
            for a, b in ((old.classify(ua, *h), new.classify(ua, *h)) for h in hints)
        )
        for ua in uas
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="main", help="git ref of the baseline (default: main)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=5000, help="UAs per set")
    args = ap.parse_args(argv)

    import collector.enrich.device as current

    base = load_base(args.base)
    for m in (base, current):
        m.DeviceClassifier()  # build resolvers and data before timing
    sets = {"traffic (never-seen)": traffic_uas(args.n), "labelled corpus": corpus_uas(args.n)}
    print(f"µs per uncached UA, best of {args.rounds} rounds (base = {args.base}); resolver {current.resolver_name()}")
    print(f"{'UA set':<24}{'n':>7}{'base':>10}{'this tree':>12}{'answers differ':>16}")
    for name, uas in sets.items():
        best = {"base": float("inf"), "this": float("inf")}
        for _ in range(args.rounds):
            best["base"] = min(best["base"], per_ua_us(base, uas))
            best["this"] = min(best["this"], per_ua_us(current, uas))
        diff = differences(base, current, uas)
        print(f"{name:<24}{len(uas):>7}{best['base']:>10.1f}{best['this']:>12.1f}{diff:>16}")


if __name__ == "__main__":
    main()
