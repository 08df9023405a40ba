"""The health round: once per deployment, every `health_interval` seconds.

Every collector process runs the loop; a Redis lease (store/lease.py) lets exactly one of
them do the round, and another takes over within the lease's time when that one stops.
A round, for every platform whose hits count (approved, active):

1. health: observe its rollups, assess (health.py), keep the record and any transition;
2. validation: once a day, the checks of the previous day (health.validate);
3. anomalies: once per hour, the hour that just ended against its baseline (anomaly.py);
   and at once, a platform turning silent or degraded (anomaly.health_alert);
4. delivery: anomalies waiting for the webhook are sent, retried with backoff.

The HTTP sending is injected (`send`, web/platform_health.py): this module does no I/O of
its own beyond the stores.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import orjson

from collector.registry import webhook_sign
from collector.registry.anomaly import baseline, detect, health_alert, same_kind_history
from collector.registry.health import DEGRADED, SILENT, HealthRecord, Thresholds, assess, validate
from collector.registry.health_store import (
    DELIVERY_DELIVERED,
    DELIVERY_FAILED,
    DELIVERY_PENDING,
    HealthStore,
)
from collector.registry.model import COUNTING_STATES, Platform
from collector.registry.store import RegistryStore
from collector.store.buckets import Bucket
from collector.store.lease import Lease

log = logging.getLogger(__name__)

# An hour is judged this long after it ended: its last hits are flushed by then.
HOUR_GRACE = 120
# A day is validated this long after it ended, for the same reason.
DAY_GRACE = 600
# Transitions into these states are alerts (listed with the anomalies, sent to the webhook).
ALERTING_STATES = (SILENT, DEGRADED)
# Deliveries attempted per round, so a dead receiver cannot stretch a round for long.
DELIVERIES_PER_ROUND = 10

# send(url, headers, body) -> None when the receiver answered 2xx, else the error.
Send = Callable[[str, dict, bytes], Awaitable[str | None]]


@dataclass(frozen=True)
class HealthSettings:
    interval: float
    thresholds: Thresholds
    sensitivity: float
    baseline_days: int
    webhook_url: str = ""
    webhook_secret: str = ""
    backoff_base: float = webhook_sign.BACKOFF_BASE


class HealthJob:
    def __init__(self, registry: RegistryStore, store: HealthStore, lease: Lease, settings: HealthSettings,
                 clock: Callable[[], float], send: Send | None = None) -> None:
        self.registry = registry
        self.store = store
        self.lease = lease
        self.settings = settings
        self.clock = clock
        self.send = send
        self.calendar = store.calendar
        self.holding = False

    async def tick(self) -> float:
        """One round if this process holds the lease; the seconds until the next."""
        holding = await self.lease.hold()
        if holding != self.holding:
            log.info("health: this process %s the health rounds (lease %s)", "runs" if holding else "no longer runs", self.lease.token)
            self.holding = holding
        if holding:
            await self.run_round()
        return self.settings.interval

    async def run_round(self) -> None:
        now = self.clock()
        snapshot = await self.registry.load_all()
        monitored = {pid: p for pid, p in snapshot.platforms.items() if p.state in COUNTING_STATES}
        records = await self.store.all()
        await self.store.forget(pid for pid in records if pid not in monitored)
        job = await self.store.job_state()
        day = self._day_to_validate(now)
        hour = self._hour_to_judge(now)
        judge_hour = job.get("anomaly_hour") != hour[0]  # each hour once, whichever process judged it
        for platform in monitored.values():
            record = await self._assess(platform, records.get(platform.id), now, day)
            if judge_hour:
                await self._judge_hour(platform, record, hour, now)
        await self.deliver_due(now)
        await self.store.note_run(self.lease.token, now, anomaly_hour=hour[0])

    async def _assess(self, platform: Platform, previous: HealthRecord | None, now: float, day: Bucket) -> HealthRecord:
        observation = await self.store.observe(platform, self.settings.thresholds, now)
        record, transition = assess(platform, observation, previous, self.settings.thresholds)
        # A day is validated once, and only a day the platform was sending in.
        sending = record.first_hit_at and record.first_hit_at < day.end
        if sending and (record.validation or {}).get("day") != day.id:
            counters, uv = await self.store.day_totals(platform.series, day.id)
            record = record.replace(validation=validate(platform, day.id, counters, uv))
        await self.store.save(record, transition)
        if transition:
            log.info("health: %s %s -> %s %s", platform.id, transition.before or "-", transition.after, ",".join(transition.reasons))
            if transition.after in ALERTING_STATES:
                await self._alert(record, now)
        return record

    async def _alert(self, record: HealthRecord, now: float) -> None:
        """A platform that turned silent or degraded is news the same hour: to the webhook."""
        hour = self.calendar.bucket_at("hour", self.calendar.local(now)).id
        expected = next((r.figure for r in record.reasons if r.code == "silent" and r.figure), 0.0)
        words = "; ".join(f"{r.zh} / {r.en}" for r in record.reasons)
        alert = health_alert(record.platform, hour, record.state, words, expected, now)
        await self.store.add_anomaly(alert, deliver=bool(self.settings.webhook_url))

    def _day_to_validate(self, now: float) -> Bucket:
        """The last day that ended at least DAY_GRACE ago."""
        return self.calendar.bucket_at("day", self.calendar.local(now - DAY_GRACE) - timedelta(days=1))

    def _hour_to_judge(self, now: float) -> tuple[str, float]:
        """(id, start) of the last hour that ended at least HOUR_GRACE ago."""
        b = self.calendar.bucket_at("hour", self.calendar.local(now - HOUR_GRACE) - timedelta(hours=1))
        return (b.id, float(b.start))

    async def _judge_hour(self, platform: Platform, record: HealthRecord, hour: tuple[str, float], now: float) -> None:
        hour_id, start = hour
        # The baseline only counts days the platform was already sending: the zeros before
        # its first hit would make its first weeks one long "spike".
        if not record.first_hit_at or record.first_hit_at > start:
            return
        series = await self.store.hour_series(platform.series, start, self.settings.baseline_days)
        (local, pv, uv), history = series[0], series[1:]
        lived = [row for row in history if row[0].timestamp() + 3600 > record.first_hit_at]  # hours that ended after it
        pv_history = [(row[0].date(), row[1]) for row in lived]
        uv_history = [(row[0].date(), row[2]) for row in lived]
        for metric, value, history_of_metric in (("pv", pv, pv_history), ("uv", uv, uv_history)):
            base = baseline(same_kind_history(local.date(), history_of_metric))
            anomaly = detect(platform.id, hour_id, metric, value, base, self.settings.sensitivity, now)
            if anomaly and await self.store.add_anomaly(anomaly, deliver=bool(self.settings.webhook_url)):
                log.warning("anomaly: %s %s %s %s %d (expected %.0f, range %.0f-%.0f)", platform.id, hour_id, metric,
                            anomaly.kind, value, anomaly.expected, anomaly.low, anomaly.high)

    async def deliver_due(self, now: float) -> int:
        """Send the anomalies whose next attempt is due; how many were delivered."""
        if not self.settings.webhook_url or self.send is None:
            return 0
        delivered = 0
        for anomaly in await self.store.due_deliveries(now, DELIVERIES_PER_ROUND):
            if not await self.lease.hold():  # lost it while sending: the new holder goes on
                break
            delivered += await self._deliver(self.send, anomaly, self.clock())
        return delivered

    async def _deliver(self, send: Send, anomaly: dict, now: float) -> int:
        attempts = anomaly["delivery"]["attempts"] + 1
        body = orjson.dumps({"event": "anomaly", "anomaly": {k: v for k, v in anomaly.items() if k != "delivery"}})
        headers = webhook_sign.signed_headers(self.settings.webhook_secret, int(now), body)
        error = await send(self.settings.webhook_url, headers, body)
        if error is None:
            await self.store.record_delivery(anomaly, DELIVERY_DELIVERED, attempts, 0.0, "", now)
            return 1
        if attempts >= webhook_sign.MAX_ATTEMPTS:
            log.warning("webhook: giving up on %s after %d attempts: %s", anomaly["id"], attempts, error)
            await self.store.record_delivery(anomaly, DELIVERY_FAILED, attempts, 0.0, error, now)
        else:
            next_at = now + webhook_sign.backoff(attempts, self.settings.backoff_base)
            await self.store.record_delivery(anomaly, DELIVERY_PENDING, attempts, next_at, error, now)
        return 0
