"""Click tracks (JY/T table 3 #7): components (`tr`) whose items (`tr#pos`) report
exposures and clicks, and the page views entered from an item (`etr`, `epos`).

Each count goes to the component's row, the item's row and a total in the counters
hash (track_exposures, track_clicks, entries).
"""

from __future__ import annotations

from typing import Any, cast

from collector.features.facts import KEY_STRINGS, DeepFacts, EventScope, shared_facts
from collector.features.reading import BucketReading, ratio
from collector.hit.caps import OTHER
from collector.store import names

BREAKDOWN_DIMENSIONS = ("track", "item")


def pageview_facts(ev: dict, scope: EventScope) -> DeepFacts | None:
    """A page view entered from a track item (`etr`, `epos`); None for any other."""
    track = ev.get("etr")
    if track is None:
        return None
    return _facts(scope, "entries", track, ev["epos"])


def click_facts(ev: dict, scope: EventScope) -> DeepFacts | None:
    """A click's track item's counts; None for a click without a track."""
    # Each field read once: the event's keys are not the literals' objects, and a present
    # key's lookup compares the strings (~150 instructions), `in` and [] each.
    track = ev.get("tr")
    if track is None:
        return None
    pos = ev.get("pos")
    if pos is None:
        return None
    return _facts(scope, "clicks", track, pos)


def exposure_facts(ev: dict, scope: EventScope) -> DeepFacts | None:
    """A track item's exposure; None without a track (it is a target's: clicks.py)."""
    track = ev.get("tr")
    if track is None:
        return None
    return _facts(scope, "exposures", track, ev["pos"])


def _facts(scope: EventScope, metric: str, track: str, pos: int) -> DeepFacts:
    """A click-track count: a total, per component and per item (component#position).

    The app's day's memo's (EventScope.memo, by metric, track and position), once made of a
    track and item admitted as themselves: its pages' exposures and clicks name a few items
    again and again, and each such event is handed that one DeepFacts (no facts or lists of
    its own to make and free: ~1,100 instructions an exposure, bench/RESULTS.md session 24)."""
    memo = scope.memo(metric)
    of_track: dict[int, Any] | None = memo.get(track)  # (typed: its get is a dict's, not a method call)
    if of_track is not None:
        found = of_track.get(pos)
        if found is not None:
            return cast(DeepFacts, found)
    admitted = scope.admit("component", track)
    item = scope.admit("component", KEY_STRINGS.item(admitted, pos)) if admitted != OTHER else admitted
    # facts.total, then facts.count of the track and of the item (the journal's order).
    incs = [
        KEY_STRINGS.unit_inc("", names.TRACK_TOTAL_OF_METRIC[metric], ""),
        KEY_STRINGS.unit_inc("track", metric, admitted),
        KEY_STRINGS.unit_inc("item", metric, item),
    ]
    if item == OTHER:  # (as is the item of a track gone to (other)) not kept: each such event is admitted again
        return DeepFacts(incs, [])
    scope.remember()
    of_track = memo.get(track)
    if of_track is None:
        of_track = memo[track] = {}
    facts = of_track[pos] = shared_facts(incs)
    return facts


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
