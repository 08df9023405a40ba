"""Issue 13's memory probe: rounds of distinct values from loopback, RSS and Redis after each.

    python -m bench.caps_memory [--rounds 3] [--values 100000] [--repo DIR --python BIN] [--env K=V ...]

Starts its own redis-server and a real collector (one worker, journal on, registry=open),
then per round sends `--values` media events, each with a new resource id and a new media
session, and `--values` page views, each of a new page (pipelined GETs over 4 raw
sockets, every answer read), waits until everything is in Redis, and reports the
collector's VmRSS, Redis' used memory and key count, and the distinct values stored.
`--repo/--python` run another checkout's collector for a before and after; `--env`
passes settings (COLLECTOR_...) or MALLOC_ARENA_MAX to it.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from bench.flood import UA, Processes, backlog, rss_kb, send_pipelined

APP = "probe"


def _requests(kind: str, first: int, count: int) -> list[bytes]:
    head = f" HTTP/1.1\r\nHost: x\r\nUser-Agent: {UA}\r\n\r\n"
    if kind == "media":
        return [f"GET /c?k={APP}&t=media&n=play&rid=res-{i}&ms=session-{i}&ws=5&wt=5000&pos=0{head}".encode()
                for i in range(first, first + count)]
    return [f"GET /c?k={APP}&t=pageview&u=https%3A%2F%2Fe.edu%2Fpage%2F{i}{head}".encode()
            for i in range(first, first + count)]


def send_round(port: int, kind: str, first: int, count: int, conns: int = 4, depth: int = 200) -> dict[int, int]:
    requests = _requests(kind, first, count)
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    threads = [threading.Thread(target=send_pipelined, args=(port, requests[i::conns], depth, statuses, lock, 60.0)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def settle(port: int, timeout: float = 300) -> None:
    """Wait until the collector has nothing left to write (or `timeout` passes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = backlog(port)
        if not state.get("pending_flushes", 0) and not state.get("pending_events", 0):
            time.sleep(1.0)  # a flush interval for the last batch
            return
        time.sleep(0.5)


def stored(client) -> dict:
    day_keys = [k.decode() for k in client.scan_iter(match="eb:{" + APP + "|*}:day:*")]
    sizes = {}
    for suffix in ("d:page", "m:resource"):
        found = [k for k in day_keys if k.endswith(":" + suffix)]
        sizes[suffix] = client.hlen(found[0]) if found else 0
    sessions = [k.decode() for k in client.scan_iter(match="eb:{" + APP + "|2*}:sessions")]
    sizes["sessions"] = sum(client.hlen(k) for k in sessions)
    info = client.info("memory")
    return {"redis_used_mb": round(info["used_memory"] / 2**20, 1), "redis_keys": client.dbsize(), "distinct": sizes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--values", type=int, default=100_000)
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--python", default=None)
    parser.add_argument("--env", action="append", default=[], help="K=V for the collector's environment")
    args = parser.parse_args()
    import sys

    with TemporaryDirectory() as tmp:
        procs = Processes(Path(tmp), Path(args.repo), args.python or sys.executable, None)
        procs.env["COLLECTOR_REGISTRY"] = "open"
        for pair in args.env:
            name, _, value = pair.partition("=")
            procs.env[name] = value
        try:
            procs.start_collector()
            assert procs.collector is not None
            pid = procs.collector.pid
            report = {"start_rss_mb": round(rss_kb(pid) / 1024, 1), "rounds": []}
            for r in range(args.rounds):
                started = time.monotonic()
                statuses = send_round(procs.port, "media", r * args.values, args.values)
                for code, n in send_round(procs.port, "page", r * args.values, args.values).items():
                    statuses[code] = statuses.get(code, 0) + n
                settle(procs.port)
                report["rounds"].append({
                    "round": r + 1, "statuses": statuses, "seconds": round(time.monotonic() - started, 1),
                    "rss_mb": round(rss_kb(pid) / 1024, 1), **stored(procs.client),
                })
                print(json.dumps(report["rounds"][-1]), flush=True)
            print(json.dumps(report, indent=2))
        finally:
            procs.close()


if __name__ == "__main__":
    main()
