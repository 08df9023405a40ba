"""Who a hit belongs to: the salted visitor hash and, for bare pixels, visit inference.

The salts themselves are kept in Redis by store/salts.py (SaltKeeper).

The standard counts UV from source IP + device information. We never store either:
the visitor key is BLAKE2b keyed with a random salt that all replicas share through
Redis (SET NX). Minute, hour and day HyperLogLogs use the day's salt, which Redis
deletes 48 h after the day starts. A daily key changes every day, so a month HLL fed
with it would count a returning visitor once per day; the month HLL therefore gets a
key salted per month, deleted 48 h after the month ends. HLLs keep only registers,
never the hashed elements, so neither salt lets anyone list who visited.
"""

from __future__ import annotations

import logging
import os
from hashlib import blake2b
from typing import TYPE_CHECKING

from collector.hit.record import NO_VISIT, VISIT_SECOND_PAGE, VISIT_START
from collector.native import c_module

if TYPE_CHECKING:
    from collector.hit._visit_table import VisitTable

log = logging.getLogger(__name__)

DIGEST_SIZE = 8  # bytes of a visitor key


class VisitorHasher:
    def __init__(self) -> None:
        # period -> BLAKE2b keyed with its salt, never updated: each hash starts from a
        # copy, which costs less than keying anew (the key is a whole compressed block).
        self._keyed: dict[str, blake2b] = {}
        self._local_fallback: set[str] = set()

    def set_salt(self, period: str, salt: bytes) -> None:
        self._keyed[period] = blake2b(key=salt[:64], digest_size=DIGEST_SIZE)  # keys are at most 64 bytes
        self._local_fallback.discard(period)

    def visitor(self, period: str, ip: str, ua: str) -> bytes:
        """The visitor key under the salt of `period` (a day id or a month id).

        The platform is not in it: one person (IP + device) has the same key on every
        platform, so a group's UV is the union of its platforms' HyperLogLogs, a distinct
        count across them (docs/groups-and-reports.md). Hashed per platform, a union would
        be a sum."""
        return self._hashed(period, _identity(ip, ua))

    def day_and_month(self, day: str, month: str, ip: str, ua: str) -> tuple[bytes, bytes]:
        """`visitor` under the day's and under the month's salt: every hit needs both, and
        the identity (an IP and a ~250-character User-Agent) is encoded once for the two."""
        identity = _identity(ip, ua)
        return self._hashed(day, identity), self._hashed(month, identity)

    def _hashed(self, period: str, identity: bytes) -> bytes:
        keyed = self._keyed.get(period)
        if keyed is None:
            # Redis has not given us this period's salt (unreachable at start). Hash with
            # a process-local one rather than drop the hit; UV may then over-count across
            # replicas for the hits hashed before the shared salt arrives.
            keyed = self._keyed[period] = blake2b(key=os.urandom(32), digest_size=DIGEST_SIZE)
            self._local_fallback.add(period)
            log.warning("no shared visitor salt for %s yet: using a local one", period)
        hashed = keyed.copy()
        hashed.update(identity)
        return hashed.digest()

    def retain(self, periods: set[str]) -> None:
        """Forget the salts of every other period (those days and months are over)."""
        for period in [p for p in self._keyed if p not in periods]:
            del self._keyed[period]
            self._local_fallback.discard(period)


def _identity(ip: str, ua: str) -> bytes:
    """What a visitor key hashes: the client's IP and User-Agent."""
    return f"{ip}\0{ua}".encode("utf-8", "replace")


# Visitors a VisitTracker remembers by default (settings.visit_tracker_visitors): ~42 bytes
# each in the compiled table, ~125 in the dict. A module constant, not a class attribute:
# compiled (mypyc), a class attribute read as a default argument in the class body fails
# at import.
VISIT_TRACKER_ENTRIES = 100_000


class VisitTracker:
    """Infers visit starts for page views that carry no session ordinal (`sn`).

    Per process only: with several replicas behind a balancer this over-counts visits of
    such hits. The beacon always sends `sn`, which is exact.
    """

    def __init__(self, timeout: int, max_entries: int = VISIT_TRACKER_ENTRIES, compact: bool = True) -> None:
        self.timeout = timeout
        self.max_entries = max_entries
        # Compiled installs keep the visitors in a table of 64-bit words (hit/_visit_table.c):
        # 4 MB at 100,000 visitors, against ~12.5 MB of dict, bytes and ints — the largest
        # per-visitor table of a run of a million bare pixels (bench/RESULTS.md, session 14).
        # Both answer alike for every sequence of visits (tests/test_visit_tracker.py).
        compiled = compiled_visit_table() if compact else None
        self.table: VisitTable | None = compiled(timeout, max_entries) if compiled is not None else None
        # Otherwise: visitor -> last seen (whole seconds) << 2 | page views in the visit (1, 2,
        # 3 = more): one int per visitor rather than a list, as there can be a million of them.
        self._seen: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self.table) if self.table is not None else len(self._seen)

    def visit_flag(self, visitor: bytes, now: float) -> int:
        """VISIT_START, VISIT_SECOND_PAGE or NO_VISIT for a page view of `visitor` (a key
        of DIGEST_SIZE bytes) at `now`."""
        table = self.table
        if table is not None:
            pages = table.visit(visitor, now)
            return VISIT_START if pages == 1 else VISIT_SECOND_PAGE if pages == 2 else NO_VISIT
        entry = self._seen.get(visitor)
        stamp = int(now) << 2
        if entry is None or stamp - (entry & ~3) > self.timeout << 2:
            if len(self._seen) >= self.max_entries:
                self.prune(now)
            self._seen[visitor] = stamp | 1
            return VISIT_START
        pages = min((entry & 3) + 1, 3)
        self._seen[visitor] = stamp | pages
        return VISIT_SECOND_PAGE if pages == 2 else NO_VISIT

    def prune(self, now: float) -> None:
        cutoff = int(now - self.timeout) << 2
        self._seen = {v: e for v, e in self._seen.items() if e >= cutoff}
        if len(self._seen) >= self.max_entries:  # all recent: forget the oldest half
            # The median stamp from the values alone: sorting the (visitor, entry) pairs
            # would build a tuple per visitor, tens of MB at the peak of a full table.
            # Strictly newer: ties at the median go too, so at least half always does.
            median = sorted(self._seen.values())[len(self._seen) // 2]
            self._seen = {v: e for v, e in self._seen.items() if e > median}


def compiled_visit_table() -> type[VisitTable] | None:
    """The compiled table's type; None when it was not built (or its build is stale:
    collector/native.py then refuses it, and VisitTracker keeps the dict)."""
    module = c_module("collector.hit._visit_table")
    return None if module is None else module.VisitTable


def flag_from_ordinal(sn: int) -> int:
    return VISIT_START if sn == 1 else VISIT_SECOND_PAGE if sn == 2 else NO_VISIT
