"""`python -m bench [--smoke|--quick|--full] [--out FILE]`: run every configuration, write the report.

--smoke   ~1 s per run, no worst cases (the test suite runs this)
--quick   4 s per run, worst cases, accuracy on 20 000 hits (under 3 minutes)
--full    15 s per run, plus 10^6 distinct visitors for memory and py-spy profiles
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

from . import beacon, report, runner, wrk

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--smoke", dest="mode", action="store_const", const="smoke")
    group.add_argument("--quick", dest="mode", action="store_const", const="quick")
    group.add_argument("--full", dest="mode", action="store_const", const="full")
    parser.add_argument("--out", type=Path, default=None,
                        help="the Markdown report (default: bench/RESULTS.md for --full, bench/out/RESULTS-MODE.md otherwise, "
                             "so a quick run never overwrites the published full results)")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results here (default: beside the work files)")
    parser.add_argument("--workdir", type=Path, default=HERE / "out", help="request files, logs, profiles (git-ignored)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per measured run (overrides the mode's)")
    parser.add_argument("--wait-quiet", type=float, default=None,
                        help="before each configuration wait up to this many seconds for other load to end (full: 120)")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profiles of --full")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    mode = runner.MODES[args.mode or "quick"]
    if args.out is None:
        args.out = HERE / "RESULTS.md" if mode.name == "full" else args.workdir / f"RESULTS-{mode.name}.md"
    if args.duration:
        mode.duration = args.duration
    if args.wait_quiet is not None:
        mode.quiet_wait = args.wait_quiet
    if args.no_profile:
        mode.profile = False
    argv_shown = "python -m bench " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))

    os.chdir(HERE.parent)
    try:  # the harness itself stays off the server's CPU
        os.sched_setaffinity(0, {1} if (os.cpu_count() or 1) > 1 else {0})
    except OSError:
        pass
    log = (lambda *a: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    started = time.monotonic()
    bench = runner.Bench(mode, args.workdir, log)
    results = bench.run_all()
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    meta = report.meta_for(argv_shown.strip(), mode.duration, results_redis_version(bench),
                           wrk.version(), beacon.sizes())
    results["meta"] = meta
    # The hand-written analysis is carried over from the report being replaced, else from bench/RESULTS.md.
    source = args.out if args.out.exists() else HERE / "RESULTS.md"
    previous = source.read_text(encoding="utf-8") if source.exists() else ""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report.render(results, meta, previous), encoding="utf-8")
    json_path = args.json or (args.workdir / f"results-{mode.name}.json")
    json_path.write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    log(f"done in {results['elapsed_s']:.0f}s: {args.out} ({json_path})")
    return 0


def results_redis_version(bench: runner.Bench) -> str:
    import subprocess

    out = subprocess.run([bench.redis.binary, "--version"], capture_output=True, text=True).stdout
    return out.split("v=", 1)[1].split()[0] if "v=" in out else out.strip()


if __name__ == "__main__":
    sys.exit(main())
