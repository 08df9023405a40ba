"""What one deep-tag event adds to the counts (DeepFacts), and where it adds it.

DeepFacts and Session are also the journal's record of an event's deep counts
(store/journal.py decodes `as_json`): their JSON shape is a file format, change it only
with a new journal version.

DeepFacts and Session spell out their __init__ (init=False), and EventScope is a plain
class: compiled (collector/native.py), the __init__ that dataclass generates stays
Python, and these are made about once per event (a frame, an argument tuple and a dict
each time: bench/RESULTS.md, session 10).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from collector.hit.caps import CardinalityCaps
from collector.store import keys


@dataclass(init=False, slots=True)
class Session:
    """A media session's progress as of one event (or the best of a batch's events)."""

    ms: str
    ws: int  # distinct content seconds played so far
    dur: int  # the resource's duration in seconds; 0 when unknown
    started: int  # 1 when these events include the session's play (or read)
    targets: tuple[tuple[str, str], ...]  # (dimension, value); ("", "") is the counters hash

    def __init__(self, ms: str, ws: int, dur: int, started: int, targets: tuple[tuple[str, str], ...]) -> None:
        self.ms, self.ws, self.dur, self.started, self.targets = ms, ws, dur, started, targets

    def copy(self) -> Session:
        """A copy (dataclasses.replace is Python, and a snapshot copies each new session)."""
        return Session(self.ms, self.ws, self.dur, self.started, self.targets)

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


@dataclass(init=False, slots=True)
class DeepFacts:
    """What one event adds. Never changed once handed out (DeepCounter.facts): a feature
    hands the same DeepFacts to every event of an app's day that counts the same (its memos:
    tracks.py, clicks.py), and the journal and the aggregator only read it."""

    incs: list[tuple[str, str, int]]  # (key suffix, field, increment)
    members: list[tuple[str, str, str]]  # (key suffix, member under the day's salt, under the month's)
    session: Session | None
    # How the aggregator may count `incs` (store/aggregate.py Aggregator._count_deep): None and
    # None, one by one; else they are exactly `shared`'s increments (Shared.incs) and
    # `scaled`'s, each times `amount` (> 0), in some order. Both memos' (a feature's, a
    # resource's), hashed by identity (DeepFacts compare by value and cannot be hashed): the
    # aggregator adds up how often and how much it met each and adds its increments that often
    # (that much), later. For facts a memo hands to all the events counting the same,
    # `shared.incs` is `incs`. Not in the journal: a replay's facts are each event's own.
    shared: Shared | None = field(default=None, compare=False, repr=False)
    scaled: Shared | None = field(default=None, compare=False, repr=False)
    amount: int = field(default=0, compare=False, repr=False)

    def __init__(
        self, incs: list[tuple[str, str, int]], members: list[tuple[str, str, str]], session: Session | None = None,
        shared: Shared | None = None, scaled: Shared | None = None, amount: int = 0,
    ) -> None:
        self.incs, self.members, self.session, self.shared = incs, members, session, shared
        self.scaled, self.amount = scaled, amount

    def as_json(self) -> list:
        return [self.incs, self.members, self.session.as_json() if self.session else None]

    @classmethod
    def from_json(cls, rec: list) -> DeepFacts:
        incs, members, session = rec
        return cls([tuple(i) for i in incs], [tuple(m) for m in members], Session.from_json(session) if session else None)

    def count(self, dim: str, value: str, metric: str, amount: int = 1) -> None:
        """Add `amount` to `metric` of a target (target_field)."""
        if amount == 1:
            self.incs.append(KEY_STRINGS.unit_inc(dim, metric, value))
        else:
            suffix, field = target_field(dim, value, metric)
            self.incs.append((suffix, field, amount))

    def total(self, counter: str, amount: int = 1) -> None:
        """Add `amount` to a field of the counters hash."""
        self.incs.append(KEY_STRINGS.unit_inc("", counter, "") if amount == 1 else (keys.COUNTERS, counter, amount))


class Shared:
    """Increments that many events add, kept by a memo (what DeepFacts.shared and .scaled
    hold): hashed by identity, so the aggregator counts them by one lookup an event where
    each increment cost two and an insertion. Never changed once made."""

    __slots__ = ("incs",)

    def __init__(self, incs: list[tuple[str, str, int]]) -> None:
        self.incs = incs


def shared_facts(incs: list[tuple[str, str, int]]) -> DeepFacts:
    """Facts that a memo hands to all the events of an app's day that count `incs`."""
    return DeepFacts(incs, [], shared=Shared(incs))


def target_field(dim: str, value: str, metric: str) -> tuple[str, str]:
    """Where `metric` of a target is added: the value's field in the dimension's metrics
    hash, or the bare metric in the counters hash (dim "")."""
    if dim:
        return _metrics_suffix(dim), KEY_STRINGS.metric_field(metric, value)
    return keys.COUNTERS, metric


# Entries the memos of an app's day (EventScope.memo) hold, all together, before they start
# afresh: its pages name a few tracks, items and targets (the bench's a track of 5 items, one
# of 8, a dozen targets), and the caps bound them (hit/caps.py).
MEMO_KEPT: Final = 512


