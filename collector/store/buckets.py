"""Time buckets: minute → hour → day → month, in the configured time zone.

Hits are aggregated per epoch minute (cheap integer arithmetic on the hot path); the
flusher turns a minute into the four bucket ids here, once per distinct minute.
Day boundaries follow the local calendar (Asia/Shanghai by default) so that a "day"
matches the days of the provincial reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

GRANULARITIES = ("minute", "hour", "day", "month")

# strftime formats of the bucket ids stored in key names, and of their display form.
_ID_FORMAT = {"minute": "%Y%m%d%H%M", "hour": "%Y%m%d%H", "day": "%Y%m%d", "month": "%Y%m"}
_DISPLAY_FORMAT = {"minute": "%Y-%m-%dT%H:%M", "hour": "%Y-%m-%dT%H:00", "day": "%Y-%m-%d", "month": "%Y-%m"}


@dataclass(frozen=True, slots=True)
class Bucket:
    granularity: str
    id: str  # e.g. "20261124" for a day; used in key names
    start: int  # epoch seconds of the bucket's first instant
    end: int  # epoch seconds just after its last instant
    label: str  # local-time display form for the read API, e.g. "2026-11-24T15:00"


class Calendar:
    """Maps instants to buckets in one time zone; caches per epoch minute."""

    def __init__(self, timezone: str) -> None:
        self.tz = ZoneInfo(timezone)
        self._by_minute: dict[int, tuple[Bucket, Bucket, Bucket, Bucket]] = {}

    def buckets_of_minute(self, minute: int) -> tuple[Bucket, Bucket, Bucket, Bucket]:
        """The minute, hour, day and month buckets containing epoch minute `minute`."""
        cached = self._by_minute.get(minute)
        if cached is None:
            if len(self._by_minute) > 10_000:  # a few days of minutes; bounded memory
                self._by_minute.clear()
            local = datetime.fromtimestamp(minute * 60, self.tz)
            minute_b, hour_b, day_b, month_b = (self.bucket_at(g, local) for g in GRANULARITIES)
            cached = self._by_minute[minute] = (minute_b, hour_b, day_b, month_b)
        return cached

    def bucket_at(self, granularity: str, local: datetime) -> Bucket:
        start = _floor(granularity, local)
        end = _next(granularity, start)
        return Bucket(
            granularity,
            start.strftime(_ID_FORMAT[granularity]),
            int(start.timestamp()),
            int(end.timestamp()),
            start.strftime(_DISPLAY_FORMAT[granularity]),
        )

    def local(self, epoch: float) -> datetime:
        return datetime.fromtimestamp(epoch, self.tz)

    def span(self, granularity: str, start: datetime, end: datetime) -> list[Bucket]:
        """Every bucket of `granularity` from the one holding `start` to the one holding `end`."""
        out = []
        cursor = _floor(granularity, start.astimezone(self.tz))
        last = end.astimezone(self.tz)
        while cursor <= last:
            out.append(self.bucket_at(granularity, cursor))
            cursor = _next(granularity, cursor)
        return out

    def parse_instant(self, text: str) -> datetime:
        """`YYYY-MM-DD`, `YYYY-MM`, ISO date-time (local unless it has an offset), or epoch seconds."""
        text = text.strip()
        if text.isdigit() and len(text) >= 9:
            return datetime.fromtimestamp(int(text), self.tz)
        if len(text) == 7:  # YYYY-MM
            text += "-01"
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=self.tz)


def _floor(granularity: str, local: datetime) -> datetime:
    if granularity == "minute":
        return local.replace(second=0, microsecond=0)
    if granularity == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    if granularity == "day":
        return local.replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity == "month":
        return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    raise ValueError(f"unknown granularity {granularity!r}")


def _next(granularity: str, start: datetime) -> datetime:
    # Wall-clock arithmetic, then re-resolve the offset: right across DST changes too.
    tz = start.tzinfo
    naive = start.replace(tzinfo=None)
    if granularity == "minute":
        nxt = naive + timedelta(minutes=1)
    elif granularity == "hour":
        nxt = naive + timedelta(hours=1)
    elif granularity == "day":
        nxt = naive + timedelta(days=1)
    else:
        nxt = (naive.replace(day=28) + timedelta(days=4)).replace(day=1)
    return nxt.replace(tzinfo=tz)
