"""In-process aggregation: what the request path does instead of talking to Redis.

Each accepted event costs one dictionary increment in a "cube" keyed by all of its
dimensions at minute resolution, plus a set insertion for its visitor. The flusher
drains the cube every second and fans it out into minute/hour/day/month counters and
HyperLogLogs (rollup.py), so the per-hit work is independent of how many rollups and
breakdowns exist.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Final

from collector.enrich.device import BOT
from collector.features.deep import DeepFacts
from collector.hit.record import (
    NO_VISIT,
    VISIT_SECOND_PAGE,
    VISIT_START,
    Audience,
    AudienceEntry,
    Cell,
    CellEntry,
    FirstPartyEntry,
    Hit,
    audience_of,
    cell_of,
    first_party_of,
)
from collector.store import names
from collector.store.pacing import no_pacing
from collector.untracked import untracked, untracked_set

__all__ = ["Aggregator", "Snapshot", "FLAGGED", "NO_VISIT", "VISIT_START", "VISIT_SECOND_PAGE"]


def _untracked(sums: list[int]) -> list[int]:
    """`sums`, out of the garbage collector's walks (collector/untracked.py).

    A list is walked by every collection of its generation for as long as it lives, and a
    second's cells are thousands of lists: at 6,700 GET hits a second they were a third of
    what each generation-1 collection walked, and, promoted, they started a full
    collection (4-13 ms) every five seconds (bench/RESULTS.md, session 10). A cell's list
    only ever holds ints, so it can never be part of a reference cycle: untracked, it is
    still freed the moment its snapshot is (reference counting), never kept. An array
    would do, but is itself tracked since Python 3.10, and a tuple replaced at each hit
    would put an object per hit in the young generation."""
    return untracked(sums)


# A snapshot's sets of entries are made untracked (collector/untracked.py): their entries
# are tuples of strings, bytes and ints (hit/record.py, features/deep.py), never part of a
# cycle, and a second's sets hold tens of thousands of them (the deep tag's members alone
# 18,000-32,000 in a POST-50 second), each one walked by every full collection that ran
# while the snapshot lived (bench/RESULTS.md, session 11). Made once a second (or once per
# part), they cost nothing per hit.

# The entry getters as returning any object: compiled, a value typed as a fixed-length
# tuple is unpacked into its fields and packed again as a new tuple at each use (a dict
# lookup, a set insertion); a hit's entries are only looked up, and rebuilt when new.
_cell_of: Callable[[Hit], Any] = cell_of
_audience_of: Callable[[Hit], Any] = audience_of
_first_party_of: Callable[[Hit], Any] = first_party_of
# A hit's minute as the object it holds (one per minute value: hit/ingest.py
# _minute_object), put into the event ids' and the deep tag's keys as is; read as an int,
# compiled code would box a new int object into each of those keys.
_minute_of: Callable[[Hit], Any] = itemgetter(Hit._fields.index("minute"))

# Where _kept_cell and _kept_audience find an entry's device and region.
_CELL_DEVICE: Final = 3
_CELL_REGION: Final = 4
_AUDIENCE_DEVICE: Final = 2
_AUDIENCE_REGION: Final = 3
if Cell._fields[3:5] != ("device", "region") or Audience._fields[2:4] != ("device", "region"):
    raise TypeError("the aggregator expects a Cell's device and region 4th and 5th, an Audience's 3rd and 4th")

# A "reject" whose reason starts so is a flag on an event that *was* counted (e.g.
# flagged:foreign_origin, hit/admission.py): it rides the reject records (journal
# included) and becomes the counter flagged:REASON rather than rejected:REASON.
FLAGGED = names.FLAGGED_PREFIX
# Entries between two calls of a split's `pace` (~0.25 ms of the split's CPU): the
# flusher's thread then sleeps now and then, and the hit loop has the GIL and the core
# meanwhile (bench/RESULTS.md, session 12).
PACE_ENTRIES = 1024


@dataclass(slots=True)
class Snapshot:
    """Everything counted since the previous drain.

    Every entry's key starts with its app (Cell and Audience do: hit/record.py), which
    is all that splitting a snapshot by app needs to know of them.
    """

    # A hit's Cell (hit/record.py) -> [events, engaged_ms, scroll_sum, scroll_count]
    cube: dict[CellEntry, list[int]] = field(default_factory=dict)
    # Audience entries (hit/record.py): a visitor of a minute and their Profile
    visitors: set[AudienceEntry] = field(default_factory=untracked_set)
    # (app, minute, first_party_visitor_id)
    first_party: set[FirstPartyEntry] = field(default_factory=untracked_set)
    # (app, minute, reason) -> count
    rejected: dict[tuple[str, int, str], int] = field(default_factory=dict)
    # Deep tag (deep.py), by (app, minute) first: suffix -> field -> increment; the
    # (suffix, day member, month member) tuples of DeepFacts.members; and (app, media
    # session id) -> [first minute, Session]. Grouped so that an event's increments cost a
    # lookup by suffix and by field (strings: their hashes cached, compared by identity)
    # and its members a set insertion of the facts' own tuples, where a flat key made a
    # 4-tuple per increment and a 5-tuple per member, each hashed anew and looked up
    # twice (bench/RESULTS.md, session 20). An (app, minute) is there only with entries.
    deep_incs: dict[tuple[str, int], dict[str, dict[str, int]]] = field(default_factory=dict)
    deep_members: dict[tuple[str, int], set[tuple[str, str, str]]] = field(default_factory=dict)
    # A mutable pair [first minute: int, Session], merged in place (hence a list, not a tuple)
    sessions: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    # Dedupe (store/dedupe.py): (app, minute) -> the event ids of its first sends, in
    # arrival order, recorded at flush; re-sent hits, held back until their ids are checked.
    # A list per minute, not a set of (app, minute, id): with the beacon's batches nearly
    # every event has an id, and a tuple and a set slot each were two thirds of a
    # snapshot's memory (an id sent twice is recorded twice: SADD keeps one).
    event_ids: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    resent: list[Hit] = field(default_factory=list)
    events: int = 0

    def __bool__(self) -> bool:
        return bool(self.cube or self.rejected or self.resent)

    @property
    def cells(self) -> int:
        """Entries held, the measure of this snapshot's memory and of its flush's work.

        Each entry is one dict or set slot holding a tuple of a few short strings and
        ints (some 0.3-0.6 kB with the strings it keeps alive), and the rollup turns each
        into a bounded number of writes (its buckets times its key suffixes). Events are
        no measure: a million hits of one page are one cell, a hundred thousand hits of
        distinct apps a hundred thousand. An event id is an entry too (a string in a
        list). A few len() calls per collection and app-minute: cheap enough for a timer.
        """
        return (
            sum(map(len, self._entry_collections())) + _deep_inc_entries(self.deep_incs)
            + _grouped_entries(self.deep_members) + _grouped_entries(self.event_ids)
        )

    def split_by_app(self, max_cells: int, pace: Callable[[], None] = no_pacing) -> list[Snapshot]:
        """Parts of this snapshot with whole apps each, about `max_cells` entries a part.
        `pace` is called every PACE_ENTRIES entries (store/pacing.py: the flusher's thread
        splits while the hit loop waits for the GIL).

        An app's entries are never split: its slots (app and day, app and month) then
        get the very same writes, hence the very same numbered script calls, whatever
        the grouping — a retry or a journal replay that groups differently still skips
        exactly what Redis already has. One app bigger than `max_cells` is a part alone.

        Apps with the most events come first: when a flood of one-hit app keys makes a
        batch long to apply, the apps with real traffic in it are not kept waiting.
        """
        cells = self.cells
        if cells <= max_cells:  # every app fits in one part: this snapshot is that part
            return [self] if cells else []
        # Each collection split by app in one pass; a part is then its apps' dicts and
        # sets, joined (a part of one app, the common case, takes them as they are).
        cube, rejected, deep_incs, deep_members, sessions, event_ids = (
            _dicts_by_app(entries, pace)
            for entries in (self.cube, self.rejected, self.deep_incs, self.deep_members, self.sessions, self.event_ids)
        )
        visitors, first_party = (_sets_by_app(entries, pace) for entries in (self.visitors, self.first_party))
        _own_deep_groups(deep_incs, deep_members, pace)
        resent: dict[str, list[Hit]] = {}
        for hit in self.resent:
            resent.setdefault(hit.app, []).append(hit)
        sizes: dict[str, int] = {}
        for grouped in (cube, rejected, sessions, visitors, first_party, resent):
            for app, entries in grouped.items():
                sizes[app] = sizes.get(app, 0) + len(entries)
        for app, minutes in deep_incs.items():
            sizes[app] = sizes.get(app, 0) + _deep_inc_entries(minutes)
        for grouped in (deep_members, event_ids):
            for app, minutes in grouped.items():
                sizes[app] = sizes.get(app, 0) + _grouped_entries(minutes)
        events = {app: sum(sums[0] for sums in app_cells.values()) for app, app_cells in cube.items()}
        groups: list[list[str]] = []
        filled = 0
        for app in sorted(sizes, key=lambda app: (-events.get(app, 0), app)):
            if not groups or filled + sizes[app] > max_cells:
                groups.append([])
                filled = 0
            groups[-1].append(app)
            filled += sizes[app]
        parts = [
            Snapshot(
                cube=_joined_dicts(cube, group), visitors=_joined_sets(visitors, group),
                first_party=_joined_sets(first_party, group), rejected=_joined_dicts(rejected, group),
                deep_incs=_joined_dicts(deep_incs, group), deep_members=_joined_dicts(deep_members, group),
                sessions=_joined_dicts(sessions, group), event_ids=_joined_dicts(event_ids, group),
                resent=[hit for app in group for hit in resent.get(app, ())],
            )
            for group in groups
        ]
        parts[0].events = self.events  # events are a batch figure, kept once
        return parts

    def apps(self) -> set[str]:
        """The apps with counted cells or rejects."""
        return {key[0] for key in self.cube} | {key[0] for key in self.rejected}

    def shed(self, limit: int) -> bool:
        """Drop at most `limit` entries (an event-id list is one); True once none is left.

        A flushed part is freed this way, a slice at a time between two rounds of hits
        (Flusher._release): dropped at once, its entries' tuples and strings were freed in
        one call that held the hit loop for 1-3 ms at every flush (bench/RESULTS.md,
        session 17). Its re-sent hits are left: the batch takes them.

        The deep tag's groups (a set, a dict per app and minute) are emptied in place: a
        part of split_by_app has its own (_own_deep_groups)."""
        left = limit
        for entries in (self.cube, self.visitors, self.first_party, self.rejected):
            left = _shed(entries, left)
        left = _shed_deep_incs(self.deep_incs, left)
        left = _shed_grouped(self.deep_members, left)
        for keyed in (self.sessions, self.event_ids):
            left = _shed(keyed, left)
        return left > 0

    def _entry_collections(self) -> tuple[Collection[tuple[Any, ...]], ...]:
        """Every collection whose entries each start with their app (all but the deep tag's
        and event_ids, whose keys do: (app, minute), their entries grouped under it)."""
        return (self.cube, self.visitors, self.first_party, self.rejected, self.sessions, self.resent)


def _own_deep_groups(
    deep_incs: dict[str, dict[Any, dict[str, dict[str, int]]]], deep_members: dict[str, dict[Any, set[Any]]],
    pace: Callable[[], None],
) -> None:
    """The deep tag's groups of a split's apps (_dicts_by_app) replaced by copies: a part
    frees its entries group by group, emptying them in place (Snapshot.shed), and the
    snapshot it was split from must keep its own (a test, a retry may read it again).
    Copied in C, a dict or set at a time: a few instructions an entry. `pace` is called
    every PACE_ENTRIES entries or so, as _dicts_by_app does (a group is copied whole)."""
    done = 0
    for minutes in deep_incs.values():
        for key, of_suffix in list(minutes.items()):
            minutes[key] = {suffix: dict(names) for suffix, names in of_suffix.items()}
            done += sum(map(len, of_suffix.values()))
            if done >= PACE_ENTRIES:
                pace()
                done = 0
    for groups in deep_members.values():
        for key, members in list(groups.items()):
            copied = groups[key] = untracked_set()
            copied.update(members)
            done += len(members)
            if done >= PACE_ENTRIES:
                pace()
                done = 0


def _deep_inc_entries(deep_incs: dict[Any, dict[str, dict[str, int]]]) -> int:
    """The deep increments (one entry per (app, minute, suffix, field)) in `deep_incs`."""
    return sum(len(names) for of_suffix in deep_incs.values() for names in of_suffix.values())


def _grouped_entries(groups: dict[Any, Any]) -> int:
    """The entries of a dict of collections: deep members, event ids (by (app, minute))."""
    return sum(map(len, groups.values()))


def _shed_deep_incs(deep_incs: dict[Any, dict[str, dict[str, int]]], left: int) -> int:
    """_shed for the deep increments: field by field, an emptied suffix's or minute's dict dropped."""
    while deep_incs and left > 0:
        key, of_suffix = deep_incs.popitem()
        left = _shed_grouped(of_suffix, left)
        if of_suffix:
            deep_incs[key] = of_suffix
    return left


def _shed_grouped(groups: dict[Any, Any], left: int) -> int:
    """_shed for a dict of sets or dicts: entry by entry, an emptied one's key dropped."""
    while groups and left > 0:
        key, entries = groups.popitem()
        left = _shed(entries, left)
        if entries:
            groups[key] = entries
    return left


