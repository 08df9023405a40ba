"""A token bucket per client, in process memory, with a bounded number of clients.

It guards the open application endpoint: a client gets `burst` applications at once,
then one every `1 / rate` seconds. Memory stays bounded under an address-spraying
attack: past `max_clients`, the least recently seen client is forgotten (which only
ever gives that client a fresh, full bucket — never anyone more than `burst`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable


class TokenBuckets:
    def __init__(self, rate_per_second: float, burst: int, clock: Callable[[], float], max_clients: int = 10_000) -> None:
        self.rate = rate_per_second
        self.burst = float(burst)
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)

    def take(self, client: str) -> float:
        """0 when the client may go ahead (a token is spent), else seconds until it may."""
        now = self.clock()
        tokens, at = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate)
        if tokens >= 1.0:
            tokens -= 1.0
            wait = 0.0
        else:
            wait = (1.0 - tokens) / self.rate if self.rate > 0 else float("inf")
        self._buckets[client] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait
