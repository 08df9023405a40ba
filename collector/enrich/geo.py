"""Client IP -> region, from MaxMind-format (.mmdb) databases.

Two record layouts exist in the wild and both are read:
  * GeoIP2/GeoLite2-City: nested {"country": {"iso_code", "names"}, "subdivisions": [...],
    "city": {"names"}}, with Chinese names ("zh-CN") besides English;
  * DB-IP City Lite as packaged by ip-location-db (our default, CC BY 4.0): flat
    {"country_code", "state1", "city", ...} in English/pinyin only.
Country-only databases of either family also work (province and city stay unknown).

For China the province and city become GB/T 2260 codes with Chinese display names (see
cn_regions), so reports group by stable codes whatever the database spells. Elsewhere the
database's English names are kept as they are. Taiwan, Hong Kong and Macao stay the
countries the database says (TW/HK/MO).
"""

from __future__ import annotations

import bisect
import datetime
import ipaddress
import logging
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import maxminddb

from collector.enrich import cn_regions
from collector.enrich.hashed_cache import HashedCache
from collector.enrich.mmdb_pages import map_as_touched
from collector.hit.clientip import global_ipv6_value, ipv4_value
from collector.untracked import untracked

log = logging.getLogger(__name__)

CN_NAME = "中国"
# The default database (DB-IP City Lite) is CC BY 4.0: whatever shows regions derived from
# it must credit DB-IP with a link. The read API carries this beside its region rows.
DBIP_ATTRIBUTION = {"text": "IP Geolocation by DB-IP", "url": "https://db-ip.com", "license": "CC BY 4.0"}


class Region(NamedTuple):
    """Where an address is. A tuple of strings, like Device (enrich/device.py: tracked
    by the garbage collector unless untracked on purpose). GeoResolver makes one per
    place in the database and untracks it there, and the tables holding them by the
    thousand (the address cache, the networks, the places) are untracked too: no full
    collection of the hit loop walks them (enrich/hashed_cache.py)."""

    country: str  # ISO 3166-1 alpha-2 ("CN"), "" when unknown
    province: str  # CN: GB/T 2260 code ("330000"); elsewhere the English name; "" unknown
    city: str  # CN: prefecture code ("330100"); elsewhere the English name; "" unknown
    country_name: str  # display names: Chinese for CN, the database's English name
    province_name: str  # elsewhere ("" if it has none)
    city_name: str


UNKNOWN_REGION = untracked(Region("", "", "", "", "", ""))  # see Region

# Addresses no geo database places: skip the lookup. Only the ranges that can never be a
# real client are listed; 100.64.0.0/10 (CGNAT) and 198.18.0.0/15 (benchmarking) are
# deliberately not, so test and benchmark databases can use them.
_RFC1918 = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)


