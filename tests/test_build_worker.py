"""store/build_worker.py: a flush's parts built in a child process store exactly what the
flusher's thread stores, and the flush never depends on the child being alive or quick."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from faults import RedisProxy
from test_flush_bounds import APPS, a_hit, fail_midway, fill, make_flusher, pv_by_app
from test_flush_fanout import TTLS, contents, realistic_snapshot, two_redis  # noqa: F401 (fixture)

from collector.settings import Settings
from collector.store import build_worker, redis_client
from collector.store import flusher as flusher_module
from collector.store.aggregate import Aggregator, Snapshot
from collector.store.buckets import Calendar
from collector.store.capping import DeploymentCaps
from collector.store.flusher import FlushBatch, Flusher
from collector.store.packed_snapshot import unpack
from collector.store.rollup import RollupBuilder

# Small caps, so the build rewrites refused values as (other).
CAPS = {**Settings().cap_limits(), "page": 3, "session": 1}
# Seconds a child may take to start, or to build a part, on a loaded machine: at idle
# priority it runs only when no other task wants a core.
READY = 30.0


@pytest.fixture
def small_parts(monkeypatch):
    """Parts of a few apps, so a batch makes several builds."""
    monkeypatch.setattr(flusher_module, "GROUP_CELLS", 120)


def with_event_ids(snap: Snapshot) -> Snapshot:
    """First sends' ids (dedupe.py), which the build turns into SADDs."""
    for n, key in enumerate(list(snap.cube)[:300]):
        snap.event_ids.setdefault((key[0], key[1]), []).append(f"id-{n}")
    return snap


async def flush_into(url: str, snap: Snapshot, calendar: Calendar, build_process: bool) -> Flusher:
    client = aioredis.Redis.from_url(url)
    flusher = Flusher(
        client, Aggregator(), RollupBuilder(calendar, TTLS), 1.0, writer="w", record_touched=("hour", "day"),
        dedupe_window=600, caps=DeploymentCaps(CAPS, calendar), build_process=build_process,
    )
    try:
        if build_process:
            assert flusher.build_worker is not None and await flusher.build_worker.wait_until_ready(READY)
            flusher.build_worker.timeout = READY
        flusher.pending.append(FlushBatch("w", 1, None, snap=snap, events=snap.events))
        assert await flusher.flush()
    finally:
        await flusher.close()
        await client.aclose()
    return flusher


async def test_parts_built_by_the_process_store_what_the_thread_stores(two_redis, test_geo_db, small_parts):  # noqa: F811
    """A varied snapshot (pages, visitors, deep events and sessions, rejects, capped values,
    first sends' ids, touched buckets), flushed both ways into two redis-servers."""
    by_process, by_thread = two_redis
    calendar = Calendar("Asia/Shanghai")
    snap = with_event_ids(realistic_snapshot(calendar, test_geo_db))
    apart = await flush_into(by_process.url, snap, calendar, build_process=True)
    here = await flush_into(by_thread.url, snap, calendar, build_process=False)

    assert apart.stats.parts_built_apart >= 2 and apart.stats.parts_built_in_thread == 0
    assert here.stats.parts_built_apart == 0 and here.stats.parts_built_in_thread >= 2
    stored, expected = contents(by_process.client()), contents(by_thread.client())
    assert stored.keys() == expected.keys()
    for key in expected:
        assert stored[key][:2] == expected[key][:2], key
        ttls = stored[key][2], expected[key][2]  # expiry times; the two flushes are some seconds apart
        assert ttls == (-1, -1) or (min(ttls) > 0 and abs(ttls[0] - ttls[1]) <= 10), key
    kinds = {kind for kind, _, _ in stored.values()}
    assert kinds == {b"hash", b"set", b"zset", b"string"}, kinds
    assert len(stored) > 500


