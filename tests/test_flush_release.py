"""An applied part is freed a slice at a time (issue 17, half-rate p99, session 17): freed
at once, a part's thousands of tuples and strings held the hit loop for milliseconds at
every flush. Snapshot.shed drops at most so many entries a call; Flusher's _release calls
it with the loop's turn between two calls."""

from __future__ import annotations

import asyncio

from collector.store import flusher
from collector.store.aggregate import Aggregator, Snapshot
from collector.store.packed_snapshot import pack
from tests.test_aggregate_entries import a_hit


def a_second(hits: int) -> Snapshot:
    aggregator = Aggregator()
    for i in range(hits):
        aggregator.count(a_hit()._replace(page=f"https://e.edu/{i}", visitor=f"v{i}".encode(), event_id=f"e{i}",
                                          first_party_id=f"fp{i}", minute=29_000_000 + i % 3))
    snap = aggregator.drain()
    snap.resent.append(a_hit())
    return snap


def entries(snap: Snapshot) -> int:
    """What shed counts: an entry of each collection, the deep tag's within their (app, minute) (an
    event-id list is one)."""
    deep = sum(len(names) for of_suffix in snap.deep_incs.values() for names in of_suffix.values())
    deep += sum(map(len, snap.deep_members.values()))
    return deep + sum(map(len, (snap.cube, snap.visitors, snap.first_party, snap.rejected, snap.sessions,
                                snap.event_ids)))


def test_shed_drops_at_most_its_limit_a_call_until_none_is_left():
    snap = a_second(300)
    held = entries(snap)
    assert held > 2 * 300 and all((snap.cube, snap.visitors, snap.first_party, snap.deep_incs, snap.deep_members))
    calls = 0
    while not snap.shed(100):
        calls += 1
        assert entries(snap) == held - 100 * calls
    assert calls == held // 100 and entries(snap) == 0
    assert len(snap.resent) == 1  # the batch takes the re-sent hits before: shed leaves them


def test_release_gives_the_loop_a_turn_between_two_slices():
    snap = a_second(1_500)
    held = entries(snap)
    assert held >= 3 * flusher.SHED_ENTRIES
    turns = 0

    async def other_work() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    async def release() -> None:
        ticking = asyncio.create_task(other_work())
        await asyncio.sleep(0)
        before = turns
        await flusher._release(snap)
        ticking.cancel()
        assert turns - before >= held // flusher.SHED_ENTRIES

    asyncio.run(release())
    assert entries(snap) == 0


def test_a_packed_part_is_released_as_it_is():
    snap = a_second(10)
    packed = pack(snap)
    asyncio.run(flusher._release(packed))
    assert packed.chunks and entries(snap) > 0  # its bytes are freed with it, nothing to slice
