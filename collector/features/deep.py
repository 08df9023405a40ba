"""The deep tag (JY/T §7.1.3): what clicks, exposures, media, interactions and the
logged-in user add to the counts.

`DeepCounter.facts()` turns one validated event into DeepFacts — hash increments and
HyperLogLog members by key suffix, and for media the session's progress — which the
aggregator sums and the rollup joins to every bucket like the page-view counts.

A media session's distinct seconds, completion and first play cannot be summed per
event: `ws` is cumulative and a session's events reach different flushes and workers.
They go to Redis as session progress (Session), and the flush script keeps each
session's best so far and counts only the difference (see flusher.SESSIONS_LUA).
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.store import keys
from collector.hit.caps import OTHER, CardinalityCaps

RESOURCE_TYPES = frozenset({"video", "audio", "textbook", "document"})
# Interaction action -> the counter it adds to (rate adds ratings and rating_sum).
INTERACTION_COUNTERS = {
    "like": "likes", "unlike": "unlikes", "favorite": "favorites", "unfavorite": "unfavorites",
    "share": "shares", "comment": "comments", "rate": "ratings",
}
# A visitor's uid goes into the users HLL hashed like an address: under the day's and
# month's salt, with a marker in place of the IP that no IP can equal.
USER_MARK = "\x00uid"
NONE = "(none)"
# Click-track counts also summed in the counters hash (exposures already are, as ev:exposure).
TRACK_TOTALS = {"clicks": "track_clicks", "exposures": "track_exposures", "entries": "entries"}


@dataclass(slots=True)
class Session:
    """A media session's progress as of one event (or the best of a batch's events)."""

    ms: str
    ws: int  # distinct content seconds played so far
    dur: int  # the resource's duration in seconds; 0 when unknown
    started: int  # 1 when these events include the session's play (or read)
    targets: tuple[tuple[str, str], ...]  # (dimension, value); ("", "") is the counters hash

    def merge(self, other: "Session") -> None:
        self.ws = max(self.ws, other.ws)
        self.dur = max(self.dur, other.dur)
        self.started |= other.started

    def as_json(self) -> list:
        return [self.ms, self.ws, self.dur, self.started, [list(t) for t in self.targets]]

    @classmethod
    def from_json(cls, rec: list) -> "Session":
        ms, ws, dur, started, targets = rec
        return cls(ms, ws, dur, started, tuple((s, v) for s, v in targets))


@dataclass(slots=True)
class DeepFacts:
    incs: list[tuple[str, str, int]]  # (key suffix, field, increment)
    members: list[tuple[str, str, str]]  # (key suffix, member under the day's salt, under the month's)
    session: Session | None = None

    def as_json(self) -> list:
        return [self.incs, self.members, self.session.as_json() if self.session else None]

    @classmethod
    def from_json(cls, rec: list) -> "DeepFacts":
        incs, members, session = rec
        return cls([tuple(i) for i in incs], [tuple(m) for m in members], Session.from_json(session) if session else None)


class DeepCounter:
    def __init__(self, caps: CardinalityCaps) -> None:
        self.caps = caps

    def facts(
        self, ev: dict, app: str, day: str, visitor: bytes, month_visitor: bytes, user: tuple[bytes, bytes] | None
    ) -> DeepFacts | None:
        """What `ev` adds beyond the basic counts; None for a plain event. `user`: the
        logged-in user's keys under the day's and the month's salt (see USER_MARK)."""
        etype = ev["t"]
        if etype == "pageview" and user is None and "etr" not in ev:
            return None
        facts = DeepFacts([], [])
        if user is not None:
            facts.members.append((keys.USERS, user[0].hex(), user[1].hex()))
        if etype == "pageview":
            if user is not None:
                facts.incs.append((keys.COUNTERS, "pv_logged_in", 1))
            if "etr" in ev:
                self._track(facts, app, day, "entries", ev["etr"], ev["epos"])
        elif etype == "click":
            target = self.caps.admit("target", app, day, ev["n"])
            facts.incs.append((keys.metrics_suffix("target"), keys.metric_field("clicks", target), 1))
            if "tr" in ev and "pos" in ev:
                self._track(facts, app, day, "clicks", ev["tr"], ev["pos"])
        elif etype == "exposure":
            if "tr" in ev:
                self._track(facts, app, day, "exposures", ev["tr"], ev["pos"])
            else:  # aplus.record(name, 'EXP'): an exposure of a named target, no track
                target = self.caps.admit("target", app, day, ev["n"])
                facts.incs.append((keys.metrics_suffix("target"), keys.metric_field("exposures", target), 1))
        elif etype == "media":
            self._media(facts, ev, app, day, visitor.hex(), month_visitor.hex())
        elif etype == "interaction":
            self._interaction(facts, ev, app, day)
        return facts if facts.incs or facts.members else None

    # ---- per event type -------------------------------------------------------------

    def _track(self, facts: DeepFacts, app: str, day: str, metric: str, track: str, pos: int) -> None:
        """A click-track count: per component and per item (component#position)."""
        track = self.caps.admit("component", app, day, track)
        item = self.caps.admit("component", app, day, f"{track}#{pos}") if track != OTHER else track
        facts.incs.append((keys.COUNTERS, TRACK_TOTALS[metric], 1))
        facts.incs.append((keys.metrics_suffix("track"), keys.metric_field(metric, track), 1))
        facts.incs.append((keys.metrics_suffix("item"), keys.metric_field(metric, item), 1))

    def _media(self, facts: DeepFacts, ev: dict, app: str, day: str, visitor: str, month_visitor: str) -> None:
        action = ev["n"]
        targets = self._resource_targets(ev, app, day)
        reading = action == "read"
        wt = ev["wt"]
        for dim, value in targets:
            if wt:
                facts.incs.append(target_field(dim, value, "read_ms" if reading else "watch_ms", wt))
            if action == "progress":
                facts.incs.append(target_field(dim, value, f"progress{ev['pb']}", 1))
            # Viewers of the app's media, of the resource, of each label's value.
            viewers = keys.dimension_visitors_suffix(dim, value) if dim else keys.MEDIA_VIEWERS
            facts.members.append((viewers, visitor, month_visitor))
        # Distinct resources are HyperLogLogs, a few KB however many ids: the raw id, not capped.
        rid = ev["rid"]
        facts.members.append((keys.RESOURCES, rid, rid))
        for dim, value in targets[2:]:
            facts.members.append((keys.resources_suffix(dim, value), rid, rid))
        started = 1 if action in ("play", "read") else 0
        facts.session = Session(ev["ms"], ev["ws"], ev.get("dur", 0), started, targets)

    def _interaction(self, facts: DeepFacts, ev: dict, app: str, day: str) -> None:
        action = ev["n"]
        counter = INTERACTION_COUNTERS[action]
        for dim, value in self._resource_targets(ev, app, day):
            facts.incs.append(target_field(dim, value, counter, 1))
            if action == "rate":
                facts.incs.append(target_field(dim, value, "rating_sum", ev["score"]))
        if action == "share":
            channel = self.caps.admit("label", app, day, ev.get("ch") or NONE)
            facts.incs.append((keys.metrics_suffix("channel"), keys.metric_field("shares", channel), 1))

    def _resource_targets(self, ev: dict, app: str, day: str) -> tuple[tuple[str, str], ...]:
        """Where a resource's counts go: the counters hash, the resource, each label it has."""
        rt = ev.get("rt")
        targets = [("", ""), ("resource", self.caps.admit("resource", app, day, ev["rid"]))]
        if rt:
            targets.append(("rtype", rt if rt in RESOURCE_TYPES else "other"))
        for field, dim in (("subj", "subject"), ("stage", "stage"), ("src", "source")):
            value = ev.get(field)
            if value:
                targets.append((dim, self.caps.admit("label", app, day, value)))
        return tuple(targets)


def target_field(dim: str, value: str, metric: str, amount: int) -> tuple[str, str, int]:
    """An increment of `metric` for a target: the value's field in the dimension's metrics
    hash, or the bare metric in the counters hash (dim "")."""
    if not dim:
        return (keys.COUNTERS, metric, amount)
    return (keys.metrics_suffix(dim), keys.metric_field(metric, value), amount)
