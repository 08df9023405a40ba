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
