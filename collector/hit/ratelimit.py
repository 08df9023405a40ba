"""Token buckets in process memory, and the hit path's rate limits built from them.

`TokenBuckets`: a bucket per client with a bounded number of clients. A client gets
`burst` tokens at once, then `rate` more a second. Memory stays bounded under an
address-spraying attack: past `max_clients`, the clients whose buckets have refilled
are forgotten, and if most have not, all are (which only ever gives a client a fresh,
full bucket — never anyone more than `burst`). The registry's application endpoint (web/admin_routes.py) uses one; so do
the hit path's limits below.

`RateLimits`: how much one sender may make the collector count, per worker process:

- per client, (client IP, User-Agent): one browser, or one lab of identical machines;
- per address, the client IP alone: a school or campus network puts thousands of pupils
  behind one address, so its limit is far above the client's — it stops a flooder who
  varies the User-Agent, not a school;
- per app key: a ceiling on what one platform's key can make a worker count, whoever
  sends (during a key rotation's overlap, each of its two keys has its own).

Events cost one token each. A request goes ahead while its buckets hold a token; its
events are then all spent, even into debt (a 100-event batch is never cut in half:
the beacon would have to re-send the half, and all-or-nothing keeps a re-send exact).
Excess is refused whole with 429 and Retry-After, before the body is parsed; the
beacon keeps refused events for later (beacon_js/src/transport.js). docs/protocol.md
("Rate limits") says why 429 and not a silent 204.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable

# Clients (and addresses, and app keys) one table of buckets remembers by default
# (settings.rate_limit_clients): entries of a hashed key and a float, ~100 bytes each (a
# pair of floats measured 19 MB for 100 000). Only the clients whose buckets are still
# refilling matter — a page view's token is back within 1 / rate seconds — so the table
# needs room for the clients of the last seconds, not for every visitor of the day.
MAX_CLIENTS = 50_000

# A table is swept (its full buckets forgotten) once it holds this many clients, or twice
# as many as the last sweep kept, whichever is more, up to its bound: with clients that
# each send a page view and go (a million distinct visitors), nearly every bucket is full
# again within a second, and a table left to fill to its bound before it is swept held
# ~5.6 MB per 50,000 clients of no use (issue 17, bench/RESULTS.md session 14). Doubling
# keeps the sweeps' cost what it was: each walks at most twice the clients added since the
# last one.
SWEEP_FIRST = 1024

# The reasons excess is refused for: rejected:REASON counters, 429 answers' `error`.
CLIENT_LIMIT, ADDRESS_LIMIT, APP_LIMIT = "rate_limited_client", "rate_limited_address", "rate_limited_app"
REASONS = (CLIENT_LIMIT, ADDRESS_LIMIT, APP_LIMIT)

# Seconds of float rounding forgiven when a bucket is back to exactly one token (times
# are kept from the table's creation, so they are small and precise to ~1e-10 s).
ROUNDING = 1e-6


class TokenBuckets:
    """The buckets, each kept as one float: the instant it is full again.

    A client's tokens at `now` are `burst - (full_at - now) * rate` (`burst` once
    full_at has passed); spending `cost` tokens moves full_at `cost / rate` later. One
    float per client and no tuple per hit: the table costs half the memory of
    (tokens, at) pairs, and a hit leaves no new object for the garbage collector to walk
    (a pair per hit and table was three quarters of what its youngest generation walked).
    """

    def __init__(
        self, rate_per_second: float, burst: float, clock: Callable[[], float], max_clients: int = 10_000
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("a token bucket needs a positive rate (a limit that is off has no buckets)")
        self.rate = rate_per_second
        self.burst = float(burst)
        self.clock = clock
        self.max_clients = max_clients
        self._per_token = 1.0 / rate_per_second  # seconds one token takes to come back
        # A token is left while full_at is at most this far ahead of now.
        self._headroom = (self.burst - 1.0) / rate_per_second
        # Instants are kept as seconds since the table was made: an epoch time (1.8e9)
        # would round each one to 0.2 µs, and a bucket refilled to exactly one token
        # might then look a hair short of it.
        self._epoch = clock()
        self._full_at: dict[Hashable, float] = {}  # client -> when its bucket is full again
        self._sweep_at = min(max_clients, SWEEP_FIRST)  # clients in the table when it is swept next

    def take(self, client: Hashable, cost: float = 1.0, now: float | None = None) -> float:
        """0 when the client may go ahead (its bucket holds a token: `cost` tokens are
        spent, into debt if need be), else the seconds until it may.

        One dict lookup and one store, no other call: this runs for every hit.
        """
        now = (self.clock() if now is None else now) - self._epoch
        table = self._full_at
        full_at = table.get(client)
        if full_at is None:
            if len(table) >= self._sweep_at:
                table = self._sweep(now)
            full_at = now
        elif full_at < now:
            full_at = now
        wait = full_at - now - self._headroom
        if wait <= ROUNDING:
            table[client] = full_at + cost * self._per_token
            return 0.0
        return wait

    def spend(self, client: Hashable, cost: float) -> None:
        """Spend `cost` more tokens, into debt if need be: the rest of a request that went ahead."""
        full_at = self._full_at.get(client)
        if full_at is not None:  # take() made it, unless a sweep forgot it since: then it is forgiven
            self._full_at[client] = full_at + cost * self._per_token

    def _sweep(self, now: float) -> dict[Hashable, float]:  # now: since self._epoch
        """Room for new clients: forget those whose bucket has refilled (a fresh bucket
        is the same to them). If half the bound are still refilling, forget all: memory
        stays bounded, and a forgotten client only ever gets a fresh bucket — `burst`, never more.
        """
        self._full_at = {client: full_at for client, full_at in self._full_at.items() if full_at > now}
        if len(self._full_at) >= self.max_clients // 2:
            self._full_at = {}
        self._sweep_at = min(self.max_clients, max(SWEEP_FIRST, 2 * len(self._full_at)))
        return self._full_at

    def __len__(self) -> int:
        return len(self._full_at)


def _buckets(rate: float, burst: float, clock: Callable[[], float], max_clients: int) -> TokenBuckets | None:
    """A table of buckets, or None when the limit is off (a rate of 0)."""
    return TokenBuckets(rate, max(burst, 1.0), clock, max_clients) if rate > 0 else None


class RateLimits:
    """The hit path's limits (see the module docstring), and what they refused.

    `refused` counts, by reason: requests refused per client or address (their events
    are not read), events refused per app. /api/collector shows it; the same refusals
    are counted per app as rejected:REASON (hit/ingest.py).
    """

    def __init__(
        self,
        clock: Callable[[], float],
        client: tuple[float, float] = (0.0, 0.0),
        address: tuple[float, float] = (0.0, 0.0),
        app: tuple[float, float] = (0.0, 0.0),
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        """Each limit as (events a second, burst); a rate of 0 turns that limit off.
        Each table remembers up to `max_clients` clients (addresses, app keys)."""
        self.client = _buckets(*client, clock, max_clients)
        self.address = _buckets(*address, clock, max_clients)
        self.app = _buckets(*app, clock, max_clients)
        self.refused: Counter[str] = Counter()

    def refuse_client(self, ip: str, ua: str, now: float) -> tuple[str, float]:
        """Before a request is read: ("", 0) when it may go ahead (one token taken from
        its client's and its address's buckets), else (reason, seconds to wait).

        The client's bucket first: a flooder refused there takes nothing from its
        address's bucket, which the other pupils behind that address share.
        """
        if self.client is not None:
            wait = self.client.take(hash((ip, ua)), 1.0, now)  # hashed: a long User-Agent is not kept
            if wait:
                return self._refused(CLIENT_LIMIT), wait
        if self.address is not None:
            wait = self.address.take(hash(ip), 1.0, now)  # hashed too: the table keeps no address string
            if wait:
                return self._refused(ADDRESS_LIMIT), wait
        return "", 0.0

    def spend_client(self, ip: str, ua: str, events: int) -> None:
        """The events of a request beyond the one token refuse_client took."""
        if events > 1:
            if self.client is not None:
                self.client.spend(hash((ip, ua)), events - 1)
            if self.address is not None:
                self.address.spend(hash(ip), events - 1)

    def refuse_app(self, app_key: str, events: int, now: float) -> float:
        """0 when `events` events with app key `app_key` may be counted (their tokens are
        spent), else seconds to wait. Per key, hashed: a key that is no platform's gets a
        bucket of its own (and its events are refused anyway), a long one is not kept."""
        if self.app is None:
            return 0.0
        wait = self.app.take(hash(app_key), events, now)
        if wait:
            self.refused[APP_LIMIT] += events
        return wait

    def _refused(self, reason: str) -> str:
        self.refused[reason] += 1
        return reason
