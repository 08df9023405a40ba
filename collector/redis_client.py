"""The collector's Redis client: redis-py's asyncio client with hiredis packing commands.

redis-py's asyncio connection packs every command in pure Python (its synchronous
client uses hiredis when installed, the asyncio one does not). A flush sends a few
script calls with thousands of arguments each, and packing them was ~9 % of the
collector's CPU under load (bench/RESULTS.md profile). hiredis.pack_command does the
same in C.
"""

from __future__ import annotations

import hiredis
import redis.asyncio as aioredis


class HiredisPacking:
    """Mixed into the pool's connection class (TCP or Unix socket alike)."""

    def pack_command(self, *args):
        # Like redis-py: a command name with a space ('CONFIG GET') is several arguments.
        first = args[0]
        if isinstance(first, str) and " " in first:
            args = tuple(first.split()) + args[1:]
        elif isinstance(first, bytes) and b" " in first:
            args = tuple(first.split()) + args[1:]
        return [hiredis.pack_command(args)]


def connect(url: str, **options) -> aioredis.Redis:
    client = aioredis.from_url(url, **options)
    pool = client.connection_pool
    base = pool.connection_class
    if not issubclass(base, HiredisPacking):
        pool.connection_class = type("Hiredis" + base.__name__, (HiredisPacking, base), {})
    return client
