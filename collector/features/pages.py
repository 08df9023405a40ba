"""Page views and engagement: the basic counts of every hit, and the page-view breakdowns.

Per cube cell (hit/record.py Cell, summed per minute by the aggregator): page views,
visits, engagement and scroll, bot traffic, `ev:TYPE` for the other event types — into
the counters hash (names in store/names.py) — and page views per value of each of
DIMENSIONS (`…:d:DIM`). Per visitor entry (Audience): the UV HyperLogLogs, overall and
per value of the dimensions with `uv`.

DIMENSIONS is the one table of page-view breakdowns: the rollup counts them, the read
API serves them (`breakdown=NAME`) and docs/redis-keys.md lists them (tests/test_names.py).
To add one: the field to hit/record.py (Hit, Cell, and Profile for UV), ingest sets it,
a row here.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Final

from collector.enrich.device import BOT, Device
from collector.enrich.geo import Region
from collector.hit.record import VISIT_SECOND_PAGE, VISIT_START, Cell, Profile, named_cell
from collector.store import keys, names

UNKNOWN = "(unknown)"
OTHER = "(other)"
PAGEVIEW, ENGAGEMENT = "pageview", "engagement"


def _itself(value: str) -> str:
    return value


@dataclass(frozen=True, slots=True)
class PageDimension:
    """A page-view breakdown: a `…:d:NAME` hash of page views per value."""

    name: str
    field: str  # the Cell field its value comes from (a Profile field when uv)
    value: Callable[[Any], str] = _itself  # the value, from that field's
    uv: bool = False  # also one UV HyperLogLog per value (…:u:NAME:VALUE)
    optional: bool = False  # an empty value is not counted (a page view without a page code)
    bots: bool = False  # counted for bots' page views, and only for them
    breakdown: str = ""  # the /api/stats breakdown it belongs to, when not its own name
    # dataclasses.field spelled in full: the class's own `field` attribute shadows the bare name
    suffix: str = dataclasses.field(init=False)  # of its hash's key

    def __post_init__(self) -> None:
        object.__setattr__(self, "suffix", keys.dimension_suffix(self.name))


# ---- region values ------------------------------------------------------------------


def region_values(region: Region) -> tuple[str, str, str]:
    """Dimension values for country, province and city: 'CN', 'CN/330000', 'CN/330000/330100'."""
    country = _clean(region.country) or UNKNOWN
    province = country + "/" + (_clean(region.province) or UNKNOWN)
    city = province + "/" + (_clean(region.city) or UNKNOWN)
    return country, province, city


def _clean(part: str) -> str:
    return part.replace("/", "-")  # "/" separates the levels of a region value


# The three levels' values come from one computation per region (bounded, like every
# cache here: regions repeat far below it).
_cached_region_values = functools.lru_cache(maxsize=100_000)(region_values)


def _region_level(level: int) -> Callable[[Region], str]:
    return lambda region: _cached_region_values(region)[level]


# ---- the browser language -----------------------------------------------------------

# A BCP 47 tag's shape: subtags of 1-8 letters or digits, joined by '-' (or '_', as some
# clients write 'zh_CN').
_LANGUAGE_TAG = re.compile(r"[A-Za-z0-9]{1,8}(?:[-_][A-Za-z0-9]{1,8})*")


@functools.lru_cache(maxsize=4096)  # a handful of tags make nearly all page views
def language_of(tag: str | None) -> str:
    """The `lang` dimension's value: the primary language subtag of the page view's BCP 47
    tag, lower-cased ('zh-CN' → 'zh', 'en_US' → 'en'); '(unknown)' when the tag is absent
    or not shaped like one; '(other)' when its primary subtag is not 2-3 letters — private
    use ('x-…'), grandfathered ('i-…'), digits, or 5-8 letters (reserved for languages
    registered later; none is). So at most 26² + 26³ values, whatever clients send."""
    if not tag or not _LANGUAGE_TAG.fullmatch(tag):
        return UNKNOWN
    primary = re.split("[-_]", tag, maxsplit=1)[0]
    return primary.lower() if 2 <= len(primary) <= 3 and primary.isalpha() else OTHER


# ---- the table ----------------------------------------------------------------------

# In the read API's order (its breakdown list and error message).
DIMENSIONS: tuple[PageDimension, ...] = (
    PageDimension("page", "page"),
    PageDimension("page_code", "page_code", optional=True),
    PageDimension("referrer", "referrer"),
    PageDimension("device", "device", attrgetter("device_class"), uv=True),
    PageDimension("browser", "device", attrgetter("browser")),
    PageDimension("os", "device", attrgetter("os")),
    PageDimension("lang", "lang", uv=True, optional=True),  # "": a page view journaled before lang was counted
    PageDimension("country", "region", _region_level(0), uv=True, breakdown="region"),
    PageDimension("province", "region", _region_level(1), uv=True, breakdown="region"),
    PageDimension("city", "region", _region_level(2), uv=True, breakdown="region"),
    PageDimension("bot", "device", attrgetter("browser"), bots=True),
)
DIMENSION_NAMES = tuple(dim.name for dim in DIMENSIONS)
UV_DIMENSIONS = tuple(dim.name for dim in DIMENSIONS if dim.uv)
# The /api/stats breakdowns these make (the region levels are one: `region`).
BREAKDOWNS = tuple(dict.fromkeys(dim.breakdown or dim.name for dim in DIMENSIONS))
REGION_LEVELS = tuple(dim.name for dim in DIMENSIONS if dim.breakdown == "region")


def _check_table() -> None:
    """A row that reads a field the cube key (or, for uv, the visitor's profile) does not
    carry would count nothing, or fail at the first flush: fail at import instead."""
    for dim in DIMENSIONS:
        carried = Profile._fields if dim.uv else Cell._fields
        if dim.field not in carried:
            raise ValueError(f"page dimension {dim.name!r} reads {dim.field!r}, not among {carried}")
        if dim.uv and dim.bots:
            raise ValueError(f"page dimension {dim.name!r}: bots have no UV")
    if len(set(DIMENSION_NAMES)) != len(DIMENSION_NAMES):
        raise ValueError("a page dimension is named twice")


_check_table()

_BOT_DIMENSIONS = tuple(dim for dim in DIMENSIONS if dim.bots)
_HUMAN_DIMENSIONS = tuple(dim for dim in DIMENSIONS if not dim.bots)
# A human page view's dimensions whose value comes from the visitor's profile (device,
# region, ...) are worked out once per profile; the others (page, referrer, ...) per cell.
_PROFILE_DIMENSIONS = tuple(dim for dim in _HUMAN_DIMENSIONS if dim.field in Profile._fields)
_CELL_DIMENSIONS = tuple(dim for dim in _HUMAN_DIMENSIONS if dim.field not in Profile._fields)
_UV_DIMENSIONS = tuple(dim for dim in DIMENSIONS if dim.uv)

# The positions count_cell reads a cube entry (hit/record.py CellEntry: a Cell's fields
# in its order, the device and region as plain tuples) at: the rollup hands it the
# snapshot's entries as they are, where naming each as a Cell (named_cell: a Python call
# and three NamedTuple constructions) was about a third of the fold's instructions per
# POST-50 event (bench/RESULTS.md, session 22).
# (Final literals: compiled code reads them as constants, not as module attributes.)
_ETYPE: Final = 2
_DEVICE: Final = 3
_REGION: Final = 4
_VISIT_FLAG: Final = 8
_LANG: Final = 9
_DEVICE_CLASS: Final = 0
if (
    [Cell._fields[at] for at in (_ETYPE, _DEVICE, _REGION, _VISIT_FLAG, _LANG)] != ["etype", "device", "region", "visit_flag", "lang"]
    or Device._fields[_DEVICE_CLASS] != "device_class"
):
    raise TypeError("count_cell reads a cube entry by position: update the positions above")
# Of _CELL_DIMENSIONS: (hash suffix, the entry's position of its field, its value
# function or None for the field itself, optional).
_CELL_DIMENSION_READS: tuple[tuple[str, int, Callable[[Any], str] | None, bool], ...] = tuple(
    (dim.suffix, Cell._fields.index(dim.field), None if dim.value is _itself else dim.value, dim.optional)
    for dim in _CELL_DIMENSIONS
)


# Entries kept by each of PageCounter's caches before it starts afresh (a few hundred
# bytes each): device and region combinations repeat, far below this.
CACHE_ENTRIES = 100_000


def increment(fields: dict[str, dict[str, int]], suffix: str, name: str, amount: int) -> None:
    """Add `amount` to field `name` of the hash `suffix` (a minute's deltas, rollup.py)."""
    counts = fields.get(suffix)
    if counts is None:
        counts = fields[suffix] = {}
    counts[name] = counts.get(name, 0) + amount


def _values(dims: tuple[PageDimension, ...], source: Any) -> list[tuple[PageDimension, str]]:
    """Each dimension's value in `source` (a Cell or Profile), without the empty optional ones."""
    found = []
    for dim in dims:
        value = dim.value(getattr(source, dim.field))
        if value or not dim.optional:
            found.append((dim, value))
    return found


class PageCounter:
    """Counts cube cells and visitor entries into a minute's deltas (rollup.py), with
    the values of each visitor profile worked out once (bounded caches)."""

    def __init__(self) -> None:
        self._profile_fields: dict[tuple, tuple[tuple[str, str], ...]] = {}
        self._visitor_suffixes: dict[tuple, tuple[str, ...]] = {}

    def count_cell(self, fields: dict[str, dict[str, int]], entry: tuple[Any, ...], sums: list[int]) -> None:
        """A cube entry (CellEntry, as the snapshot keeps it: read by position) and its
        `sums`: [events, engaged_ms, scroll_sum, scroll_count] (aggregate.py)."""
        n, engaged_ms, scroll_sum, scroll_count = sums
        c = keys.COUNTERS
        etype: str = entry[_ETYPE]
        if entry[_DEVICE][_DEVICE_CLASS] == BOT:  # Device.is_bot
            increment(fields, c, names.BOT_HITS, n)
            if etype == PAGEVIEW:
                increment(fields, c, names.BOT_PV, n)
                for dim, value in _values(_BOT_DIMENSIONS, named_cell(entry)):  # rare: named
                    increment(fields, dim.suffix, value, n)
            return
        if etype == PAGEVIEW:
            increment(fields, c, names.PV, n)
            visit_flag: int = entry[_VISIT_FLAG]
            if visit_flag == VISIT_START:
                increment(fields, c, names.VISITS, n)
            elif visit_flag == VISIT_SECOND_PAGE:
                increment(fields, c, names.VISITS_MULTI, n)
            # A ProfileEntry: equal to the Profile of the named Cell, and hashing alike.
            for suffix, value in self._fields_of_profile((entry[_DEVICE], entry[_REGION], entry[_LANG])):
                increment(fields, suffix, value, n)
            for suffix, at, value_of, optional in _CELL_DIMENSION_READS:
                found: str = entry[at] if value_of is None else value_of(entry[at])
                if found or not optional:
                    increment(fields, suffix, found, n)
        elif etype == ENGAGEMENT:
            increment(fields, c, names.ENGAGEMENTS, n)
            increment(fields, c, names.ENGAGED_MS, engaged_ms)
            if scroll_count:
                increment(fields, c, names.SCROLL_SUM, scroll_sum)
                increment(fields, c, names.SCROLL_COUNT, scroll_count)
        else:
            increment(fields, c, names.EVENT_COUNTER_PREFIX + etype, n)

    def visitor_suffixes(self, profile: tuple[Any, ...]) -> tuple[str, ...]:
        """The HLLs a visitor entry of this profile (a ProfileEntry: its device, region
        and lang, the device and region as plain tuples) joins: UV overall, and per value
        of each dimension with uv (worked out once per profile)."""
        found = self._visitor_suffixes.get(profile)
        if found is None:
            if len(self._visitor_suffixes) > CACHE_ENTRIES:
                self._visitor_suffixes.clear()
            values = _values(_UV_DIMENSIONS, _named_profile(profile))
            found = self._visitor_suffixes[profile] = (
                keys.VISITORS, *(keys.dimension_visitors_suffix(dim.name, value) for dim, value in values),
            )
        return found

    def _fields_of_profile(self, profile: tuple) -> tuple[tuple[str, str], ...]:
        """(hash suffix, field) of each dimension a human page view of this profile adds to."""
        found = self._profile_fields.get(profile)
        if found is None:
            if len(self._profile_fields) > CACHE_ENTRIES:
                self._profile_fields.clear()
            values = _values(_PROFILE_DIMENSIONS, _named_profile(profile))
            found = self._profile_fields[profile] = tuple((dim.suffix, value) for dim, value in values)
        return found


def _named_profile(profile: tuple[Any, ...]) -> Profile:
    """A ProfileEntry (plain device and region tuples, or a Device and a Region) as a
    Profile whose device and region are a Device and a Region: what the dimensions'
    value functions read by name. Once per profile (PageCounter's caches)."""
    device, region, lang = profile
    return Profile(Device._make(device), Region._make(region), lang)
