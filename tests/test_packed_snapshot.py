"""store/packed_snapshot.py: a batch queued behind another waits packed (issue 17, POST
memory), and a packed batch stores exactly what its snapshot stores, exactly once."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest
import redis.asyncio as aioredis
from faults import RedisProxy
from test_build_worker import with_event_ids
from test_flush_bounds import (  # noqa: F401
    _round_trips_of_whole_batch,
    a_hit,
    fail_midway,
    fill,
    make_flusher,
    pv_by_app,
    small_bounds,
)
from test_flush_fanout import TTLS, contents, realistic_snapshot, same_contents, two_redis  # noqa: F401 (fixture)

from collector.settings import Settings
from collector.store import flusher as flusher_module
from collector.store import redis_client
from collector.store.aggregate import Aggregator, Snapshot
from collector.store.buckets import Calendar
from collector.store.capping import DeploymentCaps
from collector.store.finality import touched_calls
from collector.store.flusher import FlushBatch, Flusher, session_arg
from collector.store.packed_snapshot import PackedSnapshot, pack, unpack
from collector.store.rollup import RollupBuilder

COLLECTIONS = ("cube", "visitors", "first_party", "rejected", "deep_incs", "deep_members", "event_ids")


def sessions(snap: Snapshot) -> dict:
    return {key: (minute, session.as_json()) for key, (minute, session) in snap.sessions.items()}


def test_unpacked_is_the_snapshot_entry_for_entry(test_geo_db):
    snap = with_event_ids(realistic_snapshot(Calendar("Asia/Shanghai"), test_geo_db))
    assert snap.deep_members and snap.sessions and snap.rejected and snap.event_ids  # every kind of entry
    packed = pack(snap)
    again = unpack(packed)
    for name in COLLECTIONS:
        assert getattr(again, name) == getattr(snap, name), name
    assert list(again.event_ids.items()) == list(snap.event_ids.items())  # ids in arrival order
    assert sessions(again) == sessions(snap)
    assert (again.events, again.cells, again.resent) == (snap.events, snap.cells, snap.resent)
    assert packed.size < snap.cells * 60  # what it is for: ~30 bytes an entry, against ~145 as objects


def test_event_ids_holding_any_character_unpack_as_they_were():
    """An (app, minute)'s event ids are packed as one joined str (build_worker._joined_ids):
    ids are client values of any characters, the separator among them, so a list an id
    of which holds the separator must come back as the very same ids, in their order (and
    so must ids that are empty, lone surrogates, the separator alone or 64 of them)."""
    random = __import__("random").Random(24)
    alphabet = ["a", "Z", "0", "-", "\x00", "\x00\x00", "\n", "é", "中", "\ud800", "\U0001f600", ""]
    snap = Snapshot()
    cases = [[], [""], ["", ""], ["\x00"], ["a\x00b", "c"], ["x" * 64, "\x00" * 64], ["\ud800", "\udfff"]]
    cases += [["".join(random.choices(alphabet, k=random.randint(0, 8))) for _ in range(random.randint(1, 60))]
              for _ in range(300)]
    for minute, ids in enumerate(cases):
        snap.event_ids[("app", minute)] = ids
    again = unpack(pack(snap))
    assert list(again.event_ids.items()) == list(snap.event_ids.items())
    plain = Snapshot(event_ids={("app", 1): [f"{n:016x}" for n in range(2000)]})  # the beacon's ids: one str each
    assert len(pack(plain).chunks[0]) < 2000 * 18


async def flush_batch(url: str, batch: FlushBatch) -> None:
    client = aioredis.Redis.from_url(url)
    flusher = Flusher(client, Aggregator(), RollupBuilder(Calendar("Asia/Shanghai"), TTLS), 1.0, writer="w",
                      record_touched=("hour", "day"), dedupe_window=600)
    try:
        flusher.pending.append(batch)
        assert await flusher.flush()
    finally:
        await flusher.close()
        await client.aclose()


async def test_a_packed_batch_stores_what_its_snapshot_stores(two_redis, test_geo_db):  # noqa: F811
    packed_into, kept_into = two_redis
    snap = with_event_ids(realistic_snapshot(Calendar("Asia/Shanghai"), test_geo_db))
    await flush_batch(packed_into.url, FlushBatch("w", 1, None, packed=packing_flusher()._packed_parts(snap), events=snap.events))
    await flush_batch(kept_into.url, FlushBatch("w", 1, None, snap=snap, events=snap.events))
    stored, expected = contents(packed_into.client()), contents(kept_into.client())
    assert len(expected) > 500 and stored.keys() == expected.keys()
    for key in expected:
        assert stored[key][:2] == expected[key][:2], key


@pytest.mark.parametrize("fails_in", ["the first batch", "the packed batch"])
async def test_a_batch_packed_behind_a_failing_one_counts_once(redis_server, redis_url, small_bounds, fails_in):  # noqa: F811
    """Sealed while another waits and with no room to wait live, a batch is packed; a flush
    that fails midway, in the batch ahead or in the packed one once unpacked, resumes and
    counts every hit once."""
    proxy = RedisProxy(redis_server.port)
    client = redis_client.connect(proxy.url)
    aggregator = Aggregator()
    flusher = make_flusher(client, aggregator, round_trip_timeout=0.3)
    flusher.live_queue_cells = 0  # no batch waits live
    sync = redis_server.client()
    try:
        expected = fill(aggregator)
        flusher.seal()  # first in the queue: kept as it is (its turn is now)
        fill(aggregator)
        flusher.seal()  # behind it: packed
        first, second = flusher.pending
        assert second.packing is not None
        await asyncio.wait([second.packing])
        assert first.snap is not None and first.packed is None
        assert second.snap is None and second.packed is not None and second.in_memory
        per_batch = await _round_trips_of_whole_batch(redis_url)
        await fail_midway(flusher, proxy, after_round_trips=12 if fails_in == "the first batch" else per_batch + 12)
        assert len(flusher.pending) == (2 if fails_in == "the first batch" else 1)
        proxy.set_mode("pass")
        assert await flusher.flush()
        assert pv_by_app(sync) == {app: 2 * pv for app, pv in expected.items()}
    finally:
        await client.aclose()
        proxy.close()


@pytest.mark.parametrize("fails_in", ["the first batch", "the live batch"])
async def test_batches_queued_within_live_queue_cells_wait_live_and_count_once(
    redis_server, redis_url, small_bounds, monkeypatch, fails_in  # noqa: F811
):
    """Batches sealed behind another keep the parts that fit live, up to live_queue_cells
    entries between them, the rest packed: with room for one and a half batches, the second
    batch waits whole live, the third about half live (the parts that fit what was left, in
    order, not only those before the first that did not) and half packed, and gives back
    the room its packed parts did not take. Due, a batch keeps its live parts live for
    their build (packed then, the flusher's thread, behind, only unpacked them again), the
    second with a batch behind it as the third alone; a batch never queued (the first) has
    its parts but the first packed. A flush failing midway, in the batch ahead or in the
    live one, resumes and every hit counts once."""
    proxy = RedisProxy(redis_server.port)
    client = redis_client.connect(proxy.url)
    aggregator = Aggregator()
    flusher = make_flusher(client, aggregator, round_trip_timeout=0.3)
    due_parts: dict[int, list[Snapshot | PackedSnapshot]] = {}
    due = flusher._due

    def spy(batch: FlushBatch, *args: object) -> tuple:
        made = due(batch, *args)  # type: ignore[arg-type]
        due_parts.setdefault(batch.seq, list(made[0]))
        return made

    monkeypatch.setattr(flusher, "_due", spy)
    sync = redis_server.client()
    try:
        expected = fill(aggregator)
        flusher.seal()  # first in the queue: its turn is now
        cells = flusher.pending[0].cells
        flusher.live_queue_cells = cells + cells // 2
        for _ in range(2):
            fill(aggregator)
            flusher.seal()
        first, second, third = flusher.pending
        assert (first.live_cells, second.live_cells, third.live_cells) == (0, cells, cells // 2)
        await asyncio.wait([batch.packing for batch in (second, third) if batch.packing])
        assert second.packed is not None and all(isinstance(part, Snapshot) for part in second.packed.parts)
        assert third.packed is not None
        kinds = [isinstance(part, Snapshot) for part in third.packed.parts]
        room, fits = cells // 2, []
        for part in third.packed.parts:
            size = part.cells if isinstance(part, Snapshot) else unpack(part).cells
            fits.append(size <= room)
            room -= size if size <= room else 0
        assert kinds == fits and kinds[0] and not all(kinds)  # every part that fit, in order
        assert 0 < third.packed.live_cells <= cells // 2 and third.live_cells == third.packed.live_cells
        assert third.held_cells < second.held_cells == cells
        per_batch = await _round_trips_of_whole_batch(redis_url)
        await fail_midway(flusher, proxy, after_round_trips=12 if fails_in == "the first batch" else per_batch + 12)
        assert len(flusher.pending) == (3 if fails_in == "the first batch" else 2)
        proxy.set_mode("pass")
        assert await flusher.flush()
        assert len(due_parts[second.seq]) > 1 and all(isinstance(part, Snapshot) for part in due_parts[second.seq])
        assert [isinstance(part, Snapshot) for part in due_parts[third.seq]] == kinds  # due alone: still live
        assert all(isinstance(part, PackedSnapshot) for part in due_parts[first.seq][1:])  # never queued
        assert pv_by_app(sync) == {app: 3 * pv for app, pv in expected.items()}
    finally:
        await client.aclose()
        proxy.close()


def test_a_queued_batch_keeps_live_the_parts_that_fit_after_one_that_does_not(small_bounds):  # noqa: F811
    """An app is never split: a batch's largest app can be a part larger than the room left
    for live parts. The parts after it that fit still stay live (they were all packed when
    the first did not fit: at POST-50 saturation, nearly every queued entry was packed and
    unpacked again), and the live ones hold the same entries as the snapshot's split."""
    aggregator = Aggregator()
    fill(aggregator)
    for n in range(400):  # one app with the most events: a part alone, larger than the others
        aggregator.count(a_hit("big", n, pages=400))
    snap = aggregator.drain()
    sizes = [part.cells for part in snap.split_by_app(flusher_module.GROUP_CELLS)]
    room = max(sizes[1:])
    assert sizes[0] > room
    packed = packing_flusher()._packed_parts(snap, room)
    kinds = [isinstance(part, Snapshot) for part in packed.parts]
    assert kinds[:2] == [False, True] and packed.live_cells <= room
    assert [part.cells if isinstance(part, Snapshot) else unpack(part).cells for part in packed.parts] == sizes


def packing_flusher(caps: DeploymentCaps | None = None) -> Flusher:
    """A flusher to pack batches with, as flush_batch's flushes them (never connected)."""
    return Flusher(aioredis.Redis(), Aggregator(), RollupBuilder(Calendar("Asia/Shanghai"), TTLS), 1.0, writer="w",
                   record_touched=("hour", "day"), dedupe_window=600, caps=caps)


async def test_a_batch_packed_part_by_part_is_live_one_part_at_a_time(two_redis, test_geo_db, monkeypatch):  # noqa: F811
    """Queued, a batch is packed as the parts it is flushed in; when due, the first part
    alone is live (the others wait packed until their build), its touched buckets and
    caps' questions are those of its snapshot, and it stores what the snapshot stores."""
    monkeypatch.setattr(flusher_module, "GROUP_CELLS", 50)  # one app a part: the three apps make three parts
    packed_into, kept_into = two_redis
    calendar = Calendar("Asia/Shanghai")
    snap = with_event_ids(realistic_snapshot(calendar, test_geo_db))
    caps = DeploymentCaps(Settings().cap_limits(), calendar)
    flusher = packing_flusher(caps)
    packed = flusher._packed_parts(snap)
    assert len(packed.parts) == 3
    batch = FlushBatch("w", 1, None, packed=packed, events=snap.events)
    assert batch.held_cells < snap.cells // 2  # the packed parts count their bytes
    due, (wanted, present) = flusher._due(batch)
    assert all(isinstance(part, PackedSnapshot) for part in due)  # each unpacked by its build alone
    assert batch.packed is None and batch.touched == touched_calls(snap, calendar, ("hour", "day"))
    expected_wanted, expected_present = caps.undecided(snap)
    assert present == expected_present and wanted.keys() == expected_wanted.keys()
    assert all(wanted[key].values == ask.values for key, ask in expected_wanted.items())
    await flush_batch(packed_into.url, FlushBatch("w", 1, None, packed=flusher._packed_parts(snap), events=snap.events))
    await flush_batch(kept_into.url, FlushBatch("w", 1, None, snap=snap, events=snap.events))
    stored, expected = contents(packed_into.client()), contents(kept_into.client())
    assert len(expected) > 500 and same_contents(stored, expected)


def test_a_media_sessions_script_argument_is_its_size_in_memory(test_geo_db):
    """orjson's bytes keep a 4 KB buffer: a slot's thousands of session arguments, held
    until their call is packed, took 14 times their size (issue 17, RSS)."""
    snap = realistic_snapshot(Calendar("Asia/Shanghai"), test_geo_db)
    prefixes, session = next(
        (prefixes, session) for writes in RollupBuilder(Calendar("Asia/Shanghai"), TTLS).build(snap)
        for prefixes, session in writes.sessions
    )
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        args = [session_arg(prefixes, session, 90) for _ in range(100)]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 100 * (len(args[0]) + 200)


async def test_a_due_batch_keeps_its_first_part_live_and_the_others_packed(two_redis, test_geo_db, monkeypatch):  # noqa: F811
    """Due, a live batch is split into its parts and all but the first are packed until
    their build (issue 17, RSS after 10⁶ visitors): the batch holds less, its caps'
    questions are those of its snapshot (again on a retry, its parts packed by then), and
    it stores what the same snapshot stores flushed in one part."""
    packed_into, whole_into = two_redis
    calendar = Calendar("Asia/Shanghai")
    snap = with_event_ids(realistic_snapshot(calendar, test_geo_db))
    # The same entries flushed whole below: a batch owns its snapshot, and a flushed part
    # frees its entries (Snapshot.shed), the deep tag's groups shared with the snapshot's.
    whole = unpack(pack(snap))
    caps = DeploymentCaps(Settings().cap_limits(), calendar)
    flusher = packing_flusher(caps)
    monkeypatch.setattr(flusher_module, "GROUP_CELLS", 50)  # one app a part: the three apps make three parts
    batch = FlushBatch("w", 1, None, snap=snap, events=snap.events, cells=snap.cells)
    due, questions = flusher._due(batch)
    assert len(due) == 3 and isinstance(due[0], Snapshot)
    assert all(isinstance(part, PackedSnapshot) for part in list(due)[1:])
    batch.parts = due
    assert batch.held_cells < snap.cells - sum(unpack(part).cells for part in list(due)[1:]) // 2
    expected_wanted, expected_present = caps.undecided(snap)
    for wanted, present in (questions, flusher._due(batch)[1]):  # the first time, then as a retry asks again
        assert present == expected_present and wanted.keys() == expected_wanted.keys()
        assert all(wanted[key].values == ask.values for key, ask in expected_wanted.items())
    await flush_batch(packed_into.url, FlushBatch("w", 1, None, snap=snap, events=snap.events))
    monkeypatch.setattr(flusher_module, "GROUP_CELLS", 1_000_000)
    await flush_batch(whole_into.url, FlushBatch("w", 1, None, snap=whole, events=whole.events))
    stored, expected = contents(packed_into.client()), contents(whole_into.client())
    assert len(expected) > 500 and same_contents(stored, expected)


def test_a_packed_batch_asks_its_caps_questions_again_on_a_retry(test_geo_db, monkeypatch):
    """The caps' round trip failed (Redis away): the retry asks the same questions of the
    batch's parts, packed by then. It used to stop at an assertion, every retry, so the
    batch never flushed once Redis was back."""
    monkeypatch.setattr(flusher_module, "GROUP_CELLS", 50)
    calendar = Calendar("Asia/Shanghai")
    snap = with_event_ids(realistic_snapshot(calendar, test_geo_db))
    caps = DeploymentCaps(Settings().cap_limits(), calendar)
    flusher = packing_flusher(caps)
    batch = FlushBatch("w", 1, None, packed=flusher._packed_parts(snap), events=snap.events)
    batch.parts, first = flusher._due(batch)
    wanted, present = flusher._due(batch)[1]
    assert present == first[1] == caps.undecided(snap)[1] and wanted.keys() == first[0].keys()