def _shed(entries: dict[Any, Any] | set[Any], left: int) -> int:
    """Pop entries of a dict or set while `left` allows; what is left of it."""
    pop = entries.popitem if isinstance(entries, dict) else entries.pop
    while entries and left > 0:
        pop()
        left -= 1
    return left


class Aggregator:
    def __init__(self) -> None:
        self._current = Snapshot()
        # Set by the flusher when, with the journal off, the batches waiting for Redis
        # hold as much as memory_max_cells allows: hits are then answered 503.
        self.refusing = False
        # What this process took since it started, added up at each drain (so the hit
        # path pays nothing for it): for GET /metrics, through totals().
        self._drained_events = 0
        self._drained_rejects: dict[str, int] = {}
        # The plain tuples (hit/record.py) that stand for the Devices and Regions in the
        # current snapshot's entries, each kept once: value -> itself. Emptied at each
        # drain, so it holds no more than the snapshot's entries do.
        self._plain_values: dict[tuple[str, ...], tuple[str, ...]] = {}
        # The current snapshot's event ids of the last hit's app and minute: a request's
        # hits nearly all share them, and its minute object (hit/ingest.py _minute_object),
        # so they skip the (app, minute) tuple and its lookup. Reset at each drain.
        self._last_ids: list[str] = []
        self._last_ids_app = ""
        self._last_ids_minute: Any = None
        # The last non-bot hit whose visitor entry and first-party id are in the current
        # snapshot: a request's hits nearly all have the same ones (its events share the
        # visitor key, device and region objects: hit/ingest.py), and skip the entry's tuple
        # of 7 and its set lookup (and the first-party id's tuple and set insertion) when
        # _same_visitor finds them alike. Reset at each drain.
        self._last_visitor: Hit | None = None
        # The current snapshot's deep increments and members of the last deep event's app
        # and minute (its minute object, as _last_ids): a request's events nearly all share
        # them, and skip the (app, minute) tuple and its lookups. Either is None until that
        # app's minute has one (the snapshot holds an (app, minute) only with entries).
        # Reset at each drain.
        self._deep_app = ""
        self._deep_minute: Any = None
        self._deep_incs: dict[str, dict[str, int]] | None = None
        self._deep_members: set[tuple[str, str, str]] | None = None

    def count(self, hit: Hit) -> None:
        snap = self._current
        if hit.event_id:
            if hit.resent:  # counted at flush, once its id is known to be new (store/dedupe.py)
                snap.resent.append(hit)
                snap.events += 1
                return
            app, minute = hit.app, _minute_of(hit)
            ids = self._last_ids
            if minute is not self._last_ids_minute or app != self._last_ids_app:
                found = snap.event_ids.get((app, minute))
                if found is None:
                    found = snap.event_ids[(app, minute)] = []
                ids = found
                self._last_ids, self._last_ids_app, self._last_ids_minute = ids, app, minute
            ids.append(hit.event_id)
        key = _cell_of(hit)
        sums = snap.cube.get(key)
        if sums is None:
            sums = snap.cube[self._kept_cell(key)] = _untracked([0, 0, 0, 0])
        sums[0] += 1
        if hit.engaged_ms:
            sums[1] += hit.engaged_ms
        if hit.scroll >= 0:
            sums[2] += hit.scroll
            sums[3] += 1
        snap.events += 1
        if hit.device.device_class != BOT:  # not Device.is_bot: a Python property, called per hit
            if not self._same_visitor(hit):
                seen = _audience_of(hit)
                if seen not in snap.visitors:
                    snap.visitors.add(self._kept_audience(seen))
                if hit.first_party_id:
                    snap.first_party.add(_first_party_of(hit))
                self._last_visitor = hit
            if hit.deep is not None:
                self._count_deep(hit.app, _minute_of(hit), hit.deep)

    def _same_visitor(self, hit: Hit) -> bool:
        """`hit` has the visitor entry and the first-party entry of the last hit `count`
        added them for (the same objects, or equal strings), so they are in the current
        snapshot already. Objects that are equal but not the same only cost the
        lookups this skips."""
        last = self._last_visitor
        return (
            last is not None and last.visitor is hit.visitor and last.minute == hit.minute
            and last.device is hit.device and last.region is hit.region and last.month_visitor is hit.month_visitor
            and last.app == hit.app and last.lang == hit.lang and last.first_party_id == hit.first_party_id
        )

    def _kept_cell(self, key: Any) -> Any:
        """A new cube key (a CellEntry) as the snapshot keeps it (hit/record.py)."""
        return self._kept(key, _CELL_DEVICE, _CELL_REGION)

    def _kept_audience(self, seen: Any) -> Any:
        """A new visitor entry (an AudienceEntry) as the snapshot keeps it."""
        return self._kept(seen, _AUDIENCE_DEVICE, _AUDIENCE_REGION)

    def _kept(self, entry: Any, device_at: int, region_at: int) -> Any:
        """`entry` with its Device and Region as plain tuples. Its other fields are the very
        objects of the hit's entry: typed as a CellEntry, compiled code would unbox the
        minute and box it again as a new int, which every later lookup of the key then
        compares by value (hit/ingest.py _minute_object)."""
        values = list(entry)
        values[device_at] = self._plain(values[device_at])
        values[region_at] = self._plain(values[region_at])
        return tuple(values)

    def _plain(self, value: tuple[str, ...]) -> tuple[str, ...]:
        """A Device or Region as the plain tuple of its strings, one per value and snapshot."""
        found = self._plain_values.get(value)
        if found is None:
            found = tuple(value)
            self._plain_values[found] = found
        return found

    def _count_deep(self, app: str, minute: Any, deep: DeepFacts) -> None:  # minute: _minute_of
        snap = self._current
        if minute is not self._deep_minute or app != self._deep_app:
            self._deep_app, self._deep_minute = app, minute
            self._deep_incs = snap.deep_incs.get((app, minute))
            self._deep_members = snap.deep_members.get((app, minute))
        if deep.incs:
            of_suffix = self._deep_incs
            if of_suffix is None:
                of_suffix = self._deep_incs = snap.deep_incs[(app, minute)] = {}
            for suffix, name, amount in deep.incs:
                names = of_suffix.get(suffix)
                if names is None:
                    # Strings and ints only: CPython keeps such a dict out of the collector's walks.
                    names = of_suffix[suffix] = {}
                names[name] = names.get(name, 0) + amount
        if deep.members:
            members = self._deep_members
            if members is None:
                members = self._deep_members = snap.deep_members[(app, minute)] = untracked_set()
            # The facts' own tuples (immutable; the journal's replay makes equal ones).
            members.update(deep.members)
        session = deep.session
        if session is not None:
            found = snap.sessions.get((app, session.ms))
            if found is None:
                # A copy: the journal replays the same facts into other snapshots.
                snap.sessions[(app, session.ms)] = [minute, session.copy()]
            else:
                found[0] = min(found[0], minute)
                found[1].merge(session)

    def reject(self, app: str, minute: int, reason: str) -> None:
        """A rejected event, counted by reason (or a flag: FLAGGED + reason)."""
        rejected = self._current.rejected
        key = (app, minute, reason)
        rejected[key] = rejected.get(key, 0) + 1

    def drain(self) -> Snapshot:
        """Hand over everything counted so far and start afresh (no await: atomic)."""
        snap, self._current = self._current, Snapshot()
        self._plain_values = {}
        self._last_ids, self._last_ids_app, self._last_ids_minute = [], "", None
        self._last_visitor = None
        self._deep_app, self._deep_minute, self._deep_incs, self._deep_members = "", None, None, None
        self._drained_events += snap.events
        _add_reasons(self._drained_rejects, snap)
        return snap

    def totals(self) -> tuple[int, dict[str, int]]:
        """Events counted, and rejections and flags by reason (rejected:REASON[:FIELD] as
        REASON, flagged:REASON as is), since this process started."""
        reasons = dict(self._drained_rejects)
        _add_reasons(reasons, self._current)
        return self._drained_events + self._current.events, reasons

    @property
    def pending_events(self) -> int:
        return self._current.events

    @property
    def pending_cells(self) -> int:
        return self._current.cells


