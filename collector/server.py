"""`collector serve`: the embedded Redis, the worker processes and graceful shutdown.

One worker runs in this process. With `--workers N` this process only supervises: it
starts N workers that each bind the same port with SO_REUSEPORT (the kernel spreads
connections), restarts a worker that dies, and on SIGTERM/SIGINT stops them all —
each finishes its in-flight requests and flushes — before stopping the embedded Redis.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import signal
import sys
import time

import uvloop
from aiohttp import web

from collector import allocator, loop_slice
from collector.embedded_redis import EmbeddedRedis
from collector.registry.demo import register_demo_platform
from collector.settings import Settings, SettingsError, redacted_url
from collector.web.app import create_app
from collector.web.hit_server import HitRunner

log = logging.getLogger("collector")

IN_FLIGHT_GRACE = 5.0  # seconds in-flight requests get on shutdown; the final flush follows


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s",
        stream=sys.stderr,
    )


def serve(settings: Settings) -> None:
    configure_logging(settings)
    if settings.workers > 1 and settings.port == 0:
        raise SettingsError("COLLECTOR_PORT / --port: workers sharing a port need a fixed port, not 0")
    embedded = None
    if not settings.redis_url:
        embedded = EmbeddedRedis(settings.data_dir, settings.redis_server_bin)
        settings = settings.replace(redis_url=embedded.start())
    try:
        if embedded:
            register_demo_platform(settings)
        if settings.workers == 1:
            run_worker(settings, worker=0, reuse_port=False)
        else:
            Supervisor(settings).run()
    finally:
        if embedded:
            embedded.stop()


# The flusher builds its writes in a thread (flusher.py): the event loop gets the GIL back
# at most this many seconds later, so a flush delays an arriving hit by about this much
# (CPython's default is 5 ms, the whole p99 budget).
GIL_SWITCH_INTERVAL = 0.001


def run_worker(settings: Settings, worker: int, reuse_port: bool = True) -> None:
    configure_logging(settings)
    allocator.limit_arenas(settings.malloc_arena_max)  # before any thread starts
    allocator.fix_mmap_threshold(settings.malloc_mmap_threshold)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    loop_slice.shorten(settings.loop_slice_us)  # this thread runs the event loop
    uvloop.run(_serve(settings, worker, reuse_port))


async def _serve(settings: Settings, worker: int, reuse_port: bool) -> None:
    app = create_app(settings, worker=worker)
    # The hit fast path writes no access log: when one is asked for, aiohttp serves all
    # (through HitRunner still, for its connection limits).
    runner = HitRunner(
        app,
        fast_path=not settings.access_log,
        access_log=logging.getLogger("aiohttp.access") if settings.access_log else None,
        handle_signals=False,
        shutdown_timeout=IN_FLIGHT_GRACE,
    )
    try:
        await runner.setup()
    except BaseException:
        # A resource failed to start: stop those that did (journal lock, Redis), in reverse.
        await runner.cleanup()
        raise
    site = web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port or None, backlog=2048)
    await site.start()
    freeze_startup_heap()
    for address in runner.addresses:
        host, port = address[0], address[1]
        log.info("collector listening on http://%s:%d/ (redis %s)", host, port, redacted_url(settings.redis_url))

    await until_signalled()
    log.info("stopping: no new connections, finishing in-flight requests, final flush")
    await runner.cleanup()
    log.info("stopped")


def freeze_startup_heap() -> None:
    """Keep what the worker built at start out of every later garbage collection.

    The modules, the user-agent and region tables and the geo reader (some 50,000
    objects) live as long as the process, yet CPython's full collection walks all of them
    each time: measured in process, 15 ms of a 67 ms pause per full collection on the
    realistic hits, and a quarter of the process's collection CPU. Frozen after one
    collection (so no garbage of the start is kept), they are never walked again; what
    the caches add later is still collected as usual. (bench/RESULTS.md, session 6.)
    """
    gc.collect()
    gc.freeze()


async def until_signalled() -> None:
    """Return once SIGTERM or SIGINT arrives (the caller then shuts down gracefully)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


class Supervisor:
    """Keeps N worker processes running until told to stop."""

    RESTART_PAUSE = 1.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ctx = multiprocessing.get_context("spawn")
        self.workers: list[multiprocessing.process.BaseProcess] = []
        self.stopping = False

    def run(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        self.workers = [self._spawn(i) for i in range(self.settings.workers)]
        while not self.stopping:
            for i, worker in enumerate(self.workers):
                if not worker.is_alive() and not self.stopping:
                    log.error("worker pid %s exited with %s; restarting", worker.pid, worker.exitcode)
                    time.sleep(self.RESTART_PAUSE)
                    self.workers[i] = self._spawn(i)  # same number: it replays that worker's journal
            time.sleep(0.2)
        self._shutdown()

    def _spawn(self, index: int) -> multiprocessing.process.BaseProcess:
        worker = self.ctx.Process(target=run_worker, args=(self.settings, index, True), name=f"collector-worker-{index}")
        worker.start()
        return worker

    def _stop(self, signum, frame) -> None:
        self.stopping = True

    def _shutdown(self) -> None:
        for worker in self.workers:
            if worker.is_alive() and worker.pid is not None:  # (a started process has its pid)
                os.kill(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + IN_FLIGHT_GRACE + 4
        for worker in self.workers:
            worker.join(max(deadline - time.monotonic(), 0.1))
            if worker.is_alive():
                log.error("worker pid %s did not stop in time; killing it", worker.pid)
                worker.kill()
                worker.join()
