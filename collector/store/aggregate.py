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
from typing import Any, Final

from collector.enrich.device import BOT
from collector.features.deep import DeepFacts, Session
from collector.features.facts import Shared
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
)
from collector.native import c_module
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

# A hit's fields, read by position from the hit as a tuple of any objects (Aggregator.count's
# `fields`): each is the object the hit holds, put into the snapshot's entries as is. Typed
# by name (hit.minute: an int), compiled code would box a new int object into each entry
# where the hit's minute is its one object per minute value (hit/ingest.py _minute_object),
# which the entries' lookups then compare by identity. A read by position is a C call,
# where the itemgetters of hit/record.py (cell_of, audience_of) are Python-level calls,
# ~250-1,200 instructions each (bench/RESULTS.md, session 21).
_APP: Final = 0
_MINUTE: Final = 1
_ETYPE: Final = 2
_DEVICE: Final = 3
_REGION: Final = 4
_VISITOR: Final = 5
_MONTH_VISITOR: Final = 6
_PAGE: Final = 7
_PAGE_CODE: Final = 8
_REFERRER: Final = 9
_VISIT_FLAG: Final = 10
_FIRST_PARTY_ID: Final = 13
_LANG: Final = 15
_POSITIONS: Final = {
    "app": _APP, "minute": _MINUTE, "etype": _ETYPE, "device": _DEVICE, "region": _REGION, "visitor": _VISITOR,
    "month_visitor": _MONTH_VISITOR, "page": _PAGE, "page_code": _PAGE_CODE, "referrer": _REFERRER,
    "visit_flag": _VISIT_FLAG, "first_party_id": _FIRST_PARTY_ID, "lang": _LANG,
}
if any(Hit._fields[at] != name for name, at in _POSITIONS.items()):
    raise TypeError("the aggregator reads a Hit's fields by position: update the positions above")
# Aggregator._cell_key and _visitor_entry spell a Cell's and an Audience's fields out in
# their order (the memo key of _sums_of: a Cell's but its app, device and region).
if Cell._fields != ("app", "minute", "etype", "device", "region", "page", "page_code", "referrer", "visit_flag", "lang"):
    raise TypeError("Cell's fields changed: update Aggregator._cell_key and _sums_of's memo key")
if Audience._fields != ("app", "minute", "device", "region", "lang", "visitor", "month_visitor"):
    raise TypeError("Audience's fields changed: update Aggregator._visitor_entry")

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
        left = _shed_grouped(self.deep_incs, left, levels=2)
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


