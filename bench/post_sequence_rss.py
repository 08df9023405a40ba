"""Issue 17 "RSS during POST runs": the full bench's sequence on one collector x1, RSS over time.

    python -m bench.post_sequence_rss [--base /tmp/old] [--rounds 1] [--duration 15] [--shapes get,post10,post50]

As `python -m bench --full` runs `collector x1`: a fresh collector (the bench's flags, CPU 0)
and its own redis-server (CPU 1), a 3 s GET warm-up, then GET, POST-10 and POST-50, each
`--duration` seconds of wrk (64 connections, CPU 1) followed by the wait until Redis holds
what was answered (`runner.Bench.measure`). The request files are the bench's own
(bench/out/*.requests: copy them from another checkout rather than regenerate them).
`--files full` uses the `--full` bench's own request files instead (its request counts and
visitor population: 200,000 GET, 30,000 POST-10 and 10,000 POST-50 requests, built once
into bench/out/full/, ~1 min, then reused while their timestamps are within a day), and
`--settle-max 8` waits for the catch-up no longer than the full bench does: with both, the
sequence is the full bench's collector x1 up to its POST-50 run.

Every 0.2 s a thread samples the worker's VmRSS, VmHWM and RssAnon, its flush build child's
VmRSS, and the worker's flush backlog (/api/collector: batches and events not yet in
Redis, and the counters of events rebuilt from the journal and of batches spilled,
store/spill.py). Per run it reports the worker's highest RSS during that run and its
catch-up (the run's own peak), VmHWM at its end (the process's peak so far: what the full
bench reports), the build child's highest RSS, the highest backlog and journal bytes (segments and spill files), the events rebuilt and
batches spilled during the run, events/s, CPU µs per event, the catch-up and the share of
the answered events stored. `--trace FILE` writes the samples.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_S = 0.2


class Sampler(threading.Thread):
    """The worker's and its build child's memory, and the flush backlog, every SAMPLE_S."""

    def __init__(self, server, started: float) -> None:
        super().__init__(daemon=True)
        from bench import procstat

        self.server, self.started, self.stop = server, started, threading.Event()
        self.worker = server.workers()[0]
        self.phase = "start"
        self.samples: list[dict] = []
        self._procstat = procstat

    def _child(self) -> int | None:
        from bench.servers import _cmdline

        kids = [p for p in self._procstat.children(self.worker) if "build_worker" in _cmdline(p)]
        return kids[0] if kids else None

    def _backlog(self) -> dict:
        try:
            with urllib.request.urlopen(self.server.url + "/api/collector", timeout=0.5) as answer:
                data = json.loads(answer.read())
            # This run's batches rebuilt from the journal (waited on disk) and spilled (store/spill.py): counters.
            return {"batches": data["pending_flushes"], "events": data["pending_events"],
                    "rebuilt": data.get("events_rebuilt"), "spilled": data.get("batches_spilled"),
                    "journal": data.get("journal_bytes") or 0}
        except (OSError, ValueError, KeyError):
            return {}

    def run(self) -> None:
        child = None
        while not self.stop.is_set():
            try:
                s = self._procstat.status_kb(self.worker)
            except OSError:
                break
            if child is None:
                child = self._child()
            try:
                child_kb = self._procstat.status_kb(child)["VmRSS"] if child else 0
            except OSError:
                child, child_kb = None, 0
            self.samples.append({
                "t": round(time.monotonic() - self.started, 2), "phase": self.phase,
                "rss": s["VmRSS"] >> 10, "hwm": s["VmHWM"] >> 10, "anon": s["RssAnon"] >> 10,
                "child": child_kb >> 10, **self._backlog(),
            })
            self.stop.wait(SAMPLE_S)


FILES_MAX_AGE_S = 20 * 3600  # the collector accepts client timestamps up to a day old


def full_request_files(out: Path, shapes: list[str]) -> Path:
    """The `--full` bench's request files for `shapes` in out/full/, built when missing or stale."""
    from bench import runner

    full = runner.MODES["full"]
    folder = out / "full"
    folder.mkdir(parents=True, exist_ok=True)
    stale = [name for name in shapes if not (folder / f"{name}.requests").exists()
             or time.time() - (folder / f"{name}.requests").stat().st_mtime > FILES_MAX_AGE_S]
    if stale:
        runner.generate_requests(folder, [(name, full.n_requests[name]) for name in stale], full.population)
    return folder


