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

import datetime
import functools
import ipaddress
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import maxminddb

from collector.enrich import cn_regions

log = logging.getLogger(__name__)

CN_NAME = "中国"
# The default database (DB-IP City Lite) is CC BY 4.0: whatever shows regions derived from
# it must credit DB-IP with a link. The read API carries this beside its region rows.
DBIP_ATTRIBUTION = {"text": "IP Geolocation by DB-IP", "url": "https://db-ip.com", "license": "CC BY 4.0"}


@dataclass(frozen=True, slots=True)
class Region:
    country: str  # ISO 3166-1 alpha-2 ("CN"), "" when unknown
    province: str  # CN: GB/T 2260 code ("330000"); elsewhere the English name; "" unknown
    city: str  # CN: prefecture code ("330100"); elsewhere the English name; "" unknown
    country_name: str  # display names: Chinese for CN, the database's English name
    province_name: str  # elsewhere ("" if it has none)
    city_name: str


UNKNOWN_REGION = Region("", "", "", "", "", "")

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
        self._v6_readers = [r for _, r in self._readers if r.metadata().ip_version == 6]
        self._all_readers = [r for _, r in self._readers]
        # Per-instance LRU keyed by the raw string: a bound helper, so close() can clear it.
        self._cached = functools.lru_cache(maxsize=cache_size)(self._resolve)
        # Region per distinct place in the database: mapping names to GB/T 2260 codes
        # costs far more than the lookup itself, and a database names only a few
        # thousand places, so a new IP in a known place skips it.
        self._by_place: dict[tuple, Region] = {}

    def lookup(self, ip: str) -> Region:
        """Region of an address string; UNKNOWN_REGION for anything unplaceable. Never raises."""
        if not isinstance(ip, str):
            return UNKNOWN_REGION
        return self._cached(ip)

    def cache_info(self) -> Any:  # functools' (hits, misses, maxsize, currsize), for GET /metrics
        return self._cached.cache_info()

    def _resolve(self, ip: str) -> Region:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return UNKNOWN_REGION
        if addr.version == 6 and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped  # ::ffff:1.2.3.4 is an IPv4 client behind a dual stack
        if _is_unplaceable(addr):
            return UNKNOWN_REGION
        for reader in self._all_readers if addr.version == 4 else self._v6_readers:
            try:
                record = reader.get(addr)
            except (ValueError, maxminddb.InvalidDatabaseError) as exc:  # closed or corrupt
                log.warning("geo lookup of %s failed: %s", ip, exc)
                continue
            if record and not isinstance(record, dict):
                return _region_from_record(record)  # not a city database: unknown
            if record and isinstance(record, dict):  # (always a dict here: says so to mypy)
                place = _place_of(record)
                region = self._by_place.get(place)
                if region is None:
                    if len(self._by_place) > 200_000:
                        self._by_place.clear()
                    region = self._by_place[place] = _region_from_record(record)
                return region
        return UNKNOWN_REGION

    def close(self) -> None:
        for _, reader in self._readers:
            reader.close()
        self._all_readers = self._v6_readers = []
        self._cached.cache_clear()

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
