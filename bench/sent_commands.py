"""Which Redis commands the collector sends per hit, and where: this tree against another checkout.

    python -m bench.sent_commands [--base /tmp/old] [--duration 5] [--requests 40000] [--delay-ms 12.8]

For each tree, a collector x1 (as `python -m bench` starts it, on its own redis-server)
takes realistic GET traffic (bench/traffic.py, wrk as fast as it answers) twice:

1. with INFO commandstats reset before: Redis' CPU per hit (the redis-server process'
   CPU time, parsing included) and the top-level commands' usec per hit;
2. with `redis-cli MONITOR` recording: every command, each marked as sent by a client
   or run inside a script ("lua"). Only MONITOR tells them apart — INFO commandstats
   counts a script's SADD like a client's — so `sent` here is exact, where the full
   bench's figure is commandstats minus the commands the flush script is known to run.

Each command sent is shown by name and key pattern (hash tag and numbers replaced), with
its count per hit and per flush, and the number of distinct Redis Cluster slots the
flush's commands went to. The monitored run is slower (MONITOR costs Redis); its counts
per flush are what matter there, the first run's CPU per hit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from redis.crc import key_slot

ROOT = Path(__file__).resolve().parent.parent
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
LINE = re.compile(r"^(\d+\.\d+) \[\d+ ([^\]]+)\] (.*)$")


def key_pattern(key: str) -> str:
    """eb:{app003|20261130}:ids:29000000 -> eb:{APP|DAY}:ids:N (hash tags of apps and numbers hidden)."""
    key = re.sub(r"\{[^}|]+\|(\d{6})\}", "{APP|MONTH}", key)
    key = re.sub(r"\{[^}|]+\|(\d{8})\}", "{APP|DAY}", key)
    key = re.sub(r":seq:[0-9a-f]+$", ":seq:WRITER", key)
    return re.sub(r"(?<=:)\d+(?=:|$)", "N", key)


def parse_monitor(path: Path, scripts: dict[str, str]) -> dict:
    """Counts of the commands recorded: sent by clients (name + key pattern, slots) and run by scripts."""
    sent: Counter[str] = Counter()
    in_scripts: Counter[str] = Counter()
    flush_slots: Counter[int] = Counter()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = LINE.match(line)
        if not match:
            continue
        source, args = match.group(2), QUOTED.findall(match.group(3))
        if not args:
            continue
        name = args[0].upper()
        if source == "lua":
            in_scripts[name] += 1
            continue
        if name in ("INFO", "CONFIG", "FLUSHALL", "PING", "MONITOR", "KEYS", "HGETALL", "CLIENT", "HELLO", "SELECT",
                    "COMMAND", "DBSIZE", "SCRIPT"):
            continue  # the harness' own, or a client's connection set-up
        key = ""
        if name in ("EVALSHA", "EVAL") and len(args) > 3 and int(args[2]) > 0:
            label = f"{name} {scripts.get(args[1], 'script')}"
            key = args[3]
        elif len(args) > 1:
            label, key = name, args[1]
        else:
            label = name
        sent[f"{label} {key_pattern(key)}".strip()] += 1
        if key.startswith("eb:{") and not key.startswith(("eb:{finality}", "eb:{registry}", "eb:{health}", "eb:{report}")):
            flush_slots[key_slot(key.encode())] += 1
    return {"sent": dict(sent.most_common()), "in_scripts": dict(in_scripts.most_common()),
            "app_slots": len(flush_slots), "app_slot_commands": sum(flush_slots.values())}


def script_names() -> dict[str, str]:
    from collector.store.capping import ADMIT_CAPS_LUA
    from collector.store.flush_script import APPLY_FLUSH_LUA

    return {hashlib.sha1(APPLY_FLUSH_LUA.encode()).hexdigest(): "flush",
            hashlib.sha1(ADMIT_CAPS_LUA.encode()).hexdigest(): "caps"}


def flush_count(collector_url: str) -> int:
    """Batches the collector applied so far (/api/collector)."""
    import urllib.request

    with urllib.request.urlopen(collector_url + "/api/collector", timeout=5) as answer:
        return int(json.loads(answer.read())["flushes"])


def child(duration: float, requests: int, delay_ms: float, workdir: Path) -> dict:
    """Both runs against a collector of this tree (the current directory)."""
    from bench import runner, wrk

    mode = runner.Mode("sent", duration, 1, {"get": requests}, 0, 40000, 0, half_rate=False, worst_cases=False,
                       ceiling2=False)
    bench = runner.Bench(mode, workdir, lambda *a: None)
    bench.prepare()
    redis = bench.redis
    assert redis is not None
    s = bench.server("collector", 1)
    s.start()
    try:
        wrk.run(s.url + "/c", bench.scripts["get"], 2, connections=mode.connections)
        bench.settle(s, 0, 10)
        row = bench.measure(s, "get", delay_ms=delay_ms)
        stats = redis.client.info("commandstats")
        top_usec = sum(int(v["usec"]) for name, v in stats.items()
                       if name.removeprefix("cmdstat_") in ("evalsha", "eval", "zadd", "sadd", "expire", "set", "get",
                                                            "pexpire", "hget", "hset"))
        result = {"tree": os.getcwd(), "rps": round(row["rps"]), "hits": row["handled_events"],
                  "redis_cpu_us_per_hit": row["redis_cpu_us_per_event"],
                  "commandstats_all_calls_per_hit": row["redis_cmds_per_event"],
                  "commandstats_calls": row["redis_commands"],
                  "top_level_usec_per_hit_approx": top_usec / row["handled_events"]}
        monitor_file = workdir / "monitor.txt"
        with open(monitor_file, "wb") as out:
            monitor = subprocess.Popen(["redis-cli", "-p", str(redis.port), "monitor"], stdout=out)
            time.sleep(0.3)
            flushes0 = flush_count(s.url)
            watched = bench.measure(s, "get", delay_ms=delay_ms)
            flushes = flush_count(s.url) - flushes0
            monitor.terminate()
            monitor.wait(5)
        seen = parse_monitor(monitor_file, script_names())
        hits = watched["handled_events"]
        sent_total = sum(seen["sent"].values())
        result |= {"monitored_hits": hits, "monitored_rps": round(watched["rps"]), "flushes": flushes,
                   "sent_per_hit": sent_total / hits, "sent_per_flush": sent_total / max(flushes, 1),
                   "sent_by_kind_per_flush": {k: round(v / max(flushes, 1), 2) for k, v in seen["sent"].items()},
                   "in_scripts_per_hit": {k: round(v / hits, 4) for k, v in seen["in_scripts"].items()},
                   "app_slots": seen["app_slots"], "app_slot_commands_per_flush": seen["app_slot_commands"] / max(flushes, 1)}
        return result
    finally:
        s.stop()
        bench.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Redis commands the collector sends per hit (MONITOR), against another checkout")
    parser.add_argument("--base", type=Path, help="another checkout to compare with (e.g. a worktree of main)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of each measured wrk run")
    parser.add_argument("--requests", type=int, default=40000, help="distinct GET requests generated")
    parser.add_argument("--delay-ms", type=float, default=0.0,
                        help="each of wrk's 64 connections waits this long between requests (12.8: about 5 000 req/s), "
                             "so both trees take the same rate; 0: as fast as the collector answers")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        with tempfile.TemporaryDirectory(prefix="sent-commands-") as workdir:
            print(json.dumps(child(args.duration, args.requests, args.delay_ms, Path(workdir))))
        return 0
    from bench import runner

    trees = {"this tree": ROOT} | ({"base": args.base.resolve()} if args.base else {})
    results = {}
    for name, tree in trees.items():
        # This file, run with the other tree's packages first on the path (as bench/flush_cpu.py does).
        command = [sys.executable, str(Path(__file__).resolve()), "--child", "--duration", str(args.duration),
                   "--requests", str(args.requests), "--delay-ms", str(args.delay_ms)]
        out = subprocess.run(command, cwd=tree, env={**os.environ, "PYTHONPATH": f"{tree}:{ROOT}"}, check=True,
                             capture_output=True, text=True)
        results[name] = got = json.loads(out.stdout.strip().splitlines()[-1])
        # The full bench's `sent` (INFO commandstats less what scripts run), as this tree counts it.
        calls = got.pop("commandstats_calls")
        got["bench_sent_per_hit"] = (sum(calls.values()) - sum(calls.get(c, 0) for c in runner.LUA_INTERNAL)) / got["hits"]
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    if __package__ in (None, ""):  # run as a file (another tree's child): its own directory is not a package
        sys.path[0] = os.getcwd()
    sys.exit(main())
