"""What one deep-tag event adds to the counts (DeepFacts), and where it adds it.

DeepFacts and Session are also the journal's record of an event's deep counts
(store/journal.py decodes `as_json`): their JSON shape is a file format, change it only
with a new journal version.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.hit.caps import CardinalityCaps
from collector.store import keys


@dataclass(slots=True)
class Session:
    """A media session's progress as of one event (or the best of a batch's events)."""

    ms: str
    ws: int  # distinct content seconds played so far
    dur: int  # the resource's duration in seconds; 0 when unknown
    started: int  # 1 when these events include the session's play (or read)
    targets: tuple[tuple[str, str], ...]  # (dimension, value); ("", "") is the counters hash

    def merge(self, other: Session) -> None:
        self.ws = max(self.ws, other.ws)
        self.dur = max(self.dur, other.dur)
        self.started |= other.started

    def as_json(self) -> list:
        return [self.ms, self.ws, self.dur, self.started, [list(t) for t in self.targets]]

    @classmethod
    def from_json(cls, rec: list) -> Session:
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
    def from_json(cls, rec: list) -> DeepFacts:
        incs, members, session = rec
        return cls([tuple(i) for i in incs], [tuple(m) for m in members], Session.from_json(session) if session else None)

    def count(self, dim: str, value: str, metric: str, amount: int = 1) -> None:
        """Add `amount` to `metric` of a target: the value's field in the dimension's
        metrics hash, or the bare metric in the counters hash (dim "")."""
        if dim:
            self.incs.append((keys.metrics_suffix(dim), keys.metric_field(metric, value), amount))
        else:
            self.incs.append((keys.COUNTERS, metric, amount))

    def total(self, counter: str, amount: int = 1) -> None:
        """Add `amount` to a field of the counters hash."""
        self.incs.append((keys.COUNTERS, counter, amount))


@dataclass(slots=True)
class EventScope:
    """Who sent the event and where its capped values are admitted: the app's day."""

    caps: CardinalityCaps
    app: str
    day: str
    visitor: bytes  # under the day's salt
    month_visitor: bytes  # under the month's salt

    def admit(self, kind: str, value: str) -> str:
        """`value`, or (other) once the app's day holds its cap of `kind` (hit/caps.py)."""
        return self.caps.admit(kind, self.app, self.day, value)