async def test_a_packed_part_goes_to_the_process_as_its_bytes(two_redis, test_geo_db, small_parts, monkeypatch):  # noqa: F811
    """A batch queued behind another waits packed (packed_snapshot.py): its parts' bytes
    are the very pickles the build process reads, so they are sent as they are — never
    unpacked in the collector and pickled again — and store what the snapshot stores."""
    by_process, by_thread = two_redis
    calendar = Calendar("Asia/Shanghai")
    snap = with_event_ids(realistic_snapshot(calendar, test_geo_db))
    here = await flush_into(by_thread.url, snap, calendar, build_process=False)
    unpacked = []
    monkeypatch.setattr(flusher_module, "unpack", lambda part: unpacked.append(part) or unpack(part))
    client = aioredis.Redis.from_url(by_process.url)
    apart = Flusher(
        client, Aggregator(), RollupBuilder(calendar, TTLS), 1.0, writer="w", record_touched=("hour", "day"),
        dedupe_window=600, caps=DeploymentCaps(CAPS, calendar), build_process=True,
    )
    try:
        assert apart.build_worker is not None and await apart.build_worker.wait_until_ready(READY)
        apart.build_worker.timeout = READY
        apart.pending.append(FlushBatch("w", 1, None, packed=apart._packed_parts(snap), events=snap.events))
        assert await apart.flush()
    finally:
        await apart.close()
        await client.aclose()

    assert apart.stats.parts_built_apart == here.stats.parts_built_in_thread >= 2
    assert apart.stats.parts_built_in_thread == 0 and unpacked == []
    stored, expected = contents(by_process.client()), contents(by_thread.client())
    assert stored.keys() == expected.keys() and len(stored) > 500
    for key in expected:
        assert stored[key][:2] == expected[key][:2], key


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def gone(pid: int, within: float = 10.0) -> bool:
    """The process exited, and was reaped if it is ours (a zombie adopted by init is init's)."""
    give_up = time.monotonic() + within
    while time.monotonic() < give_up:
        try:
            state, ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:2]
        except FileNotFoundError:
            return True
        if state == "Z" and int(ppid) != os.getpid():
            return True
        time.sleep(0.05)
    return False


@contextlib.asynccontextmanager
async def flusher_with_child(redis_url: str) -> AsyncIterator[tuple[redis.Redis, Aggregator, Flusher, build_worker.BuildWorker]]:
    """An empty database, and a flusher whose build process is ready (its timeout READY)."""
    sync = redis.Redis.from_url(redis_url)
    sync.flushdb()
    client = aioredis.Redis.from_url(redis_url)
    aggregator = Aggregator()
    flusher = make_flusher(client, aggregator, build_process=True)
    worker = flusher.build_worker
    try:
        assert worker is not None and await worker.wait_until_ready(READY)
        worker.timeout = READY
        yield sync, aggregator, flusher, worker
    finally:
        await flusher.close()
        await client.aclose()


@pytest.mark.parametrize("fault", ["kill", "stop", "stop and continue"])
async def test_a_killed_or_stopped_build_process_costs_no_count(redis_url, small_parts, monkeypatch, fault):
    """The child is killed in the middle of a batch (the part in its hands comes back as
    EOF), or stopped between two (late: the thread builds; given up after LATE_MAX, or
    used again once it answers): every count is exact, and a child builds again later."""
    # "stop": given up after 1 s. "stop and continue": the child answers right after SIGCONT,
    # which comes only once the thread has built the rest of the batch — over 1 s on a slow
    # CI machine (seen) — so it keeps the production bound.
    monkeypatch.setattr(build_worker, "LATE_MAX", 1.0 if fault == "stop" else build_worker.LATE_MAX)
    async with flusher_with_child(redis_url) as (sync, aggregator, flusher, worker):
        first = worker.pid
        assert first is not None
        expected = fill(aggregator)
        flushing = asyncio.ensure_future(flusher.flush())
        batches = 1
        if fault == "kill":
            while flusher.stats.parts_built_apart < 1 and not flushing.done():
                await asyncio.sleep(0.001)
            os.kill(first, signal.SIGKILL)
            assert await flushing
        else:
            assert await flushing
            worker.timeout = 0.2
            os.kill(first, signal.SIGSTOP)
            fill(aggregator)
            batches += 1
            assert await flusher.flush()
            assert worker.late == 1
            # The late part, then the rest of the batch while the child finishes it (or is replaced).
            why = flusher.stats.thread_builds
            assert why["late"] == 1 and why["behind"] == 0
            assert sum(why.values()) == flusher.stats.parts_built_in_thread
            if fault == "stop and continue":
                os.kill(first, signal.SIGCONT)
        assert flusher.stats.parts_built_apart >= 1 and flusher.stats.parts_built_in_thread >= 1
        assert pv_by_app(sync) == {app: batches * n for app, n in expected.items()}

        worker.retry_after = 0.0  # one more batch, for the child again
        assert await worker.wait_until_ready(READY)
        if fault == "stop and continue":
            assert worker.pid == first and worker.failures == 0  # caught up: kept
        else:
            assert worker.pid != first and gone(first) and worker.failures == 1  # replaced, the old one reaped
        worker.timeout = READY
        apart = flusher.stats.parts_built_apart
        fill(aggregator)
        assert await flusher.flush()
        assert flusher.stats.parts_built_apart > apart
        assert pv_by_app(sync) == {app: (batches + 1) * n for app, n in expected.items()}
    assert gone(first) and (worker.pid is None)


