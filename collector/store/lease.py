"""A Redis lease: one process of a deployment does a job, the others stand by.

`SET key token NX PX ttl` takes a free lease; the holder renews it (PEXPIRE only while the
value is still its own token) before it runs out, and releases it (DEL only while it is
its own) when it stops. The compare-and-act steps are Lua scripts, so a holder that
stalled past its lease never renews or deletes the lease another process has taken since.
A holder that dies without releasing is replaced once the lease expires.
"""

from __future__ import annotations

import secrets

import redis.asyncio as aioredis

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class Lease:
    def __init__(self, redis: aioredis.Redis, key: str, ttl_seconds: float, token: str | None = None) -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self.token = token or secrets.token_hex(8)

    async def hold(self) -> bool:
        """Renew the lease when it is ours, else try to take it; True while we hold it."""
        renewed = await self.redis.eval(_RENEW, 1, self.key, self.token, self.ttl_ms)
        if renewed:
            return True
        return bool(await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    async def release(self) -> bool:
        return bool(await self.redis.eval(_RELEASE, 1, self.key, self.token))

    async def holder(self) -> str | None:
        raw = await self.redis.get(self.key)
        return raw.decode() if isinstance(raw, bytes) else raw
