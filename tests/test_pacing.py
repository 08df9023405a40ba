"""store/pacing.py: a flush's build gives the hit loop the CPU back between slices."""

from __future__ import annotations

import time

from collector.store.pacing import Pacer


def burn(seconds: float, pace: Pacer) -> float:
    """Use `seconds` of this thread's CPU, calling `pace` as a build does; the CPU used."""
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        sum(range(2000))
        pace()
    return time.thread_time() - start


def test_a_paced_thread_sleeps_as_long_as_it_works_at_half_share():
    pace = Pacer(0.5, slice_seconds=0.002)
    used = burn(0.1, pace)
    # Every whole slice is followed by a pause as long as it; only the last, partial
    # slice may go unpaused. (10 % slack: the CPU the pauses' own calls take is counted
    # in `used`, not in a slice.)
    assert 0.9 * (used - 0.002) <= pace.paused <= used + 0.001


def test_a_smaller_share_pauses_longer():
    pace = Pacer(0.2, slice_seconds=0.002)
    used = burn(0.05, pace)
    assert pace.paused >= 0.9 * 4 * (used - 0.002)


def test_a_share_of_one_never_pauses():
    pace = Pacer(1.0)
    burn(0.03, pace)
    assert pace.paused == 0


async def test_a_paced_flush_counts_exactly_what_an_unpaced_one_does(redis_url):
    """The build of a 300-app batch sleeps between slices (flush_paced_seconds) and
    Redis gets the same counts as without pacing."""
    import redis
    import redis.asyncio as aioredis
    from test_flush_bounds import fill, make_flusher, pv_by_app

    from collector.store.aggregate import Aggregator

    sync = redis.Redis.from_url(redis_url)
    client = aioredis.Redis.from_url(redis_url)
    try:
        found = {}
        for share in (1.0, 0.2):
            sync.flushdb()
            aggregator = Aggregator()
            expected = fill(aggregator)
            flusher = make_flusher(client, aggregator, flush_cpu_share=share)
            assert await flusher.flush()
            found[share] = pv_by_app(sync), flusher.stats.paced_seconds
        assert found[1.0][0] == found[0.2][0] == expected
        assert found[1.0][1] == 0 and found[0.2][1] > 0
    finally:
        await client.aclose()
        sync.close()


# ---- a due batch's split and caps' questions (Flusher._due), paced ----------------------


def _snapshot(apps: int = 40, hits: int = 150):
    """A drained snapshot of `apps` apps with `hits` distinct pages each (~6,000 cells)."""
    from test_flush_bounds import a_hit

    from collector.store.aggregate import Aggregator

    aggregator = Aggregator()
    for i in range(apps):
        for n in range(hits):
            aggregator.count(a_hit(f"app{i:04d}", n, pages=hits))
    return aggregator.drain()


class Spy:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def test_a_paced_split_gives_the_same_parts_and_calls_pace_as_it_goes():
    from collector.store.aggregate import PACE_ENTRIES

    snap, spy = _snapshot(), Spy()
    paced = snap.split_by_app(1000, spy)
    plain = snap.split_by_app(1000)
    assert [part.cube for part in paced] == [part.cube for part in plain]
    assert [part.visitors for part in paced] == [part.visitors for part in plain]
    assert spy.calls >= (len(snap.cube) + len(snap.visitors)) // PACE_ENTRIES - 2


def test_the_caps_read_a_snapshot_paced_with_the_same_answer():
    from collector.settings import Settings
    from collector.store import capping
    from collector.store.buckets import Calendar
    from collector.store.capping import DeploymentCaps

    snap, spy = _snapshot(), Spy()
    caps = DeploymentCaps(Settings().cap_limits(), Calendar("Asia/Shanghai"))
    assert caps.present(snap, spy) == caps.present(snap)
    assert spy.calls >= len(snap.cube) // capping.PACE_KEYS - 1


def test_a_due_batch_is_split_and_questioned_paced_while_the_flusher_keeps_up():
    """_due (the flusher's thread, before a batch's builds) sleeps between slices at a
    share below 1 — the hit loop has the GIL and the core meanwhile — and finds the same
    parts and questions as at full speed."""
    import redis.asyncio as aioredis
    from test_flush_bounds import make_flusher

    from collector.settings import Settings
    from collector.store.aggregate import Aggregator
    from collector.store.buckets import Calendar
    from collector.store.capping import DeploymentCaps
    from collector.store.flusher import FlushBatch
    from collector.store.packed_snapshot import PackedSnapshot, unpack

    def cube(part):  # a due batch's parts but the first are packed (flusher._pack_all_but_first)
        return unpack(part).cube if isinstance(part, PackedSnapshot) else part.cube

    found = {}
    for share in (1.0, 0.05):
        caps = DeploymentCaps(Settings().cap_limits(), Calendar("Asia/Shanghai"))
        flusher = make_flusher(aioredis.Redis(), Aggregator(), caps=caps)  # never connected: _due does no I/O
        parts, (wanted, present) = flusher._due(FlushBatch("w-test", 1, None, snap=_snapshot()), share)
        found[share] = [cube(part) for part in parts], sorted(wanted), present, flusher.stats.paced_seconds
    assert found[1.0][:3] == found[0.05][:3]
    assert found[1.0][3] == 0 and found[0.05][3] > 0
