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

from collector.store import keys
from collector.store.aggregate import FLAGGED, VISIT_SECOND_PAGE, VISIT_START, Snapshot
from collector.store.buckets import Bucket, Calendar
from collector.features.deep import Session
from collector.enrich.geo import Region

UNKNOWN = "(unknown)"
DIM = {dim: keys.dimension_suffix(dim) for dim in keys.DIMENSIONS}


@dataclass(slots=True)
class SlotWrites:
    """All writes of one flush that fall into one hash slot."""

    tag: str
    hashes: dict[str, dict[str, int]] = field(default_factory=dict)  # key -> field -> increment
    hlls: dict[str, set] = field(default_factory=dict)  # key -> elements
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

    def merge_members(self, key: str, members: set, expire_at: int) -> None:
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
    day_members: dict[str, set] = field(default_factory=dict)  # suffix -> visitor keys (day salt)
    month_members: dict[str, set] = field(default_factory=dict)  # suffix -> visitor keys (month salt)
    sessions: list[Session] = field(default_factory=list)


def _incr(fields: dict[str, dict[str, int]], suffix: str, name: str, amount: int) -> None:
    counts = fields.get(suffix)
    if counts is None:
        counts = fields[suffix] = {}
    counts[name] = counts.get(name, 0) + amount


def _add(members: dict[str, set], suffix: str, element) -> None:
    found = members.get(suffix)
    if found is None:
        found = members[suffix] = set()
    found.add(element)


def region_values(region: Region) -> tuple[str, str, str]:
    """Dimension values for country, province and city: 'CN', 'CN/330000', 'CN/330000/330100'."""
    country = _clean(region.country) or UNKNOWN
    province = country + "/" + (_clean(region.province) or UNKNOWN)
    city = province + "/" + (_clean(region.city) or UNKNOWN)
    return country, province, city


def _clean(part: str) -> str:
    return part.replace("/", "-")  # "/" separates the levels of a region value


class RollupBuilder:
    def __init__(self, calendar: Calendar, ttls: dict[str, int]) -> None:
        self.calendar = calendar
        self.ttls = ttls  # granularity -> seconds kept after the bucket ends (0: forever)
        self._region_values: dict[Region, tuple[str, str, str]] = {}
        self._visitor_suffixes: dict[tuple[str, Region], tuple[str, ...]] = {}

    def build(self, snap: Snapshot) -> list[SlotWrites]:
        minutes: dict[tuple[str, int], MinuteDeltas] = {}

        def deltas(app: str, minute: int) -> MinuteDeltas:
            found = minutes.get((app, minute))
            if found is None:
                found = minutes[(app, minute)] = MinuteDeltas()
            return found

        for (app, minute, etype, device, region, page, page_code, referrer, visit_flag), sums in snap.cube.items():
            self._count_cell(deltas(app, minute).fields, etype, device, region, page, page_code, referrer, visit_flag, sums)
        for app, minute, device_class, region, day_visitor, month_visitor in snap.visitors:
            d = deltas(app, minute)
            for suffix in self._suffixes_of_visitor(device_class, region):
                _add(d.day_members, suffix, day_visitor)
                _add(d.month_members, suffix, month_visitor)
        for app, minute, visitor_id in snap.first_party:
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

    def _count_cell(self, fields, etype, device, region, page, page_code, referrer, visit_flag, sums) -> None:
        n, engaged_ms, scroll_sum, scroll_count = sums
        c = keys.COUNTERS
        if device.is_bot:
            _incr(fields, c, "bot_hits", n)
            if etype == "pageview":
                _incr(fields, c, "bot_pv", n)
                _incr(fields, DIM["bot"], device.browser, n)
            return
        if etype == "pageview":
            country, province, city = self._regions(region)
            _incr(fields, c, "pv", n)
            if visit_flag == VISIT_START:
                _incr(fields, c, "visits", n)
            elif visit_flag == VISIT_SECOND_PAGE:
                _incr(fields, c, "visits_multi", n)
            _incr(fields, DIM["device"], device.device_class, n)
            _incr(fields, DIM["browser"], device.browser, n)
            _incr(fields, DIM["os"], device.os, n)
            _incr(fields, DIM["country"], country, n)
            _incr(fields, DIM["province"], province, n)
            _incr(fields, DIM["city"], city, n)
            _incr(fields, DIM["page"], page, n)
            _incr(fields, DIM["referrer"], referrer, n)
            if page_code:
                _incr(fields, DIM["page_code"], page_code, n)
        elif etype == "engagement":
            _incr(fields, c, "engagements", n)
            _incr(fields, c, "engaged_ms", engaged_ms)
            if scroll_count:
                _incr(fields, c, "scroll_sum", scroll_sum)
                _incr(fields, c, "scroll_count", scroll_count)
        else:
            _incr(fields, c, "ev:" + etype, n)

    def _suffixes_of_visitor(self, device_class: str, region: Region) -> tuple[str, ...]:
        """The HLLs a visitor joins: UV overall, by device class, by each region level."""
        key = (device_class, region)
        found = self._visitor_suffixes.get(key)
        if found is None:
            if len(self._visitor_suffixes) > 100_000:
                self._visitor_suffixes.clear()
            country, province, city = self._regions(region)
            found = self._visitor_suffixes[key] = (
                keys.VISITORS,
                keys.dimension_visitors_suffix("device", device_class),
                keys.dimension_visitors_suffix("country", country),
                keys.dimension_visitors_suffix("province", province),
                keys.dimension_visitors_suffix("city", city),
            )
        return found

    def _expire_at(self, bucket: Bucket) -> int:
        ttl = self.ttls.get(bucket.granularity, 0)
        return bucket.end + ttl if ttl else 0

    def _slot(self, slots: dict[str, SlotWrites], app: str, bucket: Bucket) -> SlotWrites:
        tag = keys.slot_tag(app, bucket.granularity, bucket.id)
        w = slots.get(tag)
        if w is None:
            w = slots[tag] = SlotWrites(tag)
        return w

    def _regions(self, region: Region) -> tuple[str, str, str]:
        values = self._region_values.get(region)
        if values is None:
            if len(self._region_values) > 100_000:
                self._region_values.clear()
            values = self._region_values[region] = region_values(region)
        return values
