"""store/_deep_incs.c's add_incs against its reference, store/aggregate.py's add_incs (issue
17 "POST events/s", session 21): a deep event's increments added into its (app, minute)'s
suffix -> field -> total dicts. Drawn increments, realistic and hostile, must leave the
same dicts (values and types) in both, and a bad increment must raise in both, after the
same increments before it were added."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from collector.native import c_module
from collector.store.aggregate import _ADD_INCS, add_incs

MODULE = c_module("collector.store._deep_incs")
needs_c = pytest.mark.skipif(MODULE is None, reason="the C modules were not built")


def both(of_suffix: dict[str, Any], incs: list[Any]) -> tuple[Any, Any]:
    """What each function leaves of a copy of `of_suffix`, and the exception type it raised (or None)."""
    assert MODULE is not None
    outcomes = []
    for function in (add_incs, MODULE.add_incs):
        into = copy.deepcopy(of_suffix)
        try:
            function(into, incs)
            raised = None
        except (TypeError, ValueError) as exc:
            raised = exc
        outcomes.append((into, raised))
    return tuple((into, _typed(into), raised is None) for into, raised in outcomes)


def _typed(of_suffix: dict[str, Any]) -> dict[str, Any]:
    """The totals with their types (True == 1, but a total must be an int)."""
    return {k: {f: (v, type(v)) for f, v in n.items()} if isinstance(n, dict) else n for k, n in of_suffix.items()}


@needs_c
def test_the_aggregator_runs_the_c_add_incs_when_built():
    assert _ADD_INCS is MODULE.add_incs


@needs_c
def test_increments_add_up_per_suffix_and_field():
    of_suffix: dict[str, dict[str, int]] = {"c": {"clicks": 2}}
    MODULE.add_incs(of_suffix, [("c", "clicks", 1), ("m:t", "clicks:x", 3), ("c", "views", 1), ("m:t", "clicks:x", 1)])
    assert of_suffix == {"c": {"clicks": 3, "views": 1}, "m:t": {"clicks:x": 4}}
    MODULE.add_incs(of_suffix, [])
    assert of_suffix == {"c": {"clicks": 3, "views": 1}, "m:t": {"clicks:x": 4}}


@needs_c
@pytest.mark.parametrize("incs", [
    [("c", "clicks", 1), ("c", "clicks")],  # too short, after a good one
    [("c", "clicks", 1, 2)],
    [["c", "clicks", 1]],  # a list, not a tuple
    [("c", "clicks", 1), None],
    [(1, "clicks", 1)],
    [("c", b"clicks", 1)],
    [("c", "clicks", 1.5)],
    [("c", "clicks", "1")],
    [("c", "clicks", None)],
    [("c", "clicks", 2**70), ("c", "clicks", -(2**70) - 1)],  # big ints: exact in both
    [("c", "clicks", True), ("c", "new", False)],  # a bool is an int: totals of type int
    [("c", "clicks", 1), ("d", "x", 1)],
])
def test_hostile_increments_end_alike(incs):
    python, c = both({"c": {"clicks": 5}}, incs)
    assert python == c


@needs_c
def test_a_total_or_a_group_of_the_wrong_type_raises_in_both():
    for of_suffix in ({"c": {"clicks": "5"}}, {"c": ["clicks"]}):
        python, c = both(of_suffix, [("c", "clicks", 1)])
        assert python[2] is c[2] is False


@needs_c
def test_the_arguments_are_checked():
    for args in [({}, ()), ([], []), ({},), ({}, [], 1)]:
        with pytest.raises(TypeError):
            MODULE.add_incs(*args)


@needs_c
def test_random_increments_end_alike():
    rng = random.Random(17)
    suffixes = ["c", "m:track", "m:item", "m:resource", "v:x"]
    fields = ["clicks", "exposures:banner", "watch_ms:1", "plays", "clicks:nav#4"]
    for _ in range(500):
        of_suffix: dict[str, dict[str, int]] = {}
        for _ in range(rng.randrange(3)):
            of_suffix.setdefault(rng.choice(suffixes), {})[rng.choice(fields)] = rng.randrange(-5, 10**6)
        incs: list[Any] = [
            (rng.choice(suffixes), rng.choice(fields), rng.choice((1, 1, 1, rng.randrange(-10, 20_000), 2**64)))
            for _ in range(rng.randrange(12))
        ]
        if rng.random() < 0.1:  # now and then a bad one somewhere
            incs.insert(rng.randrange(len(incs) + 1), rng.choice([("c",), ("c", "x", 1.0), ("c", 2, 1), "c:x:1"]))
        python, c = both(of_suffix, incs)
        assert python == c