def _shed_grouped(groups: dict[Any, Any], left: int, levels: int = 1) -> int:
    """_shed for a dict of collections nested `levels` deep (deep members: 1, a set per
    (app, minute); deep increments: 2, a dict of field dicts per (app, minute)): entry by
    entry, an emptied collection's key dropped."""
    while groups and left > 0:
        key, entries = groups.popitem()
        left = _shed(entries, left) if levels == 1 else _shed_grouped(entries, left, levels - 1)
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
        self._last_visitor: tuple[Any, ...] | None = None  # (the hit's fields: see _same_visitor)
        # The current snapshot's deep increments and members of the last deep event's app
        # and minute (its minute object, as _last_ids): a request's events nearly all share
        # them, and skip the (app, minute) tuple and its lookups. Either is None until that
        # app's minute has one (the snapshot holds an (app, minute) only with entries).
        # Reset at each drain.
        self._deep_app = ""
        self._deep_minute: Any = None
        self._deep_incs: dict[str, dict[str, int]] | None = None
        self._deep_members: set[tuple[str, str, str]] | None = None
        # Shared increments (DeepFacts.shared and .scaled: a memo's, such as the exposures of
        # a track's item, a resource's time played, which many events add) counted since the
        # drain and not added to the increments yet, by deep group (app, minute): the Shared
        # -> times, how often (or how much, a scaled one) it was met; _deep_repeats is the
        # current group's (None until it has one). An event's increments cost two dict
        # lookups and an insertion each (~600 instructions; an exposure has 3, a media event
        # 6 to 12); here a lookup for each Shared, and each of its increments is added once,
        # times `times` (_fold_repeats), at the drain or before the snapshot is read
        # (current()). The sums are the same; only the order in which fields enter the
        # dicts differs, which no reader depends on (store/flush_calls.py sorts them).
        self._repeats: dict[tuple[str, Any], dict[Shared, int]] = {}
        self._deep_repeats: dict[Shared, int] | None = None
        # The members last added to _deep_members (a DeepFacts' list, never changed once
        # counted): a request's media events of a resource carry its very member list
        # (features/media.py, Resource.media_members), ~10 tuples, each hashed for the set
        # insertion (~430 instructions a member) only to find itself there. None when the
        # group changed since.
        self._deep_last_members: list[tuple[str, str, str]] | None = None
        # The current snapshot's session entry (snap.sessions) of the last media event's app
        # and admitted session id (its objects: a request's media events of a resource
        # share them, features/media.py _session): no (app, ms) tuple and lookup for them.
        self._last_session: list[Any] | None = None
        self._last_session_app = ""
        self._last_session_ms = ""
        # The app, Device and Region of the last hit counted (objects: compared by identity),
        # with the plain tuples (_plain) that stand for that Device and Region in the
        # current snapshot's entries, and the cube memo: the current snapshot's sums of the
        # cells counted since those three last changed that were already in the cube when
        # the memo was asked for them (_memo_sums says why not the new ones), by the rest
        # of their Cell's fields (_sums_of). A request's events share those three objects
        # (hit/ingest.py), and a cube key of nested tuples is hashed item by item at each
        # lookup (Python 3.11's tuples keep no hash of their own) and compared item by item
        # with the key found: ~1,460 instructions a lookup, against a few hundred for the
        # memo's tuple of 7.
        # Emptied when the three change and at each drain: it never holds another
        # snapshot's sums, nor more than the current snapshot's cells. `_hit_device` None:
        # no hit counted since the drain (every hit has a Device).
        self._hit_app = ""
        self._hit_device: Any = None
        self._hit_region: Any = None
        self._plain_device: Any = None
        self._plain_region: Any = None
        self._cells: dict[tuple[Any, ...], list[int]] = {}
        # Ahead of the cube memo, for hits without a page (all but page views: a POST-50
        # request's events but one): the last such cell counted of each event type (a
        # _LastCell, kept and refilled as the memo's three change: a request's first hit of
        # a type makes none). A hit whose fields are the very objects it holds — its app,
        # Device and Region, its minute object, the empty strings, the small ints — has its
        # cell: no tuple of 7 made, hashed and compared (~900 instructions an event,
        # bench/RESULTS.md session 23). Emptied at each drain (its sums are the current
        # snapshot's).
        self._last_cells: dict[str, _LastCell] = {}

    def count(self, hit: Hit) -> None:
        snap = self._current
        fields: tuple[Any, ...] = hit  # read by position as objects (see _MINUTE)
        if hit.event_id:
            if hit.resent:  # counted at flush, once its id is known to be new (store/dedupe.py)
                snap.resent.append(hit)
                snap.events += 1
                return
            app, minute = hit.app, fields[_MINUTE]
            ids = self._last_ids
            if minute is not self._last_ids_minute or app != self._last_ids_app:
                found = snap.event_ids.get((app, minute))
                if found is None:
                    found = snap.event_ids[(app, minute)] = []
                ids = found
                self._last_ids, self._last_ids_app, self._last_ids_minute = ids, app, minute
            ids.append(hit.event_id)
        sums = self._sums_of(hit, fields)  # (and the hit's app, device and region are _hit_*'s)
        # `sums[i] = sums[i] + n`, not `+=`: compiled, the augmented form adds the list's
        # items as objects (PyNumber_InPlaceAdd, ~100 instructions); this one as C integers.
        sums[0] = sums[0] + 1
        if hit.engaged_ms:
            sums[1] = sums[1] + hit.engaged_ms
        if hit.scroll >= 0:
            sums[2] = sums[2] + hit.scroll
            sums[3] = sums[3] + 1
        snap.events += 1
        if hit.device.device_class != BOT:  # not Device.is_bot: a Python property, called per hit
            if not self._same_visitor(fields):
                snap.visitors.add(self._visitor_entry(hit, fields))
                if hit.first_party_id:
                    first_party: Any = (hit.app, fields[_MINUTE], hit.first_party_id)  # (Any: see _cell_key)
                    snap.first_party.add(first_party)
                self._last_visitor = fields
            if hit.deep is not None:
                self._count_deep(hit.app, fields[_MINUTE], hit.deep)

    def _sums_of(self, hit: Hit, fields: tuple[Any, ...]) -> list[int]:
        """The current snapshot's sums of `hit`'s cell, made when new; through the cube
        memo when `hit` has the app and the very Device and Region objects of the hit
        before (see __init__). Under those three, a Cell is its other fields: equal memo
        keys are equal cube keys, and the memo's value is the list the cube holds. A hit
        without a page takes the last cell of its type instead when it holds that cell's
        very objects (_last_cells, see __init__)."""
        device, region = fields[_DEVICE], fields[_REGION]
        if device is self._hit_device and region is self._hit_region and hit.app == self._hit_app:
            if fields[_PAGE]:  # a page view: pages vary, its type's last cell would seldom be its own
                return self._memo_sums(hit, fields)
            etype = fields[_ETYPE]
            last = self._last_cells.get(etype)
            if last is not None and last.same(fields):
                return last.sums
            sums = self._memo_sums(hit, fields)
            if last is None:
                self._last_cells[etype] = _LastCell(fields, sums)
            else:
                last.keep(fields, sums)
            return sums
        # Another app, device or region: the memo starts afresh with them (and so do
        # _plain_device and _plain_region, which _visitor_entry reads: hence the last cells
        # are asked only above, under the memo's three). A GET's hit mostly comes here, and
        # pays no memo entry (the hit after fills it, when it has the same three).
        self._cells.clear()
        self._hit_app, self._hit_device, self._hit_region = hit.app, device, region
        self._plain_device, self._plain_region = self._plain(device), self._plain(region)
        cube = self._current.cube
        key = self._cell_key(hit, fields)
        found = cube.get(key)
        if found is None:
            found = cube[key] = _untracked([0, 0, 0, 0])
        return found

    def _memo_sums(self, hit: Hit, fields: tuple[Any, ...]) -> list[int]:
        """_sums_of's through the cube memo (the hit has the memo's app, device and region)."""
        # (Any: typed as a tuple of 7, compiled code builds it anew for each use.)
        rest: Any = (
            fields[_MINUTE], fields[_ETYPE], fields[_PAGE], fields[_PAGE_CODE], fields[_REFERRER],
            fields[_VISIT_FLAG], fields[_LANG],
        )
        sums = self._cells.get(rest)
        if sums is None:
            # Mostly a cell new to the snapshot: the key is hashed once, not for a lookup
            # and again for the insertion.
            new = _untracked([0, 0, 0, 0])
            sums = self._current.cube.setdefault(self._cell_key(hit, fields), new)
            if sums is not new:
                # A cell met before under these three: kept in the memo from now on. A
                # new one is not: its next hit mostly takes its type's last cell
                # (_LastCell), and in the POST-50 bench none of the 1,137 new cells of
                # 4,000 events was asked of the memo again, where its insertion cost
                # ~600 instructions (bench/RESULTS.md session 26). A cell asked again
                # costs one cube lookup more, once.
                self._cells[rest] = sums
        return sums

    def _cell_key(self, hit: Hit, fields: tuple[Any, ...]) -> Any:
        """`hit`'s cube key (a CellEntry, Cell's fields in its order) as the snapshot keeps it:
        its device and region the plain tuples of _hit_device and _hit_region (hit/record.py
        says why), its other fields the very objects the hit holds. Typed Any: as a
        CellEntry, compiled code would unpack the tuple at each use and pack it again,
        the minute boxed as a new int (see _MINUTE)."""
        return (
            hit.app, fields[_MINUTE], fields[_ETYPE], self._plain_device, self._plain_region, fields[_PAGE],
            fields[_PAGE_CODE], fields[_REFERRER], fields[_VISIT_FLAG], fields[_LANG],
        )

    def _visitor_entry(self, hit: Hit, fields: tuple[Any, ...]) -> Any:
        """`hit`'s visitor entry (an AudienceEntry, Audience's fields in its order) as the
        snapshot keeps it, as _cell_key (called after _sums_of: _hit_* are the hit's)."""
        return (
            hit.app, fields[_MINUTE], self._plain_device, self._plain_region, fields[_LANG], fields[_VISITOR],
            fields[_MONTH_VISITOR],
        )

    def _same_visitor(self, fields: tuple[Any, ...]) -> bool:
        """The hit of `fields` has the visitor entry and the first-party entry of the last
        hit `count` added them for (the same objects), so they are in the current snapshot
        already. Objects that are equal but not the same only cost the lookups this skips.
        By position and identity alone (_MINUTE says why): read by name, each field was
        type-checked, the minute unboxed (~350 instructions an event, bench/RESULTS.md
        session 23)."""
        last = self._last_visitor
        return (
            last is not None and last[_VISITOR] is fields[_VISITOR] and last[_MINUTE] is fields[_MINUTE]
            and last[_DEVICE] is fields[_DEVICE] and last[_REGION] is fields[_REGION]
            and last[_MONTH_VISITOR] is fields[_MONTH_VISITOR] and last[_APP] is fields[_APP]
            and last[_LANG] is fields[_LANG] and last[_FIRST_PARTY_ID] is fields[_FIRST_PARTY_ID]
        )

    def _plain(self, value: tuple[str, ...]) -> tuple[str, ...]:
        """A Device or Region as the plain tuple of its strings, one per value and snapshot."""
        found = self._plain_values.get(value)
        if found is None:
            found = tuple(value)
            self._plain_values[found] = found
        return found

    def _count_deep(self, app: str, minute: Any, deep: DeepFacts) -> None:  # minute: the hit's object (_MINUTE)
        snap = self._current
        if minute is not self._deep_minute or app != self._deep_app:
            self._deep_app, self._deep_minute = app, minute
            self._deep_incs = snap.deep_incs.get((app, minute))
            self._deep_members = snap.deep_members.get((app, minute))
            self._deep_repeats = self._repeats.get((app, minute))
            self._deep_last_members = None
        shared, scaled = deep.shared, deep.scaled
        if shared is not None or scaled is not None:
            repeats = self._deep_repeats
            if repeats is None:
                repeats = self._deep_repeats = self._repeats[(app, minute)] = {}
            if shared is not None:
                _repeat(repeats, shared, 1)
            if scaled is not None:
                _repeat(repeats, scaled, deep.amount)
        elif deep.incs:
            of_suffix = self._deep_incs
            if of_suffix is None:
                of_suffix = self._deep_incs = snap.deep_incs[(app, minute)] = {}
            _add_incs(of_suffix, deep.incs, 1)
        added = deep.members
        last = self._deep_last_members
        if added and added is not last and not _same_objects(added, last):
            members = self._deep_members
            if members is None:
                members = self._deep_members = snap.deep_members[(app, minute)] = untracked_set()
            # The facts' own tuples (immutable; the journal's replay makes equal ones).
            members.update(added)
            self._deep_last_members = added
        session = deep.session
        if session is not None:
            ms = session.ms
            if ms is self._last_session_ms and app is self._last_session_app and self._last_session is not None:
                found: list[Any] | None = self._last_session
            else:
                found = snap.sessions.get((app, ms))
            if found is None:
                # A copy: the journal replays the same facts into other snapshots.
                found = snap.sessions[(app, ms)] = [minute, session.copy()]
            else:
                found[0] = min(found[0], minute)
                kept: Session = found[1]  # (typed: merge called directly, not looked up by name)
                kept.merge(session)
            self._last_session, self._last_session_app, self._last_session_ms = found, app, ms

    def _fold_repeats(self) -> None:
        """The shared facts' increments (_repeats) added to their groups'."""
        if not self._repeats:
            return
        deep_incs = self._current.deep_incs
        for group, repeats in self._repeats.items():
            of_suffix = deep_incs.get(group)
            if of_suffix is None:
                of_suffix = deep_incs[group] = {}
            for part, times in repeats.items():
                _add_incs(of_suffix, part.incs, times)
        self._repeats = {}
        self._deep_app, self._deep_minute = "", None  # (the group's collections looked up again)

    def current(self) -> Snapshot:
        """What has been counted since the last drain (all of it: for a reader, such as a test)."""
        self._fold_repeats()
        return self._current

    def reject(self, app: str, minute: int, reason: str) -> None:
        """A rejected event, counted by reason (or a flag: FLAGGED + reason)."""
        rejected = self._current.rejected
        key = (app, minute, reason)
        rejected[key] = rejected.get(key, 0) + 1

    def drain(self) -> Snapshot:
        """Hand over everything counted so far and start afresh (no await: atomic)."""
        self._fold_repeats()
        snap, self._current = self._current, Snapshot()
        self._plain_values = {}
        self._last_ids, self._last_ids_app, self._last_ids_minute = [], "", None
        self._last_visitor = None
        self._deep_app, self._deep_minute, self._deep_incs, self._deep_members = "", None, None, None
        self._deep_repeats, self._deep_last_members = None, None
        self._last_session, self._last_session_app, self._last_session_ms = None, "", ""
        self._hit_app, self._hit_device, self._hit_region, self._plain_device, self._plain_region = "", None, None, None, None
        self._cells = {}  # (new dicts: the old ones' lists are the drained snapshot's)
        self._last_cells = {}
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
        return self.current().cells