def test_the_build_process_exits_with_a_killed_collector(collector_factory):
    collector = collector_factory(workers=1)
    give_up = time.monotonic() + READY
    while not (kids := children(collector.proc.pid)) and time.monotonic() < give_up:
        time.sleep(0.05)
    assert len(kids) == 1, kids
    assert Path(f"/proc/{kids[0]}/cmdline").read_bytes().split(b"\0")[2] == b"collector.store.build_worker"
    collector.proc.kill()
    collector.proc.wait()
    assert gone(kids[0])


async def test_a_part_partly_sent_resumes_only_with_commands_of_the_same_builder(redis_server, redis_url, monkeypatch):
    """A part built by the child is partly sent, then the child dies and the thread builds
    the part again. Nothing promises the two builders the same order of a part's commands
    (today each slot's calls are sorted, but the order of slots comes from the part's
    iteration), so the retry sends the part from its start — resuming after the
    acknowledged round trips would skip commands. Here the thread's order is reversed,
    a stand-in for any difference: without `built_by`, apps lose their counts."""
    monkeypatch.setattr(flusher_module, "ROUND_TRIP_COMMANDS", 1)
    built = flusher_module.Flusher._built
    monkeypatch.setattr(flusher_module.Flusher, "_built", lambda *args, **kw: built(*args, **kw)[::-1])
    proxy = RedisProxy(redis_server.port)
    client = redis_client.connect(proxy.url)
    aggregator = Aggregator()
    flusher = make_flusher(client, aggregator, round_trip_timeout=0.3, dedupe_window=600, build_process=True)
    worker = flusher.build_worker
    assert worker is not None and await worker.wait_until_ready(READY)
    worker.timeout = READY
    for app in APPS:
        for n in range(2):
            aggregator.count(a_hit(app, n)._replace(event_id=f"{app}-{n}"))
    sync = redis_server.client()
    try:
        # One part: a script call per app and slot (2 x 300; the day's carry the ids), the
        # apps' SADD, the touched buckets' call: cut in the middle of the script calls.
        await fail_midway(flusher, proxy, after_round_trips=len(APPS))
        assert flusher.stats.parts_built_apart == 1
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)
        proxy.set_mode("pass")
        assert await flusher.flush()
        assert flusher.stats.parts_built_in_thread == 1
        recorded = set()
        for key in sync.scan_iter("*:ids:*"):
            recorded |= {member.decode() for member in sync.smembers(key)}
        assert recorded == {f"{app}-{n}" for app in APPS for n in range(2)}
        assert pv_by_app(sync) == dict.fromkeys(APPS, 2)
    finally:
        await flusher.close()
        await client.aclose()
        proxy.close()


