"""The client's IP: the TCP peer, or X-Forwarded-For when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

NOT_AN_IP, UNTRUSTED, TRUSTED = 0, 1, 2


# Addresses whose verdict is remembered by default (the collector's is settings.geo_cache_size).
MAX_ADDRESSES = 16_384


class ClientIPResolver:
    def __init__(self, trusted_proxies: Sequence[str], max_addresses: int = MAX_ADDRESSES) -> None:
        self.networks = [ipaddress.ip_network(cidr.strip(), strict=False) for cidr in trusted_proxies]
        # The IPv4 networks as (network, netmask) ints: a new client's dotted quad is judged
        # without an ipaddress object (~3 µs of a new address's hit; a third of the
        # realistic traffic's hits bring an address not seen lately).
        self._v4_networks = [
            (int(net.network_address), int(net.netmask)) for net in self.networks if net.version == 4
        ]
        # The IPv6 ones likewise, for a global unicast address (every IPv6 client): through
        # ipaddress, a new IPv6 client cost ~5 µs, after a failed IPv4 parse.
        self._v6_networks = [
            (int(net.network_address), int(net.netmask)) for net in self.networks if net.version == 6
        ]
        # address text -> NOT_AN_IP / UNTRUSTED / TRUSTED: parsing an address costs ~1 µs,
        # a dict hit ~50 ns, and the same clients and proxies come back all day. Bounded
        # like the geo cache, which the same client addresses fill: each entry keeps its
        # address string (~100 bytes with its slot).
        self.max_addresses = max_addresses
        self._kind: dict[str, int] = {}

    def kind(self, address: str) -> int:
        known = self._kind.get(address)
        if known is None:
            value = ipv4_value(address)
            if value is not None:  # the common case
                known = TRUSTED if any(value & mask == net for net, mask in self._v4_networks) else UNTRUSTED
            elif (value := global_ipv6_value(address)) is not None:  # not IPv4-mapped, not scoped
                known = TRUSTED if any(value & mask == net for net, mask in self._v6_networks) else UNTRUSTED
            else:
                known = self._kind_of_other(address)
            if len(self._kind) >= self.max_addresses:
                self._kind.clear()
            self._kind[address] = known
        return known

    def _kind_of_other(self, address: str) -> int:
        """The kind of what is neither a dotted quad nor a global unicast IPv6 address: other
        IPv6 (an IPv4-mapped one judged as its IPv4 address), or not an IP at all."""
        try:
            ip = ipaddress.ip_address(address)
            if ip.version == 6 and ip.ipv4_mapped:
                ip = ip.ipv4_mapped
            return TRUSTED if any(ip in net for net in self.networks) else UNTRUSTED
        except ValueError:
            return NOT_AN_IP

    def is_trusted(self, address: str) -> bool:
        return self.kind(address) == TRUSTED

    def client_ip(self, peer: str | None, forwarded_for: str | None) -> str:
        """Walk X-Forwarded-For right to left past trusted proxies; never trust a client.

        Only hops appended by proxies we trust are believed: the first address (from the
        right) that is not a trusted proxy is the client. A forged header from an
        untrusted peer is ignored entirely.
        """
        peer = peer or ""
        if not forwarded_for or not self.networks or not self.is_trusted(peer):
            return peer
        client = peer
        for hop in reversed(forwarded_for.split(",")):
            hop = hop.strip()
            if not hop:
                continue
            kind = self.kind(hop)
            if kind == NOT_AN_IP:
                return client  # garbage: stop at the last address we could believe
            client = hop
            if kind == UNTRUSTED:
                break
        return client


def ipv4_value(address: str) -> int | None:
    """A dotted-quad IPv4 string as an int, or None for anything else (IPv6, junk: the
    ipaddress path decides those). As strict as inet_pton and ipaddress: four decimal parts
    of at most 255, no leading zeros, spaces, short forms, signs or non-ASCII digits
    (tests/test_geo.py: these and random strings against both). Here, compiled, for the geo
    lookup (enrich/geo.py) too. Read a character at a time rather than through
    socket.inet_pton and int.from_bytes: those two calls and the module attributes they
    need cost ~2,800 instructions an address, and every new client's address is read twice
    (trusted proxies, then geo)."""
    n = len(address)
    if n < 7 or n > 15:  # "0.0.0.0" to "255.255.255.255"
        return None
    value = 0
    part = 0
    digits = 0  # of the part being read
    dots = 0
    for i in range(n):
        c = ord(address[i])
        if 48 <= c <= 57:  # an ASCII digit
            if digits and not part:  # a part that starts with 0 and goes on: "01"
                return None
            part = part * 10 + (c - 48)
            if part > 255:
                return None
            digits += 1
        elif c == 46 and digits and dots < 3:  # a "." ending a part
            value = value << 8 | part
            part = digits = 0
            dots += 1
        else:
            return None
    return value << 8 | part if dots == 3 and digits else None


# IPv6 global unicast, 2000::/3: all of today's IPv6 clients, and no address in it is
# loopback, link-local, multicast, unspecified, ULA (fc00::/7), IPv4-mapped or in
# ipaddress's reserved list (which skips exactly this block).
GLOBAL_V6 = ipaddress.IPv6Network("2000::/3")
GLOBAL_V6_FIRST, GLOBAL_V6_LAST = int(GLOBAL_V6.network_address), int(GLOBAL_V6.broadcast_address)


def global_ipv6_value(address: str) -> int | None:
    """An IPv6 string in 2000::/3 as an int, or None (other blocks, scoped addresses, junk:
    the ipaddress path decides those). inet_pton accepts no more than ipaddress does there
    (tests/test_geo.py). Here, compiled, for the geo lookup (enrich/geo.py) too."""
    try:
        value = int.from_bytes(socket.inet_pton(socket.AF_INET6, address), "big")
    except (OSError, ValueError, UnicodeError):
        return None
    return value if GLOBAL_V6_FIRST <= value <= GLOBAL_V6_LAST else None
