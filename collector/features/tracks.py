"""Click tracks (JY/T table 3 #7): components (`tr`) whose items (`tr#pos`) report
exposures and clicks, and the page views entered from an item (`etr`, `epos`).

Each count goes to the component's row, the item's row and a total in the counters
hash (track_exposures, track_clicks, entries).
"""

from __future__ import annotations

from collector.features.facts import KEY_STRINGS, DeepFacts, EventScope
from collector.features.reading import BucketReading, ratio
from collector.hit.caps import OTHER
from collector.store import names

BREAKDOWN_DIMENSIONS = ("track", "item")


def count_pageview(facts: DeepFacts, ev: dict, scope: EventScope) -> None:
    if "etr" in ev:
        _count(facts, scope, "entries", ev["etr"], ev["epos"])


def count_click(facts: DeepFacts, ev: dict, scope: EventScope) -> None:
    if "tr" in ev and "pos" in ev:
        _count(facts, scope, "clicks", ev["tr"], ev["pos"])


def count_exposure(facts: DeepFacts, ev: dict, scope: EventScope) -> None:
    if "tr" in ev:  # (without a track it is a target's exposure: clicks.py)
        _count(facts, scope, "exposures", ev["tr"], ev["pos"])


def _count(facts: DeepFacts, scope: EventScope, metric: str, track: str, pos: int) -> None:
    """A click-track count: per component and per item (component#position)."""
    track = scope.admit("component", track)
    item = scope.admit("component", KEY_STRINGS.item(track, pos)) if track != OTHER else track
    facts.total(names.TRACK_TOTAL_OF_METRIC[metric])
    facts.count("track", track, metric)
    facts.count("item", item, metric)


def figures(reading: BucketReading) -> dict:
    """The `tracks` figures of a bucket or range."""
    counters = reading.counters
    exposures = counters.get("track_exposures", 0)
    return {
        "exposures": exposures,
        "clicks": counters.get("track_clicks", 0),
        "ctr": ratio(counters.get("track_clicks", 0), exposures),
        "entries": counters.get("entries", 0),
    }


def row_figures(m: dict[str, int]) -> dict:
    """A component's or an item's breakdown row."""
    exposures, clicks = m.get("exposures", 0), m.get("clicks", 0)
    return {"exposures": exposures, "clicks": clicks, "entries": m.get("entries", 0), "ctr": ratio(clicks, exposures)}
