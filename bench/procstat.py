"""Process CPU time and memory straight from /proc (no dependency).

CPU is utime + stime of every process in a tree (a supervisor and its workers), in
clock ticks; memory is VmRSS / VmHWM (the kernel's own peak) per process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as fh:
        data = fh.read()
    # comm may contain spaces and parentheses: split after the last ')'
    return data[data.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), in seconds."""
    f = _stat_fields(pid)
    return (int(f[11]) + int(f[12])) / TICK  # fields 14 and 15 of proc(5)


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(_stat_fields(int(entry))[1]) == pid:
                    out.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return out


def tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    pids, frontier = [pid], [pid]
    while frontier:
        nxt = []
        for p in frontier:
            nxt.extend(children(p))
        pids.extend(nxt)
        frontier = nxt
    return pids


def status_kb(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                out[name] = int(rest.split()[0])
    return out


def reset_peaks(pids: list[int]) -> None:
    """Set each process's VmHWM back to its current RSS (proc(5) clear_refs, "5"), so the
    next reading is the peak since now. Processes gone or not ours are left as they are."""
    for p in pids:
        try:
            with open(f"/proc/{p}/clear_refs", "w") as fh:
                fh.write("5")
        except OSError:
            pass


@dataclass
class TreeSample:
    cpu_s: float  # summed over the tree
    rss_mb: dict[int, float]  # per pid
    hwm_mb: dict[int, float]  # per pid: peak RSS since the process started
    anon_mb: dict[int, float]
    file_mb: dict[int, float]


def sample(pids: list[int]) -> TreeSample:
    cpu, rss, hwm, anon, filemb = 0.0, {}, {}, {}, {}
    for p in pids:
        try:
            cpu += cpu_seconds(p)
            s = status_kb(p)
        except OSError:
            continue
        rss[p] = s.get("VmRSS", 0) / 1024
        hwm[p] = s.get("VmHWM", 0) / 1024
        anon[p] = s.get("RssAnon", 0) / 1024
        filemb[p] = s.get("RssFile", 0) / 1024
    return TreeSample(cpu, rss, hwm, anon, filemb)
