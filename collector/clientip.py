"""The client's IP: the TCP peer, or X-Forwarded-For when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress
from typing import Sequence


class ClientIPResolver:
    def __init__(self, trusted_proxies: Sequence[str]) -> None:
        self.networks = [ipaddress.ip_network(cidr.strip(), strict=False) for cidr in trusted_proxies]
        self._trusted_cache: dict[str, bool] = {}

    def is_trusted(self, address: str) -> bool:
        known = self._trusted_cache.get(address)
        if known is None:
            try:
                ip = ipaddress.ip_address(address)
                if ip.version == 6 and ip.ipv4_mapped:
                    ip = ip.ipv4_mapped
                known = any(ip in net for net in self.networks)
            except ValueError:
                known = False
            if len(self._trusted_cache) > 10_000:
                self._trusted_cache.clear()
            self._trusted_cache[address] = known
        return known

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
            if not _looks_like_ip(hop):
                return client  # garbage: stop at the last address we could believe
            client = hop
            if not self.is_trusted(hop):
                break
        return client


def _looks_like_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False
