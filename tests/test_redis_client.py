"""The hiredis packer sends the very bytes redis-py's own packer would, and works."""

from __future__ import annotations

import redis.asyncio as aioredis

from collector import redis_client

ARGS = [("EVALSHA", "abc", 2, "eb:{a|20261124}:c", b"\x00\xffbin", 3.5, "区域", -7), ("CONFIG GET", "maxmemory")]


def test_packs_like_redis_py():
    packer = type("C", (redis_client.HiredisPacking, aioredis.Connection), {})()
    plain = aioredis.Connection()
    for args in ARGS:
        assert b"".join(packer.pack_command(*args)) == b"".join(plain.pack_command(*args))


async def test_a_connected_client_uses_it_and_round_trips(redis_url):
    client = redis_client.connect(redis_url)
    try:
        assert issubclass(client.connection_pool.connection_class, redis_client.HiredisPacking)
        await client.hset("eb:test:packing", mapping={"区域": 1, "b": 2})
        pipe = client.pipeline(transaction=False)
        pipe.hincrby("eb:test:packing", "区域", 41)
        pipe.hgetall("eb:test:packing")
        _, got = await pipe.execute()
        assert got == {"区域".encode(): b"42", b"b": b"2"}
    finally:
        await client.delete("eb:test:packing")
        await client.aclose()
