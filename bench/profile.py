"""Where the collector's time goes: py-spy samples of one process under the realistic GET load.

`py-spy record --nonblocking --format raw` writes collapsed stacks; this module sums them
into self and inclusive shares per function, for RESULTS.md. The raw files stay in the
bench's work directory (bench/out/) for flame graphs (e.g. speedscope, inferno).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from . import wrk


def py_spy() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


def summarize(path: Path, top: int = 25) -> dict:
    self_c: Counter = Counter()
    incl: Counter = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        total += count
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        self_c[frames[-1]] += count
        for f in set(frames):
            incl[f] += count

    def share(c: Counter) -> list[tuple[str, float]]:
        return [(f, round(100 * n / total, 1)) for f, n in c.most_common(top)] if total else []

    boring = ("<module>", "_run_module_as_main", "_run_code", "main (collector/cli.py)", "serve (collector/server.py)",
              "run_worker (collector/server.py)", "run (uvloop", "Runner.run (asyncio")
    inclusive = [(f, s) for f, s in share(incl) if not f.startswith(boring) and not any(b in f for b in boring)]
    return {"samples": total, "self": share(self_c), "inclusive": inclusive[:top]}


def record(pid: int, seconds: float, out: Path, native: bool = False) -> subprocess.Popen | None:
    exe = py_spy()
    if not exe:
        return None
    cmd = [exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250", "--nonblocking",
           "--format", "raw", "-o", str(out)]
    if native:
        cmd.append("--native")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run(bench) -> dict:
    """Profile collector x1 under realistic GETs, then under unique-everything GETs."""
    if not py_spy():
        return {"error": "py-spy not installed (.venv/bin/pip install py-spy)"}
    out = {}
    for case, file in (("get", "get"), ("unique", "unique")):
        if file not in bench.scripts:
            continue
        s = bench.server("collector", 1)
        s.start()
        try:
            bench.redis.reset()
            wrk.run(s.url + "/c", bench.scripts["get"], 2, connections=bench.mode.connections)
            seconds = max(bench.mode.duration, 8)
            raw = bench.dir / f"profile-{case}.txt"
            proc = record(s.workers()[0], seconds, raw)
            time.sleep(0.5)
            res = wrk.run(s.url + "/c", bench.scripts[file], seconds + 1, connections=bench.mode.connections)
            proc.wait(60)
            if raw.exists():
                out[case] = summarize(raw) | {"rps_while_profiled": res.rps, "raw": str(raw)}
            else:
                out[case] = {"error": (proc.stderr.read() or b"").decode()[-500:]}
        finally:
            s.stop()
            bench.cleanup(s)
    return out
