"""Remarks on accepted events, for the daily validation (科学校验): flags, not refusals.

An event with a remark still counts; the remark adds a `flagged:REASON` counter
(store/names.py) through the same reject records as `flagged:foreign_origin`, so the
hit record, the journal and the aggregator are unchanged. registry/health.py sets the
day's flags against the day's events.
"""

from __future__ import annotations

from array import array

# Event ids one worker remembers, at most: two generations of half as many (RecentIds).
# A generation of 50 000 ids covers minutes of a busy worker's traffic, in about 2 MB. The
# beacon keeps what failed to send in localStorage and replays it at the next page load,
# seconds to minutes later for a visitor still browsing; a replay after a longer pause is
# forgotten (and a replay after over a day is flagged client_clock instead).
REMEMBERED_IDS = 100_000


def outside_window(ts_ms: float, now: float, past: float, ahead: float) -> bool:
    """True when a client timestamp (ms) lies more than `past` seconds before `now` or
    `ahead` after it: the event then counts at its receipt (hit/ingest.py), and its
    client clock is worth a remark."""
    return not now - past <= ts_ms / 1000 <= now + ahead


# An empty slot of a RecentIds table. A key that hashes to it is stored as 1 instead: two
# keys more share a value, where 2^64 values already share 10^5 remembered (see RecentIds).
EMPTY = 0
# Slots of a generation's table at first; it doubles (up to RecentIds.most_slots) as it fills.
FIRST_SLOTS = 1024


def _table(slots: int) -> array[int]:
    """A table of `slots` empty slots: 8 bytes each, one block (mapped for itself once large)."""
    return array("q", bytes(8 * slots))


class RecentIds:
    """Has this worker seen this event id of this app lately? One or two table lookups per event.

    Memory is bounded: ids go into the current generation; when it holds `limit // 2`,
    it becomes the previous one and the older generation is dropped. So the newest
    `limit // 2` to `limit` ids are remembered — per worker process: a resend that
    another worker receives is not seen. The browser usually replays on the
    connection it keeps alive to the collector, hence to the same worker; one on a
    new connection reaches the same worker about one time in the number of workers.
    So the count of repeats is a lower bound.

    The tables hold the hash of (app, id), not the strings: 64-bit integers bound the
    memory whatever the ids' lengths; a new id is taken for a repeat only when its salted
    64-bit hash equals one of the 100 000 remembered — a chance of 1 in 10^14.

    Each generation is an open-addressing table of 64-bit slots (an `array`, linear
    probing, at most half full), not a set of int objects: a set kept every id as a
    32-byte int object of its own plus a 16-byte slot, ~7.4 MB at 100,000 ids, and those
    ints, made one per event between the request's short-lived objects, kept pymalloc's
    pools from emptying long after the requests were gone. The tables take 8 bytes a slot
    (2 MB at 100,000 ids), in two blocks that glibc maps for themselves and hands back when
    a generation is dropped, and the garbage collector never walks them (an array holds
    no objects). Issue 17, RSS during the POST runs: bench/RESULTS.md, session 13.
    """

    def __init__(self, limit: int = REMEMBERED_IDS) -> None:
        self.generation = max(1, limit // 2)
        most = FIRST_SLOTS
        while most < 2 * self.generation:
            most *= 2
        self.most_slots = most  # a full generation fills at most half of its table
        self.current = _table(FIRST_SLOTS)
        self.previous = _table(FIRST_SLOTS)
        self.in_current = 0
        self.in_previous = 0

    def seen(self, app: str, event_id: str) -> bool:
        """True when the id came before; else remember it and return False."""
        key = hash((app, event_id)) or 1
        table = self.current
        mask = len(table) - 1
        slot = key & mask
        while True:
            held = table[slot]
            if held == key:
                return True
            if held == EMPTY:
                break
            slot = (slot + 1) & mask
        if self.in_previous and _holds(self.previous, key):
            return True
        if self.in_current >= self.generation:
            self.previous, self.in_previous = table, self.in_current
            self.current, self.in_current = _table(len(table)), 0
            _put(self.current, key)
        elif 2 * (self.in_current + 1) > len(table) and len(table) < self.most_slots:
            self.current = _grown(table)
            _put(self.current, key)
        else:
            table[slot] = key  # the empty slot the search ended on
        self.in_current += 1
        return False

    def __len__(self) -> int:
        return self.in_current + self.in_previous


def _holds(table: array[int], key: int) -> bool:
    mask = len(table) - 1
    slot = key & mask
    while True:
        held = table[slot]
        if held == key:
            return True
        if held == EMPTY:
            return False
        slot = (slot + 1) & mask


def _put(table: array[int], key: int) -> None:
    mask = len(table) - 1
    slot = key & mask
    while table[slot] != EMPTY:
        slot = (slot + 1) & mask
    table[slot] = key


def _grown(table: array[int]) -> array[int]:
    """`table`'s keys in a table twice its size."""
    grown = _table(2 * len(table))
    for key in table:
        if key != EMPTY:
            _put(grown, key)
    return grown
