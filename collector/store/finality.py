"""Finality: when a bucket's rollup can no longer change, and the stream that says so.

Every writer (a collector worker process, the flusher's writer id) publishes a
**watermark**: the time up to which everything it acknowledged is in Redis — the start
of its oldest batch not yet applied, or the start of the batch it is filling when
nothing waits. A worker that replays journal segments of an earlier run holds its
watermark at 0 until they are applied: their events may lie anywhere in the past.
Each heartbeat also renews the writer's liveness (`finality_writer_ttl`, on Redis'
clock); a writer that stops beating is dropped when it runs out, so a dead worker
holds finality back that long and no longer.

A bucket is **final** once every live writer's watermark has passed its end plus
`client_ts_window`: an event not yet in Redis arrived after the smallest watermark W,
and an event is filed at its client time only if that lies at most `client_ts_window`
before its arrival (hit/ingest.py `_remark`), so it cannot fall into a bucket that
ended before W − window.

The flush records which buckets received counts (`touched_calls`: one script call per
batch, sent with its last part, that ZADDs into `eb:{finality}:touched:GRAN` of each
granularity members BUCKET:APP scored by the bucket's end), in the same batch as the
counts and before the writer's watermark moves past them. One process per deployment (a
Redis lease) runs the announcer: a Lua script that, atomically, drops the writers whose
liveness ran out, takes the smallest watermark, and moves every touched bucket that is
final from its sorted set to the stream `eb:{finality}:closed` (fields app, granularity,
bucket; `late` = 1 when a bucket received counts after it had been announced — only
possible when a writer was dead longer than its liveness and replayed its journal later). The move is one script, so
even two announcers could not announce a bucket twice. Every key is under the hash tag
`{finality}`: each script touches one Redis Cluster slot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from collector.store import keys, redis_client
from collector.store.aggregate import Snapshot
from collector.store.buckets import GRANULARITIES, Calendar
from collector.store.lease import Lease
from collector.store.periodic import Periodic

log = logging.getLogger(__name__)

# Members per ZADD of touched buckets, touched buckets recorded per script call, and
# buckets announced per round at most (the scripts run inside Redis: a call stays some
# milliseconds however large the batch or the backlog).
ZADD_MEMBERS = 1000
TOUCHED_PER_CALL = 5000
ANNOUNCE_PER_ROUND = 5000

# Records touched buckets: one call for every granularity (their sets share the slot of
# {finality}), where a ZADD each cost a command, a dispatch and a reply more. Idempotent:
# a batch sent again adds the same members with the same scores.
# KEYS: touched:GRAN of the granularities recorded. ARGV: per key, n, then n score/member pairs.
RECORD_TOUCHED_LUA = """
local a = 1
for k = 1, #KEYS do
  local stop = a + 2 * tonumber(ARGV[a])
  for i = a + 1, stop, 2 * ZADD_MEMBERS do
    redis.call('ZADD', KEYS[k], unpack(ARGV, i, math.min(i + 2 * ZADD_MEMBERS - 1, stop)))
  end
  a = stop + 1
end
return 1
""".replace("ZADD_MEMBERS", str(ZADD_MEMBERS))

# Drops the writers whose liveness ran out (on Redis' clock). KEYS: writers, watermarks,
# firsts. Returns now in ms.
_PRUNE = """
local function prune(writers, watermarks, firsts)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local gone = redis.call('ZRANGEBYSCORE', writers, '-inf', now)
  for _, w in ipairs(gone) do
    redis.call('HDEL', watermarks, w)
    redis.call('HDEL', firsts, w)
  end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', writers, '-inf', now) end
  return now
end
"""

# KEYS: writers, watermarks, firsts. ARGV: writer, watermark (ms), first sends' watermark (ms), ttl (ms).
HEARTBEAT_LUA = _PRUNE + """
local now = prune(KEYS[1], KEYS[2], KEYS[3])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return now
"""

# KEYS: writers, watermarks, firsts.  ARGV: writer.
LEAVE_LUA = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""

# The smallest watermark in hash KEYS[h] among live writers other than `except`; -1: none.
_SMALLEST = """
local function smallest(hash, except)
  local found = -1
  local flat = redis.call('HGETALL', hash)
  for i = 1, #flat, 2 do
    if flat[i] ~= except then
      local w = tonumber(flat[i + 1])
      if found < 0 or w < found then found = w end
    end
  end
  return found
