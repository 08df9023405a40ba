"""VisitTracker: visit starts inferred for page views without a session ordinal."""

from __future__ import annotations

import gc
import random
import tracemalloc

import pytest

from collector.hit.visitors import VisitTracker, compiled_visit_table
from collector.store.aggregate import NO_VISIT, VISIT_SECOND_PAGE, VISIT_START

T0 = 1_795_500_000.0


def key(n: int) -> bytes:
    """A visitor key: DIGEST_SIZE (8) bytes, as VisitorHasher makes them."""
    return n.to_bytes(8, "little")


both_forms = pytest.mark.parametrize("compact", [True, False], ids=["compact", "dict"])
compiled_only = pytest.mark.skipif(compiled_visit_table() is None, reason="the install compiled nothing")


@both_forms
def test_a_visit_starts_reaches_a_second_page_and_ends_after_the_timeout(compact):
    visits = VisitTracker(timeout=1800, compact=compact)
    flags = [visits.visit_flag(key(1), T0 + t) for t in (0, 10, 20, 30, 30 + 1800, 30 + 1801 + 1800)]
    # 1830 s is exactly the timeout after 30 s: still the same visit; then 1801 s idle ends it.
    assert flags == [VISIT_START, VISIT_SECOND_PAGE, NO_VISIT, NO_VISIT, NO_VISIT, VISIT_START]
    assert visits.visit_flag(key(2), T0 + 40) == VISIT_START, "visitors are apart"


@both_forms
def test_prune_forgets_idle_visitors_then_the_oldest_half(compact):
    visits = VisitTracker(timeout=100, max_entries=4, compact=compact)
    for i, t in enumerate((0, 1, 150, 151)):
        visits.visit_flag(key(i), T0 + t)
    visits.visit_flag(key(99), T0 + 160)  # full: the two idle ones go
    assert len(visits) == 3
    assert visits.visit_flag(key(3), T0 + 170) == VISIT_SECOND_PAGE, "kept with its page count"
    assert visits.visit_flag(key(2), T0 + 171) == VISIT_SECOND_PAGE, "kept with its page count"


@both_forms
def test_a_full_table_of_recent_visitors_forgets_its_older_half_even_when_all_came_at_once(compact):
    visits = VisitTracker(timeout=1800, max_entries=4, compact=compact)
    for i in range(4):
        visits.visit_flag(key(i), T0 + i)
    visits.visit_flag(key(99), T0 + 10)
    # The newest (3) and the new one stay; the older half and the median (2) go.
    assert len(visits) == 2
    assert visits.visit_flag(key(3), T0 + 11) == VISIT_SECOND_PAGE
    assert visits.visit_flag(key(2), T0 + 12) == VISIT_START, "forgotten: a visit starts again"
    same = VisitTracker(timeout=1800, max_entries=4, compact=compact)
    for i in range(5):  # all in one second: ties at the median go too, so the table never stays full
        same.visit_flag(key(i), T0)
    assert len(same) <= 2


@compiled_only
@pytest.mark.parametrize("max_entries", [1, 2, 5, 64, 1000])
def test_the_compiled_table_answers_as_the_dict_through_visits_timeouts_and_prunes(max_entries):
    """Random visits of a pool of visitors: new ones and returning ones, seconds to an hour
    apart, the clock now and then a little back (client timestamps) — every flag and every
    size the same as the dict's, through prunes of idle visitors and of the older half."""
    rng = random.Random(max_entries)
    for pool, timeout in ((3 * max_entries + 2, 1800), (max_entries + 1, 30), (10 * max_entries, 0)):
        compiled, reference = VisitTracker(timeout, max_entries), VisitTracker(timeout, max_entries, compact=False)
        assert compiled.table is not None and reference.table is None
        now = T0
        for _ in range(4000):
            now += rng.choice((0.0, 0.3, 1.0, 7.5, timeout / 2, timeout + 1.0, 3600.0)) if rng.random() < 0.95 else -2.0
            visitor = key(rng.randrange(pool))
            assert compiled.visit_flag(visitor, now) == reference.visit_flag(visitor, now), (visitor, now)
            assert len(compiled) == len(reference)


@compiled_only
def test_the_visitors_hold_no_object_per_visitor():
    """100,000 visitors in the table of 64-bit words: 4 MB (the dict of bytes and ints took
    ~12.5 MB, the largest per-visitor table after a million bare pixels: bench/RESULTS.md,
    session 14)."""
    rng = random.Random(1)
    keys = [key(rng.getrandbits(64)) for _ in range(150_000)]
    gc.collect()
    tracemalloc.start()
    try:
        visits = VisitTracker(timeout=1800, max_entries=100_000)
        for n, visitor in enumerate(keys):  # past the bound: pruned to its newer half, then refilled
            visits.visit_flag(visitor, T0 + n / 100)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert 50_000 <= len(visits) <= 100_000
    assert held < 4.5 * 2**20, f"{held / 2**20:.1f} MB for 100,000 visitors"
    assert not gc.is_tracked(visits.table)


@compiled_only
def test_the_compiled_table_refuses_what_it_cannot_hold():
    table_type = compiled_visit_table()
    assert table_type is not None
    with pytest.raises(ValueError):
        table_type(1800, 0)
    table = table_type(1800, 4)
    with pytest.raises(ValueError):
        table.visit(b"short", T0)
    with pytest.raises(ValueError):
        table.visit(key(1), float("nan"))
    with pytest.raises(TypeError):
        table.visit(key(1))  # type: ignore[call-arg]
    assert table.visit(key(1), T0) == 1 and table.visit(key(1), T0 + 1) == 2 and len(table) == 1


def test_day_and_month_keys_are_the_salted_hashes_of_ip_and_user_agent():
    """A hit's two visitor keys in one call: the same bytes as `visitor` per period, and
    as before (BLAKE2b keyed with the period's salt over "IP\\0User-Agent"), so that a
    worker updated within a day counts its visitors under the keys it used before."""
    from hashlib import blake2b

    from collector.hit.visitors import DIGEST_SIZE, VisitorHasher

    hasher = VisitorHasher()
    hasher.set_salt("d:2026-11-30", b"day salt")
    hasher.set_salt("m:2026-11", b"month salt")
    ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 16_3 like Mac OS X) MicroMessenger/8.0.33 \ud800"  # a lone surrogate too
    day, month = hasher.day_and_month("d:2026-11-30", "m:2026-11", "1.2.3.4", ua)
    identity = f"1.2.3.4\0{ua}".encode("utf-8", "replace")
    assert day == blake2b(identity, key=b"day salt", digest_size=DIGEST_SIZE).digest()
    assert month == blake2b(identity, key=b"month salt", digest_size=DIGEST_SIZE).digest()
    assert (day, month) == (hasher.visitor("d:2026-11-30", "1.2.3.4", ua), hasher.visitor("m:2026-11", "1.2.3.4", ua))
    assert day != month
