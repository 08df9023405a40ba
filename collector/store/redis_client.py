"""The collector's Redis client: redis-py's asyncio client with hiredis packing commands.

`connect` takes a single Redis (redis://, rediss://, unix://) or a Redis Cluster
(redis+cluster://host:port,host:port…, rediss+cluster://…: a few nodes as seeds, the
client learns the rest): then it returns redis-py's cluster client, which has the same
commands and routes each by its key's slot. The flusher sends its own pipelines and
takes another path to a cluster (cluster_send.py).

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
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final, TypeVar, cast
from urllib.parse import unquote

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from collector.native import c_module

T = TypeVar("T")

# What a command's arguments may be, as redis-py takes them.
Arg = str | bytes | int | float
# A command as its arguments, before it is packed.
Command = tuple[Arg, ...]


# hiredis' stub types the command's tuple as one element; it takes any number of them. Not
# a `type: ignore` at the call: where hiredis is not installed (the build's own environment,
# in which mypyc type-checks the modules the compiled ones import) it would be unused, an
# error that made the install compile nothing.
_pack_command: Callable[..., bytes] = hiredis.pack_command


def _compiled_pack() -> Callable[[tuple[Arg, ...]], bytes | None] | None:
    """store/_resp.c's pack_command: the same bytes for str, int and bytes arguments at ~1/5
    of hiredis' CPU an argument (the flush packs ~6 arguments a POST event), None for other
    arguments; None itself when it was not built (or its build is stale)."""
    module = c_module("collector.store._resp")
    return None if module is None else module.pack_command


_C_PACK: Final = _compiled_pack()


def pack(*args: Arg) -> bytes:
    """One command in RESP, as redis-py would send it (arguments: str, bytes, int, float)."""
    if _C_PACK is not None:
        packed = _C_PACK(args)
        if packed is not None:
            return packed
    return _pack_command(args)  # a float or another type, an int past 64 bits, a lone surrogate


def chunks(commands: list[T], max_commands: int, max_bytes: int, size: Callable[[Any], int] = len) -> Iterator[list[T]]:
    """Consecutive runs of `commands`, each at most `max_commands` long and `max_bytes`
    big by `size` (a single command over `max_bytes` is a run alone): the round trips of a pipeline."""
    run: list[T] = []
    total = 0
    for command in commands:
        if run and (len(run) >= max_commands or total + size(command) > max_bytes):
            yield run
            run, total = [], 0
        run.append(command)
        total += size(command)
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


def _with_hiredis(base: type) -> type:
    return base if issubclass(base, HiredisPacking) else type("Hiredis" + base.__name__, (HiredisPacking, base), {})


CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}  # scheme -> TLS


class BadRedisUrl(ValueError):
    pass


def cluster_seeds(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]] | None:
    """For a cluster URL, its seed nodes and client options (credentials, TLS); else None.

    `redis+cluster://[user:password@]host:port[,host:port…]`: a comma-separated list does
    not parse as one URL's host, so it is taken apart here.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in CLUSTER_SCHEMES:
        return None
    options: dict[str, Any] = {"ssl": CLUSTER_SCHEMES[scheme]}
    userinfo, at, hosts = rest.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        options.update(username=unquote(user) or None, password=unquote(password) if colon else None)
    seeds = []
    for address in hosts.rstrip("/").split(","):
        host, colon, port = address.strip().rpartition(":")
        if not colon or not host or not port.isdigit():
            raise BadRedisUrl(f"redis cluster node {address!r}: expected host:port")
        seeds.append((host.strip("[]"), int(port)))
    return seeds, options


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)


async def again_after_a_dropped_connection(request: Callable[[], Awaitable[T]]) -> T:
    """`request()`, made once more if Redis dropped the connection it used. After Redis
    restarts, the first pipeline on a connection pooled before the restart fails with
    "Connection closed by server": redis-py retries a single command, not a pipeline, so
    the read API answered 503 once (tests/test_faults.py). The failed connection is closed
    by then, and the pool checks the others as it hands them out (a test holds three across
    a restart: one more try is enough). Only for requests that may run twice (reads, and
    writes that replace a value): a dropped connection may have carried the first try's
    commands to Redis."""
    try:
        return await request()
    except RedisConnectionError:
        return await request()


def connect(url: str, **options: Any) -> aioredis.Redis:
    """A client for `url`; a cluster client for a redis+cluster:// URL.

    The cluster client is returned as aioredis.Redis for the type checker: it has the
    same command methods, which is all the code above this module uses, apart from the
    places that ask is_cluster() (the flush's own pipelines, multi-slot reads).
    """
    found = cluster_seeds(url)
    if found is not None:
        seeds, url_options = found
        cluster = RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in seeds], **url_options, **options)
        # The nodes it discovers are built from these arguments: hiredis packing for them too.
        cluster.connection_kwargs["connection_class"] = _with_hiredis(cluster.connection_kwargs["connection_class"])
        return cast(aioredis.Redis, cluster)
    client = aioredis.from_url(url, **options)
    pool = client.connection_pool
    pool.connection_class = _with_hiredis(pool.connection_class)
    return client
