"""UV over many HyperLogLogs: the PFCOUNT of each union, safe on Redis Cluster.

`PFCOUNT k1 k2 …` merges the keys' registers inside Redis and counts the union. On a
standalone Redis any keys may be named together. On Redis Cluster the keys of one call
must share a slot, and ours do not: every app and day has its own hash tag ({APP|DAY}),
so a month read by day, or a group of platforms, spans many slots and is refused.

There the reader copies: a HyperLogLog is a plain string, so `GET` returns its bytes
and `SET` of those bytes under another name is the same HyperLogLog. Each distinct key is
copied once into `eb:{hll:TOKEN}:N` (store/keys.py: one hash tag, so one slot, with a
60 s expiry in case the reader dies), every union is a PFCOUNT of the copies, and the
copies are deleted. Redis's own code still merges and estimates, so the numbers equal
those of a standalone Redis exactly (tests/test_groups.py compares both paths).

Why not keep a group's HyperLogLogs at flush time: groups change (named sets, a
platform's region, new platforms), it would add a PFADD per hit per group to the flush,
and past months could not be recounted for a changed group. The copy costs only reads:
bench/RESULTS.md "groups" measures it.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from collector.store import keys

# Unions counted per round trip, and copies written per round trip (a dense HLL is 12 KB:
# 500 of them are 6 MB).
UNIONS_PER_ROUND_TRIP = 200
COPIES_PER_ROUND_TRIP = 500
# What one read's copies may hold in Redis at once (they live until its count is done):
# 20,000 dense HyperLogLogs. Beyond, the read is refused with UnionTooLarge.
MAX_COPY_BYTES = 256 << 20


class UnionTooLarge(ValueError):
    """The copies of this read would take more Redis memory than MAX_COPY_BYTES."""


def needs_copies(redis: object) -> bool:
    """Whether PFCOUNT of keys in several slots would be refused (a Redis Cluster client)."""
    return isinstance(redis, RedisCluster)


async def count_unions(redis: aioredis.Redis | RedisCluster, unions: Sequence[Sequence[str]], copy: bool | None = None) -> list[int]:
    """PFCOUNT of each list of keys (their union), in order. `copy` forces (True) or
    forbids (False) the copying path; by default it is taken on Redis Cluster only."""
    present = [union for union in unions if union]  # an empty union is 0 (PFCOUNT needs a key)
    if not present:
        return [0 for _ in unions]
    if copy if copy is not None else needs_copies(redis):
        counted = iter(await _count_copied(redis, present))
    else:
        counted = iter(await _count_in_place(redis, present))
    return [next(counted) if union else 0 for union in unions]


async def _count_in_place(redis: aioredis.Redis | RedisCluster, unions: Sequence[Sequence[str]]) -> list[int]:
    counts: list[int] = []
    for start in range(0, len(unions), UNIONS_PER_ROUND_TRIP):
        chunk = unions[start : start + UNIONS_PER_ROUND_TRIP]
        if needs_copies(redis):
            # redis-py's cluster pipeline refuses PFCOUNT (a multi-key command): concurrent calls.
            answers = await asyncio.gather(*(redis.pfcount(*union) for union in chunk))
        else:
            pipe = redis.pipeline(transaction=False)
            for union in chunk:
                pipe.pfcount(*union)
            answers = await pipe.execute()
        counts.extend(int(n) for n in answers)
    return counts


async def _count_copied(redis: aioredis.Redis | RedisCluster, unions: Sequence[Sequence[str]]) -> list[int]:
    distinct = list(dict.fromkeys(key for union in unions for key in union))
    token = secrets.token_hex(8)
    copy_of: dict[str, str] = {}
    copied_bytes = 0
    try:
        for start in range(0, len(distinct), COPIES_PER_ROUND_TRIP):
            chunk = distinct[start : start + COPIES_PER_ROUND_TRIP]
            read = redis.pipeline(transaction=False)
            for key in chunk:
                read.get(key)
            write = redis.pipeline(transaction=False)
            for n, (key, raw) in enumerate(zip(chunk, await read.execute(), strict=True), start=start):
                if raw is not None:  # a missing HLL adds nothing to a union
                    copied_bytes += len(raw)
                    if copied_bytes > MAX_COPY_BYTES:
                        raise UnionTooLarge(f"these UVs need more than {MAX_COPY_BYTES >> 20} MB of HyperLogLogs copied "
                                            "across Redis Cluster slots; ask fewer platforms, buckets or rows")
                    copy_of[key] = keys.hll_copy(token, n)
                    write.set(copy_of[key], raw, px=keys.HLL_COPY_TTL_MS)
            await write.execute()
        copied = [[copy_of[key] for key in union if key in copy_of] for union in unions]
        present = [union for union in copied if union]
        counts = iter(await _count_in_place(redis, present))
        return [next(counts) if union else 0 for union in copied]
    finally:
        if copy_of:
            await _delete(redis, list(copy_of.values()))


async def _delete(redis: aioredis.Redis | RedisCluster, names: list[str]) -> None:
    for start in range(0, len(names), COPIES_PER_ROUND_TRIP):
        await redis.delete(*names[start : start + COPIES_PER_ROUND_TRIP])
