"""Fan a drained Snapshot out into the Redis writes of every rollup.

First the snapshot is folded per (app, minute) into increments and HyperLogLog members
keyed by key suffix (`c`, `d:city`, `u:device:mobile`, …); then each minute's deltas are
grouped by Redis Cluster slot (see keys.slot_tag) with the key prefixes of the buckets
they go to there: the minute's, hour's and day's prefixes in the day's slot (day-salted
visitor keys), the month's in the month's slot (month-salted). The flush script joins
every suffix to every prefix of its group (apply_flush.lua), so a minute's deltas are
built, encoded and sent once per slot — not once per bucket — whatever the number of
granularities. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from collector.features.deep import Session
from collector.features.pages import PageCounter, region_values
from collector.features.pages import increment as _incr
from collector.store import keys
from collector.store.aggregate import FLAGGED, Snapshot
from collector.store.buckets import Bucket, Calendar
from collector.store.pacing import no_pacing

# Entries folded between two calls of the build's pace (store/pacing.py): some 0.1-0.3 ms.
PACE_EVERY = 128

__all__ = ["BucketDeltas", "Prefixes", "RollupBuilder", "SlotWrites", "region_values"]

# An HLL element: a salted visitor key (bytes), a first-party visitor id or a deep tag member (str).
Member = bytes | str


# The buckets one group of writes goes to: (key prefix, expire-at in epoch seconds, 0: keep)
# of each, in one hash slot.
Prefixes = tuple[tuple[str, int], ...]


@dataclass(slots=True)
class BucketDeltas:
    """Writes applied alike under every prefix of a group: the flush script joins each
    suffix to each prefix (apply_flush.lua), so a minute's deltas are sent once for its
    minute, hour and day buckets, not once per bucket."""

    fields: dict[str, dict[str, int]]  # suffix -> field -> increment
    members: dict[str, set[Member]]  # suffix -> HLL elements
    # False while these are a minute's own dicts, which its other slot reads too: they
    # are copied before a second minute is added to them.
    owned: bool = False

    def add(self, fields: dict[str, dict[str, int]], members: dict[str, set[Member]]) -> None:
        if not self.owned:
            self.fields = {suffix: dict(increments) for suffix, increments in self.fields.items()}
            self.members = {suffix: set(elements) for suffix, elements in self.members.items()}
            self.owned = True
        for suffix, increments in fields.items():
            found = self.fields.get(suffix)
            if found is None:
                self.fields[suffix] = dict(increments)
            else:
                for name, amount in increments.items():
                    found[name] = found.get(name, 0) + amount
        for suffix, elements in members.items():
            existing = self.members.get(suffix)
            if existing is None:
                self.members[suffix] = set(elements)
            else:
                existing |= elements


@dataclass(slots=True)
class SlotWrites:
    """All writes of one flush that fall into one hash slot."""

    tag: str
    buckets: dict[Prefixes, BucketDeltas] = field(default_factory=dict)
    # Media session progress for this slot's session hash (features/media_sessions.lua): the
    # bucket prefixes a session's first flush files it under, then its progress.
    sessions: list[tuple[Prefixes, Session]] = field(default_factory=list)
    sessions_expire_at: int = 0  # of the session hash (0: keep)

    def add(self, prefixes: Prefixes, fields: dict[str, dict[str, int]], members: dict[str, set[Member]]) -> None:
        """Add deltas to the group of `prefixes`. The dicts are kept, not copied, until a
        second add to the same group: the caller must not change them afterwards."""
        found = self.buckets.get(prefixes)
        if found is None:
            self.buckets[prefixes] = BucketDeltas(fields, members)
        else:
            found.add(fields, members)


@dataclass(slots=True)
class MinuteDeltas:
    """One app's deltas for one minute, by key suffix, before they meet any bucket."""

    fields: dict[str, dict[str, int]] = field(default_factory=dict)  # suffix -> field -> increment
    day_members: dict[str, set[Member]] = field(default_factory=dict)  # suffix -> visitor keys (day salt)
    month_members: dict[str, set[Member]] = field(default_factory=dict)  # suffix -> visitor keys (month salt)
    sessions: list[Session] = field(default_factory=list)


