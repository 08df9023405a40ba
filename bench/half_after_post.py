"""Issue 17 "p99 at half rate": the half-rate GET run in a fresh collector against one that
has just taken the POST runs, as `python -m bench --full` runs it.

    python -m bench.half_after_post [--duration 8] [--rounds 2]

The full bench measures the half rate in the collector x1 process right after its GET,
POST-10 and POST-50 runs. This runs that sequence and, alternating with it, a fresh
collector that takes only the GET run (the half rate is half of its peak) and then the
half-rate run, through the bench's own runner (`runner.Bench.run_config`: the bench's
flags, CPU 0 for the server, wrk on CPU 1, its own redis-server). The request files are
the bench's (bench/out/*.requests: copy them from another checkout rather than regenerate
them). Each run prints the bench's row: rate, latency, CPU µs per event, RSS.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import runner, wrk

OUT = Path(__file__).resolve().parent / "out"
SEQUENCES = (
    ("fresh: GET, then half rate", ("get",)),
    ("after the POST runs: GET, POST-10, POST-50, then half rate", ("get", "post10", "post50")),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of wrk per run")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    mode = runner.Mode("half-after-post", args.duration, 3, {}, 0, 0, 0, worst_cases=False, ceiling2=False, half_probes=3)
    bench = runner.Bench(mode, OUT / "half-after-post")
    for name in ("get", "post10", "post50"):
        bench.files[name] = OUT / f"{name}.requests"
        bench.scripts[name] = wrk.write_script(bench.dir / f"{name}.lua", bench.files[name])
    bench.redis = runner.servers.RedisServer(bench.dir)
    try:
        for round_no in range(1, args.rounds + 1):
            for label, shapes in SEQUENCES:
                print(f"## round {round_no}, {label}", flush=True)
                bench.run_config("collector", 1, shapes=shapes, extra=("half",))
    finally:
        bench.close()


if __name__ == "__main__":
    main()
