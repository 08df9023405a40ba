"""Cardinality caps: a page that invents values cannot blow up Redis or the collector.

Per app and day, the first N distinct values of a kind (pages, page codes, referrer
hosts, resource ids, click targets, components, labels, bot names, media sessions) are
counted as themselves; later new ones are counted as `(other)`. Nothing is dropped:
every event is still counted, only under a coarser name.

Two filters, one after the other:

- Here, per worker process, in memory, when an event is accepted (before it is
  journaled): at most N values of a kind per app and day pass as themselves, so what a
  worker holds and journals is bounded whatever the traffic.
- In Redis, for the whole deployment, when a batch is flushed (store/capping.py): a cap
  set per app, day and kind admits the first N values any worker brings; the others are
  counted as `(other)` in that flush. A restart admits nothing more: the sets stay.

The flush-time decision is fed back here (`learn`): a value the deployment refused goes
to `(other)` at once from then on, and frees its place in this worker's filter for a
value the deployment may hold (one another worker brought in).

Values longer than `value_max_chars` are stored in a bounded form: their start and a
hash of the whole (`bounded`), so distinct long values stay distinct and none costs more
than the bound in every key it is written to.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from collector.untracked import untracked_set

OTHER: Final = "(other)"
KINDS = ("resource", "target", "component", "page", "label", "page_code", "referrer", "bot", "session")
# Values that are markers, not data: never capped (referrer_value's, and OTHER itself).
MARKERS: Final = frozenset({OTHER, "(direct)", "(internal)", ""})
HASH_CHARS = 16  # hex digits of the hash that ends a bounded value
# (kind, app, day) sets a worker keeps at most: a flood of made-up app keys
# (`registry=open`) cannot grow them without bound; beyond, values pass to the flush,
# where the deployment's caps still apply (and the batch's own size bounds memory).
TRACKED_MAX: Final = 20_000
# Refused values remembered per app, day and kind, as a multiple of the cap: beyond, the
# memory is dropped (they are asked again at the next flush, and refused again).
REFUSED_REMEMBERED = 2


def bounded(value: str, max_chars: int) -> str:
    """`value`, or when longer than `max_chars` its start, '~' and a hash of all of it."""
    if len(value) <= max_chars:
        return value
    digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=HASH_CHARS // 2).hexdigest()
    return value[: max_chars - HASH_CHARS - 1] + "~" + digest


class _KindOfDay:
    """One app's values of one kind on one day: held (passing as themselves) and refused."""

    __slots__ = ("held", "refused")

    def __init__(self) -> None:
        # Strings only, for the whole day, by the thousand: out of the garbage collector's
        # walks (collector/untracked.py), which every full collection of the hit loop
        # otherwise made entry by entry (bench/RESULTS.md, session 11). `held` maps each
        # value to itself, the string admit hands out: every hit parses its own copy of its
        # page's URL, which a GET's new cube cell then kept, while a second's cells share a
        # few thousand pages; now they share the day's one (463 -> 306 bytes a cell of the
        # visitors bench, bench/RESULTS.md session 29). A dict of strings only is never
        # tracked by the garbage collector.
        self.held: dict[str, str] = {}
        self.refused: set[str] = untracked_set()


class CardinalityCaps:
    def __init__(self, limits: dict[str, int], value_max_chars: int = 512) -> None:
        unknown = set(limits) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown cap kinds {sorted(unknown)}")
        self.limits = limits
        self.value_max_chars = value_max_chars
        self._admitted: dict[tuple[str, str, str], _KindOfDay] = {}  # (kind, app, day) -> values
        self._days: list[str] = []  # the days with sets, oldest first
        self.overflowed: dict[str, int] = {kind: 0 for kind in KINDS}  # events sent to (other)
        # Changes whenever a value admitted may stop being admitted as itself (a refusal
        # learnt, a day dropped): what was remembered of earlier answers is then stale
        # (features/facts.py EventScope.resources).
        self.generation = 0

    def admit(self, kind: str, app: str, day: str, value: str, kinds: dict[str, Any] | None = None) -> str:
        """`value` (bounded), or OTHER when the app's day already holds its kind's cap of
        others, or the deployment refused it. A value held already is answered as the
        string first admitted: equal values share one object (see _KindOfDay).

        `kinds`: the caller's memo of this app's day's values by kind, which it empties
        whenever `generation` moves (features/facts.py EventScope: one request's events
        share app and day). A value of a kind found there skips the (kind, app, day) tuple,
        its hash and _admitted's lookup (~400 instructions, 2.4 admits a POST-50 event:
        bench/RESULTS.md, session 19)."""
        if len(value) > self.value_max_chars:
            value = bounded(value, self.value_max_chars)
        if value in MARKERS:
            return value
        found: _KindOfDay | None = kinds.get(kind) if kinds is not None else None
        if found is None:
            found = self._admitted.get((kind, app, day))
            if found is None:
                self._new_day(day)
                if len(self._admitted) >= TRACKED_MAX:
                    return value  # no room to track one more app: the deployment's caps decide alone
                found = self._admitted[(kind, app, day)] = _KindOfDay()
            if kinds is not None:
                kinds[kind] = found
        held = found.held.get(value)
        if held is not None:
            return held
        if value not in found.refused and len(found.held) < self.limits[kind]:
            found.held[value] = value
            return value
        self.overflowed[kind] += 1
        return OTHER

    def learn(self, kind: str, app: str, day: str, refused: set[str]) -> None:
        """The deployment's cap set refused these values (store/capping.py): (other) here too."""
        found = self._admitted.get((kind, app, day))
        if found is None or not refused:
            return
        for value in refused:
            found.held.pop(value, None)
        self.generation += 1
        if len(found.refused) + len(refused) > REFUSED_REMEMBERED * self.limits[kind]:
            found.refused.clear()
        found.refused |= refused

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
            self.generation += 1  # (a caller's memo may hold a dropped entry)
