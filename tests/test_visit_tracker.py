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
