"""Issue 10's finding at a chosen scale: one client floods `/c` with distinct app keys.

    python -m bench.flood [--apps 50000] [--kill] [--repo DIR --python BIN] [--redis-timeout S]

Starts its own redis-server and a real collector (journal on), then:
  - flood: `--apps` GET pageviews, each with a fresh random 32-hex app key, sent as fast
    as possible over `--conns` pipelined raw sockets (every answer is read and counted);
  - control: meanwhile another app sends single pageviews on a keep-alive connection,
    one every 20 ms, until the flood ends;
  - with `--kill`: SIGKILL the collector right after the flood and restart it on the
    same data directory (the journal must replay the backlog);
and reports, as JSON: successful flushes, the control app's acknowledged hits and how
long after the flood ended they were all in Redis (exact PV), the collector's peak RSS
(sampled VmRSS every 0.2 s), and Redis' memory. `--repo/--python` run another checkout's
collector (e.g. `--repo /work/main --python /work/main/.venv/bin/python`) for a before
and after on the same harness.

The flood and the check are functions the slow test (tests/test_flush_bounds.py) reuses.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The rate limits and the UV guard off (hit/ratelimit.py, hit/uvguard.py).
UNLIMITED = {f"COLLECTOR_{name}": "0" for name in ("RATE_CLIENT", "RATE_ADDRESS", "RATE_APP", "UV_GUARD_PER_MINUTE")}
HOST = "127.0.0.1"
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def rss_kb(pid: int) -> int:
    """VmRSS of a process in kB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# ---- the flood ------------------------------------------------------------------------


def _hit_request(app: str, ip: str) -> bytes:
    return (
        f"GET /c?k={app}&t=pageview&u=https%3A%2F%2Fe.edu%2Fp HTTP/1.1\r\nHost: x\r\n"
        f"User-Agent: {UA}\r\nX-Forwarded-For: {ip}\r\n\r\n"
    ).encode()


def _flood_connection(port: int, apps: list[str], depth: int, statuses: dict, lock: threading.Lock) -> None:
    """Send `apps` (one hit each) pipelined `depth` requests at a time; read every answer."""
    requests = [_hit_request(app, f"100.{64 + i % 60}.{i % 250}.{i % 199 + 1}") for i, app in enumerate(apps)]
    send_pipelined(port, requests, depth, statuses, lock)


def send_pipelined(port: int, requests: list[bytes], depth: int, statuses: dict[int, int], lock: threading.Lock,
                   timeout: float = 30.0) -> None:
    """Send `requests` on one connection, `depth` at a time, reading every answer of a
    round before the next; add the answers' {status: count} to `statuses` (under `lock`)."""
    seen: dict[int, int] = {}
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        for start in range(0, len(requests), depth):
            part = requests[start : start + depth]
            sock.sendall(b"".join(part))
            buffer, found = b"", []
            while len(found) < len(part):
                data = sock.recv(1 << 16)
                if not data:
                    raise ConnectionError("collector closed the connection mid-flood")
                buffer += data
                found = STATUS.findall(buffer)
            for code in found:
                seen[int(code)] = seen.get(int(code), 0) + 1
    with lock:
        for code, n in seen.items():
            statuses[code] = statuses.get(code, 0) + n


