"""Remarks on accepted events, for the daily validation (科学校验): flags, not refusals.

An event with a remark still counts; the remark adds a `flagged:REASON` counter
(store/names.py) through the same reject records as `flagged:foreign_origin`, so the
hit record, the journal and the aggregator are unchanged. registry/health.py sets the
day's flags against the day's events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from collector.native import c_module
from collector.untracked import untracked_set

if TYPE_CHECKING:
    from collector.hit._id_table import IdGenerations

# Event ids one worker remembers, at most: two generations of half as many (RecentIds).
# A generation of 50 000 ids covers minutes of a busy worker's traffic, in 1 MB (4 as a set). The
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
    """Has this worker seen this event id of this app lately?

    Memory is bounded: ids go into the current generation; when it holds `limit // 2`,
    it becomes the previous one and the older generation is dropped. So the newest
    `limit // 2` to `limit` ids are remembered — per worker process: a resend that
    another worker receives is not seen. The browser usually replays on the
    connection it keeps alive to the collector, hence to the same worker; one on a
    new connection reaches the same worker about one time in the number of workers.
    So the count of repeats is a lower bound.

    The record holds the hash of (app, id), not the strings: 64-bit integers bound the
    memory whatever the ids' lengths; a new id is taken for a repeat only when its salted
    64-bit hash equals one of the 100 000 remembered — a chance of 1 in 10^14.

    Compiled installs keep the generations as two tables of 64-bit slots
    (hit/_id_table.c): 2 MB at 100,000 ids, no object per id. Otherwise, and with
    `compact=False`, as two sets of int objects (~7.4 MB at 100,000 ids, and ints made one
    per event among each request's short-lived objects, which kept pymalloc's pools from
    emptying: 6-12 MB more at the POST runs' peaks, bench/RESULTS.md, session 13). Both
    answer alike for every sequence of ids (tests/test_remarks.py). The sets are kept out
    of the garbage collector's walks (collector/untracked.py): ints only, they can never be
    part of a cycle, and once POST traffic had filled them every full collection walked
    them — ~4 ms more per full collection of the hit loop (bench/RESULTS.md, session 11).
    """

    def __init__(self, limit: int = REMEMBERED_IDS, compact: bool = True) -> None:
        self.generation = max(1, limit // 2)
        self.table: IdGenerations | None = None
        compiled = compiled_record() if compact else None
        if compiled is not None:
            self.table = compiled(self.generation)
        self.current: set[int] = untracked_set()
        self.previous: set[int] = untracked_set()

    def seen(self, app: str, event_id: str) -> bool:
        """True when the id came before; else remember it and return False."""
        table = self.table
        if table is not None:
            return table.seen(app, event_id)
        key = hash((app, event_id))
        if key in self.current or key in self.previous:
            return True
        if len(self.current) >= self.generation:
            self.previous, self.current = self.current, untracked_set()
        self.current.add(key)
        return False

    def sizes(self) -> tuple[int, int]:
        """(ids in the current generation, ids in the previous one)."""
        if self.table is not None:
            return self.table.sizes()
        return len(self.current), len(self.previous)

    def __len__(self) -> int:
        current, previous = self.sizes()
        return current + previous


def compiled_record() -> type[IdGenerations] | None:
    """The compiled record's type; None when it was not built (or its build is stale:
    collector/native.py then refuses it, and RecentIds keeps the sets)."""
    module = c_module("collector.hit._id_table")
    return None if module is None else module.IdGenerations
