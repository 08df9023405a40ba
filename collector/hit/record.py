"""One hit, by name: what ingest makes of a valid event, what the journal writes and
replays, and what the aggregator counts.

`Hit` is the only spelling of a hit. The aggregator's entries derive from it here, in
one place: the cube key (`Cell`: what a hit is counted by) and the visitor entry
(`Audience`: who saw it, with the `Profile` fields that choose their UV HyperLogLogs). The
rollup reads both by name (features/pages.py). To count a hit by something new, add
the field to Hit and, if page views are broken down by it, to Cell (and to Profile
when it also gets UV per value); then a row in features/pages.py DIMENSIONS.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple, get_args

from collector.enrich.device import Device
from collector.enrich.geo import Region
from collector.features.facts import DeepFacts

# Visit flags of a page view (hit/visitors.py): the first page of a visit, its second.
NO_VISIT, VISIT_START, VISIT_SECOND_PAGE = 0, 1, 2


class Hit(NamedTuple):
    """A valid event, enriched: everything the counts need, nothing personal (the
    visitor keys are salted hashes, never an IP or a User-Agent)."""

    app: str
    minute: int  # epoch minute of the event (the client's clock when plausible)
    etype: str  # protocol event type
    device: Device
    region: Region
    visitor: bytes  # visitor key under the day's salt
    month_visitor: bytes  # under the month's salt
    page: str = ""  # page views: the page (capped), its code and referrer
    page_code: str = ""
    referrer: str = ""
    visit_flag: int = NO_VISIT
    engaged_ms: int = 0  # engagement events
    scroll: int = -1  # engagement events: scroll depth in percent; -1 none
    first_party_id: str = ""  # the beacon's own visitor id (vid)
    deep: DeepFacts | None = None  # what the deep tag's features count (features/deep.py)
    lang: str = ""  # page views: the browser language (features/pages.py language_of)
    # The client's event id, kept when dedupe is on (store/dedupe.py), and whether the
    # client re-sent the event (re=1): a re-sent event is held back from the counts
    # until its id is checked against those already counted.
    event_id: str = ""
    resent: int = 0


# Hit(field=value, ...), at half the cost: calling the class packs the keywords into a
# dict for its __new__ to unpack; calling __new__ itself passes them straight through.
# Ingest makes one per hit.
new_hit = functools.partial(Hit.__new__, Hit)


class Cell(NamedTuple):
    """The cube key: a hit's fields that page views and events are counted by, per minute."""

    app: str
    minute: int
    etype: str
    device: Device
    region: Region
    page: str
    page_code: str
    referrer: str
    visit_flag: int
    lang: str


class Profile(NamedTuple):
    """A visitor's fields that choose their per-value UV HyperLogLogs (the dimensions
    with uv in features/pages.py read these by the same names as in Cell)."""

    device: Device
    region: Region
    lang: str  # "" for events other than page views: they join no language's UV


class Audience(NamedTuple):
    """A visitor entry: a non-bot visitor seen in a minute, with their Profile's fields."""

    app: str
    minute: int
    device: Device  # the Profile's fields, in its order (checked below)
    region: Region
    lang: str
    visitor: bytes
    month_visitor: bytes


# Spelled out above so the type checker knows each field; kept equal to Profile here.
if Audience._fields[2 : 2 + len(Profile._fields)] != Profile._fields:
    raise TypeError("Audience must carry Profile's fields, in its order, after app and minute")

# The plain tuples the aggregator keeps, field for field a Cell, an Audience, a Profile
# (the type checker cannot derive them from the NamedTuples; their lengths are checked
# below) and a first-party visitor id's entry (app, minute, first_party_id).
#
# An entry the aggregator keeps holds its device and region as plain tuples of their
# strings (equal to the Device and Region, and hashing alike: store/aggregate.py makes
# them), not as the NamedTuples. CPython's garbage collector untracks a tuple once it
# holds only untracked values, but it counts a tuple *subclass* as tracked: with a Device
# in them, the second's cube keys and visitor entries (with the cells' count lists, some
# 5,000-7,000 objects) were walked by every generation-1 collection, 2-5 ms of the hit
# loop's time about once a second (bench/RESULTS.md, session 10). Readers name them again
# with named_cell and named_audience. (Of variable length to the type checker: mypyc
# unboxes a value typed as a fixed-length tuple and boxes it again as a new plain tuple,
# which would turn a Device read from a Cell into a plain tuple.)
DeviceFields = tuple[str, ...]
RegionFields = tuple[str, ...]
CellEntry = tuple[str, int, str, DeviceFields, RegionFields, str, str, str, int, str]
AudienceEntry = tuple[str, int, DeviceFields, RegionFields, str, bytes, bytes]
ProfileEntry = tuple[DeviceFields, RegionFields, str]
FirstPartyEntry = tuple[str, int, str]
for _entry, _named in ((CellEntry, Cell), (AudienceEntry, Audience), (ProfileEntry, Profile)):
    if len(get_args(_entry)) != len(_named._fields):
        raise TypeError(f"{_named.__name__}'s entry type must have one item per field")

# The aggregator's snapshots are split by app reading each entry's first field.
if not Cell._fields[0] == Audience._fields[0] == "app":
    raise TypeError("Cell and Audience must start with the app")

# C-speed getters: a hit's cube key, visitor entry and profile as plain tuples, equal to
# a Cell, an Audience and a Profile (the aggregator's dicts and sets need no NamedTuple
# construction per hit; those it keeps, it keeps with plain Device and Region fields, see
# above). profile_of also reads a Cell or an Audience.
# cell_of, audience_of and first_party_of read a Hit only, by position (itemgetter: a
# tuple's items, where attrgetter looks each field's name up on the class first).
def _hit_items(*fields: str) -> Callable[[Hit], Any]:
    return itemgetter(*(Hit._fields.index(name) for name in fields))


cell_of: Callable[[Hit], CellEntry] = _hit_items(*Cell._fields)
audience_of: Callable[[Hit], AudienceEntry] = _hit_items(*Audience._fields)
profile_of: Callable[[Hit | Cell | Audience], ProfileEntry] = attrgetter(*Profile._fields)
first_party_of: Callable[[Hit], FirstPartyEntry] = _hit_items("app", "minute", "first_party_id")


def _naming(named: Any) -> Callable[[tuple[Any, ...]], Any]:
    """A reader of `named`'s entries (CellEntry, AudienceEntry) as `named`, with their
    device and region as a Device and a Region again."""
    make, device_at, region_at = named._make, named._fields.index("device"), named._fields.index("region")

    def name(entry: tuple[Any, ...]) -> Any:
        values = list(entry)
        values[device_at] = Device._make(values[device_at])
        values[region_at] = Region._make(values[region_at])
        return make(values)

    return name


named_cell: Callable[[CellEntry], Cell] = _naming(Cell)
named_audience: Callable[[AudienceEntry], Audience] = _naming(Audience)
