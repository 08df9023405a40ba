"""VisitTracker: visit starts inferred for page views without a session ordinal."""

from __future__ import annotations

from collector.hit.visitors import VisitTracker
from collector.store.aggregate import NO_VISIT, VISIT_SECOND_PAGE, VISIT_START

T0 = 1_795_500_000.0


def test_a_visit_starts_reaches_a_second_page_and_ends_after_the_timeout():
    visits = VisitTracker(timeout=1800)
    flags = [visits.visit_flag(b"a", T0 + t) for t in (0, 10, 20, 30, 30 + 1800, 30 + 1801 + 1800)]
    # 1830 s is exactly the timeout after 30 s: still the same visit; then 1801 s idle ends it.
    assert flags == [VISIT_START, VISIT_SECOND_PAGE, NO_VISIT, NO_VISIT, NO_VISIT, VISIT_START]
    assert visits.visit_flag(b"b", T0 + 40) == VISIT_START, "visitors are apart"


def test_prune_forgets_idle_visitors_then_the_oldest_half():
    visits = VisitTracker(timeout=100, max_entries=4)
    for i, t in enumerate((0, 1, 150, 151)):
        visits.visit_flag(bytes([i]), T0 + t)
    visits.visit_flag(b"new", T0 + 160)  # full: the two idle ones go
    assert set(visits._seen) == {bytes([2]), bytes([3]), b"new"}
    assert visits.visit_flag(bytes([3]), T0 + 170) == VISIT_SECOND_PAGE, "kept with its page count"


def test_a_full_table_of_recent_visitors_forgets_its_older_half_even_when_all_came_at_once():
    visits = VisitTracker(timeout=1800, max_entries=4)
    for i in range(4):
        visits.visit_flag(bytes([i]), T0 + i)
    visits.visit_flag(b"new", T0 + 10)
    assert set(visits._seen) == {bytes([3]), b"new"}, "the newest stay, the older half (and the median) go"
    same = VisitTracker(timeout=1800, max_entries=4)
    for i in range(5):  # all in one second: ties at the median go too, so the table never stays full
        same.visit_flag(bytes([i]), T0)
    assert len(same) <= 2


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