class Memos:
    """The features' memos of one app's day (EventScope.memo), and the caps generation
    they hold for: made of admitted values, not of the visitor, so the scopes of the app's
    day's requests share them (features/deep.py DeepCounter)."""

    __slots__ = ("tables", "remembered", "generation")

    def __init__(self, generation: int) -> None:
        self.tables: dict[str, dict[Any, Any]] = {}  # memo name -> its entries
        self.remembered = 0  # entries added since they were last emptied
        self.generation = generation

    def forget(self) -> None:
        """Empty them (each dict kept: a caller may hold it)."""
        for table in self.tables.values():
            table.clear()
        self.remembered = 0


class EventScope:
    """Who sent the event and where its capped values are admitted: the app's day.

    One request's events share it (features/deep.py keeps the last one), and with it the
    visitor keys in hex, made once."""

    __slots__ = (
        "caps", "app", "day", "visitor", "month_visitor", "_hex", "_kinds", "last_resource", "_generation",
        "_memos",
    )

    def __init__(
        self, caps: CardinalityCaps, app: str, day: str, visitor: bytes, month_visitor: bytes, memos: Memos | None = None,
    ) -> None:
        self.caps, self.app, self.day = caps, app, day
        self.visitor = visitor  # under the day's salt
        self.month_visitor = month_visitor  # under the month's salt
        self._hex: tuple[str, str] | None = None
        # What this scope remembers of the caps' answers: the app's day's values by kind
        # (CardinalityCaps.admit's `kinds`), emptied whenever the caps may no longer answer
        # as they did (CardinalityCaps.generation).
        self._kinds: dict[str, Any] = {}
        # The resource (resources()) the last resources() caller found or kept
        # (features/resources.py resource_of compares an event's fields with its own before
        # a lookup).
        self.last_resource: Any = None
        # The features' memos (memo()) of the app's day: the scopes of its requests share them
        # (features/deep.py DeepCounter), or this scope has its own.
        self._memos = memos if memos is not None else Memos(caps.generation)
        self._generation = caps.generation

    def _current(self) -> None:
        """Forget what the caps answered if their generation moved since."""
        if self._generation != self.caps.generation:
            self._kinds.clear()
            self.last_resource = None
            self._generation = self.caps.generation

    def current_resource(self) -> Any:
        """last_resource, unless the caps may no longer answer as they did when it was made
        (then None): asked before resources(), whose memo lookup it then skips."""
        self._current()
        return self.last_resource

    def resources(self) -> dict[Any, Any]:
        """The resources the app's day's events named (features/resources.py Resource), by
        their fields: a Resource keeps its admitted values. One of the memos (memo()): made
        of admitted values, not of the visitor, so its requests share them. (memo() checks
        the caps' generation itself; resource_of asks current_resource() first, which
        checks this scope's.)"""
        return self.memo("resources")

    def memo(self, name: str) -> dict[Any, Any]:
        """A feature's memo `name` of the app's day (its own names: tracks.py, clicks.py):
        the increments it made of an event's values, found again for the next event naming
        them, where each event admitted its values in the caps again and looked up their key
        strings (~1,500 instructions an exposure or click: bench/RESULTS.md, session 21).
        An entry may only be made of values all admitted as themselves (see
        features/resources.py Resource: an event whose value goes to (other) must still be
        counted as overflowing), and only after remember(). Emptied whenever the caps may no
        longer answer as they did."""
        memos = self._memos
        if memos.generation != self.caps.generation:
            memos.forget()
            memos.generation = self.caps.generation
        found = memos.tables.get(name)
        if found is None:
            found = memos.tables[name] = {}
        return found

    def remember(self) -> None:
        """Called before a feature adds an entry to a memo: all of the app's day's emptied
        first when MEMO_KEPT entries are held (a page naming ever new values keeps a bounded
        number; values are short, protocol.py caps each)."""
        memos = self._memos
        if memos.remembered >= MEMO_KEPT:
            memos.forget()
        memos.remembered += 1

    def visitor_members(self) -> tuple[str, str]:
        """The visitor as HyperLogLog members: its keys in hex (one string object each,
        whose hash the aggregator's sets compute once)."""
        if self._hex is None:
            self._hex = (self.visitor.hex(), self.month_visitor.hex())
        return self._hex

    def admit(self, kind: str, value: str) -> str:
        """`value`, or (other) once the app's day holds its cap of `kind` (hit/caps.py)."""
        self._current()
        return self.caps.admit(kind, self.app, self.day, value, self._kinds)


# Each dimension's metrics hash suffix, made once (dimensions are the features' own names,
# a handful): one string object each, whose hash the aggregator's dicts find cached and
# which they compare by identity, where a new string per event is hashed and compared anew.
_METRICS_SUFFIXES: Final[dict[str, str]] = {}


def _metrics_suffix(dim: str) -> str:
    suffix = _METRICS_SUFFIXES.get(dim)
    if suffix is None:
        suffix = _METRICS_SUFFIXES[dim] = keys.metrics_suffix(dim)
    return suffix


