"""The deep tag (JY/T §7.1.3), per event: which features count an event of each type.

`DeepCounter.facts()` turns one validated event into DeepFacts (facts.py) — hash
increments and HyperLogLog members by key suffix, and for media the session's progress
— which the aggregator sums and the rollup joins to every bucket like the page-view
counts. What each feature counts is in its own module: clicks, tracks, media,
interactions, users.
"""

from __future__ import annotations

from typing import Final, cast

from collector.features import clicks, interactions, media, tracks, users
from collector.features.facts import DeepFacts, EventScope, Memos, Session, shared_facts
from collector.features.users import USER_MARK
from collector.hit.caps import CardinalityCaps

__all__ = ["DeepCounter", "DeepFacts", "Session", "USER_MARK"]

# Apps' days whose memos a counter keeps (facts.py Memos) before it starts afresh: a worker
# serves a few apps, each today and late events of yesterday; a flood of made-up app keys
# (`registry=open`) cannot grow them without bound.
MEMOS_KEPT: Final = 16

def _counted(etype: str, ev: dict, scope: EventScope) -> DeepFacts | None:
    """The facts of the features that count an event of type `etype` (none: engagement,
    custom, a page view not entered from a track), in order. Called directly: a table of
    the functions called each through Python's call protocol (its argument parsing, ~150
    instructions an event compiled). The commonest types first (bench/traffic.py's POST-50
    mix). Exposures' and clicks' facts may be a memo's, handed to many events (DeepFacts)."""
    if etype == "exposure":
        on_track = tracks.exposure_facts(ev, scope)
        return on_track if on_track is not None else clicks.exposure_facts(ev, scope)
    if etype == "click":
        target = clicks.click_facts(ev, scope)
        on_track = tracks.click_facts(ev, scope)
        return target if on_track is None else _joined(target, on_track, scope)
    if etype == "media":
        return media.event_facts(ev, scope)
    if etype == "pageview":
        return tracks.pageview_facts(ev, scope)
    if etype == "interaction":
        return interactions.event_facts(ev, scope)
    return None


def _joined(first: DeepFacts, then: DeepFacts, scope: EventScope) -> DeepFacts:
    """The increments of `first`, then `then`'s (a click of a track's item: its target's,
    then its track's). When both are shared (DeepFacts.shared), so are theirs: the scope's
    memo (EventScope.memo) keeps the pair's, by their marks (compared by identity), so the
    aggregator counts a click of the same item and target as one lookup, not four increments."""
    if first.shared is None or then.shared is None:
        return DeepFacts(first.incs + then.incs, [])
    memo = scope.memo("joined")
    key = (first.shared, then.shared)
    found = memo.get(key)
    if found is None:
        scope.remember()
        found = memo[key] = shared_facts(first.incs + then.incs)
    return cast(DeepFacts, found)


class DeepCounter:
    def __init__(self, caps: CardinalityCaps) -> None:
        self.caps = caps
        self._scope: EventScope | None = None  # the last event's: a request's events share it
        # The features' memos by app and day (facts.py Memos), shared by its requests' scopes.
        self._memos: dict[tuple[str, str], Memos] = {}

    def _scope_of(self, app: str, day: str, visitor: bytes, month_visitor: bytes) -> EventScope:
        """The last event's scope when this event has the same one, else a new one. The
        visitor keys are compared by identity: a request's events have the same objects
        (hit/ingest.py VisitorMemo); other equal keys only cost a new scope."""
        scope = self._scope
        if (scope is None or scope.visitor is not visitor or scope.month_visitor is not month_visitor
                or scope.app != app or scope.day != day):
            memos = self._memos.get((app, day))
            if memos is None:
                if len(self._memos) >= MEMOS_KEPT:
                    self._memos.clear()
                memos = self._memos[(app, day)] = Memos(self.caps.generation)
            scope = self._scope = EventScope(self.caps, app, day, visitor, month_visitor, memos)
        return scope

    def facts(
        self, ev: dict, app: str, day: str, visitor: bytes, month_visitor: bytes, user: tuple[bytes, bytes] | None
    ) -> DeepFacts | None:
        """What `ev` adds beyond the basic counts; None for a plain event. `user`: the
        logged-in user's keys under the day's and the month's salt (see USER_MARK)."""
        etype: str = ev["t"]  # (typed: compared below as str, not as objects)
        if etype == "pageview" and user is None and "etr" not in ev:
            return None  # the common case, first: most hits are plain page views
        # (Compared as strings: a frozenset's lookup hashed the event's new string each time.)
        counted = etype != "engagement" and etype != "custom"  # the types some feature counts
        if user is None and not counted:
            return None  # nothing of the deep tag
        found = _counted(etype, ev, self._scope_of(app, day, visitor, month_visitor)) if counted else None
        if user is None:
            return found  # (a feature's facts: not changed, they may be shared)
        # The user's facts first, then the features' (the journal's order), in new lists.
        facts = DeepFacts([], [])
        users.count(facts, etype, user)
        if found is not None:
            facts.incs.extend(found.incs)
            facts.members.extend(found.members)
            facts.session = found.session
        return facts if facts.incs or facts.members else None
