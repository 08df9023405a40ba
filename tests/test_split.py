"""store/_split.c's dicts_by_first: a snapshot's dicts split by app as the Python form
splits them (the same dicts, in the same order), paced alike, and refusing what the Python
form cannot split."""

from __future__ import annotations

from functools import partial

import pytest
from test_build_worker import with_event_ids
from test_flush_fanout import realistic_snapshot

from collector.native import c_module
from collector.store.aggregate import PACE_ENTRIES, dicts_by_app_in_python
from collector.store.buckets import Calendar

split = c_module("collector.store._split")
pytestmark = pytest.mark.skipif(split is None, reason="the C modules are not built")


def as_lists(by_app: dict) -> list:
    """Every app's items in order, apps in order: equal only if the order is too."""
    return [(app, list(entries.items())) for app, entries in by_app.items()]


def test_a_snapshots_dicts_split_as_the_python_form_splits_them(test_geo_db):
    snap = with_event_ids(realistic_snapshot(Calendar("Asia/Shanghai"), test_geo_db))
    assert snap.cube and snap.deep_incs and snap.deep_members and snap.sessions and snap.event_ids
    for entries in (snap.cube, snap.rejected, snap.deep_incs, snap.deep_members, snap.sessions, snap.event_ids):
        assert as_lists(split.dicts_by_first(entries, lambda: None, PACE_ENTRIES)) == as_lists(dicts_by_app_in_python(entries))


def test_keys_of_equal_hashes_and_hostile_keys_keep_their_own_entries():
    class Collides:  # equal hashes, never equal: each key must stay an entry of its own
        def __hash__(self) -> int:
            return 7

    colliding = [Collides() for _ in range(50)]
    entries = {("a", c): n for n, c in enumerate(colliding)}
    entries |= {("b", -1): "x", ("b", -2): "y", ("\udc80", 1.5): None, (("nested", 1), 2): [1]}  # hash(-1) == hash(-2)
    got = split.dicts_by_first(entries, lambda: None, 3)
    assert as_lists(got) == as_lists(dicts_by_app_in_python(entries))
    assert [got["a"][("a", c)] for c in colliding] == list(range(50))


def test_it_paces_every_so_many_entries_and_stops_on_a_change_or_an_error():
    entries = {(str(n % 7), n): n for n in range(4096)}
    for size, paces in ((4096, 4), (4095, 3)):  # after each 1,024th entry, as the Python form (its 1,024th, 2,048th...)
        calls: list[int] = []
        split.dicts_by_first(dict(list(entries.items())[:size]), partial(calls.append, 1), 1024)
        assert len(calls) == paces
    with pytest.raises(RuntimeError):
        split.dicts_by_first(entries, lambda: entries.pop(("0", 0), None), 10)
    with pytest.raises(KeyError):
        split.dicts_by_first(entries, lambda: {}["x"], 10)


@pytest.mark.parametrize("entries", [{(): 1}, {"ab": 1}, {1: 2}])
def test_a_key_that_is_not_a_non_empty_tuple_is_refused(entries):
    with pytest.raises(TypeError):
        split.dicts_by_first(entries, lambda: None, 10)


@pytest.mark.parametrize("args", [([], lambda: None, 10), ({}, lambda: None, 0), ({}, lambda: None)])
def test_bad_arguments_are_refused(args):
    with pytest.raises((TypeError, ValueError)):
        split.dicts_by_first(*args)