async def test_a_build_failing_in_an_unforeseen_way_replaces_the_child(redis_url, small_parts, monkeypatch):
    """Session 17: an exchange that raised what the pipes never raise (a RuntimeError) left
    the worker "not ready" for good, every later part built in the thread. Any failure is
    a failure: the child is replaced and builds again; nothing is lost meanwhile."""
    exchange = build_worker._exchange
    raised: list[int] = []

    async def unforeseen(child, part, job):
        if not raised:
            raised.append(child.pid)
            raise RuntimeError("Set changed size during iteration")
        return await exchange(child, part, job)

    monkeypatch.setattr(build_worker, "_exchange", unforeseen)
    async with flusher_with_child(redis_url) as (sync, aggregator, flusher, worker):
        first = worker.pid
        expected = fill(aggregator)
        assert await flusher.flush()
        assert raised == [first] and worker.failures == 1 and flusher.stats.thread_builds["failed"] >= 1
        worker.retry_after = 0.0
        assert await worker.wait_until_ready(READY) and worker.pid != first
        apart = flusher.stats.parts_built_apart
        fill(aggregator)
        assert await flusher.flush()
        assert flusher.stats.parts_built_apart > apart
        assert pv_by_app(sync) == {app: 2 * n for app, n in expected.items()}


async def test_a_part_a_late_build_still_reads_is_not_freed_under_it(redis_url, small_parts, monkeypatch):
    """A late build's part is built in the thread meanwhile and applied; the flusher frees an
    applied part a slice at a time (flusher._release), which would change the sets the late
    build is still reading. It is left whole until the late build lets it go."""
    go_on = asyncio.Event()
    read: list[int] = []
    exchange = build_worker._exchange

    async def slow_reader(child, part, job):
        """Reads the part's visitors one at a time, waiting before the second."""
        for n, _ in enumerate(part.visitors):
            read.append(n)
            if n == 0:
                await go_on.wait()
        return await exchange(child, part, job)

    monkeypatch.setattr(build_worker, "_exchange", slow_reader)
    async with flusher_with_child(redis_url) as (sync, aggregator, flusher, worker):
        worker.timeout = 0.05
        expected = fill(aggregator)
        assert await flusher.flush()  # every part applied, the first built in the thread meanwhile
        assert worker.late == 1 and flusher.stats.thread_builds["late"] == 1
        go_on.set()
        worker.timeout = READY
        assert await worker.wait_until_ready(READY)
        assert worker.failures == 0 and len(read) > 1  # read to its end, no set changed under it
        assert pv_by_app(sync) == {app: n for app, n in expected.items()}


async def test_the_process_builds_while_at_most_child_builds_pending_max_batches_are_pending(redis_url, rds):
    """At the GET peak one or two batches are often sealed early behind the one being
    applied: their parts still go to the build process. Deeper than
    CHILD_BUILDS_PENDING_MAX pending batches, the thread builds them ("behind")."""
    depth = flusher_module.CHILD_BUILDS_PENDING_MAX
    assert depth >= 3  # the GET peak's two early seals behind the batch being applied
    client = aioredis.Redis.from_url(redis_url)
    apart = make_flusher(client, Aggregator(), build_process=True)
    try:
        assert apart.build_worker is not None and await apart.build_worker.wait_until_ready(READY)
        apart.build_worker.timeout = READY
        for seq, app in enumerate(APPS[: depth + 2], start=1):  # one app a batch: one part each
            scratch = Aggregator()
            scratch.count(a_hit(app, seq))
            snap = scratch.drain()
            apart.pending.append(FlushBatch("w-test", seq, None, snap=snap, events=snap.events))
        assert await apart.flush()
    finally:
        await apart.close()
        await client.aclose()

    # Applied oldest first: the first two with depth + 2 and depth + 1 pending, the rest with depth or fewer.
    assert apart.stats.thread_builds["behind"] == 2 and apart.stats.parts_built_in_thread == 2
    assert apart.stats.parts_built_apart == depth
    assert pv_by_app(rds) == dict.fromkeys(APPS[: depth + 2], 1)
