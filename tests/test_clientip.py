"""X-Forwarded-For is believed only from trusted proxies, walked right to left."""

import ipaddress

from collector.hit.clientip import ClientIPResolver

PROXIES = ClientIPResolver(["10.0.0.0/8", "127.0.0.1/32", "fd00::/8"])


def test_untrusted_peer_header_is_ignored():
    assert PROXIES.client_ip("203.0.113.9", "1.2.3.4") == "203.0.113.9"


def test_no_trusted_proxies_configured_means_peer_always():
    assert ClientIPResolver([]).client_ip("127.0.0.1", "1.2.3.4") == "127.0.0.1"


def test_trusted_peer_gives_the_rightmost_untrusted_hop():
    # The client forged "6.6.6.6"; our proxies appended the real address 1.2.3.4.
    assert PROXIES.client_ip("10.1.1.1", "6.6.6.6, 1.2.3.4, 10.2.2.2") == "1.2.3.4"


def test_all_hops_trusted_gives_the_leftmost():
    assert PROXIES.client_ip("10.1.1.1", "10.9.9.9, 10.2.2.2") == "10.9.9.9"


def test_garbage_hop_stops_the_walk_at_the_last_believable_address():
    assert PROXIES.client_ip("10.1.1.1", "1.2.3.4, not-an-ip") == "10.1.1.1"
    assert PROXIES.client_ip("10.1.1.1", "") == "10.1.1.1"


def test_ipv6_and_mapped_ipv4_peers():
    assert PROXIES.client_ip("fd00::1", "2001:db8::5") == "2001:db8::5"
    assert PROXIES.client_ip("::ffff:127.0.0.1", "1.2.3.4") == "1.2.3.4"


def test_missing_peer():
    assert PROXIES.client_ip(None, "1.2.3.4") == ""


def test_by_default_only_loopback_is_a_trusted_proxy():
    from collector.settings import Settings

    default = ClientIPResolver(Settings().trusted_proxies)
    for peer in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert default.client_ip(peer, "115.236.1.1") == "115.236.1.1", peer
    for peer in ("10.0.0.1", "172.17.0.1", "203.0.113.9", "fd00::1"):
        assert default.client_ip(peer, "115.236.1.1") == peer
    assert ClientIPResolver(Settings.from_env({}, trusted_proxies="").trusted_proxies).client_ip("127.0.0.1", "1.2.3.4") == "127.0.0.1"


def _kind_by_ipaddress(resolver: ClientIPResolver, address: str) -> int:
    """The verdict as ipaddress gives it: what ClientIPResolver.kind did for every address
    before its dotted-quad fast path, kept here as the specification."""
    import ipaddress

    from collector.hit.clientip import NOT_AN_IP, TRUSTED, UNTRUSTED

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return NOT_AN_IP
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return TRUSTED if any(ip in net for net in resolver.networks) else UNTRUSTED


def test_kind_agrees_with_ipaddress_on_edges_junk_and_random_addresses():
    import random

    from tests.test_geo import _PARSE_CASES

    resolvers = [PROXIES, ClientIPResolver(["0.0.0.0/0"]), ClientIPResolver(["192.168.1.7", "172.16.0.0/12", "::1"])]
    edges = ["9.255.255.255", "10.0.0.0", "10.255.255.255", "11.0.0.0", "127.0.0.1", "127.0.0.2", "126.255.255.255",
             "172.15.255.255", "172.16.0.0", "172.31.255.255", "172.32.0.0", "192.168.1.6", "192.168.1.7",
             "192.168.1.8", "::ffff:10.1.2.3", "::ffff:11.1.2.3", "fd00::1", "fe00::1", "::1", "1.2.3.4, 5.6.7.8"]
    rng = random.Random(7)
    randoms = [".".join(str(rng.randrange(256)) for _ in range(4)) for _ in range(3000)]
    for resolver in resolvers:
        for address in [*_PARSE_CASES, *edges, *randoms]:
            assert resolver.kind(address) == _kind_by_ipaddress(resolver, address), (resolver.networks, address)


def test_kind_of_ipv6_clients_agrees_with_ipaddress():
    """Global unicast IPv6 (2000::/3) is judged on ints (inet_pton), the rest by ipaddress:
    the same verdicts at a trusted IPv6 network's edges, in other blocks and at random."""
    import random

    resolvers = [PROXIES, ClientIPResolver(["2001:db8::/32", "240e:ff::/64", "10.0.0.0/8"]), ClientIPResolver(["::/0"])]
    edges = ["2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
             "2001:db9::", "240e:ff::1", "240e:ff::ffff:ffff:ffff:ffff", "240e:ff:0:1::", "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
             "2000::", "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "4000::", "2001:db8::1%eth0", "2001:DB8::A",
             "::ffff:2001:db8", "::ffff:10.0.0.1", "fd00::1", "2001:db8::1.2.3.4", "2001:db8::01.2.3.4"]
    rng = random.Random(5)
    randoms = [str(ipaddress.IPv6Address(rng.getrandbits(128))) for _ in range(1000)]
    randoms += [str(ipaddress.IPv6Address(rng.getrandbits(96) | 0x2001_0db8 << 96)) for _ in range(500)]
    for resolver in resolvers:
        for address in [*edges, *randoms]:
            assert resolver.kind(address) == _kind_by_ipaddress(resolver, address), (resolver.networks, address)