class _Minutes:
    """The fold's deltas by (app, minute), made when new, the last pair asked kept.

    A snapshot's entries come in runs of one app and minute (a request's cells are next
    to each other in the cube, a part holds one app or a few), and a lookup by an (app,
    minute) tuple cost ~545 instructions: the tuple, the minute boxed into a new int,
    hashed, compared with the key found, freed (13,126 lookups for 29,600 POST-50 events
    of unpacked parts; bench/RESULTS.md session 26). The last pair is compared by
    identity, then by value (an unpacked part's minutes are one int object per entry):
    equal pairs are the dict's equal keys, so the deltas found are the same."""

    def __init__(self) -> None:
        # Keyed by the first (app, minute) seen of each, as the objects the entry held
        # (typed Any: compiled, a tuple[str, int] would unbox the minute and box it anew).
        self.by_minute: dict[Any, MinuteDeltas] = {}
        self._app: Any = None
        self._minute: Any = None
        self._last: MinuteDeltas | None = None

    def of(self, app: Any, minute: Any) -> MinuteDeltas:
        last = self._last
        if (
            last is not None and (minute is self._minute or minute == self._minute)
            and (app is self._app or app == self._app)
        ):
            return last
        key: Any = (app, minute)
        found = self.by_minute.get(key)
        if found is None:
            found = self.by_minute[key] = MinuteDeltas()
        self._app, self._minute, self._last = app, minute, found
        return found


def _add(members: dict[str, set[Member]], suffix: str, element: Member) -> None:
    found = members.get(suffix)
    if found is None:
        found = members[suffix] = set()
    found.add(element)


def _add_fields(fields: dict[str, dict[str, int]], of_suffix: dict[str, dict[str, int]]) -> None:
    """A snapshot's deep increments of one app's minute (store/aggregate.py) into its deltas."""
    for suffix, names in of_suffix.items():
        found = fields.get(suffix)
        if found is None:
            fields[suffix] = dict(names)  # a copy: the snapshot's stays as it is (a retry builds it again)
        else:
            for name, amount in names.items():
                found[name] = found.get(name, 0) + amount


