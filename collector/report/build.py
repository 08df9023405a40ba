"""The report's figures, as one JSON-able dict that every format renders (render.py, pdf.py).

Section one reproduces the seed's 访问指标 (seeds/000): total PV in 万人次, UV in 万人,
pages per visitor, the peak day, the daily PV, and PV by prefecture with share, rank and
change against the previous period, the rest as one 其他 row. Section two: the resource
indicators of the standard's table 4 (docs/indicators.md).

Everything is read through api/stats.py StatsReader, so a group's UV is a union of its
platforms' HyperLogLogs, as in /api/stats?group=.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from collector.api.stats import StatsReader
from collector.enrich import cn_regions
from collector.enrich.geo import DBIP_ATTRIBUTION
from collector.features.figures import MAX_ROW_LIMIT
from collector.registry.groups import GroupRef, region_name
from collector.registry.model import TEST_SERIES_SUFFIX, Platform
from collector.registry.store import RegistryStore
from collector.report.period import Period
from collector.report.shares import largest_remainder
from collector.store.buckets import Bucket

OTHER_NAME = "其他"
OTHER_CODE = "other"
RESOURCE_DIMENSIONS = {"rtype": "资源类型", "subject": "学科", "stage": "学段", "source": "资源来源"}
RESOURCE_ROWS = 10  # rows per resource dimension in the report
WAN = 10_000


@dataclass(frozen=True)
class Subject:
    """What a report is about: one platform or a group, and where its table's regions are."""

    kind: str  # "app" or "group"
    id: str
    name: str
    platforms: tuple[str, ...]
    series: tuple[str, ...]  # the app names its counts are stored under
    home_province: str | None  # 2 digits: the table lists this province's prefectures

    def as_dict(self) -> dict:
        return {"kind": self.kind, "id": self.id, "name": self.name, "platforms": list(self.platforms)}


def app_subject(app: str, platform: Platform | None) -> Subject:
    if platform is None:  # counts under a key no platform is registered with (registry=open)
        return Subject("app", app, app, (app,), (app,), None)
    return Subject("app", app, platform.name, (platform.id,), (app,), _province_of([platform.region]))


def group_subject(group: GroupRef, series: list[str], regions: list[str]) -> Subject:
    """`regions`: the registered regions of its platforms (for an org or a set: their
    common province, if they have one)."""
    if group.kind in ("province", "prefecture"):
        home: str | None = group.id.split(":", 1)[1][:2]
    else:
        home = _province_of(regions)
    return Subject("group", group.id, group.name, group.platforms, tuple(series), home)


async def subject_for(registry: RegistryStore, kind: str, subject_id: str) -> Subject:
    """The subject of `app=` (kind "app") or `group=`; BadGroup for a malformed or unknown group."""
    snapshot = await registry.load_all()
    if kind == "app":
        platform = snapshot.platforms.get(subject_id.removesuffix(TEST_SERIES_SUFFIX))
        return app_subject(subject_id, platform)
    group, series = await registry.group(subject_id)
    regions = [snapshot.platforms[pid].region for pid in group.platforms if pid in snapshot.platforms]
    return group_subject(group, series, regions)


def _province_of(regions: list[str]) -> str | None:
    provinces = {r[:2] for r in regions if len(r) == 6 and r.isdigit()}
    return provinces.pop() if len(provinces) == 1 else None


class ReportBuilder:
    def __init__(self, reader: StatsReader) -> None:
        self.reader = reader
        self.calendar = reader.calendar

    async def build(self, subject: Subject, period: Period, generated_at: float) -> dict[str, Any]:
        previous = period.previous()
        now, before = await self._read(subject, period, ["region"]), await self._read(subject, previous, ["region"])
        # Apart: the region table needs every row, table 4 its top rows (each row's UVs cost).
        resources = await self._read(subject, period, list(RESOURCE_DIMENSIONS), RESOURCE_ROWS)
        uv, uv_exact = await self._uv(subject, period, now)
        previous_uv, _ = await self._uv(subject, previous, before)
        return {
            "title": _title(subject, period),
            "subject": subject.as_dict(),
            "period": period.as_dict(),
            "previous_period": previous.as_dict(),
            "timezone": str(self.calendar.tz),
            "access": _access(now, before, uv, previous_uv, uv_exact),
            "regions": _regions(subject.home_province, now, before),
            "resources": _resources(resources),
            "attribution": DBIP_ATTRIBUTION,
            "generated_at": self.calendar.local(generated_at).isoformat(timespec="seconds"),
        }

    def _days(self, period: Period) -> list[Bucket]:
        start, end = (datetime.combine(d, time(), self.calendar.tz) for d in (period.first, period.last))
        return self.calendar.span("day", start, end)

    async def _read(self, subject: Subject, period: Period, breakdowns: list[str], limit: int = MAX_ROW_LIMIT) -> dict:
        """The period by day; BadQuery (api/stats.py ReadBudget) when that is too large a read."""
        return await self.reader.read(list(subject.series), "day", self._days(period), breakdowns, limit,
                                      label=subject.id, row_uv=False)

    async def _uv(self, subject: Subject, period: Period, by_day: dict) -> tuple[int, bool]:
        """(UV, exact). A calendar month's UV is its month HyperLogLog (keyed per month, so a
        visitor of many days counts once); another period's is the union of its days, whose
        keys change daily (hit/visitors.py), so a visitor of several days counts once per day."""
        if not period.calendar_month:
            return by_day["totals"]["uv"], False
        start = datetime.combine(period.first, time(), self.calendar.tz)
        month = await self.reader.read(list(subject.series), "month", self.calendar.span("month", start, start), [])
        return month["totals"]["uv"], True