end
"""

# KEYS: writers, watermarks, firsts.  ARGV: writer asking.  The smallest first sends'
# watermark of the other live writers (ms); -1 when there are none.
OTHERS_FIRSTS_LUA = _PRUNE + _SMALLEST + """
prune(KEYS[1], KEYS[2], KEYS[3])
return smallest(KEYS[3], ARGV[1])
"""

# KEYS: writers, watermarks, firsts, cursor, stream, touched:GRAN for each of GRANULARITIES.
# ARGV: client_ts_window (s), stream maxlen, most buckets this round, then the granularities.
# Returns {announced, final before (epoch s) or -1 when no writer is alive}.
ANNOUNCE_LUA = _PRUNE + _SMALLEST + """
prune(KEYS[1], KEYS[2], KEYS[3])
local wm = smallest(KEYS[2], '')
if wm < 0 then return {0, -1} end
local limit = math.floor(wm / 1000) - tonumber(ARGV[1])
local budget = tonumber(ARGV[3])
local announced = 0
for g = 4, #ARGV do
  if budget <= 0 then break end
  local gran, touched = ARGV[g], KEYS[g + 2]
  local previous = tonumber(redis.call('HGET', KEYS[4], gran) or '0')
  local members = redis.call('ZRANGEBYSCORE', touched, '-inf', limit, 'WITHSCORES', 'LIMIT', 0, budget)
  for j = 1, #members, 2 do
    local member, score = members[j], tonumber(members[j + 1])
    local sep = string.find(member, ':', 1, true)
    local bucket, app = string.sub(member, 1, sep - 1), string.sub(member, sep + 1)
    if score <= previous then
      redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[2], '*', 'app', app, 'granularity', gran, 'bucket', bucket, 'late', '1')
    else
      redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[2], '*', 'app', app, 'granularity', gran, 'bucket', bucket)
    end
    redis.call('ZREM', touched, member)
  end
  local n = #members / 2
  announced = announced + n
  if n < budget and limit > previous then redis.call('HSET', KEYS[4], gran, limit) end
  budget = budget - n
