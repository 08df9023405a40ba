"""Build small deterministic MaxMind-format databases for tests and benchmarks.

    python geo_data/build_test_mmdb.py OUTDIR

writes OUTDIR/test-geoip2.mmdb (GeoIP2-City layout, names in en + zh-CN) and
OUTDIR/test-dbip.mmdb (flat DB-IP City Lite layout). Both are IPv6 trees that also hold
the IPv4 networks (under ::/96), so one file answers both families.

TEST_NETWORKS is the ground truth tests compare against: per network, the region the
collector must report. It is written by hand, independently of collector.enrich.cn_regions. Only
documentation/benchmark/shared address space is used (100.64.0.0/10, 198.18.0.0/15,
2001:db8::/32); each Zhejiang prefecture gets a /16 so a benchmark can draw many distinct
addresses per prefecture.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple

from mmdb_writer import MMDBWriter
from netaddr import IPSet

BUILD_EPOCH = 1767225600  # fixed (2026-01-01) so every build writes the same bytes


class KnownNetwork(NamedTuple):
    """A network and the Region fields the collector must report for it (codes, then names)."""

    cidr: str
    country: str
    province: str
    city: str
    province_name: str
    city_name: str


class _Entry(NamedTuple):
    """One network as the databases spell it, plus what the collector must make of it."""

    cidr: str
    country: str
    country_en: str
    state_en: str  # DB-IP state1 / GeoIP2 subdivision names.en
    state_iso: str  # GeoIP2 subdivision iso_code
    state_zh: str  # GeoIP2 subdivision names.zh-CN ("" = absent, to test fallbacks)
    city_en: str
    city_zh: str
    expect: tuple[str, str, str, str]  # province, province_name, city, city_name


_ZHEJIANG = [  # (pinyin as DB-IP writes it, Chinese, GB/T 2260 code)
    ("Hangzhou", "杭州", "330100"), ("Ningbo", "宁波", "330200"), ("Wenzhou", "温州", "330300"),
    ("Jiaxing", "嘉兴", "330400"), ("Huzhou", "湖州", "330500"), ("Shaoxing", "绍兴", "330600"),
    ("Jinhua", "金华", "330700"), ("Quzhou", "衢州", "330800"), ("Zhoushan", "舟山", "330900"),
    ("Taizhou", "台州", "331000"), ("Lishui", "丽水", "331100"),
]

_ENTRIES = [
    _Entry(f"100.{64 + i}.0.0/16", "CN", "China", "Zhejiang", "ZJ", "浙江省", en, zh,
           ("330000", "浙江省", code, zh + "市"))
    for i, (en, zh, code) in enumerate(_ZHEJIANG)
] + [
    # Municipality: DB-IP names a neighbourhood; the city is Beijing itself.
    _Entry("198.18.0.0/24", "CN", "China", "Beijing", "BJ", "北京市",
           "Jinrongjie (Jinrongjie Neighborhood)", "", ("110000", "北京市", "110100", "北京市")),
    # Shaanxi and Shanxi are both "shanxi" in plain pinyin.
    _Entry("198.18.1.0/24", "CN", "China", "Shaanxi", "SN", "陕西省", "Xi'an", "西安",
           ("610000", "陕西省", "610100", "西安市")),
    _Entry("198.18.2.0/24", "CN", "China", "Shanxi", "SX", "山西省", "Taiyuan", "太原",
           ("140000", "山西省", "140100", "太原市")),
    # English exonyms, no Chinese names: the ISO code and aliases must do.
    _Entry("198.18.3.0/24", "CN", "China", "Inner Mongolia", "NM", "", "Hohhot", "",
           ("150000", "内蒙古自治区", "150100", "呼和浩特市")),
    _Entry("198.18.4.0/24", "CN", "China", "Tibet", "XZ", "西藏自治区", "Lhasa", "拉萨",
           ("540000", "西藏自治区", "540100", "拉萨市")),
    # A town that is no prefecture or district: city unknown, never guessed.
    _Entry("198.18.5.0/24", "CN", "China", "Guangdong", "GD", "广东省", "Chang'an", "长安镇",
           ("440000", "广东省", "", "")),
    # A town with its district in parentheses, and a county-level city: both map upward.
    _Entry("198.18.6.0/24", "CN", "China", "Guangdong", "GD", "广东省",
           "Haikuotiankong (Nanshan Qu)", "南山区", ("440000", "广东省", "440300", "深圳市")),
    _Entry("198.18.7.0/24", "CN", "China", "Zhejiang", "ZJ", "浙江省", "Yiwu", "义乌",
           ("330000", "浙江省", "330700", "金华市")),
    _Entry("198.18.8.0/24", "CN", "China", "Chongqing", "CQ", "重庆市", "Yuzhong", "渝中区",
           ("500000", "重庆市", "500100", "重庆市")),
    # Province only.
    _Entry("198.18.9.0/24", "CN", "China", "Hubei", "HB", "湖北省", "", "",
           ("420000", "湖北省", "", "")),
    # Outside mainland China: English names kept; Taiwan stays its own country code.
    _Entry("198.18.10.0/24", "US", "United States", "California", "CA", "", "Mountain View", "",
           ("California", "California", "Mountain View", "Mountain View")),
    _Entry("198.18.11.0/24", "TW", "Taiwan", "Taipei City", "TPE", "", "Taipei", "",
           ("Taipei City", "Taipei City", "Taipei", "Taipei")),
    # Country only, as in a country-level database.
    _Entry("198.18.12.0/24", "JP", "Japan", "", "", "", "", "", ("", "", "", "")),
    # IPv6.
    _Entry("2001:db8:1::/48", "CN", "China", "Zhejiang", "ZJ", "浙江省", "Hangzhou", "杭州",
           ("330000", "浙江省", "330100", "杭州市")),
    _Entry("2001:db8:2::/48", "CN", "China", "Beijing", "BJ", "北京市", "Haidian (Haidian Qu)",
           "海淀区", ("110000", "北京市", "110100", "北京市")),
    _Entry("2001:db8:3::/48", "US", "United States", "California", "CA", "", "Mountain View",
           "", ("California", "California", "Mountain View", "Mountain View")),
]

TEST_NETWORKS: list[KnownNetwork] = [
    KnownNetwork(e.cidr, e.country, e.expect[0], e.expect[2], e.expect[1], e.expect[3])
    for e in _ENTRIES
]


def _names(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh-CN": zh} if zh else {"en": en}


def _geoip2_record(e: _Entry) -> dict:
    record: dict = {"country": {"iso_code": e.country,
                                "names": _names(e.country_en, "中国" if e.country == "CN" else "")}}
    if e.state_en:
        record["subdivisions"] = [{"iso_code": e.state_iso, "names": _names(e.state_en, e.state_zh)}]
    if e.city_en:
        record["city"] = {"names": _names(e.city_en, e.city_zh)}
    return record


def _dbip_record(e: _Entry) -> dict:
    if not e.state_en and not e.city_en:
        return {"country_code": e.country}  # the shape of ip-location-db's country databases
    return {"city": e.city_en, "country_code": e.country, "postcode": "",
            "state1": e.state_en, "state2": "", "timezone": ""}


_LAYOUTS = {
    "geoip2": ("GeoIP2-City", ["en", "zh-CN"], _geoip2_record),
    "dbip": ("DBIP-City-Lite", [], _dbip_record),
}


class _FixedEpochWriter(MMDBWriter):
    def _build_meta(self) -> dict:
        return {**super()._build_meta(), "build_epoch": BUILD_EPOCH}


def write_db(path: str | Path, layout: str, ip_version: int = 6) -> Path:
    """Write the test networks in one layout ("geoip2" or "dbip"); ip_version=4 drops IPv6."""
    database_type, languages, make_record = _LAYOUTS[layout]
    writer = _FixedEpochWriter(
        ip_version=ip_version,
        ipv4_compatible=ip_version == 6,
        database_type=database_type,
        languages=languages,
        description=f"edu-beacon test data ({layout} layout)",
    )
    for entry in _ENTRIES:
        if ip_version == 4 and ":" in entry.cidr:
            continue
        writer.insert_network(IPSet([entry.cidr]), make_record(entry))
    writer.to_db_file(str(path))
    return Path(path)


def build(outdir: str | Path) -> dict[str, Path]:
    """Write both test databases into outdir; returns {file name: path}."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    return {
        name: write_db(outdir / name, layout)
        for name, layout in (("test-geoip2.mmdb", "geoip2"), ("test-dbip.mmdb", "dbip"))
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUTDIR")
    for path in build(sys.argv[1]).values():
        print(path)
