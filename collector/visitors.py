"""Who a hit belongs to: the salted visitor hash and, for bare pixels, visit inference.

The standard counts UV from source IP + device information. We never store either:
the visitor key is BLAKE2b keyed with a random per-day salt that all replicas share
through Redis (SET NX) and that Redis deletes 48 h after the day starts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from hashlib import blake2b

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from . import keys
from .aggregate import NO_VISIT, VISIT_SECOND_PAGE, VISIT_START
from .buckets import Calendar

log = logging.getLogger(__name__)


class VisitorHasher:
    def __init__(self) -> None:
        self._salts: dict[str, bytes] = {}
        self._local_fallback: set[str] = set()

    def set_salt(self, day_id: str, salt: bytes) -> None:
        self._salts[day_id] = salt[:64]  # BLAKE2b keys are at most 64 bytes
        self._local_fallback.discard(day_id)

    def has_salt(self, day_id: str) -> bool:
        return day_id in self._salts and day_id not in self._local_fallback

    def visitor(self, day_id: str, app: str, ip: str, ua: str) -> bytes:
        salt = self._salts.get(day_id)
        if salt is None:
            # Redis has not given us this day's salt (unreachable at start). Hash with a
            # process-local one rather than drop the hit; UV may then over-count across
            # replicas for the hits hashed before the shared salt arrives.
            salt = self._salts[day_id] = os.urandom(32)
            self._local_fallback.add(day_id)
            log.warning("no shared visitor salt for %s yet: using a local one", day_id)
        return blake2b(f"{app}\0{ip}\0{ua}".encode("utf-8", "replace"), key=salt, digest_size=8).digest()

    def forget_before(self, day_id: str) -> None:
        for day in [d for d in self._salts if d < day_id]:
            del self._salts[day]
            self._local_fallback.discard(day)


class SaltKeeper:
    """Makes sure yesterday's, today's and tomorrow's salts exist and are loaded."""

    REFRESH_SECONDS = 600

    def __init__(self, redis: aioredis.Redis, hasher: VisitorHasher, calendar: Calendar, clock=time.time) -> None:
        self.redis = redis
        self.hasher = hasher
        self.calendar = calendar
        self.clock = clock
        self._task: asyncio.Task | None = None

    async def refresh(self) -> bool:
        now = self.clock()
        days = [self.calendar.day_id(now + offset * 86400) for offset in (-1, 0, 1)]
        try:
            for day in days:
                key = keys.salt(day)
                expire_at = self.calendar.day_start(day) + keys.SALT_LIFETIME
                # NX: the first replica to get here picks the salt; all others read it.
                await self.redis.set(key, os.urandom(32), nx=True, exat=max(expire_at, int(now) + 60))
                salt = await self.redis.get(key)
                if salt:
                    self.hasher.set_salt(day, salt)
        except (RedisError, OSError) as exc:
            log.warning("could not load visitor salts: %s", exc)
            return False
        self.hasher.forget_before(days[0])
        return True

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="salt-keeper")

    async def _run(self) -> None:
        while True:
            ok = await self.refresh()
            await asyncio.sleep(self.REFRESH_SECONDS if ok else 5)

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


class VisitTracker:
    """Infers visit starts for page views that carry no session ordinal (`sn`).

    Per process only: with several replicas behind a balancer this over-counts visits of
    such hits. The beacon always sends `sn`, which is exact.
    """

    MAX_ENTRIES = 1_000_000

    def __init__(self, timeout: int) -> None:
        self.timeout = timeout
        self._seen: dict[bytes, list] = {}  # visitor -> [last seen, page views in visit]

    def visit_flag(self, visitor: bytes, now: float) -> int:
        entry = self._seen.get(visitor)
        if entry is None or now - entry[0] > self.timeout:
            if len(self._seen) >= self.MAX_ENTRIES:
                self.prune(now)
            self._seen[visitor] = [now, 1]
            return VISIT_START
        entry[0] = now
        entry[1] += 1
        return VISIT_SECOND_PAGE if entry[1] == 2 else NO_VISIT

    def prune(self, now: float) -> None:
        cutoff = now - self.timeout
        self._seen = {v: e for v, e in self._seen.items() if e[0] >= cutoff}
        if len(self._seen) >= self.MAX_ENTRIES:  # all recent: forget the oldest half
            ordered = sorted(self._seen.items(), key=lambda item: item[1][0])
            self._seen = dict(ordered[len(ordered) // 2 :])


def flag_from_ordinal(sn: int) -> int:
    return VISIT_START if sn == 1 else VISIT_SECOND_PAGE if sn == 2 else NO_VISIT
