"""The hiredis packer sends the very bytes redis-py's own packer would, and works."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from collector.store import redis_client
from collector.store.cluster_send import waves
from collector.store.redis_client import BadRedisUrl, cluster_seeds

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


async def test_send_packed_reads_every_reply_and_raises_the_first_error(redis_url):
    client = redis_client.connect(redis_url)
    pack = redis_client.pack
    try:
        commands = [pack("SET", "eb:test:sent", "1"), pack("INCRBY", "eb:test:sent", "x"), pack("INCR", "eb:test:sent")]
        with pytest.raises(ResponseError):
            await redis_client.send_packed(client, commands)
        assert await client.get("eb:test:sent") == b"2"  # the command after the error ran too
        # ...and its reply was read: the pooled connection answers the next command rightly.
        assert await redis_client.send_packed(client, [pack("GET", "eb:test:sent"), pack("STRLEN", "eb:test:sent")]) == [b"2", 1]
    finally:
        await client.delete("eb:test:sent")
        await client.aclose()


def test_cluster_urls_name_seed_nodes_credentials_and_tls():
    assert cluster_seeds("redis://127.0.0.1:6379/0") is None
    assert cluster_seeds("redis+cluster://10.0.0.1:7000,10.0.0.2:7001") == ([("10.0.0.1", 7000), ("10.0.0.2", 7001)], {"ssl": False})
    seeds, options = cluster_seeds("rediss+cluster://bob:p%40ss@[::1]:7000/")
    assert seeds == [("::1", 7000)] and options == {"ssl": True, "username": "bob", "password": "p@ss"}
    with pytest.raises(BadRedisUrl, match="host:port"):
        cluster_seeds("redis+cluster://10.0.0.1")


def test_cluster_waves_keep_one_call_per_slot_in_flight_in_order():
    slot = {"a": 1, "b": 2, "c": 1}.__getitem__  # keys a and c share a slot
    calls = [("EVALSHA", "sha", 2, "a", "x", 1), ("EVALSHA", "sha", 2, "c", "x", 2), ("EVALSHA", "sha", 2, "b", "x", 3),
             ("ZADD", "b", 1, "m"), ("ZADD", "b", 2, "n"), ("EVALSHA", "sha", 2, "a", "x", 4)]
    # Script calls of one slot one per wave; the idempotent ZADDs all in the first.
    assert waves(calls, slot) == [[calls[0], calls[2], calls[3], calls[4]], [calls[1]], [calls[5]]]


async def test_a_read_is_made_again_on_a_fresh_connection_after_redis_restarted(tmp_path):
    """After a restart of Redis, the connections pooled before it are dead, and the first
    pipeline on one fails ("Connection closed by server"): the read API answered 503 once
    (tests/test_faults.py). again_after_a_dropped_connection makes it once more, which
    is enough with three dead connections in the pool; a Redis that stays away still raises."""
    from conftest import start_redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    redis = start_redis(tmp_path / "redis")
    client = redis_client.connect(redis.url)
    pool = client.connection_pool
    held = [await pool.get_connection() for _ in range(3)]  # three connected, then idle in the pool
    for connection in held:
        await pool.release(connection)
    await client.set("k", "v")

    async def read() -> list:
        async with client.pipeline(transaction=False) as pipe:
            pipe.get("k")
            return await pipe.execute()

    try:
        redis.proc.terminate()
        redis.proc.wait(10)
        redis = start_redis(tmp_path / "redis", port=redis.port)  # empty: nothing saved
        assert await redis_client.again_after_a_dropped_connection(read) == [None]
        redis.proc.terminate()
        redis.proc.wait(10)
        with pytest.raises(RedisConnectionError):
            await redis_client.again_after_a_dropped_connection(read)
    finally:
        redis.proc.kill()
        await client.aclose()
