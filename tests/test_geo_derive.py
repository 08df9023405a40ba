"""geo_data/derive_dbip.py: a DB-IP database cut to the fields the collector reads, with
equal neighbouring networks merged, must place every address where the original does."""

from __future__ import annotations

import importlib.util
import ipaddress
import random
import shutil
from pathlib import Path

import maxminddb
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from collector.enrich.geo import GeoResolver

ROOT = Path(__file__).resolve().parent.parent


def _deriver():
    spec = importlib.util.spec_from_file_location("derive_dbip", ROOT / "geo_data" / "derive_dbip.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dbip_record(city: str, state: str, country: str, n: int) -> dict:
    # As DB-IP writes them: neighbours of one city differ by coordinates and postcode.
    return {"city": city, "country_code": country, "latitude": 30.0 + n / 1000, "longitude": 120.0,
            "postcode": f"{310000 + n}", "state1": state, "state2": "", "timezone": ""}


PLACES = [("Hangzhou", "Zhejiang", "CN"), ("Ningbo", "Zhejiang", "CN"), ("Haidian (Haidian Qu)", "Beijing", "CN"),
          ("Mountain View", "California", "US"), ("Taipei", "Taipei City", "TW"), ("", "", "JP")]


@pytest.fixture(scope="module")
def fine_grained_db(tmp_path_factory) -> Path:
    """A DB-IP-like database of ~3,000 networks: runs of neighbours in one place that differ
    only by coordinates, gaps without data, IPv4 (under ::/96) and IPv6."""
    rnd = random.Random(17)
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="DBIP-City-Lite")
    n = 0
    place = PLACES[0]
    for base in ("100.64.0.0", "198.18.0.0"):
        start = int(ipaddress.IPv4Address(base))
        for block in range(1200):
            if rnd.random() < 0.1:
                continue  # a gap: no record
            if rnd.random() < 0.25:  # a run of neighbours in one place ends
                place = rnd.choice(PLACES)
            net = ipaddress.IPv4Network((start + block * 64, 26))
            writer.insert_network(IPSet([str(net)]), _dbip_record(*place, n))
            n += 1
    for block in range(600):
        net = ipaddress.IPv6Network((int(ipaddress.IPv6Address("2001:db8::")) + (block << 80), 48))
        writer.insert_network(IPSet([str(net)]), _dbip_record(*PLACES[(block // 5) % len(PLACES)], n))
        n += 1
    path = tmp_path_factory.mktemp("derive") / "fine.mmdb"
    writer.to_db_file(str(path))
    return path


def _addresses(rnd: random.Random) -> list[str]:
    out = []
    for base, bits in (("100.64.0.0", 17), ("198.18.0.0", 17)):
        start = int(ipaddress.IPv4Address(base))
        out += [str(ipaddress.IPv4Address(start + rnd.randrange(1 << bits))) for _ in range(6000)]
    v6 = int(ipaddress.IPv6Address("2001:db8::"))
    out += [str(ipaddress.IPv6Address(v6 + (rnd.randrange(700) << 80) + rnd.getrandbits(80))) for _ in range(4000)]
    out += [str(ipaddress.IPv4Address(rnd.getrandbits(32))) for _ in range(2000)]
    return out


def test_derived_database_places_every_address_as_the_original(fine_grained_db, tmp_path):
    derived = tmp_path / "derived.mmdb"
    shutil.copy(fine_grained_db, derived)
    message = _deriver().derive(str(derived))
    assert "nodes" in message
    before, after = maxminddb.open_database(str(fine_grained_db)), maxminddb.open_database(str(derived))
    assert after.metadata().node_count < before.metadata().node_count * 0.8  # neighbours merged
    assert derived.stat().st_size < fine_grained_db.stat().st_size * 0.8
    with GeoResolver([str(fine_grained_db)], 0) as old, GeoResolver([str(derived)], 0) as new:
        addresses = _addresses(random.Random(5))
        placed = 0
        for ip in addresses:
            region = old.lookup(ip)
            assert new.lookup(ip) == region, ip
            placed += region.country != ""
        assert placed > len(addresses) // 2
    record = after.get("100.64.0.1")
    assert record is None or set(record) <= {"country_code", "state1", "city"}


def test_derive_leaves_a_derived_database_as_it_is(test_mmdbs, tmp_path):
    path = tmp_path / "db.mmdb"
    shutil.copy(test_mmdbs["dbip"], path)
    deriver = _deriver()
    deriver.derive(str(path))
    once = path.read_bytes()
    assert deriver.derive(str(path)).endswith("already derived")
    assert path.read_bytes() == once
    assert maxminddb.open_database(str(path)).metadata().database_type == "DBIP-City-Lite-derived"


def test_derived_test_database_answers_the_known_networks(test_mmdbs, test_networks, tmp_path):
    path = tmp_path / "db.mmdb"
    shutil.copy(test_mmdbs["dbip"], path)
    _deriver().derive(str(path))
    with GeoResolver([str(path)], 0) as geo:
        for net in test_networks:
            first = ipaddress.ip_network(net.cidr)[1]
            region = geo.lookup(str(first))
            assert (region.country, region.province, region.city) == (net.country, net.province, net.city), net
