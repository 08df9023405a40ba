"""The top rows of a breakdown, read in bounded steps: reads must never stall hits.

A breakdown is a hash per bucket (value -> count), summed over the buckets asked for,
and can hold 50,000 values of 2 KB (page URLs). Read with HGETALL, one such hash is a
100 MB reply parsed in one go, turned into 50,000 rows and sorted, all on the event
loop that also answers hits: measured (bench/read_stall.py), four such reads at once
held hits up to 2 s and took the process from 92 MB to 1.2 GB.

So a breakdown is read with HSCAN, about SCAN_COUNT fields per round trip: between two
chunks the event loop serves hits, and no chunk takes more than a few milliseconds of
work. Of the values only the top `limit` are ever kept whole. The sums are kept per
value's 16-byte BLAKE2b digest (a 2 KB URL costs ~100 bytes, not 2 KB); once the sums
are known, a second scan picks up the text of the values that made the cut. (Sorting in
a thread would not help: the GIL still stops the loop, and the memory stays.) When the
breakdown has no more than `limit` values the first scan keeps their text and the
second is skipped, which is the case of every small breakdown (device, browser, os…).

The caller bounds the whole read (stats.py ReadBudget): entries scanned, PFCOUNT keys,
answer bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import weakref
from collections.abc import AsyncIterator
from typing import cast

import redis.asyncio as aioredis

SCAN_COUNT = 250  # fields per HSCAN: about a millisecond of work per chunk for 2 KB values
# Breakdown scans run one at a time per process: a hit then waits behind at most one
# chunk's work, not one chunk of every read in flight, and the memory of reads in flight
# does not add up. Reads queue instead; the bounds in stats.py keep each one short.
# One semaphore per event loop (a process has one; tests make many).
_SCANS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _one_scan_at_a_time() -> asyncio.Semaphore:
    return _SCANS.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(1))


def _digest(field: bytes) -> bytes:
    return hashlib.blake2b(field, digest_size=16).digest()


async def scan_fields(redis: aioredis.Redis, key: str) -> AsyncIterator[dict[bytes, bytes]]:
    """The hash at `key` in chunks (HSCAN), each at most a few thousand fields."""
    cursor = 0
    while True:
        cursor, chunk = await redis.hscan(key, cursor, count=SCAN_COUNT)
        if chunk:
            # cast: redis-py types HSCAN's reply for every client setting; ours keeps bytes
            # (no decode_responses), so the fields and values are bytes.
            yield cast(dict[bytes, bytes], chunk)
        if not cursor:
            return


async def summed_fields(redis: aioredis.Redis, hash_keys: list[str]) -> dict[bytes, int]:
    """Every field of the hashes, summed over them, read in chunks (for the deep
    breakdowns, whose rows need every metric of a value before they can be ranked)."""
    summed: dict[bytes, int] = {}
    async with _one_scan_at_a_time():
        await _sum_into(summed, redis, hash_keys)
    return summed


async def _sum_into(summed: dict[bytes, int], redis: aioredis.Redis, hash_keys: list[str]) -> None:
    for key in hash_keys:
        seen: set[bytes] = set()
        async for chunk in scan_fields(redis, key):
            for field, n in chunk.items():
                if field not in seen:  # HSCAN may return a field twice when the hash grows meanwhile
                    seen.add(field)
                    summed[field] = summed.get(field, 0) + int(n)


async def top_fields(redis: aioredis.Redis, hash_keys: list[str], limit: int) -> tuple[list[tuple[bytes, int]], int]:
    """The `limit` fields with the largest sums over `hash_keys` as (field, sum), ordered
    by sum (descending) then field, and how many distinct fields there are in all."""
    async with _one_scan_at_a_time():
        totals, names = await _sums(redis, hash_keys, limit)
        if names is not None:  # few enough values: their text came with the first scan
            rows = [(field, totals[digest]) for digest, field in names.items()]
        else:
            rows = await _named_top(redis, hash_keys, totals, limit)
    rows.sort(key=lambda row: (-row[1], row[0]))
    return rows[:limit], len(totals)


async def _sums(redis: aioredis.Redis, hash_keys: list[str], limit: int) -> tuple[dict[bytes, int], dict[bytes, bytes] | None]:
    """Sums by digest; and digest -> field while there are at most `limit` of them, else None."""
    totals: dict[bytes, int] = {}
    names: dict[bytes, bytes] | None = {}
    for key in hash_keys:
        seen: set[bytes] = set()
        async for chunk in scan_fields(redis, key):
            for field, n in chunk.items():
                digest = _digest(field)
                if digest in seen:  # HSCAN may return a field twice when the hash grows meanwhile
                    continue
                seen.add(digest)
                totals[digest] = totals.get(digest, 0) + int(n)
                if names is not None:
                    names[digest] = field
                    if len(names) > limit:
                        names = None
    return totals, names


async def _named_top(redis: aioredis.Redis, hash_keys: list[str], totals: dict[bytes, int], limit: int) -> list[tuple[bytes, int]]:
    """The second scan: the text of the values above the cut, and of as many as fit among
    those tied at it (the smallest, as the row order wants)."""
    cut = heapq.nlargest(limit, totals.values())[-1]
    tie_places = limit - sum(1 for total in totals.values() if total > cut)
    above: dict[bytes, bytes] = {}
    tied: list[bytes] = []
    tied_seen: set[bytes] = set()
    for key in hash_keys:
        async for chunk in scan_fields(redis, key):
            for field in chunk:
                digest = _digest(field)
                total = totals.get(digest)
                if total is None:  # a value new since the first scan
                    continue
                if total > cut:
                    above[digest] = field
                elif total == cut and digest not in tied_seen:
                    tied_seen.add(digest)
                    tied.append(field)
            if len(tied) > 2 * tie_places + SCAN_COUNT:  # keep the ties bounded as they come
                tied = heapq.nsmallest(tie_places, tied)
    return [(field, totals[digest]) for digest, field in above.items()] + [(f, cut) for f in heapq.nsmallest(tie_places, tied)]