end
return {announced, limit}
"""

WRITER_KEYS = (keys.FINALITY_WRITERS, keys.FINALITY_WATERMARKS, keys.FINALITY_FIRSTS)


def touched_buckets(snap: Snapshot, calendar: Calendar, granularities: Iterable[str]) -> dict[str, dict[str, int]]:
    """Per granularity, the buckets `snap` writes to: {touched_member: bucket end}."""
    minutes = {key[:2] for key in snap.cube} | {key[:2] for key in snap.rejected} | set(snap.deep_incs)
    touched: dict[str, dict[str, int]] = {gran: {} for gran in granularities}
    for app, minute in minutes:
        for bucket in calendar.buckets_of_minute(minute):
            members = touched.get(bucket.granularity)
            if members is not None:
                members[keys.touched_member(app, bucket.id)] = bucket.end
    return touched


def touched_calls(snap: Snapshot, calendar: Calendar, granularities: Iterable[str] = GRANULARITIES) -> list[redis_client.Command]:
    """The RECORD_TOUCHED_LUA calls that record the buckets `snap` writes to, for the
    announcer: one for all granularities, a further one per TOUCHED_PER_CALL buckets."""
    pairs = [
        (gran, end, member)
        for gran, members in touched_buckets(snap, calendar, granularities).items()
        for member, end in sorted(members.items())
    ]
    return [_touched_call(pairs[start : start + TOUCHED_PER_CALL]) for start in range(0, len(pairs), TOUCHED_PER_CALL)]


def _touched_call(pairs: list[tuple[str, int, str]]) -> redis_client.Command:
    by_key: dict[str, list[redis_client.Arg]] = {}
    for gran, end, member in pairs:
        by_key.setdefault(keys.finality_touched(gran), []).extend((end, member))
    args: list[redis_client.Arg] = []
    for scored in by_key.values():
        args += (len(scored) // 2, *scored)
    return ("EVAL", RECORD_TOUCHED_LUA, len(by_key), *by_key, *args)


class Finality:
    """The finality scripts of one writer."""

    def __init__(self, redis: aioredis.Redis, writer: str, writer_ttl: float) -> None:
        self.redis = redis
        self.writer = writer
        self.ttl_ms = max(1, int(writer_ttl * 1000))

    async def heartbeat(self, watermark: float, firsts: float) -> None:
        """Publish this writer's watermarks (epoch seconds) and renew its liveness."""
        await self.redis.eval(
            HEARTBEAT_LUA, len(WRITER_KEYS), *WRITER_KEYS, self.writer, _ms(watermark), _ms(firsts), self.ttl_ms
        )

    async def leave(self) -> None:
        """This writer stops: its watermark no longer holds finality back."""
        await self.redis.eval(LEAVE_LUA, len(WRITER_KEYS), *WRITER_KEYS, self.writer)

    async def others_firsts(self) -> float | None:
        """The smallest first sends' watermark of the other live writers (epoch
        seconds); None when no other writer is alive."""
        found = int(await self.redis.eval(OTHERS_FIRSTS_LUA, len(WRITER_KEYS), *WRITER_KEYS, self.writer))
        return None if found < 0 else found / 1000

    async def announce(self, window: int, maxlen: int, most: int = ANNOUNCE_PER_ROUND) -> tuple[int, int]:
        """Move the buckets that became final to the stream: (how many, final before)."""
        script_keys = [*WRITER_KEYS, keys.FINALITY_CURSOR, keys.FINALITY_STREAM]
        script_keys += [keys.finality_touched(gran) for gran in GRANULARITIES]
        announced, limit = await self.redis.eval(
            ANNOUNCE_LUA, len(script_keys), *script_keys, window, maxlen, most, *GRANULARITIES
        )
        return int(announced), int(limit)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class FinalityKeeper:
    """Every `interval`: publish the writer's watermarks; the lease holder announces."""

    def __init__(
        self,
        finality: Finality,
        watermarks: Callable[[], tuple[float, float]],
        interval: float,
        window: int,
        stream_maxlen: int,
    ) -> None:
        self.finality = finality
        self.watermarks = watermarks  # () -> (watermark, first sends' watermark), epoch seconds
        self.interval = interval
        self.window = window
        self.stream_maxlen = stream_maxlen
        # The lease outlives a few rounds, so a holder that stalls briefly keeps it.
        self.lease = Lease(finality.redis, keys.FINALITY_LEASE, max(3 * interval, 5.0))
        self.announced = 0
        self._loop = Periodic("finality", self._tick, interval)

    def start(self) -> None:
        self._loop.start()

    async def close(self, leave: bool) -> None:
        """Stop; `leave` when nothing this writer acknowledged is left out of Redis."""
        await self._loop.close()
        try:
            await self.lease.release()
            if leave:
                await self.finality.leave()
        except (RedisError, OSError) as exc:
            log.warning("finality: could not leave cleanly (%s); the writer expires by itself", exc)

    async def _tick(self) -> float:
        await self.round()
        return self.interval

    async def round(self) -> None:
        try:
            await self.finality.heartbeat(*self.watermarks())
            if await self.lease.hold():
                announced, _ = await self.finality.announce(self.window, self.stream_maxlen)
                self.announced += announced
        except (RedisError, OSError) as exc:  # Redis away: the next round tries again
            log.debug("finality round failed: %s", exc)


def closed_entries(entries: Iterable[tuple[Any, dict[Any, Any]]]) -> list[dict[str, str]]:
    """Stream entries (XREADGROUP/XRANGE replies) as plain dicts of text."""
    return [{_text(k): _text(v) for k, v in fields.items()} for _, fields in entries]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
