"""The collector's Redis client: redis-py's asyncio client with hiredis packing commands.

`send_packed` sends commands packed beforehand (the flusher packs in its thread), so
the event loop only writes bytes and reads replies.

redis-py's asyncio connection packs every command in pure Python (its synchronous
client uses hiredis when installed, the asyncio one does not). A flush sends a few
script calls with thousands of arguments each, and packing them was ~9 % of the
collector's CPU under load (bench/RESULTS.md profile). hiredis.pack_command does the
same in C.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

# What a command's arguments may be, as redis-py takes them.
Arg = str | bytes | int | float


def pack(*args: Arg) -> bytes:
    """One command in RESP, as redis-py would send it (arguments: str, bytes, int, float)."""
    # hiredis' stub types the tuple as one element; it takes any number of them.
    packed: bytes = hiredis.pack_command(args)  # type: ignore[arg-type]
    return packed


def chunks(commands: list[bytes], max_commands: int, max_bytes: int) -> Iterator[list[bytes]]:
    """Consecutive runs of `commands`, each at most `max_commands` long and `max_bytes`
    big (a single command over `max_bytes` is a run alone): the round trips of a pipeline."""
    run: list[bytes] = []
    size = 0
    for command in commands:
        if run and (len(run) >= max_commands or size + len(command) > max_bytes):
            yield run
            run, size = [], 0
        run.append(command)
        size += len(command)
    if run:
        yield run


# A reply is whatever RESP carries (nested arrays, integers, bytes, None...): redis-py's own type.
Reply = Any


async def send_packed(client: aioredis.Redis, commands: list[bytes], timeout: float | None = None) -> list[Reply]:
    """Send packed commands in one write and read every reply (a pipeline without packing).

    Raises the first error reply, after reading all of them. With `timeout`, the whole
    round trip must end within that many seconds (the client's socket timeout bounds
    each read alone, so a long pipeline could otherwise take it many times over): else
    redis' TimeoutError. A connection error, timeout or cancellation mid-way disconnects
    the connection, so unread replies are never taken for the answers of the next user
    of the pooled connection.
    """
    pool = client.connection_pool
    connection = await pool.get_connection()
    try:
        async with asyncio.timeout(timeout):
            replies = await _round_trip(connection, commands)
    except TimeoutError:  # asyncio's deadline (redis' own socket timeout is a RedisError)
        await connection.disconnect()
        raise RedisTimeoutError(f"round trip of {len(commands)} commands took over {timeout}s") from None
    except BaseException:
        await connection.disconnect()
        raise
    finally:
        await pool.release(connection)
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
    return replies


async def _round_trip(connection: AbstractConnection, commands: list[bytes]) -> list[Reply]:
    await connection.send_packed_command(commands)
    replies: list[Reply] = []
    for _ in commands:
        try:
            replies.append(await connection.read_response())
        except ResponseError as error:
            replies.append(error)
    return replies


class HiredisPacking:
    """Mixed into the pool's connection class (TCP or Unix socket alike)."""

    def pack_command(self, *args: Arg) -> list[bytes]:
        # Like redis-py: a command name with a space ('CONFIG GET') is several arguments.
        first = args[0]
        if isinstance(first, str) and " " in first:
            args = tuple(first.split()) + args[1:]
        elif isinstance(first, bytes) and b" " in first:
            args = tuple(first.split()) + args[1:]
        return [pack(*args)]


def connect(url: str, **options: Any) -> aioredis.Redis:
    client = aioredis.from_url(url, **options)
    pool = client.connection_pool
    base = pool.connection_class
    if not issubclass(base, HiredisPacking):
        pool.connection_class = type("Hiredis" + base.__name__, (HiredisPacking, base), {})
    return client
