"""Health in Redis: read a platform's rollups into observations; keep health records,
their transitions, the anomalies and their webhook deliveries.

The second module of registry/ that talks to Redis (tests/test_layers.py names it):
store.py keeps the registry's own records, this one reads the counting layer's rollups
(by platform id, docs/redis-keys.md) and writes the {health} keys. The judgements are
in health.py and anomaly.py, pure.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import cast

import orjson
import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from collector.registry.anomaly import Anomaly
from collector.registry.health import HealthRecord, Observation, Thresholds, Transition, accepted_events, event_counter
from collector.registry.model import Platform
from collector.registry.store import reply_text
from collector.store import keys
from collector.store.buckets import Calendar

# Same-hour history for silence: a week is enough to know whether an hour has traffic.
SILENCE_HISTORY_DAYS = 7
# The silent window is read minute by minute; longer settings are read up to this.
MAX_SILENT_MINUTES = 180
# Delivery states of an anomaly.
DELIVERY_NONE, DELIVERY_PENDING, DELIVERY_DELIVERED, DELIVERY_FAILED = "none", "pending", "delivered", "failed"


def _ints(raw: dict) -> dict[str, int]:
    return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}


def rejected_events(counters: dict[str, int]) -> int:
    return sum(n for name, n in counters.items() if name.startswith("rejected:"))


def foreign_origin_hits(counters: dict[str, int]) -> int:
    # Counted by the hit path's enforcement: rejected (policy reject) or flagged (flag).
    return counters.get("rejected:foreign_origin", 0) + counters.get("flagged:foreign_origin", 0)


class HealthStore:
    def __init__(self, redis: aioredis.Redis, calendar: Calendar) -> None:
        self.redis = redis
        self.calendar = calendar

    # ---- reading the rollups ---------------------------------------------------------

    async def observe(self, platform: Platform, thresholds: Thresholds, now: float) -> Observation:
        pid, local = platform.series, self.calendar.local(now)  # where the hit path counts it
        minutes = min(thresholds.silent_minutes, MAX_SILENT_MINUTES)
        minute_ids = [self.calendar.bucket_at("minute", local - timedelta(minutes=i)).id for i in range(minutes)]
        hours = [self.calendar.bucket_at("hour", local - timedelta(hours=i)).id for i in range(24)]
        same_hour = [self.calendar.bucket_at("hour", local - timedelta(days=d)).id for d in range(1, SILENCE_HISTORY_DAYS + 1)]
        pipe = self.redis.pipeline(transaction=False)
        for bucket in minute_ids:
            pipe.hgetall(keys.counters(pid, "minute", bucket))
        for bucket in hours + same_hour:
            pipe.hgetall(keys.counters(pid, "hour", bucket))
        for bucket in hours:
            pipe.hgetall(keys.dimension(pid, "hour", bucket, "page_code"))
        raw = [_ints(r) for r in await pipe.execute()]
        minute_c, hour_c = raw[:minutes], raw[minutes:minutes + 24]
        history_c, codes = raw[minutes + 24:minutes + 24 + len(same_hour)], raw[minutes + 24 + len(same_hour):]
        day: dict[str, int] = {}
        for counters in hour_c:
            for name, n in counters.items():
                day[name] = day.get(name, 0) + n
        # History only from days that had any traffic at all: days before the platform
        # existed (or whose hour buckets expired) say nothing about this hour.
        lived = [accepted_events(c) for c in history_c if c]
        window = hour_c[:2]
        return Observation(
            now=now,
            recent_events=sum(accepted_events(c) for c in minute_c),
            usual_per_hour=statistics.median(lived) if lived else None,
            window_events=sum(accepted_events(c) for c in window),
            window_rejected=sum(rejected_events(c) for c in window),
            window_foreign=sum(foreign_origin_hits(c) for c in window),
            day_events=accepted_events(day),
            day_by_type={t: day.get(event_counter(t), 0) for t in platform.scope.events},
            day_pv=day.get("pv", 0),
            day_pv_with_code=sum(sum(c.values()) for c in codes),
        )

    async def hour_series(self, platform_id: str, hour_start: float, days: int) -> list[tuple[datetime, int, int]]:
        """(local start, PV, UV) of the hour at `hour_start` and the same hour of `days` days before."""
        local = self.calendar.local(hour_start)
        buckets = [self.calendar.bucket_at("hour", local - timedelta(days=d)) for d in range(days + 1)]
        pipe = self.redis.pipeline(transaction=False)
        for b in buckets:
            pipe.hget(keys.counters(platform_id, "hour", b.id), "pv")
            pipe.execute_command("PFCOUNT", keys.visitors(platform_id, "hour", b.id))  # (a cluster pipeline has no pfcount)
        raw = await pipe.execute()
        return [(self.calendar.local(b.start), int(raw[2 * i] or 0), int(raw[2 * i + 1])) for i, b in enumerate(buckets)]

    async def hour_exists(self, platform_id: str, hour_id: str) -> bool:
        return bool(await self.redis.exists(keys.counters(platform_id, "hour", hour_id)))

    async def day_totals(self, platform_id: str, day_id: str) -> tuple[dict[str, int], int]:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys.counters(platform_id, "day", day_id))
        pipe.execute_command("PFCOUNT", keys.visitors(platform_id, "day", day_id))
        counters, uv = await pipe.execute()
        return _ints(counters), int(uv)

    # ---- health records and their history -------------------------------------------

    async def get(self, platform_id: str) -> HealthRecord | None:
        raw = await self.redis.hget(keys.HEALTH_RECORDS, platform_id)
        return HealthRecord.from_dict(orjson.loads(raw)) if raw else None

    async def all(self) -> dict[str, HealthRecord]:
        raw = await self.redis.hgetall(keys.HEALTH_RECORDS)
        return {reply_text(k): HealthRecord.from_dict(orjson.loads(v)) for k, v in raw.items()}

    async def save(self, record: HealthRecord, transition: Transition | None) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.HEALTH_RECORDS, record.platform, orjson.dumps(record.as_dict()))
            if transition is not None:
                history = keys.health_history(record.platform)
                pipe.lpush(history, orjson.dumps(transition.as_dict()))
                pipe.ltrim(history, 0, keys.HEALTH_HISTORY_MAXLEN - 1)
            await pipe.execute()

    async def forget(self, platform_ids: Iterable[str]) -> None:
        """Drop the records of platforms no longer monitored (their history stays)."""
        ids = list(platform_ids)
        if ids:
            await self.redis.hdel(keys.HEALTH_RECORDS, *ids)

    async def history(self, platform_id: str, limit: int = 50) -> list[dict]:
        return [orjson.loads(r) for r in await self.redis.lrange(keys.health_history(platform_id), 0, limit - 1)]

    # ---- anomalies and their delivery -------------------------------------------------

    async def add_anomaly(self, anomaly: Anomaly, deliver: bool) -> bool:
        """Record it once (its id names platform, hour and metric); False when it was known.

        With `deliver`, it joins the webhook outbox, due at once.
        """
        state = DELIVERY_PENDING if deliver else DELIVERY_NONE
        record = {**anomaly.as_dict(), "delivery": {"state": state, "attempts": 0, "next_at": anomaly.detected_at, "error": ""}}
        if not await self.redis.hsetnx(keys.HEALTH_ANOMALIES, anomaly.id, orjson.dumps(record)):
            return False
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(keys.HEALTH_ANOMALY_TIMES, {anomaly.id: anomaly.detected_at})
            if deliver:
                pipe.zadd(keys.HEALTH_OUTBOX, {anomaly.id: anomaly.detected_at})
            await pipe.execute()
        await self._prune()
        return True

    async def _prune(self) -> None:
        excess = await self.redis.zcard(keys.HEALTH_ANOMALY_TIMES) - keys.HEALTH_ANOMALIES_MAX
        if excess > 0:
            oldest = await self.redis.zrange(keys.HEALTH_ANOMALY_TIMES, 0, excess - 1)
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hdel(keys.HEALTH_ANOMALIES, *oldest)
                pipe.zrem(keys.HEALTH_ANOMALY_TIMES, *oldest)
                pipe.zrem(keys.HEALTH_OUTBOX, *oldest)
                await pipe.execute()

    async def anomalies(self, limit: int = 100, platform_id: str | None = None) -> list[dict]:
        """Newest first; with `platform_id`, only that platform's."""
        # (the client does not decode replies: members are bytes)
        ids = cast("list[bytes]", await self.redis.zrevrange(keys.HEALTH_ANOMALY_TIMES, 0, -1 if platform_id else limit - 1))
        if platform_id:
            ids = [i for i in ids if i.decode().startswith(platform_id + ":")][:limit]
        if not ids:
            return []
        return [orjson.loads(r) for r in await self.redis.hmget(keys.HEALTH_ANOMALIES, ids) if r]

    async def due_deliveries(self, now: float, limit: int = 20) -> list[dict]:
        ids = cast("list[bytes]", await self.redis.zrangebyscore(keys.HEALTH_OUTBOX, "-inf", now, start=0, num=limit))
        if not ids:
            return []
        return [orjson.loads(r) for r in await self.redis.hmget(keys.HEALTH_ANOMALIES, ids) if r]

    async def record_delivery(self, anomaly: dict, state: str, attempts: int, next_at: float, error: str, at: float) -> None:
        anomaly = {**anomaly, "delivery": {"state": state, "attempts": attempts, "next_at": next_at, "error": error[:300], "at": at}}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.HEALTH_ANOMALIES, anomaly["id"], orjson.dumps(anomaly))
            if state == DELIVERY_PENDING:
                pipe.zadd(keys.HEALTH_OUTBOX, {anomaly["id"]: next_at})
            else:
                pipe.zrem(keys.HEALTH_OUTBOX, anomaly["id"])
            await pipe.execute()

    # ---- the job's bookkeeping --------------------------------------------------------

    async def job_state(self) -> dict[str, str]:
        return {reply_text(k): reply_text(v) for k, v in (await self.redis.hgetall(keys.HEALTH_JOB)).items()}

    async def note_run(self, holder: str, now: float, **marks: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(keys.HEALTH_JOB, "runs:" + holder, 1)
            mapping: dict[FieldT, EncodableT] = {"last_run": repr(now), "last_holder": holder}
            for name, value in marks.items():  # (redis-py's Mapping is invariant in its key type)
                mapping[name] = value
            pipe.hset(keys.HEALTH_JOB, mapping=mapping)
            await pipe.execute()
