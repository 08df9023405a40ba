"""Fan a drained Snapshot out into the Redis writes of every rollup.

One cube cell becomes increments in the minute, hour, day and month buckets of its app,
grouped by Redis Cluster slot (see keys.slot_tag) so the flusher can apply each group
with one script call. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import keys
from .aggregate import VISIT_SECOND_PAGE, VISIT_START, Snapshot
from .buckets import Bucket, Calendar
from .geo import Region

UNKNOWN = "(unknown)"


@dataclass(slots=True)
class SlotWrites:
    """All writes of one flush that fall into one hash slot."""

    tag: str
    hashes: dict[str, dict[str, int]] = field(default_factory=dict)  # key -> field -> increment
    hlls: dict[str, set] = field(default_factory=dict)  # key -> elements
    expire_at: dict[str, int] = field(default_factory=dict)  # key -> epoch seconds (absent: keep)

    def incr(self, key: str, name: str, amount: int) -> None:
        fields = self.hashes.get(key)
        if fields is None:
            fields = self.hashes[key] = {}
        fields[name] = fields.get(name, 0) + amount

    def add(self, key: str, element: bytes | str) -> None:
        members = self.hlls.get(key)
        if members is None:
            members = self.hlls[key] = set()
        members.add(element)


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

    def build(self, snap: Snapshot) -> list[SlotWrites]:
        slots: dict[str, SlotWrites] = {}
        for (app, minute, etype, device, region, page, page_code, referrer, visit_flag), sums in snap.cube.items():
            for bucket in self.calendar.buckets_of_minute(minute):
                w = self._slot(slots, app, bucket)
                self._count_cell(w, app, bucket, etype, device, region, page, page_code, referrer, visit_flag, sums)
        for app, minute, device_class, region, day_visitor, month_visitor in snap.visitors:
            country, province, city = self._regions(region)
            for bucket in self.calendar.buckets_of_minute(minute):
                w = self._slot(slots, app, bucket)
                g, b = bucket.granularity, bucket.id
                visitor = month_visitor if g == "month" else day_visitor
                self._add(w, bucket, keys.visitors(app, g, b), visitor)
                self._add(w, bucket, keys.dimension_visitors(app, g, b, "device", device_class), visitor)
                self._add(w, bucket, keys.dimension_visitors(app, g, b, "country", country), visitor)
                self._add(w, bucket, keys.dimension_visitors(app, g, b, "province", province), visitor)
                self._add(w, bucket, keys.dimension_visitors(app, g, b, "city", city), visitor)
        for app, minute, visitor_id in snap.first_party:
            for bucket in self.calendar.buckets_of_minute(minute):
                w = self._slot(slots, app, bucket)
                self._add(w, bucket, keys.first_party_visitors(app, bucket.granularity, bucket.id), visitor_id)
        for (app, minute, reason), count in snap.rejected.items():
            for bucket in self.calendar.buckets_of_minute(minute):
                w = self._slot(slots, app, bucket)
                self._incr(w, bucket, keys.counters(app, bucket.granularity, bucket.id), "rejected:" + reason, count)
        return list(slots.values())

    # ---- helpers ------------------------------------------------------------------

    def _count_cell(self, w, app, bucket, etype, device, region, page, page_code, referrer, visit_flag, sums):
        g, b = bucket.granularity, bucket.id
        n, engaged_ms, scroll_sum, scroll_count = sums
        counters = keys.counters(app, g, b)
        if device.is_bot:
            self._incr(w, bucket, counters, "bot_hits", n)
            if etype == "pageview":
                self._incr(w, bucket, counters, "bot_pv", n)
                self._incr(w, bucket, keys.dimension(app, g, b, "bot"), device.browser, n)
            return
        if etype == "pageview":
            country, province, city = self._regions(region)
            self._incr(w, bucket, counters, "pv", n)
            if visit_flag == VISIT_START:
                self._incr(w, bucket, counters, "visits", n)
            elif visit_flag == VISIT_SECOND_PAGE:
                self._incr(w, bucket, counters, "visits_multi", n)
            for dim, value in (
                ("device", device.device_class),
                ("browser", device.browser),
                ("os", device.os),
                ("country", country),
                ("province", province),
                ("city", city),
                ("page", page),
                ("referrer", referrer),
            ):
                self._incr(w, bucket, keys.dimension(app, g, b, dim), value, n)
            if page_code:
                self._incr(w, bucket, keys.dimension(app, g, b, "page_code"), page_code, n)
        elif etype == "engagement":
            self._incr(w, bucket, counters, "engagements", n)
            self._incr(w, bucket, counters, "engaged_ms", engaged_ms)
            if scroll_count:
                self._incr(w, bucket, counters, "scroll_sum", scroll_sum)
                self._incr(w, bucket, counters, "scroll_count", scroll_count)
        else:
            self._incr(w, bucket, counters, "ev:" + etype, n)

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

    def _expiry(self, w: SlotWrites, bucket: Bucket, key: str) -> None:
        ttl = self.ttls.get(bucket.granularity, 0)
        if ttl and key not in w.expire_at:
            w.expire_at[key] = bucket.end + ttl

    def _incr(self, w: SlotWrites, bucket: Bucket, key: str, name: str, amount: int) -> None:
        w.incr(key, name, amount)
        self._expiry(w, bucket, key)

    def _add(self, w: SlotWrites, bucket: Bucket, key: str, element) -> None:
        w.add(key, element)
        self._expiry(w, bucket, key)
