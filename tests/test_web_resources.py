"""The app's wiring (web/app.py, web/resources.py): create_app does no I/O; the resources
start in dependency order, stop in reverse, and only those that started are stopped."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from contextlib import asynccontextmanager, contextmanager

import pytest
from aiohttp import web

from collector import server
from collector.settings import Settings, SettingsError
from collector.store.journal import Journal
from collector.web.app import RESOURCES, create_app
from collector.web.appkeys import BEACON, FLUSHER, INGEST, JOURNAL_DIR

# Audit events (sys.addaudithook) that mean I/O: files, directories, the network.
IO_EVENTS = {"open", "os.mkdir", "os.listdir", "os.scandir", "socket.connect", "socket.getaddrinfo", "socket.gethostbyname"}
_recorded: list[tuple] | None = None  # the events seen while io_recorded() runs


def _audit(event: str, args: tuple) -> None:
    if _recorded is not None and event in IO_EVENTS:
        _recorded.append((event, args[:1]))


_hook_installed = False


@contextmanager
def io_recorded():
    """The I/O audit events raised inside the block (an audit hook cannot be removed:
    one is installed for the session and records only inside this block)."""
    global _recorded, _hook_installed
    if not _hook_installed:
        sys.addaudithook(_audit)
        _hook_installed = True
    _recorded = events = []
    try:
        yield events
    finally:
        _recorded = None


def record_lifecycle(app: web.Application) -> list[tuple[str, str]]:
    """Wrap each cleanup context so its start and stop are noted, in order."""
    events: list[tuple[str, str]] = []

    def noted(ctx):
        async def wrapped(app: web.Application):
            async with asynccontextmanager(ctx)(app):
                events.append(("started", ctx.__name__))
                yield
                events.append(("stopping", ctx.__name__))

        return wrapped

    app.cleanup_ctx[:] = [noted(ctx) for ctx in app.cleanup_ctx]
    return events


async def redis_clients(rds) -> int:
    """Connections the test Redis holds, once closing ones are gone (the server notices a
    close on its next loop turn)."""
    count = len(rds.client_list())
    for _ in range(20):
        await asyncio.sleep(0.05)
        now = len(rds.client_list())
        if now == count:
            return now
        count = now
    return count


def test_create_app_does_no_io(tmp_path):
    settings = Settings(
        redis_url="redis://no-such-host.invalid:6379/0",
        beacon_dir=str(tmp_path / "no-beacon-build"),
        geo_db=(str(tmp_path / "no-such.mmdb"),),
        data_dir=str(tmp_path / "data"),
    )
    settings.validate()  # as Settings.from_env does: this loads the time zone's data, once
    with io_recorded() as events:
        app = create_app(settings)
    assert events == []
    assert list(tmp_path.iterdir()) == []
    assert [ctx.__name__ for ctx in app.cleanup_ctx] == [ctx.__name__ for ctx in RESOURCES]


async def test_what_create_app_left_alone_is_met_at_startup(make_settings, tmp_path, caplog):
    # Nothing listens on port 1: Redis is unreachable, the beacon unbuilt — both warnings,
    # at startup, and the collector starts anyway (it counts in memory meanwhile).
    app = create_app(make_settings(redis_url="redis://127.0.0.1:1/0", beacon_dir=str(tmp_path / "no-build")))
    assert "unreachable" not in caplog.text
    runner = web.AppRunner(app)
    with caplog.at_level(logging.WARNING):
        await runner.setup()
    try:
        assert "redis://127.0.0.1:1/0 unreachable" in caplog.text
        assert "beacon: no build at" in caplog.text
        assert not app[BEACON].built
    finally:
        await runner.cleanup()


async def test_resources_start_in_dependency_order_and_stop_in_reverse_after_the_final_flush(make_settings, rds):
    app = create_app(make_settings(flush_interval=3600.0))  # nothing flushes but the final flush
    events = record_lifecycle(app)
    runner = web.AppRunner(app)
    await runner.setup()
    names = [ctx.__name__ for ctx in RESOURCES]
    assert events == [("started", name) for name in names]
    answer = app[INGEST].hit_query({"k": "app1", "t": "pageview", "u": "https://www.example.edu/"},
                                   "1.2.3.4", None, "Mozilla/5.0 (Windows NT 10.0)", None)
    assert answer.status == 204
    assert not list(rds.scan_iter("eb:{app1|*}:day:*:c"))
    await runner.cleanup()
    assert events[len(names):] == [("stopping", name) for name in reversed(names)]
    # The flusher stopped before Redis closed: its final flush reached Redis.
    assert [int(rds.hget(key, "pv")) for key in rds.scan_iter("eb:{app1|*}:day:*:c")] == [1]


async def test_a_resource_that_fails_to_start_stops_those_before_it_and_no_later_one_starts(make_settings, tmp_path, rds):
    baseline = await redis_clients(rds)
    app = create_app(make_settings(geo_db=(str(tmp_path / "missing.mmdb"),)))
    events = record_lifecycle(app)
    runner = web.AppRunner(app)
    with pytest.raises(SettingsError, match="missing.mmdb does not exist"):
        await runner.setup()
    await runner.cleanup()  # as server.py does when startup fails
    assert events == [
        ("started", "redis_ctx"), ("started", "journal_ctx"),  # geo_ctx failed
        ("stopping", "journal_ctx"), ("stopping", "redis_ctx"),
    ]
    again = Journal(app[JOURNAL_DIR])
    again.open()  # the lock was released: another process can take the journal over
    again.close()
    assert await redis_clients(rds) == baseline  # the Redis connection was closed
    assert INGEST not in app and FLUSHER not in app and BEACON not in app
    assert rds.dbsize() == 0  # no salts made, no health round run


async def test_serve_stops_what_started_when_startup_fails(make_settings, tmp_path, rds):
    baseline = await redis_clients(rds)
    settings = make_settings(geo_db=(str(tmp_path / "missing.mmdb"),), port=0)
    started = time.monotonic()
    with pytest.raises(SettingsError):
        await server._serve(settings, worker=0, reuse_port=False)
    assert time.monotonic() - started < 10
    journal = Journal(create_app(settings)[JOURNAL_DIR])
    journal.open()  # not still locked by the failed start
    journal.close()
    assert await redis_clients(rds) == baseline
