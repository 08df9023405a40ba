"""Clicks on named targets (JY/T table 3 #6): `n` of a click, and of an exposure
without a track (the standard's aplus.record(name, 'EXP')), per target.

(Clicks and exposures of track items are tracks.py; every click also counts as
ev:click in the counters hash, like any event type, in the rollup.)
"""

from __future__ import annotations

from collector.features.facts import DeepFacts, EventScope
from collector.features.reading import BucketReading, ratio


def count_click(facts: DeepFacts, ev: dict, scope: EventScope) -> None:
    facts.count("target", scope.admit("target", ev["n"]), "clicks")


def count_exposure(facts: DeepFacts, ev: dict, scope: EventScope) -> None:
    if "tr" not in ev:  # (an item's exposure is a track's: tracks.py)
        facts.count("target", scope.admit("target", ev["n"]), "exposures")


def figures(reading: BucketReading) -> int:
    """The `clicks` figure of a bucket or range: all click events."""
    return reading.counters.get("ev:click", 0)


def row_figures(m: dict[str, int]) -> dict:
    """A target's breakdown row."""
    clicks, exposures = m.get("clicks", 0), m.get("exposures", 0)
    return {"clicks": clicks, "exposures": exposures, "ctr": ratio(clicks, exposures)}