def one_sequence(duration: float, shapes: list[str], trace: Path | None, files: str = "out",
                 settle_max: float = 30.0) -> list[dict]:
    """One collector x1 of the tree this process imports through `shapes`: the figures per run."""
    from bench import runner, wrk

    out = ROOT / "bench" / "out"
    requests = full_request_files(out, sorted({"get", *shapes})) if files == "full" else out
    mode = runner.Mode("post-sequence", duration, 3, {}, 0, 0, 0, half_rate=False, worst_cases=False, ceiling2=False)
    bench = runner.Bench(mode, out / "post-sequence", log=lambda *_: None)
    for name in ("get", *shapes):
        bench.files[name] = requests / f"{name}.requests"
        bench.scripts[name] = wrk.write_script(bench.dir / f"{name}.lua", bench.files[name])
    bench.redis = runner.servers.RedisServer(bench.dir)
    server = bench.server("collector", 1)
    server.start()
    sampler = Sampler(server, time.monotonic())
    sampler.start()
    rows = []
    try:
        sampler.phase = "warm-up"
        wrk.run(server.url + "/c", bench.scripts["get"], mode.warmup, connections=mode.connections)
        bench.settle(server, 0, 10)
        for shape in shapes:
            sampler.phase = shape
            first = len(sampler.samples)
            row = bench.measure(server, shape, settle_max=settle_max)
            during = sampler.samples[first:] or sampler.samples[-1:]
            rows.append({
                "run": shape, "events_per_s": round(row["eps"]), "cpu_us_per_event": round(row["cpu_us_per_event"], 1),
                "run_peak_rss_mb": max(s["rss"] for s in during), "vmhwm_mb": round(row["peak_rss_mb"]),
                "run_peak_anon_mb": max(s["anon"] for s in during), "end_rss_mb": during[-1]["rss"],
                "child_peak_mb": max(s["child"] for s in during),
                "backlog_batches_max": max(s.get("batches", 0) for s in during),
                "backlog_events_max": max(s.get("events", 0) for s in during),
                "journal_mb_max": round(max(s.get("journal", 0) for s in during) / 2**20, 1),
                "events_rebuilt": _grown(sampler.samples, first, "rebuilt"),
                "batches_spilled": _grown(sampler.samples, first, "spilled"),
                "catch_up_s": round(row["settle_s"], 1), "stored": round((row["counted_events"] or 0) / row["events"], 4),
                "other_load_cores": round(row["foreign_cpu_cores"], 2),
            })
    finally:
        sampler.stop.set()
        sampler.join()
        server.stop()
        bench.cleanup(server)
        bench.close()
    if trace:
        trace.parent.mkdir(parents=True, exist_ok=True)
        trace.write_text("\n".join(json.dumps(s) for s in sampler.samples) + "\n")
    return rows


def _grown(samples: list[dict], first: int, counter: str) -> int | None:
    """How much a collector counter grew from before sample `first` to the last sample (None: not reported)."""
    values = [s.get(counter) for s in samples]
    before = next((v for v in reversed(values[:first]) if v is not None), 0)
    last = next((v for v in reversed(values) if v is not None), None)
    return None if last is None else last - before


def _run_tree(tree: Path, args: argparse.Namespace, trace: Path | None, env: dict[str, str]) -> list[dict]:
    # Each tree runs on its own venv's python: its mypyc-compiled modules are built in place.
    python = tree / ".venv" / "bin" / "python"
    interpreter = str(python) if python.exists() else sys.executable
    command = [interpreter, str(Path(__file__).resolve()), "--child", "--duration", str(args.duration),
               "--shapes", args.shapes, "--files", args.files, "--settle-max", str(args.settle_max)]
    command += ["--trace", str(trace)] if trace else []
    out = subprocess.run(command, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree), **env}, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{tree}: {out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="GET, POST-10, POST-50 on one collector x1: RSS over time, per run")
    parser.add_argument("--base", type=Path, help="another checkout to compare with (e.g. a worktree of main)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of wrk per run")
    parser.add_argument("--shapes", default="get,post10,post50", help="the runs, in order")
    parser.add_argument("--files", choices=("out", "full"), default="out",
                        help="request files: bench/out's (whatever bench mode wrote them) or the --full bench's own")
    parser.add_argument("--settle-max", type=float, default=30.0,
                        help="longest wait for the catch-up after each run (the --full bench: 8)")
    parser.add_argument("--trace", type=Path, help="write every sample (JSON lines) to this file (.TREE.ROUND added)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:VAR=VALUE,...",
                        help="this tree again with these environment variables (settings: COLLECTOR_...)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    shapes = args.shapes.split(",")
    if args.child:
        print(json.dumps(one_sequence(args.duration, shapes, args.trace, args.files, args.settle_max)))
        return 0
    runs: dict[str, tuple[Path, dict[str, str]]] = {"this tree": (ROOT, {})}
    if args.base:
        runs["base"] = (args.base.resolve(), {})
    for variant in args.variant:
        name, _, assignments = variant.partition(":")
        runs[name] = (ROOT, dict(pair.split("=", 1) for pair in assignments.split(",") if pair))
    for round_ in range(1, args.rounds + 1):
        for name, (tree, env) in runs.items():
            trace = args.trace.with_suffix(f".{name.replace(' ', '-')}.{round_}.jsonl") if args.trace else None
            for row in _run_tree(tree, args, trace, env):
                print(json.dumps({"round": round_, "tree": name, **row}), flush=True)
    return 0


if __name__ == "__main__":
    if __package__ in (None, ""):  # run as a file (another tree's child): its own directory is not a package
        sys.path[0] = os.getcwd()
    sys.exit(main())