def _is_unplaceable(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (
        addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_unspecified
        or addr.is_reserved
        or any(addr in net for net in _RFC1918)
    )


# The same test on an IPv4 address as an int, for the fast path (no ipaddress object,
# which costs more than the lookup): the ranges Python's ipaddress calls loopback
# (127/8), link-local (169.254/16), multicast (224/4), reserved (240/4, which holds
# 255.255.255.255) and unspecified (0.0.0.0), plus RFC 1918. tests/test_geo.py checks it
# against _is_unplaceable at every range's edges.
_UNPLACEABLE_V4 = [
    (int(net.network_address), int(net.broadcast_address))
    for net in map(
        ipaddress.IPv4Network,
        ("0.0.0.0/32", "10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/3"),
    )
]
_UNPLACEABLE_V4_STARTS = [low for low, _ in _UNPLACEABLE_V4]  # sorted, disjoint: bisect


def _is_unplaceable_v4(value: int) -> bool:
    i = bisect.bisect_right(_UNPLACEABLE_V4_STARTS, value) - 1
    return i >= 0 and value <= _UNPLACEABLE_V4[i][1]


def _names(node: Any) -> dict[str, str]:
    names = node.get("names") if isinstance(node, dict) else None
    return names if isinstance(names, dict) else {}


def _first_subdivision(record: dict) -> dict:
    subdivisions = record.get("subdivisions")
    if isinstance(subdivisions, list) and subdivisions and isinstance(subdivisions[0], dict):
        return subdivisions[0]  # the province; later entries are smaller units
    return {}


def _region_from_record(record: Any) -> Region:
    """Read either layout; CN names become codes, unmatched ones become "" (never guessed)."""
    if not isinstance(record, dict):
        return UNKNOWN_REGION
    country = record.get("country")
    if isinstance(country, dict):  # GeoIP2 layout
        code = country.get("iso_code") or ""
        country_en = _names(country).get("en", "")
        sub = _first_subdivision(record)
        sub_names, city_names = _names(sub), _names(record.get("city"))
        province_en = sub_names.get("en") or sub.get("iso_code") or ""
        city_en = city_names.get("en", "")
        # For CN, most exact first: zh-CN names, then the ISO code, then pinyin.
        province_keys = [sub_names.get("zh-CN"), sub.get("iso_code"), province_en]
        city_keys = [city_names.get("zh-CN"), city_en]
    else:  # flat DB-IP layout, or ip-location-db's country-only {"country_code": ...}
        code = record.get("country_code") or ""
        country_en = ""
        province_en, city_en = record.get("state1") or "", record.get("city") or ""
        province_keys, city_keys = [province_en], [city_en]
    if not code:
        return UNKNOWN_REGION
    if code != "CN":
        return Region(code, province_en, city_en, country_en, province_en, city_en)

    province = next((p for k in province_keys if k and (p := cn_regions.province_code(k))), "")
    city = ""
    if province:  # a city is only looked for within its province; municipalities need no name
        city = next((c for k in city_keys if (c := cn_regions.city_code(province, k or ""))), "")
    return Region(
        "CN",
        province,
        city,
        CN_NAME,
        cn_regions.name_of(province) or "",
        cn_regions.name_of(city) or "",
    )


class NetworkCache:
    """Regions by database network, for one address family: each network is stored under
    its number at its prefix length (the address shifted right), and a lookup tries the
    prefix lengths seen, most common first. The networks never overlap (see
    GeoResolver._lookup), so at most one can hold an address: the answer is exact.
    Bounded: emptied when it reaches max_networks."""

    def __init__(self, bits: int, max_networks: int) -> None:
        self._bits = bits
        self._max = max_networks
        self._by_len: dict[int, dict[int, Region]] = {}
        self._lengths: list[tuple[int, dict[int, Region]]] = []  # (shift, networks), by size
        self._size = 0

    def get(self, value: int) -> Region | None:
        for shift, networks in self._lengths:
            region = networks.get(value >> shift)
            if region is not None:
                return region
        return None

    def put(self, value: int, prefix_len: int, region: Region) -> None:
        if self._size >= self._max:
            self.clear()
            if self._max <= 0:
                return
        networks = self._by_len.get(prefix_len)
        if networks is None:
            networks = self._by_len[prefix_len] = {}
        shift = self._bits - prefix_len
        if networks.setdefault(value >> shift, region) is region:
            self._size += 1
        untracked(networks)  # ints to untracked Regions: in no cycle (see Region)
        if len(networks) == 1 or (len(networks) & (len(networks) - 1)) == 0:
            # a new length, or one that doubled: re-rank the lengths (rarely)
            self._lengths = sorted(
                ((self._bits - n, d) for n, d in self._by_len.items()), key=lambda sd: -len(sd[1])
            )

    def clear(self) -> None:
        self._by_len.clear()
        self._lengths = []
        self._size = 0

    def __len__(self) -> int:
        return self._size


class GeoResolver:
    """Looks up regions in one or more .mmdb files; the first file with a record wins.

    A database whose metadata says ip_version 4 only gets IPv4 questions; an IPv6 one gets
    both (an IPv6 tree may hold IPv4 under ::/96, or may not: then it just answers None).
    """

    def __init__(self, paths: Sequence[str], cache_size: int = 65536):
        for path in paths:  # check all first, so a missing second file leaks no open reader
            if not os.path.isfile(path):
                raise FileNotFoundError(f"geo database not found: {path}")
        self._readers = [(p, maxminddb.open_database(p, maxminddb.MODE_AUTO)) for p in paths]
        map_as_touched(paths)  # RSS: the pages lookups read, not the page cache's folios
        self._v6_readers = [r for _, r in self._readers if r.metadata().ip_version == 6]
        self._all_readers = [r for _, r in self._readers]
        # Per instance, so close() can clear it; keyed by the address's hash, not the
        # string (enrich/hashed_cache.py): a new visitor's address is not kept.
        self._cached: HashedCache[Region] = HashedCache(self._resolve, cache_size, atomic_answers=True)
        # Region per distinct place in the database: mapping names to GB/T 2260 codes
        # costs far more than the lookup itself, and a database names only a few
        # thousand places, so a new IP in a known place skips it.
        self._by_place: dict[tuple, Region] = {}
        # Region per database network: every address of a network has the same answer,
        # so a new IP of a known school's or ISP's block is a dict lookup.
        self._v4_networks = NetworkCache(32, cache_size)
        self._v6_networks = NetworkCache(128, cache_size)

    def lookup(self, ip: object) -> Region:
        """Region of an address string; UNKNOWN_REGION for anything unplaceable. Never raises.
        (`object`: compiled, an annotation is checked on the way in, and any input is answered.)"""
        if not isinstance(ip, str):
            return UNKNOWN_REGION
        return self._cached(ip)

    def cache_info(self) -> Any:  # functools' (hits, misses, maxsize, currsize), for GET /metrics
        return self._cached.cache_info()

    def _resolve(self, ip: str) -> Region:
        value = ipv4_value(ip)
        if value is not None:  # the common case, without an ipaddress object
            if _is_unplaceable_v4(value):
                return UNKNOWN_REGION
            return self._region_in_network(self._v4_networks, value, ip, self._all_readers)
        value = global_ipv6_value(ip)  # needs no _is_unplaceable test (see GLOBAL_V6)
        if value is not None:
            return self._region_in_network(self._v6_networks, value, ip, self._v6_readers)
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return UNKNOWN_REGION
        if addr.version == 6 and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped  # ::ffff:1.2.3.4 is an IPv4 client behind a dual stack
        if _is_unplaceable(addr):
            return UNKNOWN_REGION
        if addr.version == 4:
            return self._region_in_network(self._v4_networks, int(addr), addr, self._all_readers)
        return self._region_in_network(self._v6_networks, int(addr), addr, self._v6_readers)

    def _region_in_network(self, networks: NetworkCache, value: int, addr: Any, readers: list) -> Region:
        """The region of a placeable address: from the network cache, else the databases."""
        region = networks.get(value)
        if region is None:
            region, prefix_len = self._lookup(addr, readers)
            if prefix_len is not None:
                networks.put(value, prefix_len, region)
        return region

    def _lookup(self, addr: Any, readers: list) -> tuple[Region, int | None]:
        """(region, prefix length of the network every address of which has that answer);
        the length is None when a database failed (the answer may then change)."""
        # The first database with a record answers; the network where the answer holds is
        # the smallest of those consulted (each database's networks are disjoint, so that
        # one lies inside all the others).
        prefix_len: int | None = 0
        for reader in readers:
            try:
                record, length = reader.get_with_prefix_len(addr)
            except (ValueError, maxminddb.InvalidDatabaseError) as exc:  # closed or corrupt
                log.warning("geo lookup of %s failed: %s", addr, exc)
                prefix_len = None
                continue
            if prefix_len is not None:
                prefix_len = max(prefix_len, length)
            if record and not isinstance(record, dict):
                return _region_from_record(record), prefix_len  # not a city database: unknown
            if record and isinstance(record, dict):  # (always a dict here: says so to mypy)
                return self._region_of_place(record), prefix_len
        return UNKNOWN_REGION, prefix_len

    def _region_of_place(self, record: dict) -> Region:
        place = _place_of(record)
        region = self._by_place.get(place)
        if region is None:
            if len(self._by_place) > 200_000:
                self._by_place.clear()
            region = self._by_place[place] = untracked(_region_from_record(record))
            untracked(self._by_place)  # tuples of strings to untracked Regions (see Region)
        return region

    def close(self) -> None:
        for _, reader in self._readers:
            reader.close()
        self._all_readers = self._v6_readers = []
        self._cached.cache_clear()
        self._v4_networks.clear()
        self._v6_networks.clear()

    def __enter__(self) -> GeoResolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def descriptions(self) -> list[str]:
        """One line per database for the startup log."""
        lines = []
        for path, reader in self._readers:
            meta = reader.metadata()
            built = datetime.datetime.fromtimestamp(meta.build_epoch, datetime.UTC)
            lines.append(
                f"{path}: {meta.database_type}, built {built:%Y-%m-%d}, IPv{meta.ip_version}"
            )
        return lines


def _place_of(record: dict) -> tuple:
    """What in a record decides its Region (both layouts), as a hashable key."""
    if not isinstance(record.get("country"), dict):  # DB-IP flat layout
        return (record.get("country_code"), record.get("state1"), record.get("city"))
    subdivision = (record.get("subdivisions") or [{}])[0]
    city = record.get("city") or {}
    return (
        (record.get("country") or {}).get("iso_code"),
        subdivision.get("iso_code"),
        tuple(sorted((subdivision.get("names") or {}).items())),
        tuple(sorted((city.get("names") or {}).items())),
    )


def describe_region_key(country: str, province: str, city: str) -> dict[str, str]:
    """Display names for stored region codes (the read API stores only these strings)."""
    if country == "CN":
        return {
            "country": country,
            "country_name": CN_NAME,
            "province": province,
            "province_name": (cn_regions.name_of(province) or province) if province else "",
            "city": city,
            "city_name": (cn_regions.name_of(city) or city) if city else "",
        }
    return {
        "country": country,
        "country_name": country,
        "province": province,
        "province_name": province,
        "city": city,
        "city_name": city,
    }
