"""The monthly reports: once per deployment, once per month (from its 2nd), for the month before.

Every collector process runs the loop (every `report_interval` seconds); a Redis lease
(store/lease.py) lets one of them work. When the last whole month has no entry in
`eb:{report}:done`, the holder writes the report of every platform and every group
(registry/groups.py every_group) into DATA_DIR/reports/YYYY-MM/ in every format, POSTs
each JSON report, signed (registry/webhook_sign.py), to the registry's webhook, and
marks the month done. A process that dies halfway leaves the month undone: the next
holder writes it again (the files are replaced, the receiver may get a report twice,
and tells by `month` and `subject.id`).

The HTTP sending is injected (`send`, web/report_routes.py), as for the health job.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from hashlib import sha256
from pathlib import Path

import orjson
import redis.asyncio as aioredis

from collector.api.stats import BadQuery, StatsReader
from collector.registry import webhook_sign
from collector.registry.groups import counted, every_group, series_of
from collector.registry.store import RegistryStore
from collector.report.build import ReportBuilder, Subject, app_subject, group_subject
from collector.report.period import Period, last_whole_month
from collector.report.render import FORMATS, render
from collector.store import keys
from collector.store.lease import Lease

log = logging.getLogger(__name__)

Send = Callable[[str, dict, bytes], Awaitable[str | None]]
FIRST_DAY = 2  # the day of the month from which the month before is reported
DELIVERY_ATTEMPTS = 3  # per report and month; failures are counted in the month's record


@dataclass(frozen=True)
class ReportSettings:
    interval: float
    data_dir: str
    font: str = ""
    webhook_url: str = ""
    webhook_secret: str = ""


class ReportJob:
    def __init__(self, redis: aioredis.Redis, reader: StatsReader, lease: Lease, settings: ReportSettings,
                 clock: Callable[[], float], send: Send | None = None) -> None:
        self.redis = redis
        self.registry = RegistryStore(redis, clock)
        self.builder = ReportBuilder(reader)
        self.lease = lease
        self.settings = settings
        self.clock = clock
        self.send = send

    async def tick(self) -> float:
        today = self._today()
        # Not on the 1st: events of the month's last day may still arrive for a day
        # (offline queues, client_ts_window), and a report is written once.
        if today.day >= FIRST_DAY and await self.lease.hold():
            period = last_whole_month(today)
            if not await self.redis.hexists(keys.REPORT_DONE, period.month_id):
                await self.run(period)
        return self.settings.interval

    def _today(self) -> date:
        return self.builder.calendar.local(self.clock()).date()

    async def subjects(self) -> list[Subject]:
        """Every platform that may have counts, then every group."""
        snapshot = await self.registry.load_all()
        found = [app_subject(p.series, p) for p in sorted(snapshot.platforms.values(), key=lambda p: p.id) if counted(p)]
        for group in every_group(snapshot, await self.registry.sets()):
            regions = [snapshot.platforms[pid].region for pid in group.platforms if pid in snapshot.platforms]
            found.append(group_subject(group, series_of(group, snapshot), regions))
        return found

    async def run(self, period: Period) -> dict:
        """Write and deliver every report of `period`; the month's record."""
        folder = Path(self.settings.data_dir) / "reports" / period.month_id
        folder.mkdir(parents=True, exist_ok=True)
        record = {"at": self.clock(), "reports": 0, "delivered": 0, "failed": 0}
        for subject in await self.subjects():
            try:
                report = await self.builder.build(subject, period, self.clock())
            except BadQuery as exc:  # one too large a read spoils its report only
                log.warning("reports: %s for %s not built: %s", subject.id, period.month_id, exc)
                record["failed"] += 1
                continue
            # In a thread: the PDF is CPU work that must not hold up the hits of this process.
            await asyncio.to_thread(self._write, folder, subject, report)
            record["reports"] += 1
            if self.settings.webhook_url and self.send is not None:
                delivered = await self._deliver(period, report)
                record["delivered" if delivered else "failed"] += 1
        await self.redis.hset(keys.REPORT_DONE, period.month_id, orjson.dumps(record))
        log.info("reports: %s written for %s into %s (%d delivered, %d failed)", record["reports"], period.month_id,
                 folder, record["delivered"], record["failed"])
        return record

    def _write(self, folder: Path, subject: Subject, report: dict) -> None:
        stem = file_stem(subject.id)
        for fmt in FORMATS:
            try:
                body = render(report, fmt, self.settings.font)
            except Exception as exc:  # a missing font spoils the PDF, never the other formats
                log.warning("reports: %s.%s not written: %s", stem, fmt, exc)
                continue
            (folder / f"{stem}.{fmt}").write_bytes(body)

    async def _deliver(self, period: Period, report: dict) -> bool:
        assert self.send is not None
        body = orjson.dumps({"event": "report", "month": period.month_id, "report": report})
        error = None
        for _ in range(DELIVERY_ATTEMPTS):
            headers = webhook_sign.signed_headers(self.settings.webhook_secret, int(self.clock()), body)
            error = await self.send(self.settings.webhook_url, headers, body)
            if error is None:
                return True
        log.warning("reports: delivery of %s for %s failed: %s", report["subject"]["id"], period.month_id, error)
        return False


def file_stem(subject_id: str) -> str:
    """A file name for a platform or group id: `province:33` -> `province_33`; never a path."""
    stem = re.sub(r"[^\w.-]", "_", subject_id).lstrip(".") or "_"
    return stem if len(stem) <= 80 else stem[:64] + "-" + sha256(subject_id.encode()).hexdigest()[:12]