# How many key strings KeyStrings keeps, all kinds together (then it starts afresh): a few
# hundred bytes each at most, and the values a worker sees in a day are capped per app
# (hit/caps.py), but not across apps.
KEY_STRINGS_KEPT: Final = 8192


class KeyStrings:
    """The deep tag's key strings made of a name and a value — a metric's field in a
    dimension's metrics hash, a value's viewers and resources HyperLogLog suffixes —
    made once per (name, value) and handed out again (store/keys.py makes them).

    Made anew per event (~4 of them an event of the bench's POST-50 traffic, ~20 a media
    event), each was hashed anew where it became part of a key (the snapshot's dicts and
    sets, compiled code's tuples hash their items) and compared byte by byte with the
    equal string already stored there; the kept one carries its hash, and the snapshot's
    key holds that very object, so it compares by identity (bench/RESULTS.md, session 14).
    Values are the capped ones (hit/caps.py), so a page cannot make more of them than its
    caps allow; KEY_STRINGS_KEPT bounds all apps' together."""

    __slots__ = ("_fields", "_viewers", "_resources", "_items", "_units", "_kept")

    def __init__(self) -> None:
        self._fields: dict[str, dict[str, str]] = {}  # metric -> value -> field
        self._viewers: dict[str, dict[str, str]] = {}  # dimension -> value -> suffix
        self._resources: dict[str, dict[str, str]] = {}  # dimension -> value -> suffix
        self._items: dict[str, dict[int, str]] = {}  # track -> position -> item
        # dimension -> metric -> value -> (suffix, field, 1): unit_inc. Values are typed Any:
        # compiled, a value typed as a fixed-length tuple is unpacked at each read and packed
        # again as a new tuple where it is stored, which is what keeping it saves.
        self._units: dict[str, dict[str, dict[str, Any]]] = {}
        self._kept = 0

    @property
    def kept(self) -> int:
        """How many strings it keeps."""
        return self._kept

    def item(self, track: str, pos: int) -> str:
        """A click track's item, `track#pos` (features/tracks.py): a value, not a key, but
        made per event all the same, then hashed by the caps and in every key it is part of."""
        of_track = self._items.get(track)
        if of_track is not None:
            found = of_track.get(pos)
            if found is not None:
                return found
        of_track = self._table_of(self._items, track)
        made = of_track[pos] = f"{track}#{pos}"
        self._kept += 1
        return made

    # Each kind looks its string up and makes it itself: a maker passed as an argument was
    # a module attribute read per call (~270 instructions compiled, found or not).
    def metric_field(self, metric: str, value: str) -> str:
        found = _found(self._fields, metric, value)
        return found if found is not None else self._keep(self._fields, metric, value, keys.metric_field(metric, value))

    def viewers_suffix(self, dim: str, value: str) -> str:
        found = _found(self._viewers, dim, value)
        if found is None:
            found = self._keep(self._viewers, dim, value, keys.dimension_visitors_suffix(dim, value))
        return found

    def resources_suffix(self, dim: str, value: str) -> str:
        found = _found(self._resources, dim, value)
        return found if found is not None else self._keep(self._resources, dim, value, keys.resources_suffix(dim, value))

    def unit_inc(self, dim: str, metric: str, value: str) -> Any:
        """The increment of 1 to `metric` of a target, (suffix, field, 1) as DeepFacts.incs
        holds it (target_field), made once: ~3.5 of them an event of the bench's POST-50
        traffic, each a new tuple, its fields looked up and its 1 boxed, then freed with the
        facts (bench/RESULTS.md, session 20). The journal writes the same values."""
        of_dim = self._units.get(dim)
        if of_dim is not None:
            of_metric = of_dim.get(metric)
            if of_metric is not None:
                found = of_metric.get(value)
                if found is not None:
                    return found
        suffix, field = target_field(dim, value, metric)
        made: Any = (suffix, field, 1)
        of_dim = self._table_of(self._units, dim)
        of_metric = of_dim.get(metric)
        if of_metric is None:
            of_metric = of_dim[metric] = {}
        of_metric[value] = made
        self._kept += 1
        return made

    def _keep(self, table: dict[str, dict[str, str]], name: str, value: str, made: str) -> str:
        """`made`, kept as `name`'s string of `value` in `table`."""
        self._table_of(table, name)[value] = made
        self._kept += 1
        return made

    def _table_of(self, table: dict[str, dict[Any, Any]], name: str) -> dict[Any, Any]:
        """`name`'s strings in `table`, where one more is about to be kept (all of them
        dropped first when KEY_STRINGS_KEPT are)."""
        if self._kept >= KEY_STRINGS_KEPT:
            for kind in (self._fields, self._viewers, self._resources, self._items, self._units):
                kind.clear()
            self._kept = 0
        of_name = table.get(name)
        if of_name is None:
            of_name = table[name] = {}
        return of_name


def _found(table: dict[str, dict[str, str]], name: str, value: str) -> str | None:
    of_name = table.get(name)
    return of_name.get(value) if of_name is not None else None


# The process's one: what it keeps is the same strings whoever asks.
KEY_STRINGS: Final = KeyStrings()