def flood(port: int, apps: int, conns: int = 4, depth: int = 200) -> dict[int, int]:
    """`apps` pageviews, each for a new random app key; returns {status: count}."""
    keys = [secrets.token_hex(16) for _ in range(apps)]
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    threads = [threading.Thread(target=_flood_connection, args=(port, keys[i::conns], depth, statuses, lock))
               for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


@dataclass
class Control:
    """One app sending pageviews one by one on a keep-alive connection, counting answers.

    A request whose answer never came (the collector was killed meanwhile) is in doubt:
    it may or may not have been journaled. The thread reconnects and goes on.
    """

    port: int
    app: str = "control"
    acked: int = 0
    refused: int = 0
    in_doubt: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Control:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(30)
        return self.acked

    def _run(self) -> None:
        conn = None
        while not self._stop.is_set():
            sent = False
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
                conn.request("GET", f"/c?k={self.app}&t=pageview&u=https%3A%2F%2Fe.edu%2Fc&sn=1",
                             headers={"User-Agent": UA, "X-Forwarded-For": "100.64.0.1"})
                sent = True
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
                self.in_doubt += sent
                self.refused += not sent
                time.sleep(0.05)
                continue
            if response.status == 204:
                self.acked += 1
            else:
                self.refused += 1
            time.sleep(0.02)
        if conn is not None:
            conn.close()


def control_pv(redis_client, app: str = "control") -> int:
    """The app's PV straight from Redis, summed over its day counters.

    SCAN walks the whole keyspace whatever its MATCH, and a flood leaves every key of
    tens of thousands of apps: 10 keys a call (Redis' default) made a read take a round
    trip per 10 keys, tens of seconds in the slow test; 10 000 a call finds the same keys."""
    keys = redis_client.scan_iter(f"eb:{{{app}|*}}:day:*:c", count=10_000)
    return sum(int(redis_client.hget(k, "pv") or 0) for k in keys)


def backlog(port: int) -> dict:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", "/api/collector")
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


class RssSampler:
    """Peak VmRSS of whichever collector process `pid()` names, sampled every 0.2 s."""

    def __init__(self, pid) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_kb = max(self.peak_kb, rss_kb(self.pid()))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak_kb


# ---- the harness (python -m bench.flood) ------------------------------------------------


class Processes:
    """A redis-server and a collector of `repo` run by `python`, on free ports."""

    def __init__(self, workdir: Path, repo: Path, python: str, redis_timeout: float | None) -> None:
        import redis

        from collector.embedded_redis import find_redis_server

        self.workdir, self.repo, self.python = workdir, repo, python
        self.redis_port, self.port = free_port(), free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.redis = subprocess.Popen([find_redis_server(), "--port", str(self.redis_port), "--bind", HOST, "--save", "",
                                       "--appendonly", "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL)
        self.client = redis.Redis(host=HOST, port=self.redis_port)
        self._wait(lambda: self.client.ping())
        # One client floods: it measures counting and flushing, not the rate limits (which
        # would refuse it); env variables, which a checkout without those settings ignores.
        self.env = {**os.environ, **UNLIMITED}
        if redis_timeout is not None:  # an env variable: a checkout without the setting ignores it
            self.env["COLLECTOR_REDIS_TIMEOUT"] = str(redis_timeout)
        self.collector: subprocess.Popen | None = None
        self.starts = 0

    def start_collector(self) -> None:
        self.starts += 1
        log = open(self.workdir / f"collector-{self.starts}.log", "ab")
        self.collector = subprocess.Popen(
            [self.python, "-m", "collector", "serve", "--host", HOST, "--port", str(self.port),
             "--redis-url", f"redis://{HOST}:{self.redis_port}/0", "--data-dir", str(self.workdir / "data")],
            cwd=self.repo, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._wait(lambda: backlog(self.port))

    def kill_collector(self) -> None:
        self.collector.send_signal(signal.SIGKILL)
        self.collector.wait()

    def close(self) -> None:
        for proc in (self.collector, self.redis):
            if proc and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:  # the old collector's last flush can hang on
                    proc.kill()
                    proc.wait()

    @staticmethod
    def _wait(probe, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if probe():
                    return
            except Exception:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)


def run(args) -> dict:
    procs = Processes(Path(args.workdir), Path(args.repo), args.python, args.redis_timeout)
    try:
        procs.start_collector()
        sampler = RssSampler(lambda: procs.collector.pid)
        control = Control(procs.port).start()
        started = time.monotonic()
        statuses = flood(procs.port, args.apps, args.conns)
        flood_s = time.monotonic() - started
        acked = control.stop()
        flushes_before_kill = 0
        if args.kill:
            flushes_before_kill = backlog(procs.port)["flushes"]
            procs.kill_collector()
            procs.start_collector()
        ended = time.monotonic()
        lag = drained = None
        while time.monotonic() - ended < args.wait and drained is None:
            if lag is None and control_pv(procs.client) >= acked:
                lag = time.monotonic() - ended
            if procs.client.scard("eb:apps") >= args.apps and backlog(procs.port)["pending_flushes"] == 0:
                drained = time.monotonic() - ended
                if lag is None and control_pv(procs.client) >= acked:
                    lag = drained  # counted between the two checks
            time.sleep(0.5)
        final = backlog(procs.port)
        return {
            "apps": args.apps, "flood_statuses": statuses, "flood_seconds": round(flood_s, 1),
            "control_acked": acked, "control_refused": control.refused, "control_in_doubt": control.in_doubt,
            "control_pv_in_redis": control_pv(procs.client),
            "control_lag_after_flood_s": None if lag is None else round(lag, 1),
            "backlog_drained_after_flood_s": None if drained is None else round(drained, 1),
            "apps_known_to_redis": procs.client.scard("eb:apps"),
            "flushes": flushes_before_kill + final["flushes"], "flush_retries": final["flush_retries"],
            "pending_flushes_at_end": final["pending_flushes"],
            "peak_rss_mb": round(sampler.stop() / 1024), "redis_used_memory_mb": round(procs.client.info("memory")["used_memory"] / 2**20),
        }
    finally:
        procs.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flood", description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=50_000, help="distinct app keys in the flood (one hit each)")
    parser.add_argument("--conns", type=int, default=4, help="pipelined connections of the flood")
    parser.add_argument("--kill", action="store_true", help="SIGKILL and restart the collector right after the flood")
    parser.add_argument("--wait", type=float, default=120, help="seconds to wait for the control app's hits")
    parser.add_argument("--repo", default=str(ROOT), help="checkout whose collector runs (cwd of the process)")
    parser.add_argument("--python", default=sys.executable, help="interpreter with that checkout installed")
    parser.add_argument("--redis-timeout", type=float, default=None, help="COLLECTOR_REDIS_TIMEOUT for the collector")
    parser.add_argument("--workdir", default=f"/tmp/bench-flood-{os.getpid()}")
    print(json.dumps(run(parser.parse_args(argv)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
