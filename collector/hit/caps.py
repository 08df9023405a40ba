"""Cardinality caps: a page that invents ids cannot blow up Redis memory.

Per app and day, the first N distinct values of a kind (resource ids, click targets,
components, pages, labels) are counted as themselves; later new ones are counted as
`(other)`. Nothing is dropped: every event is still counted, only under a coarser name.

The caps are kept per worker process, in memory, and decided when an event is accepted
(before it is journaled), so a journal replay files every event where it first went.
With W workers a day holds at most W × N distinct values of a kind; a restarted worker
starts its sets afresh, which can admit up to N more that day.
"""

from __future__ import annotations

OTHER = "(other)"
KINDS = ("resource", "target", "component", "page", "label")


class CardinalityCaps:
    def __init__(self, limits: dict[str, int]) -> None:
        unknown = set(limits) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown cap kinds {sorted(unknown)}")
        self.limits = limits
        self._admitted: dict[tuple[str, str, str], set[str]] = {}  # (kind, app, day) -> values
        self._days: list[str] = []  # the days with sets, oldest first
        self.overflowed: dict[str, int] = {kind: 0 for kind in KINDS}  # events sent to (other)

    def admit(self, kind: str, app: str, day: str, value: str) -> str:
        """`value`, or OTHER when the app's day already holds its kind's cap of others."""
        admitted = self._admitted.get((kind, app, day))
        if admitted is None:
            self._new_day(day)
            admitted = self._admitted[(kind, app, day)] = set()
        if value in admitted:
            return value
        if len(admitted) < self.limits[kind]:
            admitted.add(value)
            return value
        self.overflowed[kind] += 1
        return OTHER

    def _new_day(self, day: str) -> None:
        # Late events reach back a day (client_ts_window): keep two days, drop older ones.
        if day in self._days:
            return
        self._days.append(day)
        self._days.sort()
        if len(self._days) > 2:
            old = set(self._days[:-2])
            self._days = self._days[-2:]
            for key in [k for k in self._admitted if k[2] in old]:
                del self._admitted[key]