def _title(subject: Subject, period: Period) -> str:
    when = f"{period.first.year}年{period.first.month}月" if period.calendar_month else period.label_zh()
    return f"{subject.name} 月度运行报告（{when}）"


def _wan(n: int) -> float:
    return round(n / WAN, 2)


def _change_pct(now: int, before: int) -> float | None:
    return round(100 * (now - before) / before, 2) if before else None


def _access(now: dict, before: dict, uv: int, previous_uv: int, uv_exact: bool) -> dict:
    pv = now["totals"]["pv"]
    daily = [{"date": entry["bucket"], "pv": entry["pv"], "uv": entry["uv"]} for entry in now["series"]]
    peak = max(daily, key=lambda d: d["pv"], default=None)
    return {
        "pv": pv, "pv_wan": _wan(pv), "uv": uv, "uv_wan": _wan(uv), "uv_exact": uv_exact,
        "pages_per_visitor": round(pv / uv, 2) if uv else None,
        "pv_per_100_visitors": round(100 * pv / uv, 1) if uv else None,
        "previous_pv": before["totals"]["pv"], "previous_uv": previous_uv,
        "pv_change_pct": _change_pct(pv, before["totals"]["pv"]), "uv_change_pct": _change_pct(uv, previous_uv),
        "peak_day": {"date": peak["date"], "pv": peak["pv"]} if peak and peak["pv"] else None,
        "daily": daily,
    }


def _region_pv(answer: dict, home: str | None) -> tuple[dict[str, int], int]:
    """PV per prefecture of province `home` (per province when None), and the PV of every
    region together: a table's rows and its whole."""
    level = "city" if home else "province"
    rows = answer.get("breakdowns", {}).get("region", {}).get(level, [])
    total = sum(row["pv"] for row in rows)
    found: dict[str, int] = {}
    for row in rows:
        if row.get("country") != "CN":
            continue
        code = row["city"] if home else row["province"]
        if code and code.isdigit() and (home is None or code.startswith(home)):
            found[code] = found.get(code, 0) + row["pv"]
    return found, total


def _ranks(pv: dict[str, int]) -> dict[str, int]:
    """1 for the most PV; ties share a rank; a region without PV has none."""
    ordered = sorted((n for n in pv.values() if n), reverse=True)
    return {code: ordered.index(n) + 1 for code, n in pv.items() if n}


def _regions(home: str | None, now: dict, before: dict) -> dict:
    pv, total = _region_pv(now, home)
    previous, _ = _region_pv(before, home)
    if home:  # every prefecture of the province, with PV or not, as in the seed's table
        codes = sorted({c for c in cn_regions.CITIES if c[:2] == home} | set(pv))
    else:
        codes = sorted(set(pv) | set(previous))
    codes.sort(key=lambda c: (-pv.get(c, 0), c))
    other = total - sum(pv.get(c, 0) for c in codes)
    shares = largest_remainder([pv.get(c, 0) for c in codes] + [other])
    ranks, previous_ranks = _ranks(pv), _ranks(previous)
    rows = []
    for code, share in zip(codes, shares[:-1], strict=True):  # the last share is 其他's
        rank, was = ranks.get(code), previous_ranks.get(code)
        rows.append({
            "code": code, "name": region_name(code), "pv": pv.get(code, 0), "pv_wan": _wan(pv.get(code, 0)), "share_pct": share,
            "rank": rank, "previous_pv": previous.get(code, 0), "previous_rank": was,
            "change_pct": _change_pct(pv.get(code, 0), previous.get(code, 0)),
            "rank_change": was - rank if rank and was else None,
        })
    return {
        "level": "city" if home else "province",
        "within": {"code": home.ljust(6, "0"), "name": region_name(home)} if home else None,
        "total_pv": total,
        "rows": rows,
        "other": {"code": OTHER_CODE, "name": OTHER_NAME, "pv": other, "pv_wan": _wan(other), "share_pct": shares[-1]},
    }


def _resources(now: dict) -> dict:
    """The standard's table 4: what the deep tag counted, in all and per resource dimension."""
    totals = now["totals"]
    media, interactions = totals.get("media", {}), totals.get("interactions", {})
    by_dimension = {}
    for dim in RESOURCE_DIMENSIONS:
        rows = now.get("breakdowns", {}).get(dim, [])
        by_dimension[dim] = [{k: row.get(k) for k in ("value", "views", "viewers", "resources_viewed", "catalogue_resources",
                                                      "avg_views_per_resource")} for row in rows]
    return {
        "catalogue_resources": media.get("catalogue_resources"),
        "resources_viewed": media.get("resources_viewed"),
        "views": media.get("views", 0),
        "avg_views_per_resource": media.get("avg_views_per_resource"),
        "watch_hours": round(media.get("watch_ms", 0) / 3_600_000, 1),
        "read_hours": round(media.get("read_ms", 0) / 3_600_000, 1),
        "completion_avg": media.get("completion", {}).get("avg"),
        "completed_rate": media.get("completion", {}).get("completed_rate"),
        "ratings": interactions.get("ratings", 0),
        "rating_avg": interactions.get("rating_avg"),
        "likes": interactions.get("likes_net", 0),
        "shares": interactions.get("shares", 0),
        "favorites": interactions.get("favorites_net", 0),
        "by_dimension": by_dimension,
    }
