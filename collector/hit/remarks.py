"""Remarks on accepted events, for the daily validation (科学校验): flags, not refusals.

An event with a remark still counts; the remark adds a `flagged:REASON` counter
(store/names.py) through the same reject records as `flagged:foreign_origin`, so the
hit record, the journal and the aggregator are unchanged. registry/health.py sets the
day's flags against the day's events.
"""

from __future__ import annotations

from collector.untracked import untracked_set

# Event ids one worker remembers, at most: two generations of half as many (RecentIds).
# A generation of 50 000 ids covers minutes of a busy worker's traffic, in about 8 MB. The
# beacon keeps what failed to send in localStorage and replays it at the next page load,
# seconds to minutes later for a visitor still browsing; a replay after a longer pause is
# forgotten (and a replay after over a day is flagged client_clock instead).
REMEMBERED_IDS = 100_000


def outside_window(ts_ms: float, now: float, past: float, ahead: float) -> bool:
    """True when a client timestamp (ms) lies more than `past` seconds before `now` or
    `ahead` after it: the event then counts at its receipt (hit/ingest.py), and its
    client clock is worth a remark."""
    return not now - past <= ts_ms / 1000 <= now + ahead


class RecentIds:
    """Has this worker seen this event id of this app lately? Two set lookups per event.

    Memory is bounded: ids go into the current generation; when it holds `limit // 2`,
    it becomes the previous one and the older generation is dropped. So the newest
    `limit // 2` to `limit` ids are remembered — per worker process: a resend that
    another worker receives is not seen. The browser usually replays on the
    connection it keeps alive to the collector, hence to the same worker; one on a
    new connection reaches the same worker about one time in the number of workers.
    So the count of repeats is a lower bound.

    The sets hold the hash of (app, id), not the strings: 64-bit integers bound the
    memory whatever the ids' lengths (about 80 bytes an id, 8 MB when full); a new id
    is taken for a repeat only when its salted 64-bit hash equals one of the 100 000
    remembered — a chance of 1 in 10^14.

    The sets are kept out of the garbage collector's walks (collector/untracked.py): ints
    only, they can never be part of a cycle, and once POST traffic had filled them (up to
    100 000 ids) every full collection walked them — ~4 ms more per full collection of the
    hit loop, for as long as the worker lived (bench/RESULTS.md, session 11).
    """

    def __init__(self, limit: int = REMEMBERED_IDS) -> None:
        self.generation = max(1, limit // 2)
        self.current: set[int] = untracked_set()
        self.previous: set[int] = untracked_set()

    def seen(self, app: str, event_id: str) -> bool:
        """True when the id came before; else remember it and return False."""
        key = hash((app, event_id))
        if key in self.current or key in self.previous:
            return True
        if len(self.current) >= self.generation:
            self.previous, self.current = self.current, untracked_set()
        self.current.add(key)
        return False

    def __len__(self) -> int:
        return len(self.current) + len(self.previous)
