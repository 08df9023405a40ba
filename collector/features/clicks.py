"""Clicks on named targets (JY/T table 3 #6): `n` of a click, and of an exposure
without a track (the standard's aplus.record(name, 'EXP')), per target.

(Clicks and exposures of track items are tracks.py; every click also counts as
ev:click in the counters hash, like any event type, in the rollup.)
"""

from __future__ import annotations

from typing import cast

from collector.features.facts import KEY_STRINGS, DeepFacts, EventScope, shared_facts
from collector.features.reading import BucketReading, ratio
from collector.hit.caps import OTHER


def click_facts(ev: dict, scope: EventScope) -> DeepFacts:
    """A click's count of its target (a click of a track item also counts for the track:
    tracks.py, which features/deep.py adds)."""
    return _facts(scope, "target clicks", "clicks", ev["n"])


def exposure_facts(ev: dict, scope: EventScope) -> DeepFacts:
    """An exposure without a track (an item's exposure is a track's: tracks.py, which
    features/deep.py asks first)."""
    return _facts(scope, "target exposures", "exposures", ev["n"])


def _facts(scope: EventScope, memo_name: str, metric: str, name: str) -> DeepFacts:
    """The facts of `metric` of the admitted target `name`: the scope's memo's (EventScope.memo),
    one DeepFacts handed to every event naming it, once made of a name admitted as itself."""
    memo = scope.memo(memo_name)
    found = memo.get(name)
    if found is None:
        target = scope.admit("target", name)
        unit = KEY_STRINGS.unit_inc("target", metric, target)
        if target == OTHER:
            return DeepFacts([unit], [])  # not kept: each such event is admitted again, counted as overflowing
        scope.remember()
        found = memo[name] = shared_facts([unit])
    return cast(DeepFacts, found)


def figures(reading: BucketReading) -> int:
    """The `clicks` figure of a bucket or range: all click events."""
    return reading.counters.get("ev:click", 0)


def row_figures(m: dict[str, int]) -> dict:
    """A target's breakdown row."""
    clicks, exposures = m.get("clicks", 0), m.get("exposures", 0)
    return {"clicks": clicks, "exposures": exposures, "ctr": ratio(clicks, exposures)}