def _add_incs(of_suffix: dict[str, dict[str, int]], incs: list[tuple[str, str, int]], times: int) -> None:
    """Deep increments (DeepFacts.incs), each `times` over, into a group's (Snapshot.deep_incs)."""
    for suffix, name, amount in incs:
        names = of_suffix.get(suffix)
        if names is None:
            # Strings and ints only: CPython keeps such a dict out of the collector's walks.
            names = of_suffix[suffix] = {}
        names[name] = names.get(name, 0) + amount * times


def _repeat(repeats: dict[Shared, int], part: Shared, times: int) -> None:
    """`part`'s increments counted `times` over more (Aggregator._repeats). An int, not a
    list to add to in place: most parts are met a few times in a group, and a new list each
    cost more than the replaced int."""
    repeats[part] = repeats.get(part, 0) + times


def _same_objects(these: list[Any], those: list[Any] | None) -> bool:
    """`these` hold the very objects `those` do, in order (compared by identity only)."""
    if those is None or len(these) != len(those):
        return False
    at = 0
    for item in these:
        if item is not those[at]:
            return False
        at += 1
    return True


class _LastCell:
    """The last cell of an event type that Aggregator._sums_of counted a hit without a page
    in: the hit's fields that make up its Cell beyond its type, and the cell's sums. A hit
    holding the very same objects (compared by identity only: an equal object that is not
    the same merely takes the memos' path) has that cell."""

    __slots__ = ("app", "device", "region", "minute", "page", "page_code", "referrer", "visit_flag", "lang", "sums")

    # Set by keep() alone (no None first, then the fields: twice the stores a new one).
    app: Any
    device: Any
    region: Any
    minute: Any
    page: Any
    page_code: Any
    referrer: Any
    visit_flag: Any
    lang: Any
    sums: list[int]

    def __init__(self, fields: tuple[Any, ...], sums: list[int]) -> None:
        self.keep(fields, sums)

    def same(self, fields: tuple[Any, ...]) -> bool:
        """`fields` (a Hit's, of this cell's type) hold this cell's objects: the same Cell."""
        return (
            fields[_DEVICE] is self.device and fields[_MINUTE] is self.minute and fields[_REGION] is self.region
            and fields[_APP] is self.app and fields[_PAGE] is self.page and fields[_PAGE_CODE] is self.page_code
            and fields[_REFERRER] is self.referrer and fields[_VISIT_FLAG] is self.visit_flag
            and fields[_LANG] is self.lang
        )

    def keep(self, fields: tuple[Any, ...], sums: list[int]) -> None:
        """Stand for `fields`' cell (its sums `sums`) from now on."""
        self.app, self.device, self.region = fields[_APP], fields[_DEVICE], fields[_REGION]
        self.minute, self.page, self.page_code = fields[_MINUTE], fields[_PAGE], fields[_PAGE_CODE]
        self.referrer, self.visit_flag, self.lang = fields[_REFERRER], fields[_VISIT_FLAG], fields[_LANG]
        self.sums = sums


