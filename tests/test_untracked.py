"""The per-worker tables of atomic values that POST traffic fills stay out of the garbage
collector's walks (issue 17, tail latency: after the POST runs, the re-send record's
100,000 ints made every full collection of the hit loop ~4 ms longer; bench/RESULTS.md,
session 11)."""

from __future__ import annotations

import gc

from collector import native, untracked
from collector.enrich.device import DeviceClassifier
from collector.enrich.geo import GeoResolver
from collector.features.facts import DeepFacts
from collector.hit.caps import CardinalityCaps
from collector.hit.remarks import RecentIds
from collector.hit.uvguard import UvGuard
from collector.store.aggregate import Aggregator, Snapshot
from tests.test_aggregate_entries import a_hit


def test_the_remembered_event_ids_are_not_walked_by_the_garbage_collector():
    """The sets, where the compiled record is not built (tests/test_remarks.py: the
    compiled one holds no object per id)."""
    recent = RecentIds(limit=100, compact=False)
    for i in range(175):  # three generations made: the first two at start, one at the turn
        recent.seen("app", f"event-{i}")
    assert len(recent.previous) == 50 and len(recent.current) == 25
    assert not gc.is_tracked(recent.current) and not gc.is_tracked(recent.previous)
    gc.collect()  # untracked, they are neither freed nor changed by a collection
    assert recent.seen("app", "event-174") and recent.seen("app", "event-125")
    assert not recent.seen("app", "event-0")


def test_the_uv_guards_identities_of_the_minute_are_not_walked_by_the_garbage_collector():
    guard = UvGuard(threshold=3)
    for minute in (1, 2):  # the set made at start, and the one a new minute makes
        guard.at(minute)
        for n in range(20):
            assert guard.suspects(f"10.0.0.{n}", b"visitor-%d" % n, f"vid-{n}", None) == ()
        assert not gc.is_tracked(guard._known)
        gc.collect()
        assert guard.suspects("10.0.0.1", b"visitor-1", "vid-1", None) == ()


def test_the_cached_device_and_geo_answers_are_not_walked_by_the_garbage_collector(test_mmdbs):
    # NamedTuples of strings, which CPython never untracks by itself: cached by the ten
    # thousand, they were the largest thing a full collection of the hit loop walked.
    classifier = DeviceClassifier(cache_size=100)
    devices = [classifier.classify(f"Mozilla/5.0 (Linux; Android 13; Pixel {n}) Chrome/120.0 Mobile") for n in range(5)]
    with GeoResolver([str(test_mmdbs["dbip"])], cache_size=100) as resolver:
        regions = [resolver.lookup(ip) for ip in ("100.64.1.2", "100.70.9.9", "100.65.0.1")]
        assert regions[0].city == "330100"  # a real answer, from the database
        assert devices[0].device_class == "mobile"
        for answer in devices + regions:
            assert not gc.is_tracked(answer)
        # Nor the tables holding them (CPython tracks a dict again when a NamedTuple goes in).
        tables = [classifier._cached._answers, resolver._cached._answers, resolver._by_place]
        tables += [networks for _, networks in resolver._v4_networks._lengths]
        assert len(tables) > 3 and not any(gc.is_tracked(table) for table in tables)
        gc.collect()
        assert resolver.lookup("100.64.1.2") is regions[0]


def test_a_snapshots_sets_of_entries_are_not_walked_by_the_garbage_collector():
    # Tuples of strings and ints, by the tens of thousands a second; made once a second.
    snap = Snapshot()
    for entries in (snap.visitors, snap.first_party):
        entries.update((app, minute, f"member-{minute}") for app in ("a", "b") for minute in range(100))
        assert not gc.is_tracked(entries)
    gc.collect()
    assert ("a", 7, "member-7") in snap.visitors and len(snap.first_party) == 200
    parts = snap.split_by_app(1)  # the parts a flush splits it into, one app each
    assert sorted(len(part.visitors) for part in parts) == [100, 100]
    for part in parts:
        assert not gc.is_tracked(part.visitors) and not gc.is_tracked(part.first_party)


def test_a_snapshots_deep_entries_are_not_walked_by_the_garbage_collector():
    """The deep tag's members (a set per app and minute) and increments (a dict of ints per
    suffix) as the aggregator makes them, in the snapshot and in its parts."""
    aggregator = Aggregator()
    for app in ("a", "b"):
        for n in range(100):
            deep = DeepFacts([("c", "clicks", 1), ("m:target", f"clicks:{n}", 1)], [("h:viewers", f"{n}", f"m{n}")])
            aggregator.count(a_hit()._replace(app=app, minute=29_000_000 + n % 2, deep=deep))
    snap = aggregator.drain()
    gc.collect()
    assert len(snap.deep_members) == 4 and sum(map(len, snap.deep_members.values())) == 200
    for part in (snap, *snap.split_by_app(1)):  # the parts a flush splits it into, one app each
        assert part.deep_members and part.deep_incs
        assert not any(gc.is_tracked(members) for members in part.deep_members.values())
        assert not any(gc.is_tracked(names) for of_suffix in part.deep_incs.values() for names in of_suffix.values())


def test_the_days_capped_values_are_not_walked_by_the_garbage_collector():
    caps = CardinalityCaps({"page": 3})
    admitted = [caps.admit("page", "app", "2026-11-30", f"https://school.example/p{n}") for n in range(6)]
    assert admitted[:3] == [f"https://school.example/p{n}" for n in range(3)] and admitted[3] != admitted[0]
    (day,) = caps._admitted.values()
    assert len(day.held) == 3 and not gc.is_tracked(day.held) and not gc.is_tracked(day.refused)


def test_the_c_untracked_and_the_ctypes_one_do_the_same():
    """collector/_untrack.c's `untracked`, used when built, is the ctypes call without its
    cost: the container itself back, untracked; an object without a GC header as it is."""
    forms = [untracked.untracked_by_ctypes]
    if native.in_use():
        assert untracked.untracked is not untracked.untracked_by_ctypes  # the C one, built with the rest
        forms.append(untracked.untracked)
    for form in forms:
        for container in ([1, 2], {"a", "b"}, ["x"]):
            assert gc.is_tracked(container)
            assert form(container) is container and not gc.is_tracked(container)
            assert form(container) is container and not gc.is_tracked(container)  # already untracked: no harm
    if native.in_use():
        number = 10**30  # (never given to the ctypes form: it would untrack what has no GC header)
        assert untracked.untracked(number) is number
