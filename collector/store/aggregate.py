"""In-process aggregation: what the request path does instead of talking to Redis.

Each accepted event costs one dictionary increment in a "cube" keyed by all of its
dimensions at minute resolution, plus a set insertion for its visitor. The flusher
drains the cube every second and fans it out into minute/hour/day/month counters and
HyperLogLogs (rollup.py), so the per-hit work is independent of how many rollups and
breakdowns exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from collector.features.deep import DeepFacts
from collector.enrich.device import Device
from collector.enrich.geo import Region

# Visit flags carried in the cube key of a page view.
NO_VISIT, VISIT_START, VISIT_SECOND_PAGE = 0, 1, 2


@dataclass(slots=True)
class Snapshot:
    """Everything counted since the previous drain."""

    # (app, minute, type, device, region, page, page_code, referrer, visit_flag)
    #   -> [events, engaged_ms, scroll_sum, scroll_count]
    cube: dict[tuple, list[int]] = field(default_factory=dict)
    # (app, minute, device, region, visitor key under the day's salt, under the month's)
    visitors: set[tuple] = field(default_factory=set)
    # (app, minute, first_party_visitor_id)
    first_party: set[tuple] = field(default_factory=set)
    # (app, minute, reason) -> count
    rejected: dict[tuple, int] = field(default_factory=dict)
    # Deep tag (deep.py): (app, minute, suffix, field) -> increment; (app, minute, suffix,
    # day member, month member); (app, media session id) -> [first minute, Session].
    deep_incs: dict[tuple, int] = field(default_factory=dict)
    deep_members: set[tuple] = field(default_factory=set)
    sessions: dict[tuple[str, str], list] = field(default_factory=dict)
    events: int = 0

    def __bool__(self) -> bool:
        return bool(self.cube or self.rejected)


class Aggregator:
    def __init__(self) -> None:
        self._current = Snapshot()

    def count(
        self,
        app: str,
        minute: int,
        event_type: str,
        device: Device,
        region: Region,
        visitor: bytes,
        month_visitor: bytes,
        page: str = "",
        page_code: str = "",
        referrer: str = "",
        visit_flag: int = NO_VISIT,
        engaged_ms: int = 0,
        scroll: int = -1,
        first_party_id: str = "",
        deep: DeepFacts | None = None,
    ) -> None:
        snap = self._current
        key = (app, minute, event_type, device, region, page, page_code, referrer, visit_flag)
        sums = snap.cube.get(key)
        if sums is None:
            sums = snap.cube[key] = [0, 0, 0, 0]
        sums[0] += 1
        if engaged_ms:
            sums[1] += engaged_ms
        if scroll >= 0:
            sums[2] += scroll
            sums[3] += 1
        snap.events += 1
        if not device.is_bot:
            snap.visitors.add((app, minute, device.device_class, region, visitor, month_visitor))
            if first_party_id:
                snap.first_party.add((app, minute, first_party_id))
            if deep is not None:
                self._count_deep(snap, app, minute, deep)

    @staticmethod
    def _count_deep(snap: Snapshot, app: str, minute: int, deep: DeepFacts) -> None:
        incs = snap.deep_incs
        for suffix, name, amount in deep.incs:
            key = (app, minute, suffix, name)
            incs[key] = incs.get(key, 0) + amount
        for suffix, day_member, month_member in deep.members:
            snap.deep_members.add((app, minute, suffix, day_member, month_member))
        session = deep.session
        if session is not None:
            found = snap.sessions.get((app, session.ms))
            if found is None:
                # A copy: the journal replays the same facts into other snapshots.
                snap.sessions[(app, session.ms)] = [minute, replace(session)]
            else:
                found[0] = min(found[0], minute)
                found[1].merge(session)

    def reject(self, app: str, minute: int, reason: str) -> None:
        rejected = self._current.rejected
        key = (app, minute, reason)
        rejected[key] = rejected.get(key, 0) + 1

    def drain(self) -> Snapshot:
        """Hand over everything counted so far and start afresh (no await: atomic)."""
        snap, self._current = self._current, Snapshot()
        return snap

    @property
    def pending_events(self) -> int:
        return self._current.events
