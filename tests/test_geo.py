"""collector.enrich.geo against the project's own test MMDBs, in both record layouts (no Redis)."""

from __future__ import annotations

import importlib.util
import ipaddress
from pathlib import Path

import pytest

from collector.enrich.geo import UNKNOWN_REGION, GeoResolver, Region, describe_region_key

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