def test_a_global_ipv6_client_is_judged_without_ipaddress(monkeypatch):
    """A new IPv6 client's address is not parsed by ipaddress (~5 µs, after a failed IPv4
    parse): only the trusted proxies' networks were, once."""
    resolver = ClientIPResolver(["127.0.0.1/32", "2001:db8:1::/48"])

    def refused(address: object) -> None:
        raise AssertionError(f"ipaddress asked about {address!r}")

    monkeypatch.setattr(ipaddress, "ip_address", refused)
    assert resolver.client_ip("127.0.0.1", "240e:388:8a10:2a00:1d4b:3c2a:9e51:7f01") == "240e:388:8a10:2a00:1d4b:3c2a:9e51:7f01"
    assert resolver.client_ip("127.0.0.1", "240e:388::1, 2001:db8:1::9") == "240e:388::1"


def _ipv6_texts(rng, count: int) -> list[str]:
    """IPv6 addresses as clients and proxies write them, and near misses: compressed,
    exploded, upper case, an IPv4 tail, IPv4-mapped, and each of those with one character
    deleted, doubled or replaced (a 5-digit group, a second '::', a scope, a stray '.')."""
    import ipaddress

    texts = []
    for _ in range(count):
        value = rng.getrandbits(128)
        if rng.random() < 0.2:
            value &= (1 << 64) - 1 << rng.choice((0, 16, 32, 48))  # runs of zero groups: '::'
        if rng.random() < 0.1:
            value = 0xFFFF << 32 | rng.getrandbits(32)  # IPv4-mapped
        ip = ipaddress.IPv6Address(value)
        text = rng.choice((ip.compressed, ip.exploded, ip.compressed.upper(), str(ip)))
        if rng.random() < 0.15:
            text = ip.exploded.rsplit(":", 2)[0] + ":" + str(ipaddress.IPv4Address(value & 0xFFFFFFFF))
        if rng.random() < 0.4:
            i = rng.randrange(len(text))
            change = rng.choice(("delete", "double", "replace"))
            char = rng.choice("0123456789abcdefABCDEFg:.% \u0661")
            text = (text[:i] + text[i + 1:] if change == "delete" else text[:i] + text[i] + text[i:]
                    if change == "double" else text[:i] + char + text[i + 1:])
        texts.append(text)
    return texts


def test_kind_of_ipv6_texts_and_near_misses_agrees_with_ipaddress():
    """IPv6 texts as written and mutated (a group too long, a second '::', a scope, a stray
    '.') and malformed edges: the verdicts must be ipaddress's, for trusted IPv6 networks
    and IPv4 ones."""
    import random

    resolvers = [PROXIES, ClientIPResolver(["2400:7bc0::/32", "2001:db8::/48", "10.0.0.0/8"]),
                 ClientIPResolver(["::/0"]), ClientIPResolver(["0.0.0.0/0", "fe80::/10"])]
    edges = ["2400:7bc0::", "2400:7bc0:ffff:ffff:ffff:ffff:ffff:ffff", "2400:7bbf:ffff:ffff:ffff:ffff:ffff:ffff",
             "2400:7bc1::", "2001:db8::1", "2001:db8:0:ffff::1", "2001:db8:1::1", "fe80::1%eth0", "fe80::1",
             "::ffff:10.1.2.3", "::ffff:0a01:0203", "::10.1.2.3", "::", "::1", "1::", "1:2:3:4:5:6:7:8",
             "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1::2::3", ":1::2", "1:2:3:4:5:6:7:8:",
             "12345::1", "2400:7bc0::1.2.3.4", "2400:7bc0::01.2.3.4", "2400:7bc0::1.2.3", "[2400:7bc0::1]",
             " 2400:7bc0::1", "2400:7bc0::1 ", "2400:7bc0::\u0661", "2400:7bc0::1\x00", "g::1", ":", ":::"]
    addresses = [*edges, *_ipv6_texts(random.Random(12), 4000)]
    for resolver in resolvers:
        for address in addresses:
            assert resolver.kind(address) == _kind_by_ipaddress(resolver, address), (resolver.networks, address)
