"""The visitor-hash salts in Redis: every replica hashes visitors with the same salt.

A day's salt (and a month's) is created by the first replica that needs it (SET NX) and
read by all others; Redis deletes it 48 h after its period (keys.SALT_LIFETIME), so no
visitor can be followed beyond that. See hit/visitors.py for how the salts are used.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from collector.hit.visitors import VisitorHasher
from collector.store import keys
from collector.store.buckets import Calendar
from collector.store.periodic import Periodic

log = logging.getLogger(__name__)


class SaltKeeper:
    """Makes sure the salts of yesterday, today, tomorrow and of the months around exist."""

    REFRESH_SECONDS = 600

    def __init__(self, redis: aioredis.Redis, hasher: VisitorHasher, calendar: Calendar,
                 clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.hasher = hasher
        self.calendar = calendar
        self.clock = clock
        self._loop = Periodic("salt-keeper", self._tick, self.REFRESH_SECONDS)

    async def refresh(self) -> bool:
        now = self.clock()
        wanted: dict[str, int] = {}  # period -> when its salt is deleted
        for offset in (-1, 0, 1):
            day = self.calendar.bucket_at("day", self.calendar.local(now + offset * 86400))
            wanted[day.id] = day.start + keys.SALT_LIFETIME
            # yesterday's, this and tomorrow's month: late events and the turn of a month
            month = self.calendar.bucket_at("month", self.calendar.local(now + offset * 86400))
            wanted[month.id] = month.end + keys.SALT_LIFETIME
        try:
            for period, expire_at in wanted.items():
                key = keys.salt(period)
                # NX: the first replica to get here picks the salt; all others read it.
                await self.redis.set(key, os.urandom(32), nx=True, exat=max(expire_at, int(now) + 60))
                salt = await self.redis.get(key)
                if salt and isinstance(salt, bytes):  # (the collector's client never decodes replies)
                    self.hasher.set_salt(period, salt)
        except (RedisError, OSError) as exc:
            log.warning("could not load visitor salts: %s", exc)
            return False
        self.hasher.retain(set(wanted))
        return True

    def start(self) -> None:
        """Refresh every 10 minutes (every 5 s while Redis fails); the caller did the first."""
        self._loop.start()

    async def _tick(self) -> float:
        return self.REFRESH_SECONDS if await self.refresh() else 5.0

    async def close(self) -> None:
        await self._loop.close()