class RollupBuilder:
    def __init__(self, calendar: Calendar, ttls: dict[str, int]) -> None:
        self.calendar = calendar
        self.ttls = ttls  # granularity -> seconds kept after the bucket ends (0: forever)
        self.pages = PageCounter()

    def build(self, snap: Snapshot, pace: Callable[[], None] = no_pacing) -> list[SlotWrites]:
        """`pace` is called every PACE_EVERY entries (store/pacing.py)."""
        return self._fan_out(self._fold(snap, pace))

    def _fold(self, snap: Snapshot, pace: Callable[[], None] = no_pacing) -> dict[tuple[str, int], MinuteDeltas]:
        """The snapshot's deltas per (app, minute), by key suffix."""
        minutes = _Minutes()
        # The entries as the snapshot keeps them, read by position (typed Any: as a
        # CellEntry or an AudienceEntry, compiled code would unpack each into its fields
        # and pack it again).
        cube: dict[Any, list[int]] = snap.cube
        for done, (key, sums) in enumerate(cube.items()):
            if not done % PACE_EVERY:
                pace()
            self.pages.count_cell(minutes.of(key[0], key[1]).fields, key, sums)
        visitors: set[Any] = snap.visitors
        for done, entry in enumerate(visitors):
            if not done % PACE_EVERY:
                pace()
            # An AudienceEntry: app, minute, its ProfileEntry (device, region, lang), visitor, month_visitor.
            d = minutes.of(entry[0], entry[1])
            visitor, month_visitor = entry[5], entry[6]
            for suffix in self.pages.visitor_suffixes((entry[2], entry[3], entry[4])):
                _add(d.day_members, suffix, visitor)
                _add(d.month_members, suffix, month_visitor)
        for app, minute, visitor_id in snap.first_party:  # hit/record.py first_party_of
            d = minutes.of(app, minute)
            _add(d.day_members, keys.FIRST_PARTY, visitor_id)
            _add(d.month_members, keys.FIRST_PARTY, visitor_id)
        for (app, minute, reason), count in snap.rejected.items():
            counter = reason if reason.startswith(FLAGGED) else "rejected:" + reason
            _incr(minutes.of(app, minute).fields, keys.COUNTERS, counter, count)
        for (app, minute), of_suffix in snap.deep_incs.items():
            _add_fields(minutes.of(app, minute).fields, of_suffix)
        for (app, minute), members in snap.deep_members.items():
            d = minutes.of(app, minute)
            for suffix, day_member, month_member in members:
                _add(d.day_members, suffix, day_member)
                _add(d.month_members, suffix, month_member)
        for (app, _), (minute, session) in snap.sessions.items():
            minutes.of(app, minute).sessions.append(session)
        return minutes.by_minute

    def _fan_out(self, minutes: dict[tuple[str, int], MinuteDeltas]) -> list[SlotWrites]:
        """Each minute's deltas, grouped by hash slot: once for its minute, hour and day
        buckets (one slot, day-salted members), once for its month bucket (month-salted).
        The minutes of one month share the month's group and are added up there."""
        slots: dict[str, SlotWrites] = {}
        for (app, minute), d in minutes.items():
            minute_b, hour_b, day_b, month_b = self.calendar.buckets_of_minute(minute)
            if d.fields or d.day_members:
                day_group = (minute_b, hour_b, day_b)
                self._slot(slots, app, day_b).add(self._prefixes(app, day_group), d.fields, d.day_members)
            if d.fields or d.month_members:
                self._slot(slots, app, month_b).add(self._prefixes(app, (month_b,)), d.fields, d.month_members)
            if d.sessions:
                self._file_sessions(slots, app, minute, d.sessions)
        return list(slots.values())

    def _file_sessions(self, slots: dict[str, SlotWrites], app: str, minute: int, sessions: list[Session]) -> None:
        """Sessions go to the day's slot (minute, hour and day buckets) and the month's.

        Each slot keeps its own record of every session's progress, so each counts a
        session once, in the buckets of the minute it was first flushed in.
        """
        by_slot: dict[str, list[Bucket]] = {}
        for bucket in self.calendar.buckets_of_minute(minute):
            by_slot.setdefault(keys.slot_tag(app, bucket.granularity, bucket.id), []).append(bucket)
        for buckets in by_slot.values():
            w = self._slot(slots, app, buckets[0])
            prefixes = self._prefixes(app, buckets)
            w.sessions.extend((prefixes, session) for session in sessions)
            # A session's record is needed as long as its events can arrive: the
            # period's end, plus the client timestamp window.
            w.sessions_expire_at = max(w.sessions_expire_at, buckets[-1].end + keys.SALT_LIFETIME)

    # ---- helpers ------------------------------------------------------------------

    def _prefixes(self, app: str, buckets: Sequence[Bucket]) -> Prefixes:
        return tuple((keys.bucket_prefix(app, b.granularity, b.id), self._expire_at(b)) for b in buckets)

    def _expire_at(self, bucket: Bucket) -> int:
        ttl = self.ttls.get(bucket.granularity, 0)
        return bucket.end + ttl if ttl else 0

    def _slot(self, slots: dict[str, SlotWrites], app: str, bucket: Bucket) -> SlotWrites:
        tag = keys.slot_tag(app, bucket.granularity, bucket.id)
        w = slots.get(tag)
        if w is None:
            w = slots[tag] = SlotWrites(tag)
        return w