def _dicts_by_app(entries: dict[Any, Any], pace: Callable[[], None] = no_pacing) -> dict[str, dict[Any, Any]]:
    """`entries` (each key starts with its app) as one dict per app, in their order. In C
    when built (store/_split.c: each key goes with the hash `entries` holds for it, where
    a cube key, a tuple of ten and two nested, was hashed again: ~200 of the split's ~785
    instructions a POST-50 event, bench/RESULTS.md session 25)."""
    if _DICTS_BY_FIRST is not None:
        return _DICTS_BY_FIRST(entries, pace, PACE_ENTRIES)
    return dicts_by_app_in_python(entries, pace)


def dicts_by_app_in_python(entries: dict[Any, Any], pace: Callable[[], None] = no_pacing) -> dict[str, dict[Any, Any]]:
    """_dicts_by_app where store/_split.c was not built (tests/test_split.py compares them)."""
    out: dict[str, dict[Any, Any]] = {}
    for n, (key, value) in enumerate(entries.items()):
        if n % PACE_ENTRIES == PACE_ENTRIES - 1:
            pace()
        found = out.get(key[0])
        if found is None:
            found = out[key[0]] = {}
        found[key] = value
    return out


def _compiled_split() -> Callable[[dict[Any, Any], Callable[[], None], int], dict[str, dict[Any, Any]]] | None:
    """store/_split.c's dicts_by_first; None when it was not built (or its build is stale)."""
    module = c_module("collector.store._split")
    return None if module is None else module.dicts_by_first


_DICTS_BY_FIRST: Final = _compiled_split()


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