def _dicts_by_app(entries: dict[Any, Any], pace: Callable[[], None] = no_pacing) -> dict[str, dict[Any, Any]]:
    """`entries` (each key starts with its app) as one dict per app, in their order."""
    out: dict[str, dict[Any, Any]] = {}
    for n, (key, value) in enumerate(entries.items()):
        if n % PACE_ENTRIES == PACE_ENTRIES - 1:
            pace()
        found = out.get(key[0])
        if found is None:
            found = out[key[0]] = {}
        found[key] = value
    return out


def _sets_by_app(entries: set[Any], pace: Callable[[], None] = no_pacing) -> dict[str, set[Any]]:
    """`entries` (each starts with its app) as one set per app."""
    out: dict[str, set[Any]] = {}
    for n, key in enumerate(entries):
        if n % PACE_ENTRIES == PACE_ENTRIES - 1:
            pace()
        found = out.get(key[0])
        if found is None:
            found = out[key[0]] = untracked_set()  # a part's, as the snapshot's (see there)
        found.add(key)
    return out


def _joined_dicts(by_app: dict[str, dict[Any, Any]], apps: list[str]) -> dict[Any, Any]:
    """The entries of `apps` in one dict. Joined into the first app's own dict (made by
    _dicts_by_app, one part's alone): nothing is copied for a part of one app."""
    found = [by_app[app] for app in apps if app in by_app]
    if not found:
        return {}
    joined = found[0]
    for more in found[1:]:
        joined.update(more)
    return joined


def _joined_sets(by_app: dict[str, set[Any]], apps: list[str]) -> set[Any]:
    """The entries of `apps` in one set, as _joined_dicts."""
    found = [by_app[app] for app in apps if app in by_app]
    if not found:
        return set()
    joined = found[0]
    for more in found[1:]:
        joined |= more
    return joined


def _add_reasons(into: dict[str, int], snap: Snapshot) -> None:
    for (_, _, reason), n in snap.rejected.items():
        if not reason.startswith(FLAGGED):
            reason = reason.partition(":")[0]  # the field a problem names is detail, not a reason
        into[reason] = into.get(reason, 0) + n
