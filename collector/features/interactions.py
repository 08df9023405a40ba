"""Interactions with a resource (JY/T table 4 #11-15): ratings, likes, favorites,
shares and comments, per resource and label (resources.py), and shares per channel."""

from __future__ import annotations

from typing import Final

from collector.features.facts import DeepFacts, EventScope
from collector.features.reading import BucketReading, ratio
from collector.features.resources import resource_of
from collector.store import names

NO_CHANNEL: Final = "(none)"


def event_facts(ev: dict, scope: EventScope) -> DeepFacts:
    """An interaction's facts. Of a kept resource (Resource.metric): a like's, a favorite's, a
    comment's are the resource's, shared; a rating's say which of its parts make up their
    increments (its increments of 1, shared; the score's fields, scaled), as media.py's."""
    action: str = ev["n"]
    metric = names.INTERACTION_METRIC_OF_ACTION[action]
    resource = resource_of(ev, scope)
    if action == "rate":
        # Per target its increment of 1 (the resource's, made once: Metric.units), then its
        # score (the journal's order).
        score = ev["score"]  # (untyped: as media.py's time)
        incs: list[tuple[str, str, int]] = []
        rated = resource.metric(metric)
        summed = resource.metric("rating_sum")
        units = rated.units
        at = 0
        for suffix, field in summed.fields:
            incs.append(units[at])
            incs.append((suffix, field, score))
            at += 1
        return DeepFacts(incs, [], None, rated.part, summed.part, score)
    if action != "share":
        return resource.unit_facts(metric)
    facts = DeepFacts(list(resource.metric(metric).units), [])
    channel = scope.admit("label", ev.get("ch") or NO_CHANNEL)
    facts.count("channel", channel, "shares")
    return facts


def row_figures(m: dict[str, int]) -> dict:
    """Interactions of a bucket, a resource or a label's value."""
    ratings = m.get("ratings", 0)
    return {
        "ratings": ratings,
        "rating_sum": m.get("rating_sum", 0),
        "rating_avg": ratio(m.get("rating_sum", 0), ratings),
        "likes": m.get("likes", 0),
        "unlikes": m.get("unlikes", 0),
        "likes_net": m.get("likes", 0) - m.get("unlikes", 0),
        "favorites": m.get("favorites", 0),
        "unfavorites": m.get("unfavorites", 0),
        "favorites_net": m.get("favorites", 0) - m.get("unfavorites", 0),
        "shares": m.get("shares", 0),
        "comments": m.get("comments", 0),
    }


def figures(reading: BucketReading) -> dict:
    """The `interactions` figures of a bucket or range."""
    return row_figures(reading.counters)


def channel_row_figures(m: dict[str, int]) -> dict:
    """A share channel's breakdown row."""
    return {"shares": m.get("shares", 0)}
