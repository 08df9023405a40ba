"""Fan a drained Snapshot out into the Redis writes of every rollup.

First the snapshot is folded per (app, minute) into increments and HyperLogLog members
keyed by key suffix (`c`, `d:city`, `u:device:mobile`, …); then each minute's deltas are
joined once to the prefixes of its minute, hour, day and month buckets and grouped by
Redis Cluster slot (see keys.slot_tag), so the flusher can apply each group with a few
script calls. The per-hit cost of a rollup is thus one fold, whatever the number of
granularities. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collector.features.deep import Session
from collector.features.pages import PageCounter, region_values
from collector.features.pages import increment as _incr
from collector.hit.record import Audience, Cell
from collector.store import keys
from collector.store.aggregate import FLAGGED, Snapshot
from collector.store.buckets import Bucket, Calendar

__all__ = ["RollupBuilder", "SlotWrites", "region_values"]

# An HLL element: a salted visitor key (bytes), a first-party visitor id or a deep tag member (str).
Member = bytes | str


@dataclass(slots=True)
class SlotWrites:
    """All writes of one flush that fall into one hash slot."""

    tag: str
    hashes: dict[str, dict[str, int]] = field(default_factory=dict)  # key -> field -> increment
    hlls: dict[str, set[Member]] = field(default_factory=dict)  # key -> elements
    expire_at: dict[str, int] = field(default_factory=dict)  # key -> epoch seconds (absent: keep)
    # Media session progress for this slot's session hash (features/media_sessions.lua): the
    # bucket prefixes a session's first flush files it under, then its progress.
    sessions: list[tuple[tuple[tuple[str, int], ...], Session]] = field(default_factory=list)  # ((prefix, expire-at), ...)

    def merge_fields(self, key: str, increments: dict[str, int], expire_at: int) -> None:
        fields = self.hashes.get(key)
        if fields is None:
            self.hashes[key] = dict(increments)
        else:
            for name, amount in increments.items():
                fields[name] = fields.get(name, 0) + amount
        if expire_at:
            self.expire_at.setdefault(key, expire_at)

    def merge_members(self, key: str, members: set[Member], expire_at: int) -> None:
        existing = self.hlls.get(key)
        if existing is None:
            self.hlls[key] = set(members)  # a copy: one minute's set feeds several keys
        else:
            existing |= members
        if expire_at:
            self.expire_at.setdefault(key, expire_at)


@dataclass(slots=True)
class MinuteDeltas:
    """One app's deltas for one minute, by key suffix, before they meet any bucket."""

    fields: dict[str, dict[str, int]] = field(default_factory=dict)  # suffix -> field -> increment
    day_members: dict[str, set[Member]] = field(default_factory=dict)  # suffix -> visitor keys (day salt)
    month_members: dict[str, set[Member]] = field(default_factory=dict)  # suffix -> visitor keys (month salt)
    sessions: list[Session] = field(default_factory=list)


def _add(members: dict[str, set[Member]], suffix: str, element: Member) -> None:
    found = members.get(suffix)
    if found is None:
        found = members[suffix] = set()
    found.add(element)


class RollupBuilder:
    def __init__(self, calendar: Calendar, ttls: dict[str, int]) -> None:
        self.calendar = calendar
        self.ttls = ttls  # granularity -> seconds kept after the bucket ends (0: forever)
        self.pages = PageCounter()

    def build(self, snap: Snapshot) -> list[SlotWrites]:
        return self._fan_out(self._fold(snap))

    def _fold(self, snap: Snapshot) -> dict[tuple[str, int], MinuteDeltas]:
        """The snapshot's deltas per (app, minute), by key suffix."""
        minutes: dict[tuple[str, int], MinuteDeltas] = {}

        def deltas(app: str, minute: int) -> MinuteDeltas:
            found = minutes.get((app, minute))
            if found is None:
                found = minutes[(app, minute)] = MinuteDeltas()
            return found

        for key, sums in snap.cube.items():
            cell = Cell._make(key)
            self.pages.count_cell(deltas(cell.app, cell.minute).fields, cell, sums)
        for entry in snap.visitors:
            seen = Audience._make(entry)
            d = deltas(seen.app, seen.minute)
            for suffix in self.pages.visitor_suffixes(seen):
                _add(d.day_members, suffix, seen.visitor)
                _add(d.month_members, suffix, seen.month_visitor)
        for app, minute, visitor_id in snap.first_party:  # hit/record.py first_party_of
            d = deltas(app, minute)
            _add(d.day_members, keys.FIRST_PARTY, visitor_id)
            _add(d.month_members, keys.FIRST_PARTY, visitor_id)
        for (app, minute, reason), count in snap.rejected.items():
            counter = reason if reason.startswith(FLAGGED) else "rejected:" + reason
            _incr(deltas(app, minute).fields, keys.COUNTERS, counter, count)
        for (app, minute, suffix, name), amount in snap.deep_incs.items():
            _incr(deltas(app, minute).fields, suffix, name, amount)
        for app, minute, suffix, day_member, month_member in snap.deep_members:
            d = deltas(app, minute)
            _add(d.day_members, suffix, day_member)
            _add(d.month_members, suffix, month_member)
        for (app, _), (minute, session) in snap.sessions.items():
            deltas(app, minute).sessions.append(session)
        return minutes

    def _fan_out(self, minutes: dict[tuple[str, int], MinuteDeltas]) -> list[SlotWrites]:
        """Each minute's deltas joined to its buckets' key prefixes, grouped by hash slot."""
        slots: dict[str, SlotWrites] = {}
        for (app, minute), d in minutes.items():
            for bucket in self.calendar.buckets_of_minute(minute):
                w = self._slot(slots, app, bucket)
                g, b = bucket.granularity, bucket.id
                expire_at = self._expire_at(bucket)
                for suffix, increments in d.fields.items():
                    w.merge_fields(keys.bucket_key(app, g, b, suffix), increments, expire_at)
                members = d.month_members if g == "month" else d.day_members
                for suffix, elements in members.items():
                    w.merge_members(keys.bucket_key(app, g, b, suffix), elements, expire_at)
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
        for tag, buckets in by_slot.items():
            w = slots[tag]
            prefixes = tuple((keys.bucket_prefix(app, b.granularity, b.id), self._expire_at(b)) for b in buckets)
            w.sessions.extend((prefixes, session) for session in sessions)
            # A session's record is needed as long as its events can arrive: the
            # period's end, plus the client timestamp window.
            state = keys.sessions(tag)
            w.expire_at[state] = max(w.expire_at.get(state, 0), buckets[-1].end + keys.SALT_LIFETIME)

    # ---- helpers ------------------------------------------------------------------

    def _expire_at(self, bucket: Bucket) -> int:
        ttl = self.ttls.get(bucket.granularity, 0)
        return bucket.end + ttl if ttl else 0

    def _slot(self, slots: dict[str, SlotWrites], app: str, bucket: Bucket) -> SlotWrites:
        tag = keys.slot_tag(app, bucket.granularity, bucket.id)
        w = slots.get(tag)
        if w is None:
            w = slots[tag] = SlotWrites(tag)
        return w
