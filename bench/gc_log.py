"""Issue 17: every garbage collection of a server under load, timed from inside it.

`site_dir(work)` writes a sitecustomize that appends a gc.callbacks hook to the server it
is put on the PYTHONPATH of (`environment(work)`): each collection's end time, generation,
pause (perf_counter: wall time, what a waiting request sees) and CPU (thread_time), and
objects collected, kept in memory and written as JSON at exit to `work/gc.PID` (one file
per process of the server's tree). `figures(...)` reads the main process's file back over
the measured seconds: collections a second per generation, their CPU µs per request, and
the pauses' distribution. Used by bench.half_rate_ab --gc and bench.thread_cpu --gc.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

SITECUSTOMIZE = '''
import atexit, gc, json, os, time
_log, _start = [], [0.0, 0.0]
def _timed(phase, info):
    if phase == "start":
        _start[0], _start[1] = time.perf_counter(), time.thread_time()
    else:
        _log.append((time.time(), info["generation"], time.thread_time() - _start[1], info["collected"],
                     time.perf_counter() - _start[0]))
gc.callbacks.append(_timed)
def _dump():
    with open(os.environ["BENCH_GC_LOG"] + f".{os.getpid()}", "w") as fh:
        json.dump(_log, fh)
atexit.register(_dump)
'''

# Pauses over these many ms are counted (the p99 target is 5 ms).
LONG_MS = (2.0, 4.0)


def environment(work: Path, code: str = SITECUSTOMIZE) -> dict[str, str]:
    """The environment that loads `code` as the server's sitecustomize (written under `work`)."""
    site = work / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(code)
    return {"PYTHONPATH": str(site), "BENCH_GC_LOG": str(work / "gc")}


def collections(work: Path, pid: int, t0: float, t1: float) -> list[list[float]]:
    """The collections of process `pid` that ended between t0 and t1 (time.time()):
    [end, generation, cpu s, collected, pause s] each."""
    path = work / f"gc.{pid}"
    if not path.exists():
        return []
    return [entry for entry in json.loads(path.read_text()) if t0 <= entry[0] <= t1]


def figures(log: list[list[float]], seconds: float, requests: int) -> dict[str, float]:
    """Per generation: collections a second, CPU µs per request, the pauses' median, p90
    and max in ms, and how many were longer than each of LONG_MS."""
    out: dict[str, float] = {}
    for gen in (0, 1, 2):
        mine = [entry for entry in log if entry[1] == gen]
        pauses = sorted(entry[4] * 1000 for entry in mine)
        out[f"gc gen{gen} /s"] = len(mine) / max(seconds, 1e-9)
        out[f"gc gen{gen} µs/req"] = sum(entry[2] for entry in mine) * 1e6 / max(requests, 1)
        out[f"gc gen{gen} pause ms median"] = statistics.median(pauses) if pauses else 0.0
        out[f"gc gen{gen} pause ms p90"] = pauses[int(0.9 * (len(pauses) - 1))] if pauses else 0.0
        out[f"gc gen{gen} pause ms max"] = pauses[-1] if pauses else 0.0
        for limit in LONG_MS:
            out[f"gc gen{gen} pauses > {limit:g} ms"] = sum(p > limit for p in pauses)
    return out
